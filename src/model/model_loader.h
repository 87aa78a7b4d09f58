#ifndef AUDIOTAG_SRC_MODEL_MODEL_LOADER_H_
#define AUDIOTAG_SRC_MODEL_MODEL_LOADER_H_

// Private to the model repository: what is in one model folder, and loading
// it into a servable Model. Not thread-hostile: every function is a pure
// function of the file system and its arguments.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/model_config.pb.h"
#include "src/batching/scheduler.h"
#include "src/model/model.h"

namespace audiotag {

// The names of the model folders under `root` (directories whose names do
// not start with '.'), sorted. NOT_FOUND / INVALID_ARGUMENT when `root` is
// missing or not a directory.
absl::StatusOr<std::vector<std::string>> ListModelFolders(
    const std::string& root);

// A summary of every file a model folder's load depends on (config, labels,
// version folders and their model.pt: names, sizes, modification times).
// Equal fingerprints mean there is nothing new to load.
std::string FolderFingerprint(const std::string& folder);

// The numbered version folders in `folder` (names of decimal digits, > 0),
// ascending.
std::vector<int64_t> ListVersions(const std::string& folder);

// The source models a folder's config names in input.from_model or
// input.from_models, in order; empty for an audio model, or a config that
// does not parse (its load reports why).
std::vector<std::string> StageSourcesOf(const std::string& folder);

// Whether `path` ends with a zip end-of-central-directory record, as every
// complete TorchScript file does. False for a file still being written (or
// one that is not a zip at all).
bool LooksLikeCompleteZip(const std::string& path);

// What loading one folder gave: a model, or why not. `config` is filled as far
// as loading got (normalized when normalization passed) so a FAILED model
// can still be described.
struct LoadResult {
  std::shared_ptr<const Model> model;  // null on failure
  absl::Status status;
  v1::ModelConfig config;
  bool config_valid = false;  // `config` is normalized
  int64_t version = 0;        // the version tried; 0 if none was chosen
  // The failure is the stage's source (missing, not ready, incompatible), not
  // the folder itself: an older version of the stage must not keep serving.
  bool source_failed = false;
  // Nothing was loaded because the chosen model.pt looks half-written
  // (LoadOptions::defer_incomplete); try again at the next scan.
  bool incomplete = false;
};

using BatchObserver =
    std::function<void(const std::string&, const BatchStats&)>;

// Resolves a stage's source model by name: the serving version, or why there
// is none.
using SourceLookup = std::function<absl::StatusOr<std::shared_ptr<const Model>>(
    const std::string&)>;

struct LoadOptions {
  // Called after each of the model's batches. Optional.
  BatchObserver on_batch;
  // Required to load stages; without it a stage fails.
  SourceLookup find_source;
  // When the chosen model.pt does not end in a zip end-of-central-directory
  // record, load nothing and set LoadResult::incomplete. Default off (a
  // broken file then fails the load with the loader's error).
  bool defer_incomplete = false;
};

// Loads `root`/`name`: config -> normalize -> (stage: link to its source) ->
// labels -> version -> one TorchRunner per instance -> the Scheduler its
// batching config chooses (src/batching/scheduler_factory.h). Never
// throws; failures are in LoadResult::status with the file (and line, for
// config errors) named.
LoadResult LoadModelFolder(const std::string& root, const std::string& name,
                           const LoadOptions& options);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_MODEL_LOADER_H_
