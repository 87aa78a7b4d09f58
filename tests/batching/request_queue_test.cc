#include "src/batching/request_queue.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1000);

class RequestQueueTest : public ::testing::Test {
 protected:
  std::shared_ptr<RequestControl> Request(
      uint64_t id, Priority priority = Priority::kInteractive,
      absl::Time deadline = absl::InfiniteFuture()) {
    return std::make_shared<RequestControl>(id, priority, deadline);
  }

  void Push(const std::shared_ptr<RequestControl>& request, int count,
            absl::Time at = kT0) {
    for (int i = 0; i < count; ++i) {
      auto task = std::make_unique<SegmentTask>();
      task->request = request;
      task->index = next_index_[request->id()]++;
      queue_.Push(std::move(task), at);
    }
  }

  // (request id, index) of each popped segment.
  std::vector<std::pair<uint64_t, int64_t>> Pop(int max_size) {
    std::vector<std::pair<uint64_t, int64_t>> popped;
    for (const auto& entry : queue_.PopBatch(max_size)) {
      popped.emplace_back(entry.task->request->id(), entry.task->index);
    }
    return popped;
  }

  RequestQueue queue_;
  std::map<uint64_t, int64_t> next_index_;
};

TEST_F(RequestQueueTest, PopsInteractiveBeforeBulkAndNeverMixesThem) {
  Push(Request(1, Priority::kBulk), 2);
  Push(Request(2, Priority::kInteractive), 2);
  EXPECT_EQ(queue_.NextClass(), Priority::kInteractive);
  EXPECT_EQ(queue_.size(Priority::kInteractive), 2);
  EXPECT_EQ(queue_.size(Priority::kBulk), 2);
  EXPECT_THAT(Pop(3), ElementsAre(Pair(2, 0), Pair(2, 1)));
  EXPECT_EQ(queue_.NextClass(), Priority::kBulk);
  EXPECT_THAT(Pop(3), ElementsAre(Pair(1, 0), Pair(1, 1)));
  EXPECT_EQ(queue_.size(), 0);
}

TEST_F(RequestQueueTest, RoundRobinsOverRequestsInAClass) {
  Push(Request(1), 5);
  Push(Request(2), 2);
  Push(Request(3), 1);
  EXPECT_THAT(Pop(8),
              ElementsAre(Pair(1, 0), Pair(2, 0), Pair(3, 0), Pair(1, 1),
                          Pair(2, 1), Pair(1, 2), Pair(1, 3), Pair(1, 4)));
  EXPECT_TRUE(queue_.empty());
}

TEST_F(RequestQueueTest, TurnOrderPersistsAcrossBatches) {
  auto a = Request(1);
  Push(a, 4);
  EXPECT_THAT(Pop(1), ElementsAre(Pair(1, 0)));
  Push(Request(2), 4);
  EXPECT_THAT(Pop(1), ElementsAre(Pair(1, 1)));
  EXPECT_THAT(Pop(3), ElementsAre(Pair(2, 0), Pair(1, 2), Pair(2, 1)));
}

TEST_F(RequestQueueTest, RemovesCancelledAndExpiredRequests) {
  auto cancelled = Request(1);
  auto expired = Request(2, Priority::kBulk, kT0 + absl::Seconds(1));
  auto alive = Request(3, Priority::kBulk, kT0 + absl::Seconds(10));
  Push(cancelled, 2);
  Push(expired, 1);
  Push(alive, 2);
  cancelled->Cancel();
  std::vector<RequestQueue::Dropped> dropped;
  queue_.RemoveDead(kT0 + absl::Seconds(1), &dropped);
  std::vector<std::pair<uint64_t, absl::StatusCode>> why;
  for (const auto& d : dropped) {
    why.emplace_back(d.task->request->id(), d.status.code());
  }
  EXPECT_THAT(
      why, UnorderedElementsAre(Pair(1, absl::StatusCode::kCancelled),
                                Pair(1, absl::StatusCode::kCancelled),
                                Pair(2, absl::StatusCode::kDeadlineExceeded)));
  EXPECT_EQ(queue_.size(), 2);
  EXPECT_THAT(Pop(8), ElementsAre(Pair(3, 0), Pair(3, 1)));
}

TEST_F(RequestQueueTest, TracksOldestSegmentAndEarliestDeadline) {
  EXPECT_EQ(queue_.OldestEnqueueTime(Priority::kBulk), absl::InfiniteFuture());
  EXPECT_EQ(queue_.EarliestDeadline(), absl::InfiniteFuture());
  auto a = Request(1, Priority::kBulk, kT0 + absl::Seconds(5));
  auto b = Request(2, Priority::kInteractive, kT0 + absl::Seconds(9));
  Push(a, 1, kT0);
  Push(b, 1, kT0 + absl::Seconds(1));
  Push(b, 1, kT0 + absl::Seconds(2));
  EXPECT_EQ(queue_.OldestEnqueueTime(Priority::kBulk), kT0);
  EXPECT_EQ(queue_.OldestEnqueueTime(Priority::kInteractive),
            kT0 + absl::Seconds(1));
  EXPECT_EQ(queue_.EarliestDeadline(), kT0 + absl::Seconds(5));
  Pop(1);
  EXPECT_EQ(queue_.OldestEnqueueTime(Priority::kInteractive),
            kT0 + absl::Seconds(2));
  Pop(2);
  Pop(2);
  EXPECT_EQ(queue_.OldestEnqueueTime(Priority::kBulk), absl::InfiniteFuture());
  EXPECT_EQ(queue_.OldestEnqueueTime(Priority::kInteractive),
            absl::InfiniteFuture());
}

}  // namespace
}  // namespace audiotag
