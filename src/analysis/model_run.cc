#include "src/analysis/model_run.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "src/common/status_macros.h"

namespace audiotag {
namespace {

// The path of the first NaN or infinite float or double anywhere in `m`
// (e.g. "outputs[0].pooled.values[3]"), or "" if there is none.
std::string FirstNonFinite(const google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection& r = *m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r.ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const int n = f->is_repeated() ? r.FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string at =
          f->is_repeated() ? absl::StrCat(f->name(), "[", i, "]") : f->name();
      double x = 0;
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_FLOAT:
          x = f->is_repeated() ? r.GetRepeatedFloat(m, f, i) : r.GetFloat(m, f);
          break;
        case FieldDescriptor::CPPTYPE_DOUBLE:
          x = f->is_repeated() ? r.GetRepeatedDouble(m, f, i)
                               : r.GetDouble(m, f);
          break;
        case FieldDescriptor::CPPTYPE_MESSAGE: {
          const std::string inner =
              FirstNonFinite(f->is_repeated() ? r.GetRepeatedMessage(m, f, i)
                                              : r.GetMessage(m, f));
          if (!inner.empty()) return absl::StrCat(at, ".", inner);
          continue;
        }
        default:
          continue;
      }
      if (!std::isfinite(x)) return absl::StrCat(at, " = ", x);
    }
  }
  return "";
}

absl::Status CheckFiniteOutputs(const Model& model, int64_t index,
                                const SegmentResult& result) {
  const auto& configs = model.config().output();
  for (size_t o = 0; o < result.outputs.size(); ++o) {
    for (float x : result.outputs[o].data) {
      if (std::isfinite(x)) continue;
      const std::string output =
          o < static_cast<size_t>(configs.size())
              ? absl::StrCat("'", configs[static_cast<int>(o)].name(), "'")
              : absl::StrCat(o);
      return absl::InternalError(absl::StrCat(
          "model '", model.name(), "' produced a non-finite value (", x,
          ") in output ", output, " for segment ", index,
          "; no result is returned"));
    }
  }
  return absl::OkStatus();
}

Segmenter MakeSegmenter(const v1::ModelConfig& config) {
  return Segmenter(config.segment().window_samples(),
                   config.segment().hop_samples(),
                   config.segment().last_segment(), config.segment().center());
}

}  // namespace

ModelRun::ModelRun(std::shared_ptr<const Model> model,
                   std::shared_ptr<RequestControl> control, int max_in_flight,
                   bool collect)
    : model_(std::move(model)),
      control_(std::move(control)),
      max_in_flight_(std::max(1, max_in_flight)),
      collect_(collect),
      segmenter_(MakeSegmenter(model_->config())),
      feed_(model_->is_stage() ? nullptr : std::make_shared<SegmentFeed>()) {}

ModelRun::~ModelRun() {
  mu_.LockWhen(absl::Condition(this, &ModelRun::Drained));
  mu_.Unlock();
}

void ModelRun::AddDependent(ModelRun* stage) { dependents_.push_back(stage); }

absl::Status ModelRun::Push(absl::Span<const float> samples) {
  return segmenter_.Push(
      samples, [this](int64_t index, int64_t start,
                      absl::Span<const float> segment, int64_t valid) {
        return EnqueueSegment(index, start, segment, valid);
      });
}

absl::Status ModelRun::PushWhole(absl::Span<const float> samples) {
  Segmenter counter = MakeSegmenter(model_->config());
  const Segmenter::Emit count = [](int64_t, int64_t, absl::Span<const float>,
                                   int64_t) { return absl::OkStatus(); };
  RETURN_IF_ERROR(counter.Push(samples, count));
  RETURN_IF_ERROR(counter.Finish(count));
  expected_segments_ =
      segmenter_.segments_emitted() + counter.segments_emitted();
  RETURN_IF_ERROR(Push(samples));
  return FinishSegmenter();
}

absl::Status ModelRun::FinishSegmenter() {
  if (segmenter_finished_) return absl::OkStatus();
  segmenter_finished_ = true;
  absl::Status finished =
      segmenter_.Finish([this](int64_t index, int64_t start,
                               absl::Span<const float> segment, int64_t valid) {
        return EnqueueSegment(index, start, segment, valid);
      });
  CloseFeed();
  return finished;
}

absl::Status ModelRun::Finish() {
  RETURN_IF_ERROR(FinishSegmenter());
  RETURN_IF_ERROR(Wait());
  absl::MutexLock lock(&mu_);
  if (spans_.empty()) {
    const v1::ModelConfig& c = model_->config();
    const double rate = c.input().sample_rate();
    const int64_t seen = segmenter_.samples_seen();
    if (seen == 0 || c.segment().last_segment() != v1::LAST_SEGMENT_DROP) {
      // The decoder gives any non-empty audio at least one sample at every
      // rate, and a padding model one segment for it: not expected.
      return absl::InvalidArgumentError(absl::StrFormat(
          "model '%s' received no audio samples at %.0f Hz", c.name(), rate));
    }
    return absl::InvalidArgumentError(absl::StrFormat(
        "the audio (%d samples, %.6g s at %.0f Hz) is shorter than model "
        "'%s''s segment (%d samples, %.3f s), which drops partial segments",
        seen, seen / rate, rate, c.name(), c.segment().window_samples(),
        c.segment().window_samples() / rate));
  }
  return absl::OkStatus();
}

void ModelRun::CloseFeed() {
  if (feed_ == nullptr || !feed_->open()) return;
  feed_->Close();
  model_->scheduler().Wake();
}

void ModelRun::AwaitRoom() {
  const auto has_room = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ < max_in_flight_ || !error_.ok();
  };
  {
    absl::MutexLock lock(&mu_);
    if (has_room()) return;
  }
  if (feed_ != nullptr) {
    feed_->SetStalled(true);
    model_->scheduler().Wake();
  }
  {
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&has_room));
  }
  if (feed_ != nullptr) feed_->SetStalled(false);
}

absl::Status ModelRun::Wait() {
  CloseFeed();
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(this, &ModelRun::Drained));
  return error_;
}

absl::Status ModelRun::EnqueueSegment(int64_t index, int64_t start,
                                      absl::Span<const float> samples,
                                      int64_t valid) {
  for (;;) {
    RETURN_IF_ERROR(control_->CheckAlive(absl::Now()));
    AwaitRoom();
    {
      absl::MutexLock lock(&mu_);
      if (in_flight_ >= max_in_flight_ && error_.ok()) continue;
      if (!error_.ok()) return error_;
      if (spans_.size() <= static_cast<size_t>(index)) {
        spans_.resize(index + 1);
        outputs_.resize(index + 1);
      }
      spans_[index] = SegmentSpan{start, valid};
      ++in_flight_;
    }
    Tensor input;
    input.shape = {static_cast<int64_t>(samples.size())};
    input.data.assign(samples.begin(), samples.end());
    if (feed_ != nullptr) {
      // After this one; an exact count reaches 0 (closed) at the last.
      feed_->SetRemaining(
          expected_segments_ >= 0
              ? std::max<int64_t>(0, expected_segments_ - index - 1)
              : SegmentFeed::kUnknown);
    }
    auto task = MakeTask(index, std::move(input), [this] { ReleaseSlot(); });
    absl::Status status = model_->scheduler().Enqueue(std::move(task));
    if (status.ok()) return status;

    absl::MutexLock lock(&mu_);
    --in_flight_;
    // A full queue fails the request only if it has nothing queued to wait
    // for; otherwise wait for one of its own segments and try again.
    if (!absl::IsResourceExhausted(status) || in_flight_ == 0) {
      if (absl::IsResourceExhausted(status)) {
        status = absl::ResourceExhaustedError(absl::StrCat(
            "model '", model_->name(), "' is at its queue limit; retry later (",
            status.message(), ")"));
      }
      return status;
    }
    if (feed_ != nullptr) feed_->SetStalled(true);
    const int64_t before = in_flight_;
    const auto progressed = [this, before]()
                                ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                                  return in_flight_ < before || !error_.ok();
                                };
    mu_.AwaitWithDeadline(absl::Condition(&progressed), control_->deadline());
    if (feed_ != nullptr) feed_->SetStalled(false);
  }
}

std::unique_ptr<SegmentTask> ModelRun::MakeTask(int64_t index, Tensor input,
                                                Release release) {
  auto task = std::make_unique<SegmentTask>();
  task->request = control_;
  task->index = index;
  task->feed = feed_;
  task->input = std::move(input);
  task->done = [this, index, release = std::move(release)](
                   absl::StatusOr<SegmentResult> result) {
    OnDone(index, release, std::move(result));
  };
  return task;
}

void ModelRun::EnqueueFromSource(int64_t index, SegmentSpan span, Tensor input,
                                 Release release) {
  Release own = [this, release = std::move(release)] {
    ReleaseSlot();
    release();
  };
  bool failed = false;
  {
    absl::MutexLock lock(&mu_);
    ++in_flight_;
    failed = !error_.ok();
    if (!failed) {
      if (spans_.size() <= static_cast<size_t>(index)) {
        spans_.resize(index + 1);
        outputs_.resize(index + 1);
      }
      spans_[index] = span;
    }
  }
  if (failed) {
    own();
    return;
  }
  // On failure the scheduler destroys the task without calling it back.
  absl::Status status =
      model_->scheduler().Enqueue(MakeTask(index, std::move(input), own));
  if (status.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    Fail(absl::Status(status.code(),
                      absl::StrCat("stage model '", model_->name(),
                                   "': ", status.message())));
  }
  own();
}

void ModelRun::Fail(const absl::Status& status) {
  if (error_.ok()) error_ = status;
  control_->Cancel();  // spend no more compute on a failed request
}

void ModelRun::ReleaseSlot() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void ModelRun::OnDone(int64_t index, const Release& release,
                      absl::StatusOr<SegmentResult> result) {
  SegmentSpan span;
  std::vector<Tensor> stage_inputs;
  // The last guard after every forward: a NaN or Inf output becomes an
  // error naming the model, never a silent NaN score.
  if (result.ok()) {
    if (absl::Status bad = CheckFiniteOutputs(*model_, index, *result);
        !bad.ok()) {
      result = std::move(bad);
    }
  }
  {
    absl::MutexLock lock(&mu_);
    if (!result.ok()) {
      Fail(result.status());
    } else {
      span = spans_[index];
      for (ModelRun* stage : dependents_) {
        stage_inputs.push_back(result->outputs[stage->model().source_output()]);
      }
      if (collect_) outputs_[index] = std::move(result->outputs);
      max_queue_time_ = std::max(max_queue_time_, result->queue_time);
      // This segment's share of its batch, so segments of one request that
      // shared a batch count its forward time once.
      compute_time_ += result->compute_time / std::max(1, result->batch_size);
      if (batches_seen_.insert(result->batch_id).second) {
        frontend_time_ += result->frontend_time;
        forward_time_ += result->compute_time - result->frontend_time;
      }
    }
  }
  if (stage_inputs.empty()) {
    release();
    return;
  }
  // The segment's slot is freed when the last stage is done with it.
  auto pending =
      std::make_shared<std::atomic<int>>(static_cast<int>(stage_inputs.size()));
  Release countdown = [pending, release] {
    if (pending->fetch_sub(1, std::memory_order_acq_rel) == 1) release();
  };
  for (size_t i = 0; i < dependents_.size(); ++i) {
    dependents_[i]->EnqueueFromSource(index, span, std::move(stage_inputs[i]),
                                      countdown);
  }
}

absl::StatusOr<v1::ModelResult> ModelRun::Result(
    const AggregationOptions& options) const {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(v1::ModelResult result,
                   Aggregate(*model_, spans_, outputs_, options));
  // Pooling finite outputs can still overflow: an OK reply carries no NaN
  // or Inf anywhere.
  if (const std::string bad = FirstNonFinite(result); !bad.empty()) {
    return absl::InternalError(absl::StrCat("model '", model_->name(),
                                            "' produced a non-finite result (",
                                            bad, ")"));
  }
  return result;
}

absl::Duration ModelRun::max_queue_time() const {
  absl::MutexLock lock(&mu_);
  return max_queue_time_;
}

absl::Duration ModelRun::frontend_time() const {
  absl::MutexLock lock(&mu_);
  return frontend_time_;
}

absl::Duration ModelRun::forward_time() const {
  absl::MutexLock lock(&mu_);
  return forward_time_;
}

int64_t ModelRun::segment_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(spans_.size());
}

absl::Duration ModelRun::compute_time() const {
  absl::MutexLock lock(&mu_);
  return compute_time_;
}

}  // namespace audiotag
