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
      feed_(model_->is_stage() ? nullptr : std::make_shared<SegmentFeed>()) {
  const std::vector<ModelSource>& sources = model_->sources();
  if (sources.size() < 2) return;
  auto join = std::make_unique<Join>();
  for (const ModelSource& source : sources) {
    const v1::ModelConfig& c = source.model->config();
    const v1::OutputConfig& out = c.output(source.output);
    const double rate = c.input().sample_rate();
    JoinInput& input = join->inputs.emplace_back();
    input.grid = SegmentGrid::FromSamples(c.segment().window_samples(),
                                          c.segment().hop_samples(),
                                          c.segment().center(), rate);
    input.dim = out.dim();
    input.source =
        absl::StrCat("output '", out.name(), "' of model '", c.name(), "'");
    join->total_dim += out.dim();
  }
  absl::MutexLock lock(&mu_);
  join_ = std::move(join);
}

ModelRun::~ModelRun() {
  mu_.LockWhen(absl::Condition(this, &ModelRun::Drained));
  mu_.Unlock();
}

void ModelRun::AddDependent(ModelRun* stage, int slot) {
  dependents_.push_back(
      Dependent{stage, slot, stage->model().sources()[slot].output});
}

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
  if (finished.ok()) {
    bool reached = false;
    int64_t total = 0;
    {
      absl::MutexLock lock(&mu_);
      total_ = total = segmenter_.segments_emitted();
      reached = TakeTotalReached();
    }
    if (reached) NotifyTotal(total);
  }
  return finished;
}

bool ModelRun::TakeTotalReached() {
  if (total_notified_ || total_ < 0 || done_ < total_) return false;
  total_notified_ = true;
  return true;
}

void ModelRun::NotifyTotal(int64_t total) {
  for (const Dependent& d : dependents_) d.run->OnSourceTotal(d.slot, total);
}

void ModelRun::OnSourceTotal(int slot, int64_t total) {
  std::vector<JoinReady> ready;
  bool reached = false;
  {
    absl::MutexLock lock(&mu_);
    if (slot == 0) {
      total_ = total;
      reached = TakeTotalReached();
    }
    if (join_ != nullptr && slot > 0 && !join_->closed) {
      JoinInput& input = join_->inputs[slot];
      input.total = total;
      if (total == 0) {
        // Not a failure of the request (a default model the audio is too
        // short for is skipped), so nothing else is cancelled.
        if (error_.ok()) {
          error_ = absl::InvalidArgumentError(absl::StrCat(
              "the audio is shorter than one segment of source ", input.source,
              " of stage model '", model_->name(), "'"));
        }
        CloseJoin();
      } else {
        TakeReady(&ready);
      }
    }
  }
  EnqueueReady(std::move(ready));
  if (reached) NotifyTotal(total);
}

int64_t ModelRun::Nearest(const Join& join, const JoinInput& input,
                          int64_t index) {
  return NearestSegment(input.grid, join.inputs[0].grid.Centre(index),
                        input.total);
}

void ModelRun::TakeReady(std::vector<JoinReady>* ready) {
  Join& join = *join_;
  for (auto it = join.parked.begin(); it != join.parked.end();) {
    const int64_t index = it->first;
    std::vector<const Tensor*> parts = {&it->second.second};
    for (size_t i = 1; i < join.inputs.size(); ++i) {
      const JoinInput& input = join.inputs[i];
      auto found = input.segments.find(Nearest(join, input, index));
      if (found == input.segments.end()) break;
      parts.push_back(&found->second);
    }
    if (parts.size() < join.inputs.size()) {
      ++it;
      continue;
    }
    JoinReady& r = ready->emplace_back();
    r.index = index;
    r.input.shape = {join.total_dim};
    r.input.data.reserve(join.total_dim);
    for (const Tensor* part : parts) {
      r.input.data.insert(r.input.data.end(), part->data.begin(),
                          part->data.end());
    }
    if (spans_.size() <= static_cast<size_t>(index)) {
      spans_.resize(index + 1);
      outputs_.resize(index + 1);
    }
    spans_[index] = it->second.first;
    it = join.parked.erase(it);
  }
  // Primary segments still to come, and those parked, are at or after
  // `first`; the nearest segment only moves forward in time, so each other
  // source's segments before the one nearest `first` are needed no more
  // (its latest arrival is kept: it may turn out to be its last).
  int64_t first = join.next_unseen;
  if (!join.parked.empty()) first = std::min(first, join.parked.begin()->first);
  for (size_t i = 1; i < join.inputs.size(); ++i) {
    JoinInput& input = join.inputs[i];
    const int64_t keep_from =
        std::min(Nearest(join, input, first), input.max_arrived);
    if (keep_from <= input.freed_below) continue;
    input.segments.erase(input.segments.begin(),
                         input.segments.lower_bound(keep_from));
    input.freed_below = keep_from;
  }
}

void ModelRun::CloseJoin() {
  if (join_ == nullptr || join_->closed) return;
  join_->closed = true;
  in_flight_ -= static_cast<int64_t>(join_->parked.size());
  join_->parked.clear();
  for (JoinInput& input : join_->inputs) input.segments.clear();
}

void ModelRun::Abandon() {
  absl::MutexLock lock(&mu_);
  CloseJoin();
}

void ModelRun::JoinArrival(int slot, int64_t index, SegmentSpan span,
                           Tensor input) {
  std::vector<JoinReady> ready;
  {
    absl::MutexLock lock(&mu_);
    if (join_->closed) return;
    if (!error_.ok()) {
      CloseJoin();
      return;
    }
    JoinInput& in = join_->inputs[slot];
    if (input.shape.size() != 1 || input.shape[0] != in.dim) {
      Fail(absl::InternalError(
          absl::StrCat("stage model '", model_->name(), "': source ", in.source,
                       " gave ", input.ShapeString(), " for segment ", index,
                       "; a stage with several sources takes one vector of ",
                       in.dim, " values per segment from it")));
      CloseJoin();
      return;
    }
    if (slot == 0) {
      ++in_flight_;  // until the stage is done with the segment
      join_->parked.emplace(index, std::make_pair(span, std::move(input)));
      join_->ahead.insert(index);
      while (!join_->ahead.empty() &&
             *join_->ahead.begin() == join_->next_unseen) {
        join_->ahead.erase(join_->ahead.begin());
        ++join_->next_unseen;
      }
    } else if (index >= in.freed_below) {
      in.max_arrived = std::max(in.max_arrived, index);
      in.segments.emplace(index, std::move(input));
    }
    TakeReady(&ready);
  }
  EnqueueReady(std::move(ready));
}

void ModelRun::EnqueueReady(std::vector<JoinReady> ready) {
  for (JoinReady& r : ready) {
    EnqueueStageSegment(r.index, std::move(r.input), [this] { ReleaseSlot(); });
  }
}

void ModelRun::EnqueueStageSegment(int64_t index, Tensor input,
                                   const Release& release) {
  // On failure the scheduler destroys the task without calling it back.
  absl::Status status =
      model_->scheduler().Enqueue(MakeTask(index, std::move(input), release));
  if (status.ok()) return;
  {
    absl::MutexLock lock(&mu_);
    Fail(absl::Status(status.code(),
                      absl::StrCat("stage model '", model_->name(),
                                   "': ", status.message())));
  }
  release();
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

void ModelRun::EnqueueFromSource(int slot, int64_t index, SegmentSpan span,
                                 Tensor input, Release release) {
  bool joins = false;
  {
    absl::MutexLock lock(&mu_);
    joins = join_ != nullptr;
  }
  if (joins) {
    // The join keeps what it needs; the source's slot is free at once.
    JoinArrival(slot, index, span, std::move(input));
    release();
    return;
  }
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
  EnqueueStageSegment(index, std::move(input), own);
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
      for (const Dependent& d : dependents_) {
        stage_inputs.push_back(result->outputs[d.output]);
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
  // Counted once the segment reached every stage, so a stage hears the
  // total after its last segment.
  const auto counted = [this] {
    bool reached = false;
    int64_t total = 0;
    {
      absl::MutexLock lock(&mu_);
      ++done_;
      reached = TakeTotalReached();
      total = total_;
    }
    if (reached) NotifyTotal(total);
  };
  if (stage_inputs.empty()) {
    counted();
    release();
    return;
  }
  // The segment's slot is freed when the last stage is done with it.
  auto pending =
      std::make_shared<std::atomic<int>>(static_cast<int>(stage_inputs.size()));
  Release countdown = [pending, release] {
    if (pending->fetch_sub(1, std::memory_order_acq_rel) == 1) release();
  };
  // Held until the total is passed on, so the slot is not freed first.
  Release hold = countdown;
  pending->fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < dependents_.size(); ++i) {
    dependents_[i].run->EnqueueFromSource(dependents_[i].slot, index, span,
                                          std::move(stage_inputs[i]),
                                          countdown);
  }
  counted();
  hold();
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
