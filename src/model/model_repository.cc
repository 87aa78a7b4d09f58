#include "src/model/model_repository.h"

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
  // FolderFingerprint at the last load attempt.
  std::string fingerprint;
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
  info->set_segment_seconds(
      static_cast<double>(config->segment().window_samples()) / rate);
  info->set_hop_seconds(static_cast<double>(config->segment().hop_samples()) /
                        rate);
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
  // Marks `names` LOADING (new models only) and returns which of the
  // folders found need a (re)load: new ones and ones whose files changed.
  std::map<std::string, std::string> Plan(const std::vector<std::string>& names)
      ABSL_LOCKS_EXCLUDED(mu_);
  void Apply(const std::string& name, const std::string& fingerprint,
             LoadResult result) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops and destroys retired models nobody else holds any more.
  void ReleaseRetired(bool all) ABSL_LOCKS_EXCLUDED(mu_);

  const RepositoryOptions options_;

  // Serializes whole rescans (polling thread vs. explicit calls); loading
  // happens under it but outside mu_, so requests never wait for a load.
  absl::Mutex rescan_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  mutable absl::Mutex mu_;
  std::map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Versions replaced or removed but maybe still held by requests in flight.
  // Their schedulers are stopped here, on a repository thread, once nobody
  // else holds them: never from a scheduler thread that drops the last
  // reference in a completion callback.
  std::vector<std::shared_ptr<const Model>> retired_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;

  absl::Notification stop_polling_;
  std::thread poller_;
};

std::map<std::string, std::string> ModelRepositoryImpl::Plan(
    const std::vector<std::string>& names) {
  std::map<std::string, std::string> to_load;
  for (const std::string& name : names) {
    to_load[name] = FolderFingerprint(options_.root + "/" + name);
  }
  absl::MutexLock lock(&mu_);
  const std::set<std::string> present(names.begin(), names.end());
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (present.count(it->first) == 0) {
      if (it->second.model != nullptr) retired_.push_back(it->second.model);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = to_load.begin(); it != to_load.end();) {
    auto [entry, inserted] = entries_.try_emplace(it->first);
    if (!inserted && entry->second.fingerprint == it->second) {
      it = to_load.erase(it);
    } else {
      ++it;
    }
  }
  return to_load;
}

void ModelRepositoryImpl::Apply(const std::string& name,
                                const std::string& fingerprint,
                                LoadResult result) {
  absl::MutexLock lock(&mu_);
  if (stopped_) {
    if (result.model != nullptr) retired_.push_back(std::move(result.model));
    return;
  }
  Entry& entry = entries_[name];
  entry.fingerprint = fingerprint;
  if (result.model != nullptr) {
    if (entry.model != nullptr) retired_.push_back(std::move(entry.model));
    entry.model = std::move(result.model);
    entry.state = v1::READY;
    entry.reason.clear();
  } else if (entry.model != nullptr) {
    // The new version failed: the old one keeps serving.
    entry.reason = absl::StrCat(
        "version ", result.version, " failed to load; still serving version ",
        entry.model->version(), ": ", result.status.message());
  } else {
    entry.state = v1::FAILED;
    entry.reason = std::string(result.status.message());
  }
  entry.config = std::move(result.config);
  entry.config_valid = result.config_valid;
  entry.version = result.version;
}

void ModelRepositoryImpl::ReleaseRetired(bool all) {
  std::vector<std::shared_ptr<const Model>> release;
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<const Model>> keep;
    for (std::shared_ptr<const Model>& model : retired_) {
      (all || model.use_count() == 1 ? release : keep)
          .push_back(std::move(model));
    }
    retired_ = std::move(keep);
  }
  for (const std::shared_ptr<const Model>& model : release) {
    model->scheduler().Stop();
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
    for (const auto& [name, fingerprint] : Plan(*names)) {
      Apply(name, fingerprint, LoadModelFolder(options_.root, name, options_.on_batch));
    }
  }
  ReleaseRetired(/*all=*/false);
}

void ModelRepositoryImpl::Stop() {
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
