#ifndef AUDIOTAG_SRC_MODEL_MODEL_REPOSITORY_H_
#define AUDIOTAG_SRC_MODEL_MODEL_REPOSITORY_H_

// The model repository: a folder of model folders (see
// docs/model_repository.md). Loads every model it finds; a model that fails to
// load is reported FAILED with the reason while the others serve.
//
// Thread-safety: all methods may be called from any thread.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "audiotag/v1/audiotag.pb.h"
#include "src/batching/scheduler.h"
#include "src/model/model.h"

namespace audiotag {

// One change in a model's lifecycle, for logs (RepositoryOptions::on_event).
struct ModelEvent {
  enum class Kind {
    kLoaded,    // first version of a model now serves
    kReloaded,  // a new version (or changed config) replaced the serving one
    kUnloaded,  // the folder is gone; the model no longer serves
    kFailed,    // a load failed; `serving_version` tells if an older one serves
  };
  Kind kind = Kind::kLoaded;
  std::string model;
  // The version loaded, unloaded or tried (0 when none could be chosen, e.g.
  // the config does not parse).
  int64_t version = 0;
  // The version serving after the event; 0 if none.
  int64_t serving_version = 0;
  // kReloaded: the version replaced.
  int64_t previous_version = 0;
  // kFailed: the load error (a config's parse error names file and line).
  std::string reason;
  // How long the load took (kLoaded, kReloaded, kFailed).
  absl::Duration load_time;
};

// "loaded", "reloaded", "unloaded" or "failed".
const char* ModelEventKindName(ModelEvent::Kind kind);

struct RepositoryOptions {
  // The folder holding the model folders. Required.
  std::string root;
  // How often to look for new, changed or removed models; zero disables
  // polling (load once). Default 0.
  absl::Duration poll_interval = absl::ZeroDuration();
  // Intra-op threads for instances whose config leaves it 0; 0 keeps
  // LibTorch's default.
  int default_intra_op_threads = 0;
  // Called after every batch of every model, from the instance thread that
  // ran it (metrics). Must be cheap and thread-safe. Optional.
  std::function<void(const std::string& model, const BatchStats&)> on_batch;
  // Called once per load, reload, unload and failed load, from the thread
  // that scanned (Open's caller for the first scan, then the poller or
  // Rescan's caller), outside the repository's locks. Optional.
  std::function<void(const ModelEvent&)> on_event;
};

class ModelRepository {
 public:
  // Scans `options.root` and loads every model in it. Errors only when the
  // root itself is unusable (NOT_FOUND, INVALID_ARGUMENT); a bad model is
  // recorded, not returned.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Open(
      const RepositoryOptions& options);

  virtual ~ModelRepository() = default;

  // The serving version of `name`: NOT_FOUND for an unknown model,
  // FAILED_PRECONDITION (with the load error) for one that is not ready.
  virtual absl::StatusOr<std::shared_ptr<const Model>> Get(
      const std::string& name) const = 0;

  // Every ready model, by name.
  virtual std::vector<std::shared_ptr<const Model>> ReadyModels() const = 0;

  // State of every model found, ready or not, sorted by name.
  virtual std::vector<v1::ModelInfo> List() const = 0;

  // NOT_FOUND for an unknown model.
  virtual absl::StatusOr<v1::ModelInfo> Describe(
      const std::string& name) const = 0;

  // Rescans the folder now (what polling does periodically).
  virtual void Rescan() = 0;

  // Stops polling and every model's scheduler (queued work is run first).
  // Idempotent; several threads may call it at once, and each call returns
  // once everything is stopped.
  virtual void Stop() = 0;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_MODEL_REPOSITORY_H_
