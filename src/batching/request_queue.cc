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

std::vector<RequestQueue::Entry> RequestQueue::PopBatch(int max_size) {
  std::vector<Entry> batch;
  ClassQueue& queue = classes_[static_cast<int>(NextClass())];
  batch.reserve(std::min<int64_t>(max_size, queue.size));
  size_ -= PopFrom(queue, max_size, &batch);
  return batch;
}

int64_t RequestQueue::PopFrom(ClassQueue& queue, int max_size,
                              std::vector<Entry>* batch) {
  int64_t popped = 0;
  while (static_cast<int>(batch->size()) < max_size && !queue.turns.empty()) {
    const uint64_t id = queue.turns.front();
    queue.turns.pop_front();
    auto it = queue.requests.find(id);
    std::deque<Entry>& segments = it->second.segments;
    batch->push_back(std::move(segments.front()));
    segments.pop_front();
    ++popped;
    if (segments.empty()) {
      queue.requests.erase(it);
    } else {
      queue.turns.push_back(id);
    }
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
