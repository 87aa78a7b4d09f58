#include "client/bulk/track_result.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/bulk/json_text.h"
#include "google/protobuf/util/json_util.h"
#include "src/model/output_kind.h"

namespace audiotag::bulk {
namespace {

std::string Key(const v1::ModelResult& model, const v1::OutputResult& output) {
  return absl::StrCat(model.model(), "/", output.name());
}

// One tag as `audiotag analyze` prints it (protobuf's JSON mapping of
// audiotag.v1.Tag): {"label":"loud","score":0.71,"index":1}.
std::string TagJson(const v1::Tag& tag) {
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(tag, &json, options).ok()) {
    // Only a label that is not UTF-8 fails; keep the line valid JSON.
    return absl::StrCat("{\"label\":", JsonString(tag.label()),
                        ",\"score\":", JsonNumber(tag.score()),
                        ",\"index\":", tag.index(), "}");
  }
  return json;
}

// {"model/output": [{"label","score","index"}, ...], ...}
std::string TagsJson(const v1::AnalyzeResponse& response) {
  std::vector<std::string> entries;
  for (const v1::ModelResult& model : response.results()) {
    for (const v1::OutputResult& output : model.outputs()) {
      if (!Reports(output.kind(), Report::kRankedTags)) continue;
      std::vector<std::string> tags;
      for (const v1::Tag& tag : output.tags()) tags.push_back(TagJson(tag));
      entries.push_back(absl::StrCat(JsonString(Key(model, output)), ":[",
                                     absl::StrJoin(tags, ","), "]"));
    }
  }
  return absl::StrCat("{", absl::StrJoin(entries, ","), "}");
}

// Per label, the max and mean score over the activation frames:
// {"frames": n, "max": {"label": x, ...}, "mean": {...}}.
std::string ActivationSummary(const v1::OutputResult& output) {
  const int labels = output.labels_size();
  std::vector<double> max(labels, 0), sum(labels, 0);
  for (int f = 0; f < output.frames_size(); ++f) {
    const v1::ActivationFrame& frame = output.frames(f);
    for (int i = 0; i < labels && i < frame.scores_size(); ++i) {
      max[i] =
          f == 0 ? frame.scores(i) : std::max<double>(max[i], frame.scores(i));
      sum[i] += frame.scores(i);
    }
  }
  const double frames = std::max(1, output.frames_size());
  std::vector<std::string> max_json, mean_json;
  for (int i = 0; i < labels; ++i) {
    const std::string label = JsonString(output.labels(i));
    max_json.push_back(absl::StrCat(label, ":", JsonNumber(max[i])));
    mean_json.push_back(absl::StrCat(label, ":", JsonNumber(sum[i] / frames)));
  }
  return absl::StrCat("{\"frames\":", output.frames_size(), ",\"max\":{",
                      absl::StrJoin(max_json, ","), "},\"mean\":{",
                      absl::StrJoin(mean_json, ","), "}}");
}

std::string ActivationsJson(const v1::AnalyzeResponse& response) {
  std::vector<std::string> entries;
  for (const v1::ModelResult& model : response.results()) {
    for (const v1::OutputResult& output : model.outputs()) {
      if (!Reports(output.kind(), Report::kTimeline)) continue;
      entries.push_back(absl::StrCat(JsonString(Key(model, output)), ":",
                                     ActivationSummary(output)));
    }
  }
  return absl::StrCat("{", absl::StrJoin(entries, ","), "}");
}

std::string ModelsJson(const v1::AnalyzeResponse& response) {
  std::vector<std::string> entries;
  for (const v1::ModelResult& model : response.results()) {
    entries.push_back(
        absl::StrCat(JsonString(model.model()), ":", model.version()));
  }
  return absl::StrCat("{", absl::StrJoin(entries, ","), "}");
}

std::string TimingsJson(const v1::Timing& t, const CallTiming& call) {
  return absl::StrCat("{\"decode_seconds\":", JsonNumber(t.decode_seconds()),
                      ",\"queue_seconds\":", JsonNumber(t.queue_seconds()),
                      ",\"compute_seconds\":", JsonNumber(t.compute_seconds()),
                      ",\"server_seconds\":", JsonNumber(t.total_seconds()),
                      ",\"client_seconds\":", JsonNumber(call.client_seconds),
                      ",\"attempts\":", call.attempts, "}");
}

EmbeddingRows Rows(const v1::ModelResult& model, const v1::OutputResult& output,
                   EmbeddingMode mode) {
  EmbeddingRows rows;
  rows.key = Key(model, output);
  if (mode == EmbeddingMode::kPooled) {
    rows.rows = 1;
    rows.dim = output.pooled().values_size();
    rows.values.assign(output.pooled().values().begin(),
                       output.pooled().values().end());
    return rows;
  }
  rows.rows = output.segments_size();
  for (const v1::SegmentEmbedding& segment : output.segments()) {
    rows.dim = segment.values_size();
    rows.values.insert(rows.values.end(), segment.values().begin(),
                       segment.values().end());
    rows.spans.emplace_back(segment.start_seconds(), segment.end_seconds());
  }
  return rows;
}

}  // namespace

AnalyzedTrack FromResponse(const std::string& sha256,
                           const v1::AnalyzeResponse& response,
                           EmbeddingMode mode, const CallTiming& timing) {
  AnalyzedTrack track;
  track.sha256 = sha256;
  track.duration_seconds = response.audio().duration_seconds();
  track.body = absl::StrCat(
      "\"sha256\":", JsonString(sha256), ",\"models\":", ModelsJson(response),
      ",\"tags\":", TagsJson(response),
      ",\"activations_summary\":", ActivationsJson(response),
      ",\"duration_seconds\":", JsonNumber(track.duration_seconds),
      ",\"timings\":", TimingsJson(response.timing(), timing));
  if (mode == EmbeddingMode::kNone) return track;
  for (const v1::ModelResult& model : response.results()) {
    for (const v1::OutputResult& output : model.outputs()) {
      if (Reports(output.kind(), Report::kVectors)) {
        track.embeddings.push_back(Rows(model, output, mode));
      }
    }
  }
  return track;
}

std::string ErrorBody(const std::string& sha256, const absl::Status& status) {
  std::string body;
  if (!sha256.empty())
    body = absl::StrCat("\"sha256\":", JsonString(sha256), ",");
  absl::StrAppend(&body, "\"error\":{\"code\":",
                  JsonString(absl::StatusCodeToString(status.code())),
                  ",\"message\":", JsonString(status.message()), "}");
  return body;
}

}  // namespace audiotag::bulk
