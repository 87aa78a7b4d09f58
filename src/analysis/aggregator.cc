#include "src/analysis/aggregator.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"
#include "src/model/output_kind.h"

namespace audiotag {
namespace {

// Rows of one output for one segment: one row for [dim], `frames` rows for
// [frames, dim].
struct Rows {
  const float* data;
  int64_t count;
};

absl::StatusOr<Rows> SegmentRows(const Tensor& t, int64_t dim,
                                 const std::string& output) {
  const int64_t n = static_cast<int64_t>(t.data.size());
  const bool shape_ok =
      (t.shape.size() == 1 && t.shape[0] == dim) ||
      (t.shape.size() == 2 && t.shape[1] == dim && t.shape[0] > 0);
  if (!shape_ok || n != t.NumElements()) {
    return absl::InternalError(absl::StrCat("output '", output, "' has shape ",
                                            t.ShapeString(), ", expected [",
                                            dim, "] or [frames, ", dim, "]"));
  }
  return Rows{t.data.data(), n / dim};
}

// What the aggregation of one output reads: the clip's segments and output
// `index` of each.
struct OutputData {
  const std::vector<SegmentSpan>& spans;
  const std::vector<std::vector<Tensor>>& outputs;
  int index;
  const v1::OutputConfig& config;
  const Model& model;  // for the labels of a labelled kind
  double rate;         // samples per second
  int64_t window;      // samples per segment
};

// Checks every segment's rows and calls `emit(from, to, row)` for each row
// that holds audio, in stream order. Times are of the audio: a segment (or a
// frame of it) is reported over the part of the clip it holds, so a padded
// last segment ends at the clip's end and a centred first window starts at 0.
// A frame that lies wholly in padding is left out.
template <typename Emit>
absl::Status ForEachRow(const OutputData& in, Emit emit) {
  const int64_t dim = in.config.dim();
  for (size_t s = 0; s < in.spans.size(); ++s) {
    absl::StatusOr<Rows> rows =
        SegmentRows(in.outputs[s][in.index], dim, in.config.name());
    if (!rows.ok()) return rows.status();
    const double start = in.spans[s].start / in.rate;
    const double step = in.window / in.rate / rows->count;
    const int64_t first = std::max<int64_t>(in.spans[s].start, 0);
    const double audio_start = first / in.rate;
    const double audio_end = (first + in.spans[s].valid) / in.rate;
    for (int64_t r = 0; r < rows->count; ++r) {
      const double from = std::max(start + r * step, audio_start);
      const double to = std::min(start + (r + 1) * step, audio_end);
      if (rows->count > 1 && to <= from) continue;
      emit(from, to, rows->data + r * dim);
    }
  }
  return absl::OkStatus();
}

// Pools every row of the output over all segments. The mean weights each
// segment by its share of real audio, so a zero-padded tail of a few
// milliseconds counts for what it is and not as much as a full segment.
std::vector<float> Pool(const OutputData& in, v1::Pooling pooling) {
  const int64_t dim = in.config.dim();
  const bool max = pooling == v1::POOLING_MAX;
  std::vector<double> pooled(
      dim, max ? -std::numeric_limits<double>::infinity() : 0.0);
  double total_weight = 0;
  for (size_t s = 0; s < in.outputs.size(); ++s) {
    const std::vector<float>& data = in.outputs[s][in.index].data;
    const double weight = std::clamp(
        static_cast<double>(in.spans[s].valid) / in.window, 1e-6, 1.0);
    for (size_t i = 0; i < data.size(); ++i) {
      double& p = pooled[i % dim];
      p = max ? std::max<double>(p, data[i]) : p + weight * data[i];
    }
    total_weight += weight * (static_cast<double>(data.size()) / dim);
  }
  if (!max && total_weight > 0) {
    for (double& p : pooled) p /= total_weight;
  }
  return std::vector<float>(pooled.begin(), pooled.end());
}

void AddTags(const std::vector<float>& scores,
             const std::vector<std::string>& labels,
             const AggregationOptions& options, v1::OutputResult* out) {
  std::vector<int> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return scores[a] > scores[b]; });
  const size_t k = options.top_k < 0
                       ? order.size()
                       : std::min<size_t>(order.size(), options.top_k);
  for (size_t i = 0; i < k; ++i) {
    const int c = order[i];
    if (scores[c] < options.threshold) break;
    v1::Tag* tag = out->add_tags();
    tag->set_index(c);
    tag->set_score(scores[c]);
    tag->set_label(c < static_cast<int>(labels.size())
                       ? labels[c]
                       : absl::StrCat("class_", c));
  }
}

// Report::kRankedTags: the pooled scores, ranked.
absl::Status AggregateTags(const OutputData& in,
                           const AggregationOptions& options,
                           v1::OutputResult* out) {
  RETURN_IF_ERROR(ForEachRow(in, [](double, double, const float*) {}));
  if (in.spans.empty()) return absl::OkStatus();
  AddTags(Pool(in, options.pooling), in.model.labels(in.index), options, out);
  return absl::OkStatus();
}

// Report::kTimeline: every row with its times, and the labels; no pooling.
absl::Status AggregateActivations(const OutputData& in,
                                  const AggregationOptions& options,
                                  v1::OutputResult* out) {
  const int64_t dim = in.config.dim();
  RETURN_IF_ERROR(ForEachRow(in, [&](double from, double to, const float* row) {
    v1::ActivationFrame* frame = out->add_frames();
    frame->set_start_seconds(from);
    frame->set_end_seconds(to);
    frame->mutable_scores()->Add(row, row + dim);
  }));
  for (const std::string& l : in.model.labels(in.index)) out->add_labels(l);
  return absl::OkStatus();
}

// Report::kVectors: the pooled vector and, when asked, every row's.
absl::Status AggregateEmbedding(const OutputData& in,
                                const AggregationOptions& options,
                                v1::OutputResult* out) {
  const int64_t dim = in.config.dim();
  RETURN_IF_ERROR(ForEachRow(in, [&](double from, double to, const float* row) {
    if (!options.segment_embeddings) return;
    v1::SegmentEmbedding* e = out->add_segments();
    e->set_start_seconds(from);
    e->set_end_seconds(to);
    e->mutable_values()->Add(row, row + dim);
  }));
  if (in.spans.empty()) return absl::OkStatus();
  const std::vector<float> pooled = Pool(in, options.pooling);
  out->mutable_pooled()->mutable_values()->Add(pooled.begin(), pooled.end());
  return absl::OkStatus();
}

bool Selected(Report report, const AggregationOptions& options) {
  switch (report) {
    case Report::kRankedTags:
      return options.tags;
    case Report::kTimeline:
      return options.activations;
    case Report::kVectors:
      return options.embeddings;
  }
  return false;
}

absl::Status AggregateOutput(Report report, const OutputData& in,
                             const AggregationOptions& options,
                             v1::OutputResult* out) {
  switch (report) {
    case Report::kRankedTags:
      return AggregateTags(in, options, out);
    case Report::kTimeline:
      return AggregateActivations(in, options, out);
    case Report::kVectors:
      return AggregateEmbedding(in, options, out);
  }
  return absl::InternalError("unknown Report");
}

}  // namespace

absl::StatusOr<AggregationOptions> MakeAggregationOptions(
    const v1::AnalyzeOptions& options) {
  if (options.top_k() < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("top_k must be -1 (all), 0 (default 10) or positive; got ",
                     options.top_k()));
  }
  if (!(options.threshold() >= 0.0f)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "threshold must be a number >= 0; got ", options.threshold()));
  }
  if (!v1::Pooling_IsValid(options.pooling())) {
    return absl::InvalidArgumentError(
        absl::StrCat("pooling ", options.pooling(), " is not a known Pooling"));
  }
  if (!v1::Priority_IsValid(options.priority())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority ", options.priority(), " is not a known Priority"));
  }
  AggregationOptions out;
  out.top_k = options.top_k() == 0 ? 10 : options.top_k();
  out.threshold = options.threshold();
  out.pooling = options.pooling();
  const v1::OutputSelection& s = options.outputs();
  if (s.tags() || s.activations() || s.embeddings() || s.segment_embeddings()) {
    out.tags = s.tags();
    out.activations = s.activations();
    out.embeddings = s.embeddings() || s.segment_embeddings();
    out.segment_embeddings = s.segment_embeddings();
  }
  return out;
}

absl::StatusOr<v1::ModelResult> Aggregate(
    const Model& model, const std::vector<SegmentSpan>& spans,
    const std::vector<std::vector<Tensor>>& outputs,
    const AggregationOptions& options) {
  const v1::ModelConfig& config = model.config();
  const double rate = config.input().sample_rate();
  const int64_t window = config.segment().window_samples();
  v1::ModelResult result;
  result.set_model(model.name());
  result.set_version(model.version());
  result.set_num_segments(static_cast<int>(spans.size()));
  result.set_segment_seconds(window / rate);
  result.set_hop_seconds(config.segment().hop_samples() / rate);

  for (int o = 0; o < config.output_size(); ++o) {
    const v1::OutputConfig& oc = config.output(o);
    const OutputKindTraits* kind = FindOutputKind(oc.kind());
    if (kind == nullptr || !Selected(kind->report, options)) continue;
    v1::OutputResult* out = result.add_outputs();
    out->set_name(oc.name());
    out->set_kind(oc.kind());
    const OutputData in{spans, outputs, o, oc, model, rate, window};
    RETURN_IF_ERROR(AggregateOutput(kind->report, in, options, out));
  }
  return result;
}

}  // namespace audiotag
