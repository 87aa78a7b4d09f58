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
#include "src/batching/dynamic_batcher.h"
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

// What loading one folder gave: a model, or why not. `config` is filled as far
// as loading got (normalized when normalization passed) so a FAILED model
// can still be described.
struct LoadResult {
  std::shared_ptr<const Model> model;  // null on failure
  absl::Status status;
  v1::ModelConfig config;
  bool config_valid = false;  // `config` is normalized
  int64_t version = 0;        // the version tried; 0 if none was chosen
};

// Loads `root`/`name`: config -> normalize -> labels -> version -> one
// TorchRunner per instance -> DynamicBatcher. Never throws; failures are in
// LoadResult::status with the file (and line, for config errors) named.
// `on_batch` (optional) is called after each of the model's batches.
LoadResult LoadModelFolder(
    const std::string& root, const std::string& name,
    const std::function<void(const std::string&, const BatchStats&)>&
        on_batch = nullptr);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_MODEL_MODEL_LOADER_H_
