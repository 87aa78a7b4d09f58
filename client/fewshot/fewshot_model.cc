#include "client/fewshot/fewshot_model.h"

#include <google/protobuf/text_format.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <tuple>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/fewshot/head_module.h"

namespace audiotag::fewshot {
namespace {

namespace fs = std::filesystem;

fs::path Parent(const fs::path& out) {
  const fs::path parent = out.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    return absl::InternalError(
        absl::StrCat("cannot write '", path.string(), "'"));
  }
  return absl::OkStatus();
}

std::string ConfigText(const v1::ModelConfig& config) {
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  return absl::StrCat(
      "# A few-shot tag head written by `audiotag fewshot create` "
      "(docs/fewshot.md).\n",
      text);
}

}  // namespace

absl::Status CheckOutDir(const std::string& out_dir) {
  fs::path out(out_dir);
  while (!out.empty() && !out.has_filename()) out = out.parent_path();
  const std::string name = out.filename().string();
  if (name.empty() || name == "." || name == ".." || name[0] == '.') {
    return absl::InvalidArgumentError(absl::StrCat(
        "--out '", out_dir,
        "': the last component is the model name and must not be empty or "
        "start with '.'"));
  }
  std::error_code ec;
  if (!fs::is_directory(Parent(out), ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--out '", out_dir, "': the repository folder '",
                     Parent(out).string(), "' does not exist"));
  }
  if (fs::exists(fs::symlink_status(out, ec))) {
    return absl::AlreadyExistsError(absl::StrCat(
        "--out '", out_dir,
        "' already exists; remove it first or choose another name"));
  }
  return absl::OkStatus();
}

absl::Status CheckLabel(const std::string& label) {
  if (label.empty()) return absl::InvalidArgumentError("a tag label is empty");
  if (label.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "tag label '", label.substr(0, 32), "...' is longer than 128 bytes"));
  }
  for (unsigned char c : label) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          absl::StrCat("tag label '", label, "' holds a control character"));
    }
  }
  if (label.front() == ' ' || label.back() == ' ') {
    return absl::InvalidArgumentError(
        absl::StrCat("tag label '", label, "' starts or ends with a space"));
  }
  return absl::OkStatus();
}

v1::ModelConfig StageConfig(const ModelSpec& spec, const Head& head) {
  v1::ModelConfig config;
  fs::path out(spec.out_dir);
  while (!out.empty() && !out.has_filename()) out = out.parent_path();
  config.set_name(out.filename().string());
  std::vector<std::string> methods;
  for (const TagReport& r : head.reports)
    methods.push_back(absl::StrCat(r.label, " (", MethodName(r.method), ")"));
  std::vector<std::string> names;
  for (const SourceSpec& source : spec.sources)
    names.push_back(absl::StrCat(source.backbone, "/", source.embedding));
  config.set_description(absl::StrCat(
      "Few-shot tags on ", absl::StrJoin(names, " + "),
      spec.exclusive ? ", exclusive (softmax): " : " (sigmoid per tag): ",
      absl::StrJoin(methods, ", ")));
  const auto fill = [](const SourceSpec& source, v1::ModelInput* from) {
    from->set_model(source.backbone);
    from->set_output(source.embedding);
    from->set_dim(source.dim);
  };
  if (spec.sources.size() == 1) {
    fill(spec.sources[0], config.mutable_input()->mutable_from_model());
  } else {
    v1::ModelInputs* from = config.mutable_input()->mutable_from_models();
    for (const SourceSpec& source : spec.sources) {
      fill(source, from->add_source());
    }
  }
  const v1::Activation activation =
      spec.exclusive ? v1::ACTIVATION_SOFTMAX : v1::ACTIVATION_SIGMOID;
  for (auto [name, kind, source] :
       {std::tuple{"tags", v1::TAGS, "0"},
        std::tuple{"activations", v1::ACTIVATIONS, "1"}}) {
    v1::OutputConfig* output = config.add_output();
    output->set_name(name);
    output->set_kind(kind);
    output->set_source(source);
    output->set_activation(activation);
    output->set_dim(static_cast<int>(spec.labels.size()));
  }
  return config;
}

absl::Status PublishModel(const ModelSpec& spec, const Head& head) {
  if (absl::Status s = CheckOutDir(spec.out_dir); !s.ok()) return s;
  fs::path out(spec.out_dir);
  while (!out.empty() && !out.has_filename()) out = out.parent_path();
  std::string pattern =
      (Parent(out) /
       absl::StrCat(".fewshot-", out.filename().string(), "-XXXXXX"))
          .string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a staging folder '",
                                            pattern,
                                            "': ", std::strerror(errno)));
  }
  const fs::path staging(pattern);
  bool published = false;
  // mkdtemp makes the folder private; a server running as another user must
  // be able to read the model.
  std::error_code perm_ec;
  fs::permissions(staging,
                  fs::perms::owner_all | fs::perms::group_read |
                      fs::perms::group_exec | fs::perms::others_read |
                      fs::perms::others_exec,
                  perm_ec);
  absl::Cleanup remove_staging = [&] {
    std::error_code ignored;
    if (!published) fs::remove_all(staging, ignored);
  };
  std::error_code ec;
  fs::create_directory(staging / "1", ec);
  if (ec) {
    return absl::InternalError(absl::StrCat(
        "cannot create '", (staging / "1").string(), "': ", ec.message()));
  }
  if (absl::Status s =
          SaveHeadModule(head, (staging / "1" / "model.pt").string());
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteText(staging / "labels.txt",
                                 absl::StrJoin(spec.labels, "\n") + "\n");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = WriteText(staging / "config.pbtxt",
                                 ConfigText(StageConfig(spec, head)));
      !s.ok()) {
    return s;
  }
  fs::rename(staging, out, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot rename '", staging.string(),
                                            "' to '", out.string(),
                                            "': ", ec.message()));
  }
  published = true;
  return absl::OkStatus();
}

}  // namespace audiotag::fewshot
