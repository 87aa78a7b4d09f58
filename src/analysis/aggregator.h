#ifndef AUDIOTAG_SRC_ANALYSIS_AGGREGATOR_H_
#define AUDIOTAG_SRC_ANALYSIS_AGGREGATOR_H_

// Turns one model's per-segment outputs into the clip-level answer. What each
// output gives follows its kind's Report (src/model/output_kind.h), one
// function per Report: pooled tags with top-k and threshold
// (kRankedTags), the activation timeline (kTimeline), and per-segment and
// pooled embeddings (kVectors).
//
// Thread-compatible: an Aggregator belongs to one request.

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/common/tensor.h"
#include "src/model/model.h"

namespace audiotag {

// Where a segment lies in the audio, in samples at the model's rate.
struct SegmentSpan {
  // First sample of the window in the audio; negative for a centred window
  // (SegmentConfig.center) that begins in the leading zeros.
  int64_t start = 0;
  // Real samples in it, from max(start, 0) on; less than the window when
  // padded (centring's leading zeros or the last segment's padding).
  int64_t valid = 0;
};

// Per-request choices that shape the answer.
struct AggregationOptions {
  int top_k = 10;  // < 0: all
  float threshold = 0.0f;
  v1::Pooling pooling = v1::POOLING_MEAN;
  bool tags = true;
  bool activations = true;
  bool embeddings = true;
  bool segment_embeddings = false;
};

// Converts the request's options (0 top_k -> 10; nothing selected -> tags,
// activations and pooled embeddings). INVALID_ARGUMENT for a negative
// threshold or a top_k below -1.
absl::StatusOr<AggregationOptions> MakeAggregationOptions(
    const v1::AnalyzeOptions& options);

// `outputs[s][o]` is output o of segment s (no batch axis): shape [dim] or
// [frames, dim]. Segments are in stream order. Outputs whose Report the
// options do not select, and outputs of a kind this build does not know, are
// left out. INTERNAL if a segment's output does not have the declared size.
absl::StatusOr<v1::ModelResult> Aggregate(
    const Model& model, const std::vector<SegmentSpan>& spans,
    const std::vector<std::vector<Tensor>>& outputs,
    const AggregationOptions& options);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_ANALYSIS_AGGREGATOR_H_
