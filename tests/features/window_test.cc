#include "src/features/window.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::FloatNear;

TEST(Window, HannPeriodicMatchesTorchHannWindow) {
  EXPECT_THAT(
      MakeWindow(v1::WINDOW_HANN_PERIODIC, 4),
      ElementsAre(0.0f, FloatNear(0.5f, 1e-7), 1.0f, FloatNear(0.5f, 1e-7)));
}

TEST(Window, HannSymmetricEndsAtZero) {
  EXPECT_THAT(MakeWindow(v1::WINDOW_HANN_SYMMETRIC, 5),
              ElementsAre(0.0f, FloatNear(0.5f, 1e-7), 1.0f,
                          FloatNear(0.5f, 1e-7), FloatNear(0.0f, 1e-7)));
}

TEST(Window, HammingEndsAtPointZeroEight) {
  EXPECT_THAT(
      MakeWindow(v1::WINDOW_HAMMING_SYMMETRIC, 3),
      ElementsAre(FloatNear(0.08f, 1e-7), 1.0f, FloatNear(0.08f, 1e-7)));
  EXPECT_THAT(MakeWindow(v1::WINDOW_HAMMING_PERIODIC, 2),
              ElementsAre(FloatNear(0.08f, 1e-7), 1.0f));
}

TEST(Window, PoveyIsSymmetricHannToThePowerPointEightyFive) {
  const std::vector<float> hann = MakeWindow(v1::WINDOW_HANN_SYMMETRIC, 400);
  const std::vector<float> povey = MakeWindow(v1::WINDOW_POVEY, 400);
  for (size_t i = 0; i < hann.size(); ++i) {
    EXPECT_NEAR(povey[i], std::pow(hann[i], 0.85), 1e-6) << i;
  }
}

TEST(Window, RectangularAndLengthOne) {
  EXPECT_THAT(MakeWindow(v1::WINDOW_RECTANGULAR, 3), ElementsAre(1, 1, 1));
  EXPECT_THAT(MakeWindow(v1::WINDOW_HANN_SYMMETRIC, 1), ElementsAre(1.0f));
}

}  // namespace
}  // namespace audiotag
