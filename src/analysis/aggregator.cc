#include "src/analysis/aggregator.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"

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

// Pools every row of output `o` over all segments. The mean weights each
// segment by its share of real audio, so a zero-padded tail of a few
// milliseconds counts for what it is and not as much as a full segment.
std::vector<float> Pool(const std::vector<SegmentSpan>& spans,
                        const std::vector<std::vector<Tensor>>& outputs, int o,
                        int64_t dim, int64_t window, v1::Pooling pooling) {
  const bool max = pooling == v1::POOLING_MAX;
  std::vector<double> pooled(
      dim, max ? -std::numeric_limits<double>::infinity() : 0.0);
  double total_weight = 0;
  for (size_t s = 0; s < outputs.size(); ++s) {
    const std::vector<float>& data = outputs[s][o].data;
    const double weight =
        std::clamp(static_cast<double>(spans[s].valid) / window, 1e-6, 1.0);
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
    const bool wanted = (oc.kind() == v1::TAGS && options.tags) ||
                        (oc.kind() == v1::ACTIVATIONS && options.activations) ||
                        (oc.kind() == v1::EMBEDDING && options.embeddings);
    if (!wanted) continue;
    v1::OutputResult* out = result.add_outputs();
    out->set_name(oc.name());
    out->set_kind(oc.kind());
    const int64_t dim = oc.dim();
    for (size_t s = 0; s < spans.size(); ++s) {
      absl::StatusOr<Rows> rows = SegmentRows(outputs[s][o], dim, oc.name());
      if (!rows.ok()) return rows.status();
      // Times are of the audio: a segment (or a frame of it) is reported
      // over the part of the clip it holds, so a padded last segment ends at
      // the clip's end and a centred first window starts at 0. A frame that
      // lies wholly in padding is left out.
      const double start = spans[s].start / rate;
      const double step = window / rate / rows->count;
      const int64_t first = std::max<int64_t>(spans[s].start, 0);
      const double audio_start = first / rate;
      const double audio_end = (first + spans[s].valid) / rate;
      for (int64_t r = 0; r < rows->count; ++r) {
        const float* row = rows->data + r * dim;
        const double from = std::max(start + r * step, audio_start);
        const double to = std::min(start + (r + 1) * step, audio_end);
        if (rows->count > 1 && to <= from) continue;
        if (oc.kind() == v1::ACTIVATIONS) {
          v1::ActivationFrame* frame = out->add_frames();
          frame->set_start_seconds(from);
          frame->set_end_seconds(to);
          frame->mutable_scores()->Add(row, row + dim);
        } else if (oc.kind() == v1::EMBEDDING && options.segment_embeddings) {
          v1::SegmentEmbedding* e = out->add_segments();
          e->set_start_seconds(from);
          e->set_end_seconds(to);
          e->mutable_values()->Add(row, row + dim);
        }
      }
    }
    if (oc.kind() == v1::ACTIVATIONS) {
      for (const std::string& l : model.labels(o)) out->add_labels(l);
    }
    if (spans.empty()) continue;
    std::vector<float> pooled =
        Pool(spans, outputs, o, dim, window, options.pooling);
    if (oc.kind() == v1::TAGS) {
      AddTags(pooled, model.labels(o), options, out);
    } else if (oc.kind() == v1::EMBEDDING) {
      out->mutable_pooled()->mutable_values()->Add(pooled.begin(),
                                                   pooled.end());
    }
  }
  return result;
}

}  // namespace audiotag
