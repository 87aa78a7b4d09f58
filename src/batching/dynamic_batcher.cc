#include "src/batching/dynamic_batcher.h"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "src/batching/batch_tensors.h"
#include "src/batching/request_queue.h"
#include "src/common/status_macros.h"

namespace audiotag {
namespace {

// RequestControl::Cancel() wakes no one, so an idle worker with segments
// queued looks for cancelled requests at least this often, even when
// max_queue_delay is long.
constexpr absl::Duration kMaxIdleWait = absl::Milliseconds(50);

using Entries = std::vector<RequestQueue::Entry>;
using DroppedList = std::vector<RequestQueue::Dropped>;

absl::Status ValidateOptions(
    const BatcherOptions& options,
    const std::vector<std::unique_ptr<BatchRunner>>& runners) {
  if (options.max_batch_size < 1) {
    return absl::InvalidArgumentError("max_batch_size must be at least 1");
  }
  const std::vector<int>& preferred = options.preferred_batch_sizes;
  if (!std::is_sorted(preferred.begin(), preferred.end()) ||
      std::adjacent_find(preferred.begin(), preferred.end()) !=
          preferred.end() ||
      (!preferred.empty() &&
       (preferred.front() < 1 || preferred.back() > options.max_batch_size))) {
    return absl::InvalidArgumentError(
        "preferred_batch_sizes must be strictly ascending, each in "
        "[1, max_batch_size]");
  }
  if (options.max_queue_size < 1) {
    return absl::InvalidArgumentError("max_queue_size must be at least 1");
  }
  if (options.bulk_batch_size_under_interactive < 0 ||
      options.bulk_batch_size_under_interactive > options.max_batch_size) {
    return absl::InvalidArgumentError(
        "bulk_batch_size_under_interactive must be in [0, max_batch_size]");
  }
  if (options.interactive_window < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "interactive_window must not be negative");
  }
  if (options.max_arrival_wait < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_arrival_wait must not be negative");
  }
  if (options.max_queue_delay < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("max_queue_delay must not be negative");
  }
  if (runners.empty() ||
      std::any_of(runners.begin(), runners.end(),
                  [](const auto& runner) { return runner == nullptr; })) {
    return absl::InvalidArgumentError("need at least one non-null runner");
  }
  return absl::OkStatus();
}

void FinishDropped(DroppedList& dropped) {
  for (RequestQueue::Dropped& d : dropped) d.task->done(std::move(d.status));
}

// Segments whose input shape differs from the batch's first one cannot be
// stacked (possible only when BatcherOptions::input_shape is empty); they
// fail alone instead of failing the batch.
void RejectMismatchedShapes(Entries& batch) {
  const std::vector<int64_t> shape = batch.front().task->input.shape;
  auto bad = std::stable_partition(batch.begin(), batch.end(),
                                   [&shape](const RequestQueue::Entry& e) {
                                     return HasShape(e.task->input, shape);
                                   });
  for (auto it = bad; it != batch.end(); ++it) {
    it->task->done(absl::InvalidArgumentError(
        absl::StrCat("segment shape ", it->task->input.ShapeString(),
                     " differs from its batch's")));
  }
  batch.erase(bad, batch.end());
}

void NameThisThread(const std::string& name, int instance) {
  const std::string full = absl::StrCat(name, "/", instance);
  pthread_setname_np(pthread_self(), full.substr(0, 15).c_str());
}

class DynamicBatcherImpl final : public DynamicBatcher {
 public:
  DynamicBatcherImpl(BatcherOptions options,
                     std::vector<std::unique_ptr<BatchRunner>> runners)
      : options_(std::move(options)), runners_(std::move(runners)) {}
  ~DynamicBatcherImpl() override { Stop(); }

  void Start() ABSL_LOCKS_EXCLUDED(join_mu_);

  absl::Status Enqueue(std::unique_ptr<SegmentTask> task) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void Stop() override ABSL_LOCKS_EXCLUDED(join_mu_, mu_);
  void Wake() override ABSL_LOCKS_EXCLUDED(mu_);
  int64_t queue_depth() const override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // What a worker does next: drop `dropped`, run `batch` (either may be
  // empty), and return if `exit`.
  struct Work {
    Entries batch;
    DroppedList dropped;
    bool exit = false;
  };

  // The batch the queue offers at some time: run `size` segments now, or,
  // when size is 0, wait until `wake` at the latest.
  struct Plan {
    int size = 0;
    absl::Time wake = absl::InfiniteFuture();
  };

  void WorkerLoop(int instance) ABSL_LOCKS_EXCLUDED(mu_);
  Work NextWork() ABSL_LOCKS_EXCLUDED(mu_);
  Plan PlanBatch(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The most segments the next batch of `priority` may hold.
  int BatchLimit(Priority priority, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When a batch ready at `ready` (by max_queue_delay) stops waiting for
  // the segments its requests announced; `ready` itself when there is
  // nothing worth waiting for.
  absl::Time HoldUntil(Priority priority, int64_t waiting, int limit,
                       absl::Time ready) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The fixed cost of one forward (intercept of the measured forward time
  // against batch size); InfiniteDuration() until two sizes were measured.
  absl::Duration ForwardFixedCost() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordForward(int batch_size, absl::Duration time)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RunBatch(int instance, Entries batch) ABSL_LOCKS_EXCLUDED(mu_);
  void Deliver(Entries& batch,
               absl::StatusOr<std::vector<std::vector<Tensor>>> rows,
               const BatchStats& stats);
  absl::Status CheckTask(const SegmentTask* task) const;

  const BatcherOptions options_;
  const std::vector<std::unique_ptr<BatchRunner>> runners_;

  // Serializes Start and Stop; held while joining, never by workers.
  absl::Mutex join_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(join_mu_);

  mutable absl::Mutex mu_;
  // Signalled when segments arrive, when a worker leaves work behind, and
  // on Stop.
  absl::CondVar work_cv_;
  RequestQueue queue_ ABSL_GUARDED_BY(mu_);
  absl::Time last_interactive_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Mean forward seconds per batch size (index), < 0 where not measured.
  std::vector<double> forward_seconds_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> next_batch_id_{1};
};

void DynamicBatcherImpl::Start() {
  {
    absl::MutexLock lock(&mu_);
    forward_seconds_.assign(options_.max_batch_size + 1, -1.0);
  }
  absl::MutexLock lock(&join_mu_);
  for (int i = 0; i < static_cast<int>(runners_.size()); ++i) {
    threads_.emplace_back([this, i] { WorkerLoop(i); });
  }
}

absl::Status DynamicBatcherImpl::CheckTask(const SegmentTask* task) const {
  if (task == nullptr || task->request == nullptr || !task->done) {
    return absl::InvalidArgumentError("task needs a request and a callback");
  }
  if (!options_.input_shape.empty() &&
      !HasShape(task->input, options_.input_shape)) {
    return absl::InvalidArgumentError(
        absl::StrCat(options_.name, " takes segments of shape ",
                     Tensor{options_.input_shape, {}}.ShapeString(), ", got ",
                     task->input.ShapeString(), " with ",
                     task->input.data.size(), " values"));
  }
  return absl::OkStatus();
}

absl::Status DynamicBatcherImpl::Enqueue(std::unique_ptr<SegmentTask> task) {
  RETURN_IF_ERROR(CheckTask(task.get()));
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    return absl::UnavailableError(absl::StrCat(options_.name, " is stopping"));
  }
  if (queue_.size() >= options_.max_queue_size) {
    return absl::ResourceExhaustedError(absl::StrCat(
        options_.name, " queue is full (", options_.max_queue_size, ")"));
  }
  const absl::Time now = absl::Now();
  if (task->request->priority() == Priority::kInteractive) {
    last_interactive_ = now;
  }
  if (task->feed != nullptr) task->feed->RecordArrival(now);
  queue_.Push(std::move(task), now);
  work_cv_.Signal();
  return absl::OkStatus();
}

void DynamicBatcherImpl::Stop() {
  absl::MutexLock join_lock(&join_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    work_cv_.SignalAll();
  }
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

void DynamicBatcherImpl::Wake() {
  absl::MutexLock lock(&mu_);
  work_cv_.SignalAll();
}

int64_t DynamicBatcherImpl::queue_depth() const {
  absl::ReaderMutexLock lock(&mu_);
  return queue_.size();
}

void DynamicBatcherImpl::WorkerLoop(int instance) {
  NameThisThread(options_.name, instance);
  while (true) {
    Work work = NextWork();
    FinishDropped(work.dropped);
    if (!work.batch.empty()) RunBatch(instance, std::move(work.batch));
    if (work.exit) return;
  }
}

DynamicBatcherImpl::Work DynamicBatcherImpl::NextWork() {
  Work work;
  absl::MutexLock lock(&mu_);
  while (true) {
    const absl::Time now = absl::Now();
    queue_.RemoveDead(now, &work.dropped);
    const Plan plan = PlanBatch(now);
    if (plan.size > 0) {
      work.batch = queue_.PopBatch(plan.size, options_.per_request);
      if (!queue_.empty()) work_cv_.Signal();
      return work;
    }
    if (queue_.empty() && stopping_) {
      work.exit = true;
      return work;
    }
    if (!work.dropped.empty()) return work;
    if (queue_.empty()) {
      work_cv_.Wait(&mu_);
    } else {
      work_cv_.WaitWithDeadline(
          &mu_,
          std::min({plan.wake, queue_.EarliestDeadline(), now + kMaxIdleWait}));
    }
  }
}

int DynamicBatcherImpl::BatchLimit(Priority priority, absl::Time now) const {
  const int cap = options_.bulk_batch_size_under_interactive;
  if (priority == Priority::kBulk && cap > 0 &&
      now - last_interactive_ < options_.interactive_window) {
    return cap;
  }
  return options_.max_batch_size;
}

DynamicBatcherImpl::Plan DynamicBatcherImpl::PlanBatch(absl::Time now) const {
  const Priority priority = queue_.NextClass();
  const bool one = options_.per_request;
  const int64_t waiting =
      one ? queue_.NextRequestSize(priority) : queue_.size(priority);
  if (waiting == 0) return {};
  const int limit = BatchLimit(priority, now);
  if (stopping_ || waiting >= limit) {
    return {.size = static_cast<int>(std::min<int64_t>(waiting, limit))};
  }
  const std::vector<int>& preferred = options_.preferred_batch_sizes;
  for (auto it = preferred.rbegin(); it != preferred.rend(); ++it) {
    if (*it <= waiting) return {.size = *it};
  }
  const absl::Time oldest = one ? queue_.NextRequestOldestEnqueueTime(priority)
                                : queue_.OldestEnqueueTime(priority);
  const absl::Time ready = oldest + options_.max_queue_delay;
  if (now < ready) return {.wake = ready};
  const absl::Time hold = HoldUntil(priority, waiting, limit, ready);
  if (now < hold) return {.wake = hold};
  return {.size = static_cast<int>(waiting)};
}

absl::Time DynamicBatcherImpl::HoldUntil(Priority priority, int64_t waiting,
                                         int limit, absl::Time ready) const {
  if (options_.max_arrival_wait <= absl::ZeroDuration()) return ready;
  const RequestQueue::Expected expected =
      queue_.ExpectedArrivals(priority, limit - waiting, options_.per_request);
  if (expected.segments == 0) return ready;
  // Decoded audio only has to be copied in: wait for it (guarded). Audio
  // still decoding: waiting w for the rest beats running now and the rest
  // after only while w stays under the forward's fixed cost (T(n) + T(k) -
  // T(n + k) for a linear T), and only if the decoder's pace brings the
  // rest within it.
  const absl::Duration budget =
      expected.exact ? options_.max_arrival_wait
                     : std::min(options_.max_arrival_wait, ForwardFixedCost());
  const absl::Time until = ready + budget;
  return expected.eta <= until ? until : ready;
}

absl::Duration DynamicBatcherImpl::ForwardFixedCost() const {
  // Least-squares line through (size, mean forward time) of measured sizes.
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int size = 1; size < static_cast<int>(forward_seconds_.size()); ++size) {
    const double y = forward_seconds_[size];
    if (y < 0) continue;
    n += 1;
    sx += size;
    sy += y;
    sxx += static_cast<double>(size) * size;
    sxy += size * y;
  }
  const double denominator = n * sxx - sx * sx;
  if (n < 2 || denominator <= 0) return absl::InfiniteDuration();
  const double slope = (n * sxy - sx * sy) / denominator;
  const double intercept = (sy - slope * sx) / n;
  return absl::Seconds(std::max(0.0, intercept));
}

void DynamicBatcherImpl::RecordForward(int batch_size, absl::Duration time) {
  absl::MutexLock lock(&mu_);
  if (batch_size < 1 || batch_size >= static_cast<int>(forward_seconds_.size()))
    return;
  double& mean = forward_seconds_[batch_size];
  const double seconds = absl::ToDoubleSeconds(time);
  mean = mean < 0 ? seconds : mean + (seconds - mean) / 8;
}

void DynamicBatcherImpl::RunBatch(int instance, Entries batch) {
  const absl::Time start = absl::Now();
  RejectMismatchedShapes(batch);
  std::vector<const Tensor*> inputs;
  inputs.reserve(batch.size());
  for (const RequestQueue::Entry& entry : batch) {
    inputs.push_back(&entry.task->input);
  }
  const int batch_size = static_cast<int>(batch.size());
  Tensor stacked = StackInputs(inputs);
  const absl::Time run_start = absl::Now();
  absl::StatusOr<std::vector<Tensor>> outputs =
      runners_[instance]->Run(std::move(stacked));

  BatchStats stats;
  stats.batch_size = batch_size;
  stats.instance = instance;
  stats.batch_id = next_batch_id_.fetch_add(1, std::memory_order_relaxed);
  stats.compute_time = absl::Now() - run_start;
  stats.frontend_time = runners_[instance]->last_frontend_time();
  if (outputs.ok()) RecordForward(batch_size, stats.compute_time);
  for (const RequestQueue::Entry& entry : batch) {
    stats.queue_times.push_back(start - entry.enqueue_time);
  }
  if (options_.on_batch) options_.on_batch(stats);
  Deliver(batch,
          outputs.ok() ? SplitOutputs(*outputs, batch_size) : outputs.status(),
          stats);
}

void DynamicBatcherImpl::Deliver(
    Entries& batch, absl::StatusOr<std::vector<std::vector<Tensor>>> rows,
    const BatchStats& stats) {
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!rows.ok()) {
      batch[i].task->done(rows.status());
      continue;
    }
    SegmentResult result;
    result.outputs = std::move((*rows)[i]);
    result.queue_time = stats.queue_times[i];
    result.compute_time = stats.compute_time;
    result.frontend_time = stats.frontend_time;
    result.batch_id = stats.batch_id;
    result.batch_size = stats.batch_size;
    batch[i].task->done(std::move(result));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<DynamicBatcher>> DynamicBatcher::Create(
    BatcherOptions options, std::vector<std::unique_ptr<BatchRunner>> runners) {
  RETURN_IF_ERROR(ValidateOptions(options, runners));
  auto batcher = std::make_unique<DynamicBatcherImpl>(std::move(options),
                                                      std::move(runners));
  batcher->Start();
  return batcher;
}

}  // namespace audiotag
