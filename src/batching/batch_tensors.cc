#include "src/batching/batch_tensors.h"

#include <algorithm>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "src/common/status_macros.h"

namespace audiotag {

Tensor StackInputs(absl::Span<const Tensor* const> inputs) {
  Tensor batch;
  batch.shape.push_back(static_cast<int64_t>(inputs.size()));
  const std::vector<int64_t>& row_shape = inputs.front()->shape;
  batch.shape.insert(batch.shape.end(), row_shape.begin(), row_shape.end());
  batch.data.reserve(inputs.size() * inputs.front()->data.size());
  for (const Tensor* input : inputs) {
    batch.data.insert(batch.data.end(), input->data.begin(), input->data.end());
  }
  return batch;
}

namespace {

absl::Status CheckBatchOutput(const Tensor& output, int index, int batch_size) {
  if (output.shape.empty() || output.shape[0] != batch_size ||
      static_cast<int64_t>(output.data.size()) != output.NumElements()) {
    return absl::InternalError(absl::StrCat(
        "runner output ", index, " has shape ", output.ShapeString(), " and ",
        output.data.size(), " values; expected a batch of ", batch_size));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::vector<Tensor>>> SplitOutputs(
    const std::vector<Tensor>& outputs, int batch_size) {
  std::vector<std::vector<Tensor>> rows(batch_size);
  for (int i = 0; i < static_cast<int>(outputs.size()); ++i) {
    const Tensor& output = outputs[i];
    RETURN_IF_ERROR(CheckBatchOutput(output, i, batch_size));
    const std::vector<int64_t> row_shape(output.shape.begin() + 1,
                                         output.shape.end());
    const size_t row_size = output.data.size() / batch_size;
    for (int row = 0; row < batch_size; ++row) {
      auto first = output.data.begin() + row * row_size;
      rows[row].push_back(
          Tensor{row_shape, std::vector<float>(first, first + row_size)});
    }
  }
  return rows;
}

bool HasShape(const Tensor& tensor, absl::Span<const int64_t> shape) {
  return absl::MakeConstSpan(tensor.shape) == shape &&
         static_cast<int64_t>(tensor.data.size()) == tensor.NumElements();
}

}  // namespace audiotag
