#include "src/batching/request_queue.h"

#include <algorithm>
#include <utility>

namespace audiotag {

void RequestQueue::Push(std::unique_ptr<SegmentTask> task,
                        absl::Time enqueue_time) {
  ClassQueue& queue = classes_[static_cast<int>(task->request->priority())];
  const uint64_t id = task->request->id();
  auto [it, inserted] = queue.requests.try_emplace(id);
  if (inserted) {
    it->second.control = task->request;
    queue.turns.push_back(id);
  }
  if (it->second.feed == nullptr) it->second.feed = task->feed;
  it->second.segments.push_back(Entry{std::move(task), enqueue_time});
  ++queue.size;
  ++size_;
}

absl::Time RequestQueue::OldestEnqueueTime(Priority priority) const {
  absl::Time oldest = absl::InfiniteFuture();
  for (const auto& [id, request] :
       classes_[static_cast<int>(priority)].requests) {
    oldest = std::min(oldest, request.segments.front().enqueue_time);
  }
  return oldest;
}

const RequestQueue::PerRequest* RequestQueue::NextRequest(
    Priority priority) const {
  const ClassQueue& queue = classes_[static_cast<int>(priority)];
  if (queue.turns.empty()) return nullptr;
  return &queue.requests.at(queue.turns.front());
}

absl::Time RequestQueue::NextRequestOldestEnqueueTime(Priority priority) const {
  const PerRequest* next = NextRequest(priority);
  return next == nullptr ? absl::InfiniteFuture()
                         : next->segments.front().enqueue_time;
}

int64_t RequestQueue::NextRequestSize(Priority priority) const {
  const PerRequest* next = NextRequest(priority);
  return next == nullptr ? 0 : static_cast<int64_t>(next->segments.size());
}

RequestQueue::Expected RequestQueue::ExpectedArrivals(
    Priority priority, int64_t wanted, bool next_request_only) const {
  Expected expected;
  const auto count = [&](const PerRequest& request) {
    const SegmentFeed* feed = request.feed.get();
    if (feed == nullptr || !feed->open() || feed->stalled()) return;
    const int64_t announced = feed->remaining();
    const bool exact = announced != SegmentFeed::kUnknown;
    const int64_t take =
        std::min(wanted - expected.segments, exact ? announced : wanted);
    if (take <= 0) return;
    const absl::Duration gap = feed->mean_gap();
    const absl::Time eta =
        feed->last_arrival() +
        (gap == absl::InfiniteDuration() ? absl::ZeroDuration() : gap * take);
    expected.segments += take;
    expected.eta = std::max(expected.eta, eta);
    expected.exact = expected.exact && exact;
  };
  if (next_request_only) {
    if (const PerRequest* next = NextRequest(priority)) count(*next);
    return expected;
  }
  const ClassQueue& queue = classes_[static_cast<int>(priority)];
  for (uint64_t id : queue.turns) {
    if (expected.segments >= wanted) break;
    count(queue.requests.at(id));
  }
  return expected;
}

absl::Time RequestQueue::EarliestDeadline() const {
  absl::Time earliest = absl::InfiniteFuture();
  for (const ClassQueue& queue : classes_) {
    for (const auto& [id, request] : queue.requests) {
      earliest = std::min(earliest, request.control->deadline());
    }
  }
  return earliest;
}

void RequestQueue::RemoveDead(absl::Time now, std::vector<Dropped>* dropped) {
  for (ClassQueue& queue : classes_) {
    size_ -= RemoveDeadFrom(queue, now, dropped);
  }
}

std::vector<RequestQueue::Entry> RequestQueue::PopBatch(int max_size,
                                                        bool one_request) {
  std::vector<Entry> batch;
  ClassQueue& queue = classes_[static_cast<int>(NextClass())];
  batch.reserve(std::min<int64_t>(max_size, queue.size));
  size_ -= PopFrom(queue, max_size, one_request, &batch);
  return batch;
}

int64_t RequestQueue::PopFrom(ClassQueue& queue, int max_size, bool one_request,
                              std::vector<Entry>* batch) {
  int64_t popped = 0;
  while (static_cast<int>(batch->size()) < max_size && !queue.turns.empty()) {
    const uint64_t id = queue.turns.front();
    auto it = queue.requests.find(id);
    std::deque<Entry>& segments = it->second.segments;
    // One request: take its segments in order while its turn lasts.
    const int take = one_request
                         ? static_cast<int>(std::min<size_t>(
                               segments.size(), max_size - batch->size()))
                         : 1;
    for (int i = 0; i < take; ++i) {
      batch->push_back(std::move(segments.front()));
      segments.pop_front();
    }
    popped += take;
    queue.turns.pop_front();
    if (segments.empty()) {
      queue.requests.erase(it);
    } else {
      queue.turns.push_back(id);
    }
    if (one_request) break;
  }
  queue.size -= popped;
  return popped;
}

int64_t RequestQueue::RemoveDeadFrom(ClassQueue& queue, absl::Time now,
                                     std::vector<Dropped>* dropped) {
  int64_t removed = 0;
  for (auto it = queue.requests.begin(); it != queue.requests.end();) {
    absl::Status alive = it->second.control->CheckAlive(now);
    if (alive.ok()) {
      ++it;
      continue;
    }
    for (Entry& entry : it->second.segments) {
      dropped->push_back(Dropped{std::move(entry.task), alive});
    }
    removed += it->second.segments.size();
    it = queue.requests.erase(it);
  }
  if (removed > 0) {
    std::erase_if(queue.turns, [&queue](uint64_t id) {
      return !queue.requests.contains(id);
    });
  }
  queue.size -= removed;
  return removed;
}

}  // namespace audiotag
