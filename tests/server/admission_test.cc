#include "server/admission.h"

#include <utility>

#include "gtest/gtest.h"

namespace audiotag {
namespace {

TEST(AdmissionControl, RefusesPastTheCallLimit) {
  AdmissionControl admission(/*max_calls=*/2, /*max_bytes=*/0);
  auto a = admission.Acquire(10);
  auto b = admission.Acquire(10);
  ASSERT_TRUE(a.ok() && b.ok());
  auto c = admission.Acquire(0);
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("--max_inflight_requests"),
            std::string::npos);
  a->Release();
  EXPECT_TRUE(admission.Acquire(0).ok());
}

TEST(AdmissionControl, RefusesPastTheByteBudgetAndGrowsWithinIt) {
  AdmissionControl admission(/*max_calls=*/0, /*max_bytes=*/100);
  auto a = admission.Acquire(60);
  ASSERT_TRUE(a.ok());
  auto b = admission.Acquire(50);
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(b.status().message().find("--max_inflight_bytes"),
            std::string::npos);
  EXPECT_TRUE(a->Grow(40).ok());
  EXPECT_EQ(a->bytes(), 100);
  EXPECT_EQ(a->Grow(1).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(a->bytes(), 100) << "a refused charge is not kept";
  EXPECT_EQ(admission.bytes(), 100);
}

TEST(AdmissionControl, SlotReturnsEverythingOnceWhenDestroyed) {
  AdmissionControl admission(/*max_calls=*/1, /*max_bytes=*/100);
  {
    auto a = admission.Acquire(30);
    ASSERT_TRUE(a.ok());
    ASSERT_TRUE(a->Grow(20).ok());
    AdmissionControl::Slot moved = *std::move(a);
    EXPECT_TRUE(moved.held());
    EXPECT_EQ(admission.calls(), 1);
    EXPECT_EQ(admission.bytes(), 50);
    moved.Release();
    moved.Release();  // a second release returns nothing more
    EXPECT_EQ(admission.calls(), 0);
    EXPECT_EQ(admission.bytes(), 0);
  }
  {
    auto b = admission.Acquire(100);
    ASSERT_TRUE(b.ok());
  }  // destroyed without Release
  EXPECT_EQ(admission.calls(), 0);
  EXPECT_EQ(admission.bytes(), 0);
  AdmissionControl::Slot empty;
  EXPECT_FALSE(empty.held());
  EXPECT_EQ(empty.Grow(1).code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace audiotag
