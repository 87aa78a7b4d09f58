#ifndef AUDIOTAG_SRC_COMMON_THREAD_POOL_H_
#define AUDIOTAG_SRC_COMMON_THREAD_POOL_H_

// A fixed set of threads running closures in FIFO order. The server runs each
// request's analysis (decode, segmenting, waiting for batches) on one, so
// gRPC's callback threads never block.
//
// Thread-safety: thread-safe.

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace audiotag {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  // Runs every closure already scheduled, then joins the threads.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  void Schedule(std::function<void()> work);

 private:
  void Loop();

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_COMMON_THREAD_POOL_H_
