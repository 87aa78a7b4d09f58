#include "src/batching/task.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

TEST(RequestControl, AliveUntilDeadline) {
  RequestControl request(1, Priority::kBulk, kT0);
  EXPECT_TRUE(request.CheckAlive(kT0 - absl::Milliseconds(1)).ok());
  EXPECT_EQ(request.CheckAlive(kT0).code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST(RequestControl, NoDeadlineIsAliveForever) {
  RequestControl request(1, Priority::kInteractive, absl::InfiniteFuture());
  EXPECT_TRUE(request.CheckAlive(absl::Now() + absl::Hours(1e6)).ok());
}

TEST(RequestControl, CancelWins) {
  RequestControl request(1, Priority::kInteractive, kT0);
  request.Cancel();
  EXPECT_TRUE(request.cancelled());
  EXPECT_EQ(request.CheckAlive(kT0 + absl::Seconds(1)).code(),
            absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace audiotag
