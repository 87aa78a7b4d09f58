// audiotag fewshot: new tags from a handful of examples, served as a pipeline
// stage on one or more backbones (docs/fewshot.md).
//
//   audiotag fewshot create --backbone MODEL [--backbone ...]
//       [--embedding OUTPUT [--embedding ...]] --out DIR
//       --tag LABEL=FILE[,FILE...] [--tag ...] [--tag_dir LABEL=DIR]
//       [--negatives FILE[,FILE...]] [--exclusive] [--pooling=mean|segments]
//   audiotag fewshot eval   (the same without --out)

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "client/audiotag_client.h"
#include "client/commands.h"
#include "client/connection_flags.h"
#include "client/fewshot/fewshot_fit.h"
#include "client/fewshot/fewshot_model.h"
#include "client/fewshot/support_set.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, pooling);
ABSL_DECLARE_FLAG(double, timeout_seconds);
ABSL_DECLARE_FLAG(int64_t, max_message_bytes);

ABSL_FLAG(std::string, out, "",
          "fewshot create: the model folder to write, inside the served "
          "repository (e.g. models/lofi); must not exist.");
ABSL_FLAG(bool, exclusive, false,
          "fewshot: single-label tags (softmax over tags) instead of "
          "independent ones (sigmoid per tag).");

namespace audiotag {
namespace {

constexpr char kUsage[] =
    "usage: audiotag fewshot create --backbone MODEL --out DIR "
    "--tag LABEL=FILE[,FILE...] [--tag ...]\n"
    "           [--tag_dir LABEL=DIR] [--negatives FILE[,FILE...]] "
    "[--embedding OUTPUT]\n"
    "           [--backbone MODEL2 ...: the head reads the backbones' "
    "embeddings concatenated]\n"
    "           [--exclusive] [--pooling=mean|segments]\n"
    "       audiotag fewshot eval   (the same flags without --out)\n";

// The flags that may be given more than once, which absl flags cannot
// collect: they are taken out of argv before absl parses the rest.
struct RepeatedFlags {
  std::vector<std::string> backbone, embedding, tag, tag_dir, negatives;
  std::vector<std::string>* Find(absl::string_view name) {
    if (name == "backbone") return &backbone;
    if (name == "embedding") return &embedding;
    if (name == "tag") return &tag;
    if (name == "tag_dir") return &tag_dir;
    if (name == "negatives") return &negatives;
    return nullptr;
  }
};

// Moves `--name=value`, `--name value` (and the one-dash forms) of the
// repeated flags from argv into `flags`; returns the rest of argv. Stops at
// "--". INVALID_ARGUMENT for such a flag without a value.
absl::StatusOr<std::vector<char*>> ExtractRepeated(int argc, char** argv,
                                                   RepeatedFlags* flags) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") {
      rest.insert(rest.end(), argv + i, argv + argc);
      break;
    }
    absl::string_view name = arg;
    if (!absl::ConsumePrefix(&name, "--")) absl::ConsumePrefix(&name, "-");
    const size_t eq = name.find('=');
    std::vector<std::string>* target =
        name.size() < arg.size() ? flags->Find(name.substr(0, eq)) : nullptr;
    if (target == nullptr) {
      rest.push_back(argv[i]);
      continue;
    }
    if (eq != absl::string_view::npos) {
      target->emplace_back(name.substr(eq + 1));
    } else if (i + 1 < argc) {
      target->emplace_back(argv[++i]);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " needs a value"));
    }
  }
  return rest;
}

int Usage(const std::string& why) {
  std::cerr << "audiotag fewshot: " << why << "\n" << kUsage;
  return 2;
}

int Fail(const absl::Status& status) {
  std::cerr << "audiotag fewshot: " << status.message() << "\n";
  return 1;
}

bool DryRun() {
  const absl::CommandLineFlag* flag = absl::FindCommandLineFlag("dry_run");
  return flag != nullptr && flag->CurrentValue() == "true";
}

// Warns when the repository folder of --out has no folder of the backbone:
// the stage only loads in the repository that serves its backbone.
void WarnIfBackboneElsewhere(const std::string& out,
                             const std::string& backbone) {
  std::filesystem::path parent = std::filesystem::path(out).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!std::filesystem::exists(parent / backbone, ec)) {
    std::cerr << "audiotag fewshot: warning: '" << parent.string()
              << "' holds no model folder '" << backbone
              << "'; the new model loads only in the repository that serves "
                 "its backbone\n";
  }
}

int Run(const std::string& command, const RepeatedFlags& repeated) {
  const bool create = command == "create";
  if (!create && command != "eval")
    return Usage("the command is create or eval");
  if (repeated.backbone.empty()) return Usage("--backbone is required");
  // --embedding: none (each backbone's "embedding"), one for every backbone,
  // or one per --backbone in the same order.
  std::vector<std::pair<std::string, std::string>> sources;
  const std::vector<std::string>& embeddings = repeated.embedding;
  if (embeddings.size() > 1 && embeddings.size() != repeated.backbone.size()) {
    return Usage(absl::StrCat(
        "give --embedding once (for every backbone) or once per --backbone (",
        repeated.backbone.size(), "), not ", embeddings.size(), " times"));
  }
  for (size_t i = 0; i < repeated.backbone.size(); ++i) {
    std::pair<std::string, std::string> source = {
        repeated.backbone[i], embeddings.empty()
                                  ? "embedding"
                                  : embeddings[embeddings.size() == 1 ? 0 : i]};
    if (std::find(sources.begin(), sources.end(), source) != sources.end()) {
      return Usage(absl::StrCat("--backbone ", source.first,
                                " with --embedding ", source.second,
                                " is given twice"));
    }
    sources.push_back(std::move(source));
  }
  const std::string out = absl::GetFlag(FLAGS_out);
  if (create && out.empty()) return Usage("--out is required");
  if (!create && !out.empty()) return Usage("eval writes nothing; drop --out");
  const std::string pooling = absl::GetFlag(FLAGS_pooling);
  if (pooling != "mean" && pooling != "segments")
    return Usage("--pooling must be mean or segments");
  const bool exclusive = absl::GetFlag(FLAGS_exclusive);
  if (exclusive && !repeated.negatives.empty())
    return Usage("--exclusive takes no --negatives (softmax has no 'none')");
  // --dry_run checks the command line only: no folder is read.
  const bool dry_run = DryRun();
  absl::StatusOr<fewshot::SupportSet> set = fewshot::BuildSupportSet(
      repeated.tag, repeated.tag_dir, repeated.negatives, !dry_run);
  if (!set.ok()) return Usage(std::string(set.status().message()));
  absl::StatusOr<Connection> connection = ConnectionFromFlags();
  if (!connection.ok())
    return Usage(std::string(connection.status().message()));
  if (dry_run) {
    std::cout << "ok\n";
    return 0;
  }
  if (create) {
    if (absl::Status s = fewshot::CheckOutDir(out); !s.ok())
      return Usage(std::string(s.message()));
  }

  ClientOptions client_options;
  client_options.server = absl::GetFlag(FLAGS_server);
  client_options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  client_options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  client_options.connection = *connection;
  AudioTagClient client(client_options);
  std::vector<fewshot::Backbone> backbones;
  std::vector<std::string> names;
  int dim = 0;
  for (const auto& [model, output] : sources) {
    absl::StatusOr<fewshot::Backbone> backbone =
        fewshot::DescribeBackbone(client, model, output);
    if (!backbone.ok()) return Fail(backbone.status());
    backbones.push_back(*std::move(backbone));
    names.push_back(model + "/" + output);
    dim += backbones.back().dim;
  }
  const std::string on = absl::StrJoin(names, " + ");
  absl::StatusOr<std::vector<fewshot::SupportRow>> rows =
      fewshot::EmbedSupportSet(client, backbones, *set,
                               pooling == "segments"
                                   ? fewshot::Pooling::kSegments
                                   : fewshot::Pooling::kMean);
  if (!rows.ok()) return Fail(rows.status());
  fewshot::FitOptions fit;
  fit.exclusive = exclusive;
  fit.explicit_negatives = !repeated.negatives.empty();
  absl::StatusOr<fewshot::Head> head =
      fewshot::FitHead(set->labels, *rows, fit);
  if (!head.ok()) return Fail(head.status());
  std::cout << fewshot::ValidationName(*head) << " on " << set->files.size()
            << " files (" << rows->size() << " embeddings of " << on << ", "
            << dim << " values):\n"
            << fewshot::ReportTable(head->reports);
  if (!create) return 0;

  fewshot::ModelSpec spec{out, {}, exclusive, set->labels};
  for (const fewshot::Backbone& backbone : backbones) {
    WarnIfBackboneElsewhere(out, backbone.model);
    spec.sources.push_back({backbone.model, backbone.output, backbone.dim});
  }
  if (absl::Status s = fewshot::PublishModel(spec, *head); !s.ok())
    return Fail(s);
  std::cout << "published " << out << ": " << set->labels.size() << " tags on "
            << on << "; a server polling this repository loads it\n";
  return 0;
}

}  // namespace

int RunFewShotCommand(int argc, char** argv) {
  RepeatedFlags repeated;
  absl::StatusOr<std::vector<char*>> rest =
      ExtractRepeated(argc, argv, &repeated);
  if (!rest.ok()) return Usage(std::string(rest.status().message()));
  std::vector<char*> positional =
      absl::ParseCommandLine(static_cast<int>(rest->size()), rest->data());
  // positional: program, "fewshot", command.
  if (positional.size() != 3)
    return Usage(positional.size() < 3 ? "name a command: create or eval"
                                       : "unexpected positional arguments");
  return Run(positional[2], repeated);
}

}  // namespace audiotag
