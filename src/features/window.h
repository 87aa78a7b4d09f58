#ifndef AUDIOTAG_SRC_FEATURES_WINDOW_H_
#define AUDIOTAG_SRC_FEATURES_WINDOW_H_

// Analysis windows for the log-mel front-ends, computed on the host in double
// precision and returned as float. No LibTorch here: the front-end copies the
// result into a tensor once, at Create.

#include <cstdint>
#include <vector>

#include "audiotag/v1/model_config.pb.h"

namespace audiotag {

// Returns `length` (> 0) samples of window `type`:
//   HANN_PERIODIC     0.5 - 0.5 cos(2 pi n / N)       (torch.hann_window)
//   HANN_SYMMETRIC    0.5 - 0.5 cos(2 pi n / (N - 1)) (periodic=False)
//   HAMMING_*         0.54 - 0.46 cos(...), same denominators
//   POVEY             HANN_SYMMETRIC ** 0.85           (Kaldi's default)
//   RECTANGULAR       1
// A symmetric window of length 1 is {1}, as torch returns.
std::vector<float> MakeWindow(v1::WindowType type, int64_t length);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_FEATURES_WINDOW_H_
