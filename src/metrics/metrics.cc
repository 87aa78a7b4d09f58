#include "src/metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <string>

#include "src/metrics/process_metrics.h"

namespace audiotag {
namespace {

using prometheus::Histogram;

// 1 ms to ~65 s, doubling.
Histogram::BucketBoundaries SecondsBuckets() {
  Histogram::BucketBoundaries b;
  for (double s = 0.001; s < 70; s *= 2) b.push_back(s);
  return b;
}

// 50 us to ~105 s, doubling: stages such as aggregation take microseconds.
Histogram::BucketBoundaries StageBuckets() {
  Histogram::BucketBoundaries b;
  for (double s = 50e-6; s < 110; s *= 2) b.push_back(s);
  return b;
}

Histogram::BucketBoundaries BatchBuckets() {
  return {1, 2, 4, 8, 16, 32, 64, 128, 256};
}

template <typename Builder>
auto& Make(Builder builder, const char* name, const char* help,
           prometheus::Registry& registry) {
  return builder.Name(name).Help(help).Register(registry);
}

}  // namespace

struct Metrics::ModelChildren {
  Histogram* queue;
  Histogram* compute;
  Histogram* frontend;
  Histogram* batch;
  prometheus::Gauge* depth;
  prometheus::Counter* audio;
  prometheus::Gauge* ready;
  prometheus::Gauge* version;
};

Metrics::Metrics(absl::string_view version)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(Make(prometheus::BuildCounter(), "audiotag_requests_total",
                     "Finished calls by model, method and gRPC code.",
                     *registry_)),
      request_duration_(Make(
          prometheus::BuildHistogram(), "audiotag_request_duration_seconds",
          "Time from accepting a call to its reply.", *registry_)),
      decode_duration_(Make(prometheus::BuildHistogram(),
                            "audiotag_decode_duration_seconds",
                            "Time to decode and resample one upload "
                            "(overlaps with its segments' compute).",
                            *registry_)),
      frontend_duration_(Make(
          prometheus::BuildHistogram(), "audiotag_frontend_duration_seconds",
          "Front-end (features) time per batch.", *registry_)),
      queue_duration_(Make(prometheus::BuildHistogram(),
                           "audiotag_queue_duration_seconds",
                           "Time a segment waited for its batch.", *registry_)),
      compute_duration_(Make(
          prometheus::BuildHistogram(), "audiotag_compute_duration_seconds",
          "Front-end plus forward time per batch.", *registry_)),
      batch_size_(Make(prometheus::BuildHistogram(), "audiotag_batch_size",
                       "Segments per batch run.", *registry_)),
      queue_depth_(Make(prometheus::BuildGauge(), "audiotag_queue_depth",
                        "Segments waiting for a batch.", *registry_)),
      audio_seconds_(Make(prometheus::BuildCounter(),
                          "audiotag_audio_seconds_total",
                          "Seconds of audio analyzed.", *registry_)),
      model_ready_(Make(prometheus::BuildGauge(), "audiotag_model_ready",
                        "1 while the model serves, else 0.", *registry_)),
      model_version_(Make(prometheus::BuildGauge(), "audiotag_model_version",
                          "The version that serves.", *registry_)),
      build_info_(Make(prometheus::BuildGauge(), "audiotag_build_info",
                       "Always 1; labels name the build.", *registry_)),
      stage_duration_(
          Make(prometheus::BuildHistogram(), "audiotag_request_stage_seconds",
               "Per request, the time of one stage of its path (label stage: "
               "upload, decode, frontend, queue, forward, aggregate, reply).",
               *registry_)),
      calls_(Make(prometheus::BuildCounter(), "audiotag_grpc_calls_total",
                  "Finished gRPC calls of every service, by method and code.",
                  *registry_)),
      call_duration_(Make(
          prometheus::BuildHistogram(), "audiotag_grpc_call_duration_seconds",
          "Time from a call's start to its status, by method.", *registry_)),
      calls_in_flight_(
          Make(prometheus::BuildGauge(), "audiotag_grpc_calls_in_flight",
               "gRPC calls started and not yet finished.", *registry_)),
      decode_(decode_duration_.Add({}, SecondsBuckets())) {
  build_info_.Add({{"version", std::string(version)}}).Set(1);
  for (int i = 0; i < 7; ++i) {
    stages_[i] = &stage_duration_.Add({{"stage", kStages[i]}}, StageBuckets());
  }
}

const char* const Metrics::kStages[7] = {
    "upload", "decode", "frontend", "queue", "forward", "aggregate", "reply"};

void Metrics::ObserveStage(absl::string_view stage, double seconds) {
  for (int i = 0; i < 7; ++i) {
    if (stage == kStages[i]) {
      stages_[i]->Observe(seconds);
      return;
    }
  }
}

Metrics::~Metrics() = default;

std::string Metrics::RenderText() const {
  std::vector<prometheus::MetricFamily> families = registry_->Collect();
  for (prometheus::MetricFamily& family : CollectProcessMetrics()) {
    families.push_back(std::move(family));
  }
  return prometheus::TextSerializer().Serialize(families);
}

void Metrics::CallStarted(absl::string_view method) {
  calls_in_flight_.Add({{"method", std::string(method)}}).Increment();
}

void Metrics::CallFinished(absl::string_view method, absl::StatusCode code,
                           double seconds) {
  const std::string name(method);
  calls_in_flight_.Add({{"method", name}}).Decrement();
  calls_.Add({{"method", name}, {"code", absl::StatusCodeToString(code)}})
      .Increment();
  call_duration_.Add({{"method", name}}, SecondsBuckets()).Observe(seconds);
}

Metrics::ModelChildren& Metrics::Children(absl::string_view model) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<ModelChildren>& c = children_[model];
  if (c == nullptr) {
    const prometheus::Labels labels = {{"model", std::string(model)}};
    c = std::make_unique<ModelChildren>(ModelChildren{
        &queue_duration_.Add(labels, SecondsBuckets()),
        &compute_duration_.Add(labels, SecondsBuckets()),
        &frontend_duration_.Add(labels, SecondsBuckets()),
        &batch_size_.Add(labels, BatchBuckets()),
        &queue_depth_.Add(labels),
        &audio_seconds_.Add(labels),
        &model_ready_.Add(labels),
        &model_version_.Add(labels),
    });
  }
  return *c;
}

void Metrics::RecordRequest(absl::string_view method, absl::string_view model,
                            absl::StatusCode code, double seconds) {
  const prometheus::Labels labels = {{"model", std::string(model)},
                                     {"method", std::string(method)},
                                     {"code", absl::StatusCodeToString(code)}};
  requests_.Add(labels).Increment();
  request_duration_
      .Add({{"model", std::string(model)}, {"method", std::string(method)}},
           SecondsBuckets())
      .Observe(seconds);
}

void Metrics::ObserveDecode(double seconds) { decode_.Observe(seconds); }

void Metrics::ObserveQueue(absl::string_view model, double seconds) {
  Children(model).queue->Observe(seconds);
}

void Metrics::ObserveBatch(absl::string_view model, int size,
                           double compute_seconds) {
  ModelChildren& c = Children(model);
  c.batch->Observe(size);
  c.compute->Observe(compute_seconds);
}

void Metrics::ObserveFrontEnd(absl::string_view model, double seconds) {
  Children(model).frontend->Observe(seconds);
}

void Metrics::AddAudioSeconds(absl::string_view model, double seconds) {
  Children(model).audio->Increment(seconds);
}

void Metrics::SetQueueDepth(absl::string_view model, int64_t depth) {
  Children(model).depth->Set(static_cast<double>(depth));
}

void Metrics::SetModelState(absl::string_view model, int64_t version,
                            bool ready) {
  ModelChildren& c = Children(model);
  c.ready->Set(ready ? 1 : 0);
  c.version->Set(static_cast<double>(version));
}

}  // namespace audiotag
