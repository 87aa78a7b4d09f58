#ifndef AUDIOTAG_SRC_METRICS_METRICS_H_
#define AUDIOTAG_SRC_METRICS_METRICS_H_

// audiotag's Prometheus metrics (docs/metrics.md lists every one). Families
// are created once, in the constructor; each model's children are cached on
// first use, so the hot path is a hash lookup and an atomic add.
//
// Thread-safety: thread-safe.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace audiotag {

class Metrics {
 public:
  // `version` is the build's version string for audiotag_build_info.
  explicit Metrics(absl::string_view version);
  ~Metrics();

  // Every metric in Prometheus' text exposition format.
  std::string RenderText() const;

  // Every gRPC call, whatever its service: `method` is the full method name
  // ("/audiotag.v1.AudioTagger/ListModels") or "other". CallStarted raises
  // the in-flight gauge; CallFinished lowers it and counts the call by code.
  void CallStarted(absl::string_view method);
  void CallFinished(absl::string_view method, absl::StatusCode code,
                    double seconds);

  // One finished analysis: counted per model ("" when none was resolved).
  void RecordRequest(absl::string_view method, absl::string_view model,
                     absl::StatusCode code, double seconds);
  void ObserveDecode(double seconds);
  // Per request, one stage of its path (kStages): how long it took.
  void ObserveStage(absl::string_view stage, double seconds);
  // The stages ObserveStage takes, in the order a request meets them:
  // upload (AnalyzeStream only: first to last chunk), decode, frontend,
  // queue, forward, aggregate, reply (Finish to gRPC done: serialised and
  // sent).
  static const char* const kStages[7];
  // Per segment: how long it waited for its batch.
  void ObserveQueue(absl::string_view model, double seconds);
  // Per batch: its size, the front-end and the forward time.
  void ObserveBatch(absl::string_view model, int size, double compute_seconds);
  void ObserveFrontEnd(absl::string_view model, double seconds);
  void AddAudioSeconds(absl::string_view model, double seconds);
  void SetQueueDepth(absl::string_view model, int64_t depth);
  void SetModelState(absl::string_view model, int64_t version, bool ready);

 private:
  struct ModelChildren;
  ModelChildren& Children(absl::string_view model);

  const std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& request_duration_;
  prometheus::Family<prometheus::Histogram>& decode_duration_;
  prometheus::Family<prometheus::Histogram>& frontend_duration_;
  prometheus::Family<prometheus::Histogram>& queue_duration_;
  prometheus::Family<prometheus::Histogram>& compute_duration_;
  prometheus::Family<prometheus::Histogram>& batch_size_;
  prometheus::Family<prometheus::Gauge>& queue_depth_;
  prometheus::Family<prometheus::Counter>& audio_seconds_;
  prometheus::Family<prometheus::Gauge>& model_ready_;
  prometheus::Family<prometheus::Gauge>& model_version_;
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Histogram>& stage_duration_;
  prometheus::Family<prometheus::Counter>& calls_;
  prometheus::Family<prometheus::Histogram>& call_duration_;
  prometheus::Family<prometheus::Gauge>& calls_in_flight_;
  prometheus::Histogram& decode_;
  // One child per kStages entry, same order.
  prometheus::Histogram* stages_[7];

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<ModelChildren>> children_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_METRICS_METRICS_H_
