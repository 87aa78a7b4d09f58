#include "src/model/model_repository.h"

#include <algorithm>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "src/common/status_macros.h"
#include "src/model/model_loader.h"
#include "src/model/stage_link.h"
#include "src/model/torch_runner.h"

namespace audiotag {
namespace {

// What the repository knows about one model folder.
struct Entry {
  v1::ModelState state = v1::LOADING;
  // Why the model is not READY, or why a newer version failed while an older
  // one still serves.
  std::string reason;
  // The serving version; null unless READY.
  std::shared_ptr<const Model> model;
  // The config of the last load attempt (normalized if `config_valid`).
  v1::ModelConfig config;
  bool config_valid = false;
  int64_t version = 0;
  // FolderFingerprint at the last load attempt, plus the source's generation
  // for a stage (so a stage reloads when its source changes).
  std::string fingerprint;
  // The fingerprint at which the chosen model.pt looked half-written; the
  // next scan that sees the same fingerprint loads it regardless.
  std::string pending_fingerprint;
  // Bumped whenever `model` or `state` changes; stages key on it.
  int64_t generation = 0;
};

void FillInfo(const std::string& name, const Entry& entry,
              v1::ModelInfo* info) {
  info->set_name(name);
  info->set_state(entry.state);
  info->set_state_reason(entry.reason);
  // A serving model is described by what serves; a failed one by its last
  // attempt.
  const v1::ModelConfig* config = entry.config_valid ? &entry.config : nullptr;
  int64_t version = entry.version;
  if (entry.model != nullptr) {
    config = &entry.model->config();
    version = entry.model->version();
  }
  info->set_version(version);
  if (config == nullptr) return;
  info->set_description(config->description());
  const int rate = config->input().sample_rate();
  info->set_sample_rate(rate);
  // A stage that never linked to its source has no timing yet.
  if (rate > 0) {
    info->set_segment_seconds(
        static_cast<double>(config->segment().window_samples()) / rate);
    info->set_hop_seconds(static_cast<double>(config->segment().hop_samples()) /
                          rate);
  }
  for (int i = 0; i < config->output_size(); ++i) {
    const v1::OutputConfig& out = config->output(i);
    v1::OutputInfo* o = info->add_outputs();
    o->set_name(out.name());
    o->set_kind(out.kind());
    o->set_dim(out.dim());
    if (entry.model != nullptr) {
      for (const std::string& label : entry.model->labels(i)) {
        o->add_labels(label);
      }
    }
  }
  *info->mutable_config() = *config;
}

class ModelRepositoryImpl : public ModelRepository {
 public:
  explicit ModelRepositoryImpl(RepositoryOptions options)
      : options_(std::move(options)) {}

  ~ModelRepositoryImpl() override { Stop(); }

  void StartPolling() {
    if (options_.poll_interval <= absl::ZeroDuration()) return;
    absl::MutexLock lock(&stop_mu_);
    poller_ = std::thread([this] {
      while (!stop_polling_.WaitForNotificationWithTimeout(
          options_.poll_interval)) {
        Rescan();
      }
    });
  }

  absl::StatusOr<std::shared_ptr<const Model>> Get(
      const std::string& name) const override {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::vector<std::string> ready;
      for (const auto& [n, e] : entries_) {
        if (e.model != nullptr) ready.push_back(n);
      }
      return absl::NotFoundError(
          absl::StrCat("unknown model '", name, "'; available: ",
                       ready.empty() ? "(none)" : absl::StrJoin(ready, ", ")));
    }
    const Entry& entry = it->second;
    if (entry.model != nullptr) return entry.model;
    if (entry.state == v1::LOADING) {
      return absl::UnavailableError(
          absl::StrCat("model '", name, "' is still loading"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("model '", name, "' is not ready: ", entry.reason));
  }

  std::vector<std::shared_ptr<const Model>> ReadyModels() const override {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<const Model>> models;
    for (const auto& [name, entry] : entries_) {
      if (entry.model != nullptr) models.push_back(entry.model);
    }
    return models;
  }

  std::vector<v1::ModelInfo> List() const override {
    absl::MutexLock lock(&mu_);
    std::vector<v1::ModelInfo> infos;
    for (const auto& [name, entry] : entries_) {
      FillInfo(name, entry, &infos.emplace_back());
    }
    return infos;
  }

  absl::StatusOr<v1::ModelInfo> Describe(
      const std::string& name) const override {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      return absl::NotFoundError(absl::StrCat("unknown model '", name, "'"));
    }
    v1::ModelInfo info;
    FillInfo(name, it->second, &info);
    return info;
  }

  void Rescan() override;
  void Stop() override;

 private:
  // Retires models whose folders are gone and adds new ones as LOADING.
  void Prune(const std::vector<std::string>& names) ABSL_LOCKS_EXCLUDED(mu_);
  // Loads `name` if its key (files, and its source's generation for a stage)
  // changed since the last attempt.
  void MaybeLoad(const std::string& name,
                 const std::vector<std::string>& sources)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(rescan_mu_) ABSL_LOCKS_EXCLUDED(mu_);
  // Fails a model that is part of a from_model(s) cycle.
  void FailCycle(const std::string& name, const std::string& cycle)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::string SourceKey(const std::vector<std::string>& sources) const
      ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const std::string& name, const std::string& fingerprint,
             LoadResult result, absl::Duration load_time = absl::ZeroDuration())
      ABSL_LOCKS_EXCLUDED(mu_);
  void ApplyLocked(const std::string& name, const std::string& fingerprint,
                   LoadResult result, ModelEvent* event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Notify(const ModelEvent& event) const {
    if (options_.on_event) options_.on_event(event);
  }
  // Stops and destroys retired models nobody else holds any more, sources
  // before their stages (so a source's last callbacks can still reach them).
  void ReleaseRetired(bool all) ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::shared_ptr<const Model>> TakeReleasable(bool all)
      ABSL_LOCKS_EXCLUDED(mu_);

  const RepositoryOptions options_;

  // Serializes whole rescans (polling thread vs. explicit calls); loading
  // happens under it but outside mu_, so requests never wait for a load.
  absl::Mutex rescan_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Half-written model.pt files are waited for only after the first scan:
  // at start-up nobody can be mid-publish that we could wait out.
  bool initial_scan_done_ ABSL_GUARDED_BY(rescan_mu_) = false;
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Versions replaced or removed but maybe still held by requests in flight.
  // Their schedulers are stopped here, on a repository thread, once nobody
  // else holds them: never from a scheduler thread that drops the last
  // reference in a completion callback.
  std::vector<std::shared_ptr<const Model>> retired_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  // Serializes whole Stop calls, so that any number of threads may call it at
  // once: one notifies the poller and joins it, the others wait until it
  // has stopped everything and then find nothing left to do.
  absl::Mutex stop_mu_ ABSL_ACQUIRED_BEFORE(rescan_mu_);
  absl::Notification stop_polling_;
  std::thread poller_ ABSL_GUARDED_BY(stop_mu_);
};

void ModelRepositoryImpl::Prune(const std::vector<std::string>& names) {
  std::vector<ModelEvent> events;
  {
    absl::MutexLock lock(&mu_);
    const std::set<std::string> present(names.begin(), names.end());
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (present.count(it->first) == 0) {
        ModelEvent& event = events.emplace_back();
        event.kind = ModelEvent::Kind::kUnloaded;
        event.model = it->first;
        event.version = it->second.model != nullptr
                            ? it->second.model->version()
                            : it->second.version;
        event.reason = "its folder was removed";
        if (it->second.model != nullptr) retired_.push_back(it->second.model);
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
    for (const std::string& name : names) entries_.try_emplace(name);
  }
  for (const ModelEvent& event : events) Notify(event);
}

std::string ModelRepositoryImpl::SourceKey(
    const std::vector<std::string>& sources) const {
  absl::MutexLock lock(&mu_);
  std::string key;
  for (const std::string& source : sources) {
    auto it = entries_.find(source);
    const std::string generation =
        it == entries_.end() ? "none" : absl::StrCat(it->second.generation);
    absl::StrAppend(&key, "|source=", source, "#", generation);
  }
  return key;
}

void ModelRepositoryImpl::MaybeLoad(const std::string& name,
                                    const std::vector<std::string>& sources) {
  const std::string key =
      FolderFingerprint(options_.root + "/" + name) + SourceKey(sources);
  LoadOptions load;
  {
    absl::MutexLock lock(&mu_);
    const Entry& entry = entries_[name];
    if (entry.fingerprint == key) return;
    load.defer_incomplete =
        initial_scan_done_ && entry.pending_fingerprint != key;
  }
  load.on_batch = options_.on_batch;
  load.find_source = [this](const std::string& n) { return Get(n); };
  const absl::Time start = absl::Now();
  LoadResult result = LoadModelFolder(options_.root, name, load);
  if (!result.incomplete) {
    Apply(name, key, std::move(result), absl::Now() - start);
    return;
  }
  absl::MutexLock lock(&mu_);
  Entry& entry = entries_[name];
  entry.pending_fingerprint = key;
  entry.reason =
      entry.model == nullptr
          ? std::string(result.status.message())
          : absl::StrCat("version ", result.version,
                         " not loaded yet; still serving version ",
                         entry.model->version(), ": ", result.status.message());
}

void ModelRepositoryImpl::FailCycle(const std::string& name,
                                    const std::string& cycle) {
  const std::string key =
      FolderFingerprint(options_.root + "/" + name) + "|cycle=" + cycle;
  {
    absl::MutexLock lock(&mu_);
    if (entries_[name].fingerprint == key) return;
  }
  LoadResult result;
  result.source_failed = true;
  result.status = absl::InvalidArgumentError(
      absl::StrCat(options_.root, "/", name,
                   "/config.pbtxt: input.from_model(s): the models form a "
                   "cycle: ",
                   cycle));
  Apply(name, key, std::move(result));
}

void ModelRepositoryImpl::Apply(const std::string& name,
                                const std::string& fingerprint,
                                LoadResult result, absl::Duration load_time) {
  ModelEvent event;
  event.model = name;
  event.version = result.version;
  event.load_time = load_time;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) {
      if (result.model != nullptr) retired_.push_back(std::move(result.model));
      return;
    }
    ApplyLocked(name, fingerprint, std::move(result), &event);
  }
  Notify(event);
}

void ModelRepositoryImpl::ApplyLocked(const std::string& name,
                                      const std::string& fingerprint,
                                      LoadResult result, ModelEvent* event) {
  Entry& entry = entries_[name];
  event->previous_version = entry.model != nullptr ? entry.model->version() : 0;
  const Model* const model_before = entry.model.get();
  const v1::ModelState state_before = entry.state;
  entry.fingerprint = fingerprint;
  entry.pending_fingerprint.clear();
  event->reason = std::string(result.status.message());
  if (result.model != nullptr) {
    event->kind = entry.model != nullptr ? ModelEvent::Kind::kReloaded
                                         : ModelEvent::Kind::kLoaded;
    if (entry.model != nullptr) retired_.push_back(std::move(entry.model));
    entry.model = std::move(result.model);
    entry.state = v1::READY;
    entry.reason.clear();
  } else if (entry.model != nullptr && !result.source_failed) {
    // The new version failed: the old one keeps serving. Without a version
    // (the config does not parse, no version folder) the folder failed.
    event->kind = ModelEvent::Kind::kFailed;
    entry.reason = absl::StrCat(
        result.version > 0
            ? absl::StrCat("version ", result.version, " failed to load")
            : std::string("the changed model folder failed to load"),
        "; still serving version ", entry.model->version(), ": ",
        result.status.message());
  } else {
    event->kind = ModelEvent::Kind::kFailed;
    // A stage whose source is gone or incompatible must stop serving too.
    if (entry.model != nullptr) retired_.push_back(std::move(entry.model));
    entry.model = nullptr;
    entry.state = v1::FAILED;
    entry.reason = std::string(result.status.message());
  }
  if (entry.model.get() != model_before || entry.state != state_before) {
    ++entry.generation;
  }
  entry.config = std::move(result.config);
  entry.config_valid = result.config_valid;
  entry.version = result.version;
  event->serving_version = entry.model != nullptr ? entry.model->version() : 0;
  if (event->kind != ModelEvent::Kind::kFailed) event->reason.clear();
}

std::vector<std::shared_ptr<const Model>> ModelRepositoryImpl::TakeReleasable(
    bool all) {
  std::vector<std::shared_ptr<const Model>> release;
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<const Model>> keep;
  for (std::shared_ptr<const Model>& model : retired_) {
    (all || model.use_count() == 1 ? release : keep)
        .push_back(std::move(model));
  }
  retired_ = std::move(keep);
  std::stable_sort(
      release.begin(), release.end(),
      [](const auto& a, const auto& b) { return a->depth() < b->depth(); });
  return release;
}

void ModelRepositoryImpl::ReleaseRetired(bool all) {
  // A retired stage holds its source: releasing the stage may free the
  // source, so go round until nothing more is released.
  for (;;) {
    std::vector<std::shared_ptr<const Model>> release = TakeReleasable(all);
    if (release.empty()) return;
    for (const std::shared_ptr<const Model>& model : release) {
      model->scheduler().Stop();
    }
  }
}

void ModelRepositoryImpl::Rescan() {
  absl::MutexLock rescan_lock(&rescan_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
  }
  absl::StatusOr<std::vector<std::string>> names =
      ListModelFolders(options_.root);
  if (names.ok()) {
    Prune(*names);
    std::map<std::string, std::vector<std::string>> sources;
    for (const std::string& name : *names) {
      sources[name] = StageSourcesOf(options_.root + "/" + name);
    }
    const LoadOrder order = OrderBySource(sources);
    for (const auto& [name, cycle] : order.cycles) FailCycle(name, cycle);
    for (const std::string& name : order.order) MaybeLoad(name, sources[name]);
  }
  initial_scan_done_ = true;
  ReleaseRetired(/*all=*/false);
}

void ModelRepositoryImpl::Stop() {
  absl::MutexLock stop_lock(&stop_mu_);
  if (!stop_polling_.HasBeenNotified()) stop_polling_.Notify();
  if (poller_.joinable()) poller_.join();
  absl::MutexLock rescan_lock(&rescan_mu_);
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto& [name, entry] : entries_) {
      if (entry.model != nullptr) retired_.push_back(entry.model);
    }
  }
  ReleaseRetired(/*all=*/true);
}

}  // namespace

const char* ModelEventKindName(ModelEvent::Kind kind) {
  switch (kind) {
    case ModelEvent::Kind::kLoaded:
      return "loaded";
    case ModelEvent::Kind::kReloaded:
      return "reloaded";
    case ModelEvent::Kind::kUnloaded:
      return "unloaded";
    case ModelEvent::Kind::kFailed:
      return "failed";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Open(
    const RepositoryOptions& options) {
  if (options.root.empty()) {
    return absl::InvalidArgumentError("model repository root is empty");
  }
  RETURN_IF_ERROR(ListModelFolders(options.root).status());
  SetProcessIntraOpThreads(options.default_intra_op_threads);
  auto repository = std::make_unique<ModelRepositoryImpl>(options);
  repository->Rescan();
  repository->StartPolling();
  return repository;
}

}  // namespace audiotag
