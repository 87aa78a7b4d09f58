#ifndef AUDIOTAG_SRC_COMMON_TENSOR_H_
#define AUDIOTAG_SRC_COMMON_TENSOR_H_

// A plain row-major float tensor on the host. It carries segments, batches and
// outputs between the engine's layers so that only the files that run
// LibTorch include LibTorch.

#include <cstdint>
#include <string>
#include <vector>

namespace audiotag {

struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;

  // Number of elements the shape describes (1 for a scalar).
  int64_t NumElements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  // "[2, 96, 64]"
  std::string ShapeString() const;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_COMMON_TENSOR_H_
