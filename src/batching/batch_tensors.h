#ifndef AUDIOTAG_SRC_BATCHING_BATCH_TENSORS_H_
#define AUDIOTAG_SRC_BATCHING_BATCH_TENSORS_H_

// Moving between per-segment tensors and batch tensors: stacking segment
// inputs along a new leading batch axis, and slicing a runner's batch outputs
// back into one set of outputs per segment. Pure functions; thread-safe.

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "src/common/tensor.h"

namespace audiotag {

// Stacks `inputs` (non-empty, all of one shape, data sized to that shape) into
// [B, ...shape].
Tensor StackInputs(absl::Span<const Tensor* const> inputs);

// Slices every output, each [batch_size, ...], into batch_size rows without
// the batch axis: result[row][output]. INTERNAL if an output has no batch
// axis, a different batch size, or data that does not match its shape.
absl::StatusOr<std::vector<std::vector<Tensor>>> SplitOutputs(
    const std::vector<Tensor>& outputs, int batch_size);

// True if `tensor` has exactly `shape` and data of that many elements.
bool HasShape(const Tensor& tensor, absl::Span<const int64_t> shape);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_BATCHING_BATCH_TENSORS_H_
