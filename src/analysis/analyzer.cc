#include "src/analysis/analyzer.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/analysis/model_run.h"
#include "src/analysis/run_plan.h"
#include "src/common/status_macros.h"

namespace audiotag {
namespace {

// The status a failed request reports: a model's own error wins over the
// cancellation it caused in the request's other models.
absl::Status FirstError(const std::vector<absl::Status>& errors) {
  for (const absl::Status& s : errors) {
    if (!s.ok() && !absl::IsCancelled(s)) return s;
  }
  for (const absl::Status& s : errors) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// One run per planned model, in plan order (sources before stages), each
// stage wired to its sources' runs. Only requested models keep their outputs.
std::vector<std::unique_ptr<ModelRun>> MakeRuns(
    const RunPlan& plan, const std::shared_ptr<RequestControl>& control,
    int max_in_flight) {
  std::vector<std::unique_ptr<ModelRun>> runs;
  for (size_t i = 0; i < plan.models.size(); ++i) {
    const bool requested = std::find(plan.results.begin(), plan.results.end(),
                                     static_cast<int>(i)) != plan.results.end();
    runs.push_back(std::make_unique<ModelRun>(plan.models[i], control,
                                              max_in_flight, requested));
  }
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::vector<ModelSource>& sources = plan.models[i]->sources();
    for (size_t slot = 0; slot < sources.size(); ++slot) {
      const size_t s = std::find(plan.models.begin(), plan.models.end(),
                                 sources[slot].model) -
                       plan.models.begin();
      runs[s]->AddDependent(runs[i].get(), static_cast<int>(slot));
    }
  }
  return runs;
}

// Holds the decoded PCM of each rate while the audio is at most
// `max_seconds` long; past that, hands what it holds to the runs and streams
// the rest. Request thread only.
class Prebuffer {
 public:
  Prebuffer(const std::vector<int>& rates,
            const std::vector<std::vector<ModelRun*>>& runs_by_rate,
            double max_seconds)
      : rates_(rates), runs_by_rate_(runs_by_rate), held_(rates.size()) {
    buffering_ = max_seconds > 0;
    for (int rate : rates) limits_.push_back(max_seconds * rate);
  }

  absl::Status Push(int rate_index, absl::Span<const float> samples) {
    const absl::Time start = absl::Now();
    absl::Status status = PushTimed(rate_index, samples);
    in_runs_ += absl::Now() - start;
    return status;
  }

  // Time spent handing samples to the runs (queueing, waiting for
  // in-flight slots) rather than decoding.
  absl::Duration in_runs() const { return in_runs_; }

  // After a successful decode: the audio was short; every run gets it whole.
  absl::Status Flush() {
    if (!buffering_) return absl::OkStatus();
    buffering_ = false;
    for (size_t r = 0; r < rates_.size(); ++r) {
      for (ModelRun* run : runs_by_rate_[r]) {
        RETURN_IF_ERROR(run->PushWhole(held_[r]));
      }
      std::vector<float>().swap(held_[r]);
    }
    return absl::OkStatus();
  }

 private:
  absl::Status PushTimed(int rate_index, absl::Span<const float> samples) {
    if (buffering_) {
      std::vector<float>& held = held_[rate_index];
      if (held.size() + samples.size() <= limits_[rate_index]) {
        held.insert(held.end(), samples.begin(), samples.end());
        return absl::OkStatus();
      }
      RETURN_IF_ERROR(StartStreaming());
    }
    for (ModelRun* run : runs_by_rate_[rate_index]) {
      RETURN_IF_ERROR(run->Push(samples));
    }
    return absl::OkStatus();
  }

  absl::Status StartStreaming() {
    buffering_ = false;
    for (size_t r = 0; r < rates_.size(); ++r) {
      for (ModelRun* run : runs_by_rate_[r]) {
        RETURN_IF_ERROR(run->Push(held_[r]));
      }
      std::vector<float>().swap(held_[r]);
    }
    return absl::OkStatus();
  }

  const std::vector<int>& rates_;
  const std::vector<std::vector<ModelRun*>>& runs_by_rate_;
  std::vector<std::vector<float>> held_;
  std::vector<double> limits_;
  bool buffering_ = false;
  absl::Duration in_runs_;
};

v1::AudioInfo ToProto(const AudioInfo& info) {
  v1::AudioInfo out;
  out.set_container(info.container);
  out.set_codec(info.codec);
  out.set_sample_rate(info.sample_rate);
  out.set_channels(info.channels);
  out.set_duration_seconds(info.duration_seconds);
  out.set_size_bytes(info.size_bytes);
  for (const AudioFormat& f : info.formats) {
    v1::AudioFormat* format = out.add_formats();
    format->set_sample_rate(f.sample_rate);
    format->set_channels(f.channels);
  }
  return out;
}

v1::SkippedModel Skip(const std::string& model, absl::string_view reason) {
  v1::SkippedModel skipped;
  skipped.set_model(model);
  skipped.set_reason(std::string(reason));
  return skipped;
}

}  // namespace

struct Analyzer::Selection {
  std::vector<std::shared_ptr<const Model>> models;
  // Default models left out (not ready).
  std::vector<v1::SkippedModel> skipped;
  bool is_default = false;
};

std::vector<std::string> Analyzer::DefaultModels() const {
  absl::MutexLock lock(&mu_);
  if (default_models_.empty()) {
    for (const auto& model : repository_->ReadyModels()) {
      default_models_.push_back(model->name());
    }
  }
  return default_models_;
}

absl::StatusOr<Analyzer::Selection> Analyzer::SelectModels(
    const v1::AnalyzeOptions& options) const {
  Selection selection;
  if (options.models_size() > static_cast<int>(kMaxModelsPerRequest)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the request names ", options.models_size(), " models; at most ",
        kMaxModelsPerRequest, " are allowed"));
  }
  if (options.models().empty()) {
    selection.is_default = true;
    for (const std::string& name : DefaultModels()) {
      absl::StatusOr<std::shared_ptr<const Model>> model =
          repository_->Get(name);
      if (model.ok()) {
        selection.models.push_back(*std::move(model));
      } else {
        selection.skipped.push_back(Skip(name, model.status().message()));
      }
    }
    if (selection.models.empty()) {
      return absl::FailedPreconditionError(
          "no default model is ready to serve; see ListModels for each "
          "model's state");
    }
    return selection;
  }
  for (const std::string& name : options.models()) {
    constexpr size_t kMaxName = 256;
    if (name.size() > kMaxName) {
      return absl::InvalidArgumentError(
          absl::StrCat("a model name is ", name.size(),
                       " bytes long; names are at most ", kMaxName));
    }
    const bool seen =
        std::any_of(selection.models.begin(), selection.models.end(),
                    [&](const auto& m) { return m->name() == name; });
    if (seen) continue;
    ASSIGN_OR_RETURN(std::shared_ptr<const Model> model,
                     repository_->Get(name));
    selection.models.push_back(std::move(model));
  }
  return selection;
}

absl::StatusOr<v1::AnalyzeResponse> Analyzer::Analyze(
    absl::string_view audio, const v1::AnalyzeOptions& options,
    std::shared_ptr<RequestControl> control, StageTimes* stages) const {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(AggregationOptions aggregation,
                   MakeAggregationOptions(options));
  ASSIGN_OR_RETURN(Selection selection, SelectModels(options));
  const RunPlan plan = PlanRuns(selection.models);
  std::vector<std::unique_ptr<ModelRun>> runs =
      MakeRuns(plan, control, options_.max_in_flight_segments);

  // One resampled stream per distinct rate; each feeds the audio models at
  // it (stages get their input from their source's run).
  std::vector<int> rates;
  std::vector<std::vector<ModelRun*>> runs_by_rate;
  for (const auto& run : runs) {
    if (run->model().is_stage()) continue;
    const int rate = run->model().config().input().sample_rate();
    auto it = std::find(rates.begin(), rates.end(), rate);
    if (it == rates.end()) {
      rates.push_back(rate);
      runs_by_rate.emplace_back();
      it = rates.end() - 1;
    }
    runs_by_rate[it - rates.begin()].push_back(run.get());
  }

  std::vector<absl::Status> errors;
  Prebuffer prebuffer(rates, runs_by_rate, options_.prebuffer_seconds);
  const PcmSink sink = [&](int rate_index, absl::Span<const float> samples) {
    RETURN_IF_ERROR(control->CheckAlive(absl::Now()));
    return prebuffer.Push(rate_index, samples);
  };
  absl::StatusOr<AudioInfo> info =
      DecodeAudio(audio, rates, options_.decoder, sink);
  const absl::Time decoded = absl::Now();
  if (info.ok()) {
    if (absl::Status flushed = prebuffer.Flush(); !flushed.ok()) {
      info = flushed;
    }
  }
  errors.push_back(info.status());
  // Audio models first: their Finish waits for the stages downstream.
  std::vector<absl::Status> too_short(runs.size());
  for (size_t i = 0; i < runs.size() && info.ok(); ++i) {
    ModelRun& run = *runs[i];
    absl::Status status = run.model().is_stage() ? run.Wait() : run.Finish();
    // A default model the audio is too short for is left out, not an error.
    if (selection.is_default && run.segment_count() == 0 &&
        (status.ok() || absl::IsInvalidArgument(status))) {
      too_short[i] = !status.ok()
                         ? status
                         : absl::InvalidArgumentError(absl::StrCat(
                               "the audio is shorter than one segment of its "
                               "source model '",
                               run.model().source()->name(), "'"));
      status = absl::OkStatus();
    }
    errors.push_back(status);
    // A stage with several sources may wait for a source that failed: stop
    // here and let the failure path below abandon what it holds.
    if (!status.ok()) break;
  }
  // Runs whose own segments failed recorded it; a decode stopped by that
  // failure must not hide it.
  if (absl::Status error = FirstError(errors); !error.ok()) {
    control->Cancel();
    for (auto& run : runs) run->Abandon();
    std::vector<absl::Status> run_errors;
    for (auto& run : runs) run_errors.push_back(run->Wait());
    absl::Status root = FirstError(run_errors);
    return !root.ok() && !absl::IsCancelled(root) ? root : error;
  }

  v1::AnalyzeResponse response;
  *response.mutable_audio() = ToProto(*info);
  response.set_request_id(options.request_id());
  absl::Duration queue, compute;
  const absl::Time aggregate_start = absl::Now();
  for (size_t r = 0; r < plan.results.size(); ++r) {
    const int index = plan.results[r];
    if (!too_short[index].ok()) {
      *response.add_skipped() =
          Skip(selection.models[r]->name(), too_short[index].message());
      continue;
    }
    ASSIGN_OR_RETURN(*response.add_results(), runs[index]->Result(aggregation));
  }
  if (response.results().empty()) {
    // Every default model was left out: the first one's reason is the error.
    for (const absl::Status& s : too_short) {
      if (!s.ok()) return s;
    }
  }
  for (v1::SkippedModel& skipped : selection.skipped) {
    *response.add_skipped() = std::move(skipped);
  }
  if (stages != nullptr) {
    stages->decode = decoded - start - prebuffer.in_runs();
    stages->aggregate = absl::Now() - aggregate_start;
    for (auto& run : runs) {
      stages->frontend += run->frontend_time();
      stages->forward += run->forward_time();
      stages->queue = std::max(stages->queue, run->max_queue_time());
    }
  }
  for (auto& run : runs) {
    queue = std::max(queue, run->max_queue_time());
    compute += run->compute_time();
  }
  v1::Timing* timing = response.mutable_timing();
  timing->set_decode_seconds(absl::ToDoubleSeconds(decoded - start));
  timing->set_queue_seconds(absl::ToDoubleSeconds(queue));
  timing->set_compute_seconds(absl::ToDoubleSeconds(compute));
  timing->set_total_seconds(absl::ToDoubleSeconds(absl::Now() - start));
  return response;
}

}  // namespace audiotag
