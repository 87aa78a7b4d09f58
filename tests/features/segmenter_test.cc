#include "src/features/segmenter.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

struct Segment {
  int64_t index;
  int64_t start;
  std::vector<float> samples;
  int64_t valid;
  bool operator==(const Segment&) const = default;
};

// Sample i of the test stream has value i + 1 (never 0, so padding shows).
std::vector<float> Ramp(int64_t n) {
  std::vector<float> v(n);
  std::iota(v.begin(), v.end(), 1.0f);
  return v;
}

// Segments `n` samples pushed in chunks of `chunk` (0 = one push).
std::vector<Segment> Cut(int64_t window, int64_t hop, v1::LastSegment last,
                         int64_t n, int64_t chunk = 0, bool center = false) {
  Segmenter seg(window, hop, last, center);
  std::vector<Segment> out;
  const Segmenter::Emit emit = [&](int64_t index, int64_t start,
                                   absl::Span<const float> s, int64_t valid) {
    EXPECT_EQ(static_cast<int64_t>(s.size()), window);
    out.push_back({index, start, {s.begin(), s.end()}, valid});
    return absl::OkStatus();
  };
  const std::vector<float> x = Ramp(n);
  if (chunk == 0) chunk = std::max<int64_t>(n, 1);
  for (int64_t i = 0; i < n; i += chunk) {
    const int64_t len = std::min(chunk, n - i);
    EXPECT_TRUE(seg.Push(absl::MakeConstSpan(x).subspan(i, len), emit).ok());
  }
  EXPECT_TRUE(seg.Finish(emit).ok());
  EXPECT_EQ(seg.samples_seen(), n);
  EXPECT_EQ(seg.segments_emitted(), static_cast<int64_t>(out.size()));
  return out;
}

std::vector<int64_t> Starts(const std::vector<Segment>& segments) {
  std::vector<int64_t> s;
  for (const Segment& x : segments) s.push_back(x.start);
  return s;
}

TEST(Segmenter, ManySmallPushesEqualOneBigPush) {
  for (int64_t hop : {3, 10, 17}) {
    for (auto last : {v1::LAST_SEGMENT_PAD, v1::LAST_SEGMENT_DROP}) {
      const auto whole = Cut(10, hop, last, 107);
      for (int64_t chunk : {1, 2, 7, 10, 33}) {
        EXPECT_EQ(Cut(10, hop, last, 107, chunk), whole)
            << "hop " << hop << " chunk " << chunk;
      }
    }
  }
}

TEST(Segmenter, HopSmallerThanWindowOverlaps) {
  const auto s = Cut(10, 4, v1::LAST_SEGMENT_DROP, 30);
  EXPECT_THAT(Starts(s), ElementsAre(0, 4, 8, 12, 16, 20));
  const std::vector<float> ramp = Ramp(30);
  EXPECT_THAT(s[2].samples,
              ElementsAreArray(ramp.begin() + 8, ramp.begin() + 18));
  for (size_t i = 0; i < s.size(); ++i) {
    EXPECT_EQ(s[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(s[i].valid, 10);
  }
}

TEST(Segmenter, HopEqualToWindowTiles) {
  EXPECT_THAT(Starts(Cut(10, 10, v1::LAST_SEGMENT_DROP, 35)),
              ElementsAre(0, 10, 20));
  EXPECT_THAT(Starts(Cut(10, 10, v1::LAST_SEGMENT_PAD, 35)),
              ElementsAre(0, 10, 20, 30));
  // An exact multiple leaves nothing to pad.
  EXPECT_THAT(Starts(Cut(10, 10, v1::LAST_SEGMENT_PAD, 30)),
              ElementsAre(0, 10, 20));
}

TEST(Segmenter, HopLargerThanWindowSkipsTheGaps) {
  const auto s = Cut(4, 10, v1::LAST_SEGMENT_DROP, 35);
  EXPECT_THAT(Starts(s), ElementsAre(0, 10, 20, 30));
  EXPECT_THAT(s[1].samples, ElementsAre(11, 12, 13, 14));
  // Samples in a gap after the last segment are not a partial segment.
  EXPECT_THAT(Starts(Cut(4, 10, v1::LAST_SEGMENT_PAD, 28)),
              ElementsAre(0, 10, 20));
  EXPECT_THAT(Starts(Cut(4, 10, v1::LAST_SEGMENT_PAD, 32)),
              ElementsAre(0, 10, 20, 30));
}

TEST(Segmenter, DropDropsThePartialSegment) {
  const auto s = Cut(10, 5, v1::LAST_SEGMENT_DROP, 27);
  EXPECT_THAT(Starts(s), ElementsAre(0, 5, 10, 15));
}

TEST(Segmenter, PadPadsWithZerosAndReportsValidSamples) {
  const auto s = Cut(10, 5, v1::LAST_SEGMENT_PAD, 27);
  ASSERT_THAT(Starts(s), ElementsAre(0, 5, 10, 15, 20));
  EXPECT_EQ(s.back().index, 4);
  EXPECT_EQ(s.back().valid, 7);
  EXPECT_THAT(s.back().samples,
              ElementsAre(21, 22, 23, 24, 25, 26, 27, 0, 0, 0));
}

TEST(Segmenter, ShortStreamGivesOnePaddedSegmentOrNone) {
  const auto pad = Cut(10, 5, v1::LAST_SEGMENT_PAD, 3);
  ASSERT_EQ(pad.size(), 1u);
  EXPECT_EQ(pad[0].start, 0);
  EXPECT_EQ(pad[0].valid, 3);
  EXPECT_THAT(pad[0].samples, ElementsAre(1, 2, 3, 0, 0, 0, 0, 0, 0, 0));
  EXPECT_TRUE(Cut(10, 5, v1::LAST_SEGMENT_DROP, 3).empty());
  EXPECT_TRUE(Cut(10, 5, v1::LAST_SEGMENT_PAD, 0).empty());
}

TEST(Segmenter, PadFeaturesMarksThePaddingWithNaN) {
  const auto s = Cut(10, 5, v1::LAST_SEGMENT_PAD_FEATURES, 27);
  ASSERT_THAT(Starts(s), ElementsAre(0, 5, 10, 15, 20));
  EXPECT_EQ(s.back().valid, 7);
  for (int i = 0; i < 7; ++i) EXPECT_EQ(s.back().samples[i], 21 + i);
  for (int i = 7; i < 10; ++i) EXPECT_TRUE(std::isnan(s.back().samples[i]));
  // Full segments carry no NaN.
  for (size_t k = 0; k + 1 < s.size(); ++k) {
    for (float v : s[k].samples) EXPECT_FALSE(std::isnan(v));
  }
  const auto short_clip = Cut(10, 5, v1::LAST_SEGMENT_PAD_FEATURES, 3);
  ASSERT_EQ(short_clip.size(), 1u);
  EXPECT_EQ(short_clip[0].valid, 3);
  EXPECT_TRUE(std::isnan(short_clip[0].samples[3]));
}

TEST(Segmenter, CenterPrependsHalfAWindow) {
  // window 10, hop 4, 15 samples: the stream is 5 zeros + 15 samples, so
  // windows start at -5, -1, 3, 7 of the audio (centred on 0, 4, 8, 12); the
  // last is padded. (13 samples would end exactly with the third window.)
  for (int64_t chunk : {0, 1, 3}) {
    const auto s = Cut(10, 4, v1::LAST_SEGMENT_PAD, 15, chunk, true);
    ASSERT_THAT(Starts(s), ElementsAre(-5, -1, 3, 7)) << chunk;
    EXPECT_THAT(s[0].samples, ElementsAre(0, 0, 0, 0, 0, 1, 2, 3, 4, 5));
    EXPECT_EQ(s[0].valid, 5);
    EXPECT_EQ(s[1].valid, 9);
    EXPECT_EQ(s[2].valid, 10);
    EXPECT_THAT(s[3].samples, ElementsAre(8, 9, 10, 11, 12, 13, 14, 15, 0, 0));
    EXPECT_EQ(s[3].valid, 8);
  }
  EXPECT_THAT(Starts(Cut(10, 4, v1::LAST_SEGMENT_PAD, 13, 0, true)),
              ElementsAre(-5, -1, 3));
  // Dropping keeps only full windows of the padded stream.
  EXPECT_THAT(Starts(Cut(10, 4, v1::LAST_SEGMENT_DROP, 15, 0, true)),
              ElementsAre(-5, -1, 3));
  // A tiny clip gives one window, an empty one none.
  const auto tiny = Cut(10, 4, v1::LAST_SEGMENT_PAD, 1, 0, true);
  ASSERT_EQ(tiny.size(), 1u);
  EXPECT_EQ(tiny[0].start, -5);
  EXPECT_EQ(tiny[0].valid, 1);
  EXPECT_TRUE(Cut(10, 4, v1::LAST_SEGMENT_PAD, 0, 0, true).empty());
}

// OpenL3's framing at 48 kHz: 1 s windows, 0.1 s hop, a 14.3 s clip.
// openl3.get_audio_embedding(center=True) gives 139 windows whose timestamps
// (window centres) are k * 0.1 s; center=False gives 134 starting at k * 0.1.
TEST(Segmenter, OpenL3CenteredFramingOfA14Point3SecondClip) {
  constexpr int64_t kRate = 48000, kWindow = 48000, kHop = 4800;
  const int64_t n = 143 * kRate / 10;
  const auto centred =
      Cut(kWindow, kHop, v1::LAST_SEGMENT_PAD, n, 100000, true);
  ASSERT_EQ(centred.size(), 139u);
  for (size_t k = 0; k < centred.size(); ++k) {
    EXPECT_EQ(centred[k].start + kWindow / 2, static_cast<int64_t>(k) * kHop);
  }
  EXPECT_EQ(centred.front().valid, kWindow / 2);
  EXPECT_EQ(centred.back().start + kWindow, n);  // the last ends at the end
  EXPECT_EQ(Cut(kWindow, kHop, v1::LAST_SEGMENT_PAD, n, 100000).size(), 134u);
}

TEST(Segmenter, EmitErrorsPropagate) {
  Segmenter seg(4, 4, v1::LAST_SEGMENT_PAD);
  int calls = 0;
  const Segmenter::Emit fail = [&](int64_t, int64_t, absl::Span<const float>,
                                   int64_t) {
    ++calls;
    return absl::CancelledError("stop");
  };
  const std::vector<float> x = Ramp(10);
  EXPECT_EQ(seg.Push(x, fail).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(calls, 1);  // the first error stops the push

  Segmenter tail(4, 4, v1::LAST_SEGMENT_PAD);
  ASSERT_TRUE(tail.Push(absl::MakeConstSpan(x).subspan(0, 3),
                        [](auto...) { return absl::OkStatus(); })
                  .ok());
  EXPECT_EQ(tail.Finish(fail).code(), absl::StatusCode::kCancelled);
}

TEST(Segmenter, FinishTwiceEmitsNothingMore) {
  Segmenter seg(4, 2, v1::LAST_SEGMENT_PAD);
  int calls = 0;
  const Segmenter::Emit count = [&](auto...) {
    ++calls;
    return absl::OkStatus();
  };
  const std::vector<float> x = Ramp(5);
  ASSERT_TRUE(seg.Push(x, count).ok());
  ASSERT_TRUE(seg.Finish(count).ok());
  ASSERT_TRUE(seg.Finish(count).ok());
  EXPECT_EQ(calls, 2);  // [0, 4) and the padded [2, 6)
}

}  // namespace
}  // namespace audiotag
