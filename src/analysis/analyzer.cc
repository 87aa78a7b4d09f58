#include "src/analysis/analyzer.h"

#include <algorithm>
#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/analysis/model_run.h"
#include "src/common/status_macros.h"

namespace audiotag {
namespace {

absl::StatusOr<std::vector<std::shared_ptr<const Model>>> SelectModels(
    const ModelRepository& repository, const v1::AnalyzeOptions& options) {
  std::vector<std::shared_ptr<const Model>> models;
  if (options.models().empty()) {
    models = repository.ReadyModels();
    if (models.empty()) {
      return absl::FailedPreconditionError(
          "no model is ready to serve; see ListModels for each model's state");
    }
    return models;
  }
  for (const std::string& name : options.models()) {
    const bool seen =
        std::any_of(models.begin(), models.end(),
                    [&](const auto& m) { return m->name() == name; });
    if (seen) continue;
    ASSIGN_OR_RETURN(std::shared_ptr<const Model> model, repository.Get(name));
    models.push_back(std::move(model));
  }
  return models;
}

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

v1::AudioInfo ToProto(const AudioInfo& info) {
  v1::AudioInfo out;
  out.set_container(info.container);
  out.set_codec(info.codec);
  out.set_sample_rate(info.sample_rate);
  out.set_channels(info.channels);
  out.set_duration_seconds(info.duration_seconds);
  out.set_size_bytes(info.size_bytes);
  return out;
}

}  // namespace

absl::StatusOr<v1::AnalyzeResponse> Analyzer::Analyze(
    absl::string_view audio, const v1::AnalyzeOptions& options,
    std::shared_ptr<RequestControl> control) const {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(AggregationOptions aggregation,
                   MakeAggregationOptions(options));
  ASSIGN_OR_RETURN(auto models, SelectModels(*repository_, options));

  // One resampled stream per distinct rate; each feeds the models at it.
  std::vector<int> rates;
  std::vector<std::vector<ModelRun*>> runs_by_rate;
  std::vector<std::unique_ptr<ModelRun>> runs;
  for (const auto& model : models) {
    runs.push_back(std::make_unique<ModelRun>(model, control,
                                              options_.max_in_flight_segments));
    const int rate = model->config().input().sample_rate();
    auto it = std::find(rates.begin(), rates.end(), rate);
    if (it == rates.end()) {
      rates.push_back(rate);
      runs_by_rate.emplace_back();
      it = rates.end() - 1;
    }
    runs_by_rate[it - rates.begin()].push_back(runs.back().get());
  }

  std::vector<absl::Status> errors;
  const PcmSink sink = [&](int rate_index, absl::Span<const float> samples) {
    RETURN_IF_ERROR(control->CheckAlive(absl::Now()));
    for (ModelRun* run : runs_by_rate[rate_index]) {
      RETURN_IF_ERROR(run->Push(samples));
    }
    return absl::OkStatus();
  };
  absl::StatusOr<AudioInfo> info =
      DecodeAudio(audio, rates, options_.decoder, sink);
  const absl::Time decoded = absl::Now();
  errors.push_back(info.status());
  for (auto& run : runs) {
    errors.push_back(info.ok() ? run->Finish() : absl::OkStatus());
  }
  // Runs whose own segments failed recorded it; a decode stopped by that
  // failure must not hide it.
  if (absl::Status error = FirstError(errors); !error.ok()) {
    control->Cancel();
    std::vector<absl::Status> run_errors;
    for (auto& run : runs) run_errors.push_back(run->Wait());
    absl::Status root = FirstError(run_errors);
    return !root.ok() && !absl::IsCancelled(root) ? root : error;
  }

  v1::AnalyzeResponse response;
  *response.mutable_audio() = ToProto(*info);
  response.set_request_id(options.request_id());
  absl::Duration queue, compute;
  for (auto& run : runs) {
    ASSIGN_OR_RETURN(*response.add_results(), run->Result(aggregation));
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
