#include "src/features/window.h"

#include <cmath>
#include <numbers>

namespace audiotag {
namespace {

// Generalised cosine window a - (1 - a) cos(2 pi n / denominator).
std::vector<float> Cosine(double a, int64_t length, bool periodic) {
  std::vector<float> w(length, 1.0f);
  const int64_t denominator = periodic ? length : length - 1;
  if (denominator <= 0) return w;
  for (int64_t n = 0; n < length; ++n) {
    const double phase = 2.0 * std::numbers::pi * static_cast<double>(n) /
                         static_cast<double>(denominator);
    w[n] = static_cast<float>(a - (1.0 - a) * std::cos(phase));
  }
  return w;
}

}  // namespace

std::vector<float> MakeWindow(v1::WindowType type, int64_t length) {
  switch (type) {
    case v1::WINDOW_HANN_PERIODIC:
      return Cosine(0.5, length, /*periodic=*/true);
    case v1::WINDOW_HANN_SYMMETRIC:
      return Cosine(0.5, length, /*periodic=*/false);
    case v1::WINDOW_HAMMING_PERIODIC:
      return Cosine(0.54, length, /*periodic=*/true);
    case v1::WINDOW_HAMMING_SYMMETRIC:
      return Cosine(0.54, length, /*periodic=*/false);
    case v1::WINDOW_POVEY: {
      std::vector<float> w = Cosine(0.5, length, /*periodic=*/false);
      for (float& x : w) x = static_cast<float>(std::pow(double{x}, 0.85));
      return w;
    }
    default:
      return std::vector<float>(length, 1.0f);
  }
}

}  // namespace audiotag
