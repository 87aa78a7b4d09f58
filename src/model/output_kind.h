#ifndef AUDIOTAG_SRC_MODEL_OUTPUT_KIND_H_
#define AUDIOTAG_SRC_MODEL_OUTPUT_KIND_H_

// The one home of the output kinds (OutputConfig.kind): per kind, the tensor
// shapes the network may return, whether the output has labels, and what the
// answer reports for it. The config check (model_config.cc), the runner's
// shape check (torch_runner.cc), the pipeline link (stage_link.cc), the
// aggregator (src/analysis/aggregator.cc) and the clients
// (client/output_format.cc, client/bulk/track_result.cc) all read this table
// and compare no kind themselves.
//
// Adding a kind: add the enum value to proto/audiotag/v1/model_config.proto
// and one row to kKinds in output_kind.cc (tests/model/output_kind_test.cc
// fails until every enum value has a row). A kind whose answer is none of the
// existing Reports also adds a Report value; the compiler then names every
// switch that must handle it (one aggregation function, one client section).
//
// Depends only on the generated messages and Abseil, so the engine and the
// clients can both link it (library audiotag_output_kind). Thread-safe: the
// table is constant.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "audiotag/v1/model_config.pb.h"

namespace audiotag {

// What an AnalyzeResponse carries for an output of a kind, and which
// OutputSelection field asks for it.
enum class Report {
  // Scores pooled over the clip, ranked, cut at top_k and threshold:
  // OutputResult.tags. Selected by OutputSelection.tags.
  kRankedTags,
  // Scores per segment, or per frame for a frame-wise output, with the
  // output's labels: OutputResult.frames and labels. Selected by
  // OutputSelection.activations.
  kTimeline,
  // A vector pooled over the clip (OutputResult.pooled) and, when
  // OutputSelection.segment_embeddings asks, one per segment or frame
  // (OutputResult.segments). Selected by OutputSelection.embeddings.
  kVectors,
};

struct OutputKindTraits {
  v1::OutputKind kind;
  // The enum's name, as configs and messages spell it ("TAGS").
  absl::string_view name;
  // The network may return [B, frames, dim] besides [B, dim].
  bool framewise;
  // Reads a labels file of `dim` lines (OutputConfig.labels_file, default
  // "labels.txt"); without it the output has no labels.
  bool labelled;
  Report report;
};

// Every kind, in enum order; OUTPUT_KIND_UNSPECIFIED has no row.
absl::Span<const OutputKindTraits> OutputKinds();

// The row of `kind`; nullptr for OUTPUT_KIND_UNSPECIFIED and for a value this
// build does not know (a newer peer's kind, or a number in a config).
const OutputKindTraits* FindOutputKind(v1::OutputKind kind);

// Whether an output of `kind` reports `report`; false for a kind this build
// does not know.
bool Reports(v1::OutputKind kind, Report report);

// The kinds' names for a message: "TAGS, ACTIVATIONS or EMBEDDING".
std::string OutputKindNames();

// Whether a network output of `rank` axes (batch included) fits the kind:
// 2 always, 3 for a frame-wise kind.
bool AcceptsRank(const OutputKindTraits& kind, int64_t rank);

// The shapes the kind accepts for a batch of `batch` and last axis `dim`, for
// an error message: "[4, 10]" or "[4, 10] or [4, T, 10]".
std::string ExpectedShapes(const OutputKindTraits& kind, int64_t batch,
                           int64_t dim);

// The per-segment shape (no batch axis) an output of this kind has, known
// from the config alone: {dim} for a kind that is never frame-wise, empty
// (unknown until the network runs) otherwise.
std::vector<int64_t> ShapeFromConfig(const OutputKindTraits& kind, int64_t dim);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_OUTPUT_KIND_H_
