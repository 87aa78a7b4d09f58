#include "src/common/tensor.h"

#include "absl/strings/str_join.h"

namespace audiotag {

std::string Tensor::ShapeString() const {
  return "[" + absl::StrJoin(shape, ", ") + "]";
}

}  // namespace audiotag
