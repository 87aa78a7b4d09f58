#include "client/fewshot/support_set.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/fewshot/fewshot_model.h"

namespace audiotag::fewshot {
namespace {

namespace fs = std::filesystem;

absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

absl::StatusOr<std::vector<std::string>> ListFolder(const std::string& dir) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  if (ec) {
    return Invalid(
        absl::StrCat("cannot read folder '", dir, "': ", ec.message()));
  }
  std::vector<std::string> files;
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.' || !it->is_regular_file(ec)) continue;
    files.push_back(it->path().string());
    if (files.size() > kMaxFiles) break;
  }
  if (ec) {
    return Invalid(
        absl::StrCat("cannot read folder '", dir, "': ", ec.message()));
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Splits "LABEL=VALUE".
absl::StatusOr<std::pair<std::string, std::string>> SplitSpec(
    const std::string& flag, const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) {
    return Invalid(absl::StrCat("--", flag, " '", spec, "': expected LABEL=",
                                flag == "tag" ? "FILE[,FILE...]" : "DIR"));
  }
  std::string label = spec.substr(0, eq);
  if (absl::Status s = CheckLabel(label); !s.ok()) {
    return Invalid(absl::StrCat("--", flag, " '", spec, "': ", s.message()));
  }
  return std::make_pair(std::move(label), spec.substr(eq + 1));
}

std::vector<std::string> SplitFiles(const std::string& list) {
  return absl::StrSplit(list, ',', absl::SkipEmpty());
}

}  // namespace

absl::StatusOr<SupportSet> BuildSupportSet(
    const std::vector<std::string>& tags,
    const std::vector<std::string>& tag_dirs,
    const std::vector<std::string>& negatives, bool read_folders) {
  std::vector<std::pair<std::string, std::vector<std::string>>> parsed;
  for (const auto& [flag, specs] :
       {std::pair{"tag", &tags}, std::pair{"tag_dir", &tag_dirs}}) {
    for (const std::string& spec : *specs) {
      absl::StatusOr<std::pair<std::string, std::string>> kv =
          SplitSpec(flag, spec);
      if (!kv.ok()) return kv.status();
      std::vector<std::string> files;
      if (std::string(flag) == "tag") {
        files = SplitFiles(kv->second);
      } else if (!read_folders) {
        files = {kv->second};
      } else {
        absl::StatusOr<std::vector<std::string>> listed =
            ListFolder(kv->second);
        if (!listed.ok()) return listed.status();
        files = std::move(*listed);
      }
      if (files.empty()) {
        return Invalid(absl::StrCat("tag '", kv->first, "' has no examples (--",
                                    flag, " '", spec, "')"));
      }
      parsed.emplace_back(kv->first, std::move(files));
    }
  }
  if (parsed.empty()) return Invalid("give at least one --tag or --tag_dir");
  if (parsed.size() > kMaxTags)
    return Invalid(absl::StrCat("more than ", kMaxTags, " tags"));

  SupportSet set;
  std::map<std::string, size_t> file_index;
  auto file = [&](const std::string& path) -> ExampleFile& {
    auto [it, added] = file_index.emplace(path, set.files.size());
    if (added) set.files.push_back({path, std::vector<bool>(parsed.size())});
    return set.files[it->second];
  };
  for (size_t k = 0; k < parsed.size(); ++k) {
    const std::string& label = parsed[k].first;
    if (std::find(set.labels.begin(), set.labels.end(), label) !=
        set.labels.end()) {
      return Invalid(absl::StrCat("tag '", label,
                                  "' is given twice; list all its files in "
                                  "one --tag (comma-separated)"));
    }
    set.labels.push_back(label);
    for (const std::string& path : parsed[k].second)
      file(path).positive[k] = true;
  }
  for (const std::string& list : negatives) {
    for (const std::string& path : SplitFiles(list)) {
      ExampleFile& f = file(path);
      auto k = std::find(f.positive.begin(), f.positive.end(), true);
      if (k != f.positive.end()) {
        return Invalid(absl::StrCat(
            "'", path, "' is both a negative and an example of tag '",
            set.labels[k - f.positive.begin()], "'"));
      }
    }
  }
  if (set.files.size() > kMaxFiles)
    return Invalid(absl::StrCat("more than ", kMaxFiles, " example files"));
  return set;
}

absl::StatusOr<Backbone> DescribeBackbone(const AudioTagClient& client,
                                          const std::string& model,
                                          const std::string& output) {
  absl::StatusOr<v1::ModelInfo> info = client.GetModel(model);
  if (!info.ok()) {
    return absl::Status(
        info.status().code(),
        absl::StrCat("backbone '", model, "': ", info.status().message()));
  }
  if (info->state() != v1::READY) {
    return absl::FailedPreconditionError(absl::StrCat(
        "backbone '", model, "' is not ready (",
        v1::ModelState_Name(info->state()), "): ", info->state_reason()));
  }
  std::vector<std::string> embeddings;
  for (const v1::OutputInfo& o : info->outputs()) {
    if (o.kind() != v1::EMBEDDING) continue;
    if (o.name() == output) {
      const v1::ModelConfig& c = info->config();
      return Backbone{model, output, o.dim(), info->segment_seconds(),
                      SegmentGrid::FromSamples(c.segment().window_samples(),
                                               c.segment().hop_samples(),
                                               c.segment().center(),
                                               c.input().sample_rate())};
    }
    embeddings.push_back(o.name());
  }
  const std::string which =
      embeddings.empty()
          ? std::string("it has no EMBEDDING output at all")
          : absl::StrCat(
                "its EMBEDDING outputs: ", absl::StrJoin(embeddings, ", "),
                "; choose one with --embedding");
  return Invalid(absl::StrCat("backbone '", model,
                              "' has no EMBEDDING output '", output, "' (",
                              which, ")"));
}

absl::StatusOr<std::vector<SupportRow>> EmbedSupportSet(
    const AudioTagClient& client, const std::vector<Backbone>& backbones,
    const SupportSet& set, Pooling pooling) {
  v1::AnalyzeOptions options;
  for (const Backbone& backbone : backbones) options.add_models(backbone.model);
  options.mutable_outputs()->set_embeddings(true);
  options.mutable_outputs()->set_segment_embeddings(true);
  options.set_pooling(v1::POOLING_MEAN);
  std::vector<SupportRow> rows;
  for (size_t i = 0; i < set.files.size(); ++i) {
    const ExampleFile& file = set.files[i];
    auto fail = [&](const absl::Status& s) {
      return absl::Status(
          s.code(), absl::StrCat("example '", file.path, "': ", s.message()));
    };
    absl::StatusOr<std::string> audio = ReadFile(file.path);
    if (!audio.ok()) return fail(audio.status());
    absl::StatusOr<v1::AnalyzeResponse> response =
        client.Analyze(*audio, options);
    if (!response.ok()) return fail(response.status());
    const double seconds = response->audio().duration_seconds();
    // Each backbone's embedding output, in --backbone order.
    std::vector<const v1::OutputResult*> outs;
    for (const Backbone& backbone : backbones) {
      if (seconds + 1e-9 < backbone.segment_seconds) {
        return fail(Invalid(absl::StrFormat(
            "%.2f s long; backbone '%s' needs at least one %.2f s segment",
            seconds, backbone.model, backbone.segment_seconds)));
      }
      const v1::OutputResult* out = nullptr;
      for (const v1::ModelResult& r : response->results())
        for (const v1::OutputResult& o : r.outputs())
          if (r.model() == backbone.model && o.name() == backbone.output)
            out = &o;
      if (out == nullptr || out->segments().empty()) {
        return fail(absl::InternalError(absl::StrCat(
            "the server returned no embedding of '", backbone.model, "'")));
      }
      auto check = [&](const google::protobuf::RepeatedField<float>& v) {
        return v.size() == backbone.dim || backbones.size() == 1
                   ? absl::OkStatus()
                   : fail(absl::InternalError(absl::StrCat(
                         "backbone '", backbone.model, "' gave ", v.size(),
                         " values per segment; with several backbones each "
                         "must give one vector of its dim (",
                         backbone.dim, ") per segment")));
      };
      if (absl::Status s = check(out->pooled().values()); !s.ok()) return s;
      for (const v1::SegmentEmbedding& e : out->segments())
        if (absl::Status s = check(e.values()); !s.ok()) return s;
      outs.push_back(out);
    }
    // Row `k` of the first backbone's segments (-1: the pooled embeddings),
    // the others aligned onto it.
    auto row = [&](int k) {
      SupportRow& r = rows.emplace_back();
      r.group = static_cast<int>(i);
      r.positive = file.positive;
      for (size_t b = 0; b < outs.size(); ++b) {
        const google::protobuf::RepeatedField<float>* v =
            &outs[b]->pooled().values();
        if (k >= 0) {
          const int j =
              b == 0 ? k
                     : static_cast<int>(NearestSegment(
                           backbones[b].grid, backbones[0].grid.Centre(k),
                           outs[b]->segments_size()));
          v = &outs[b]->segments(j).values();
        }
        r.embedding.insert(r.embedding.end(), v->begin(), v->end());
      }
    };
    if (pooling == Pooling::kMean) {
      row(-1);
    } else {
      for (int k = 0; k < outs[0]->segments_size(); ++k) row(k);
    }
    int dim = 0;
    for (const Backbone& backbone : backbones) dim += backbone.dim;
    if (static_cast<int>(rows.back().embedding.size()) != dim) {
      return fail(absl::InternalError(
          absl::StrCat("the embedding has ", rows.back().embedding.size(),
                       " values; the backbone", backbones.size() > 1 ? "s" : "",
                       " declare", backbones.size() > 1 ? "" : "s", " ", dim)));
    }
  }
  return rows;
}

}  // namespace audiotag::fewshot
