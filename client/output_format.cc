#include "client/output_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "src/model/output_kind.h"

namespace audiotag {
namespace {

std::string KindName(v1::OutputKind kind) { return v1::OutputKind_Name(kind); }

void AppendActivations(const v1::OutputResult& out, std::string* text) {
  // Top three labels per frame keep the table readable.
  for (const v1::ActivationFrame& frame : out.frames()) {
    std::vector<int> order(frame.scores_size());
    for (int i = 0; i < frame.scores_size(); ++i) order[i] = i;
    const int shown = std::min(3, frame.scores_size());
    std::partial_sort(
        order.begin(), order.begin() + shown, order.end(),
        [&](int a, int b) { return frame.scores(a) > frame.scores(b); });
    std::vector<std::string> best;
    for (int i = 0; i < shown; ++i) {
      const int c = order[i];
      best.push_back(absl::StrFormat(
          "%s %.2f", c < out.labels_size() ? out.labels(c) : absl::StrCat(c),
          frame.scores(c)));
    }
    absl::StrAppendFormat(text, "      %8.2f - %8.2f s  %s\n",
                          frame.start_seconds(), frame.end_seconds(),
                          absl::StrJoin(best, ", "));
  }
}

}  // namespace

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = pretty;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string json;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  return json;
}

std::string AnalyzeTable(const std::string& file,
                         const v1::AnalyzeResponse& r) {
  std::string text = absl::StrFormat(
      "%s: %s/%s, %d Hz, %d ch, %.2f s, %d bytes (%.3f s total)\n", file,
      r.audio().container(), r.audio().codec(), r.audio().sample_rate(),
      r.audio().channels(), r.audio().duration_seconds(),
      r.audio().size_bytes(), r.timing().total_seconds());
  for (const v1::ModelResult& m : r.results()) {
    absl::StrAppendFormat(
        &text, "  model %s (version %d): %d segments of %.2f s\n", m.model(),
        m.version(), m.num_segments(), m.segment_seconds());
    for (const v1::OutputResult& out : m.outputs()) {
      absl::StrAppendFormat(&text, "    %s [%s]\n", out.name(),
                            KindName(out.kind()));
      for (const v1::Tag& tag : out.tags()) {
        absl::StrAppendFormat(&text, "      %-24s %.3f\n", tag.label(),
                              tag.score());
      }
      if (Reports(out.kind(), Report::kTimeline)) AppendActivations(out, &text);
      if (Reports(out.kind(), Report::kVectors)) {
        const auto& v = out.pooled().values();
        std::vector<std::string> head;
        for (int i = 0; i < std::min(6, v.size()); ++i)
          head.push_back(absl::StrFormat("%.3f", v[i]));
        absl::StrAppendFormat(&text, "      pooled (%d values): %s%s\n",
                              v.size(), absl::StrJoin(head, " "),
                              v.size() > 6 ? " ..." : "");
        if (out.segments_size() > 0) {
          absl::StrAppendFormat(&text, "      + %d per-segment embeddings\n",
                                out.segments_size());
        }
      }
    }
  }
  return text;
}

std::string ModelsTable(const v1::ListModelsResponse& models) {
  std::string text =
      absl::StrFormat("%-24s %-8s %7s %8s %8s  %s\n", "MODEL", "STATE",
                      "VERSION", "RATE", "SEGMENT", "OUTPUTS");
  for (const v1::ModelInfo& m : models.models()) {
    std::vector<std::string> outputs;
    for (const v1::OutputInfo& o : m.outputs()) {
      outputs.push_back(
          absl::StrCat(o.name(), ":", KindName(o.kind()), "[", o.dim(), "]"));
    }
    absl::StrAppendFormat(&text, "%-24s %-8s %7d %8d %7.3fs  %s\n", m.name(),
                          v1::ModelState_Name(m.state()), m.version(),
                          m.sample_rate(), m.segment_seconds(),
                          absl::StrJoin(outputs, ", "));
    if (!m.state_reason().empty()) {
      absl::StrAppendFormat(&text, "    reason: %s\n", m.state_reason());
    }
    for (const v1::OutputInfo& o : m.outputs()) {
      if (o.labels_size() > 0) {
        absl::StrAppendFormat(&text, "    %s labels: %s\n", o.name(),
                              absl::StrJoin(o.labels(), ", "));
      }
    }
  }
  return text;
}

std::string ModelTable(const v1::ModelInfo& model) {
  v1::ListModelsResponse one;
  *one.add_models() = model;
  return ModelsTable(one);
}

}  // namespace audiotag
