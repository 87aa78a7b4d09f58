#ifndef AUDIOTAG_SRC_COMMON_SEGMENT_GRID_H_
#define AUDIOTAG_SRC_COMMON_SEGMENT_GRID_H_

// Where a model's segments lie in time, and the rule that aligns two models'
// segment grids: what a pipeline stage with several sources
// (input.from_models, model_config.proto) and `audiotag fewshot` with several
// backbones both use. Header-only and pure, so the client shares it without
// linking the engine.

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace audiotag {

// Segment k's window is nominally centred at k * hop_seconds +
// offset_seconds: offset = window / 2 for a plain grid, 0 for a `center`
// segment config.
struct SegmentGrid {
  double hop_seconds = 1;
  double offset_seconds = 0;

  static SegmentGrid FromSamples(int64_t window, int64_t hop, bool center,
                                 double sample_rate) {
    return SegmentGrid{hop / sample_rate,
                       center ? 0.0 : window / 2.0 / sample_rate};
  }
  double Centre(int64_t k) const { return k * hop_seconds + offset_seconds; }
};

// The segment of `grid` whose centre is nearest `seconds` (the earlier one
// on a tie), at least 0 and, when `total` > 0 segments are known, at most
// total - 1. Never decreases as `seconds` grows.
inline int64_t NearestSegment(const SegmentGrid& grid, double seconds,
                              int64_t total = 0) {
  const double x = (seconds - grid.offset_seconds) / grid.hop_seconds;
  int64_t k = std::max<int64_t>(0, static_cast<int64_t>(std::ceil(x - 0.5)));
  if (total > 0) k = std::min(k, total - 1);
  return k;
}

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_COMMON_SEGMENT_GRID_H_
