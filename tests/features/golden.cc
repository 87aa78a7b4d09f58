#include "tests/features/golden.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "absl/strings/str_cat.h"

namespace audiotag::testing {

absl::StatusOr<Tensor> LoadGolden(const std::string& name) {
  const char* root = std::getenv("AUDIOTAG_SOURCE_DIR");
  const std::string path =
      absl::StrCat(root != nullptr ? root : AUDIOTAG_SOURCE_DIR,
                   "/tests/features/testdata/", name, ".f32");
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  int64_t ndim = 0;
  in.read(reinterpret_cast<char*>(&ndim), sizeof(ndim));
  if (!in || ndim < 0 || ndim > 8) {
    return absl::DataLossError(absl::StrCat(path, ": bad header"));
  }
  Tensor t;
  t.shape.resize(ndim);
  in.read(reinterpret_cast<char*>(t.shape.data()), ndim * sizeof(int64_t));
  t.data.resize(t.NumElements());
  in.read(reinterpret_cast<char*>(t.data.data()),
          t.data.size() * sizeof(float));
  if (!in) return absl::DataLossError(absl::StrCat(path, ": truncated"));
  return t;
}

double MaxAbsDiff(const Tensor& a, const Tensor& b) {
  if (a.shape != b.shape || a.data.size() != b.data.size()) {
    return std::numeric_limits<double>::infinity();
  }
  double worst = 0;
  for (size_t i = 0; i < a.data.size(); ++i) {
    const double d = std::abs(double{a.data[i]} - double{b.data[i]});
    if (!(d <= worst)) worst = d;  // NaN becomes the worst
  }
  return worst;
}

}  // namespace audiotag::testing
