#ifndef AUDIOTAG_TESTS_FEATURES_GOLDEN_H_
#define AUDIOTAG_TESTS_FEATURES_GOLDEN_H_

// Reads the golden tensors that tools/golden/make_frontend_golden.py writes
// to tests/features/testdata/<name>.f32 (int64 ndim, int64 dims, float32
// data, little-endian, row-major).

#include <string>

#include "absl/status/statusor.h"
#include "src/common/tensor.h"

namespace audiotag::testing {

absl::StatusOr<Tensor> LoadGolden(const std::string& name);

// Largest |a - b| over all elements; the shapes must match (else +inf).
double MaxAbsDiff(const Tensor& a, const Tensor& b);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_FEATURES_GOLDEN_H_
