#include "src/model/model_loader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "src/batching/scheduler_factory.h"
#include "src/common/status_macros.h"
#include "src/model/model_config.h"
#include "src/model/stage_link.h"
#include "src/model/torch_runner.h"

namespace audiotag {
namespace {

namespace fs = std::filesystem;

constexpr char kConfigFile[] = "config.pbtxt";
constexpr char kModelFile[] = "model.pt";

bool IsVersionName(const std::string& name, int64_t* version) {
  if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isdigit(c);
      })) {
    return false;
  }
  return absl::SimpleAtoi(name, version) && *version > 0;
}

// "<name>:<size>:<mtime ns>" for a regular file; "<name>:-" when absent.
std::string FileStamp(const fs::path& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (ec) return path.filename().string() + ":-";
  const auto mtime = fs::last_write_time(path, ec);
  return absl::StrCat(path.filename().string(), ":", size, ":",
                      mtime.time_since_epoch().count());
}

absl::StatusOr<int64_t> ChooseVersion(const std::string& folder,
                                      const v1::ModelConfig& config) {
  const std::vector<int64_t> versions = ListVersions(folder);
  const int64_t pinned = config.version_policy().version();
  if (pinned > 0) {
    if (std::find(versions.begin(), versions.end(), pinned) == versions.end()) {
      return absl::NotFoundError(absl::StrCat(
          folder, ": version_policy.version is ", pinned, " but there is no ",
          folder, "/", pinned, " folder (versions: ",
          versions.empty() ? "none" : absl::StrJoin(versions, ", "), ")"));
    }
    return pinned;
  }
  if (versions.empty()) {
    return absl::NotFoundError(absl::StrCat(folder,
                                            ": no version folder (expected ",
                                            folder, "/1/", kModelFile, ")"));
  }
  return versions.back();
}

// Labels of every output, in config order; empty for unlabelled outputs.
absl::StatusOr<std::vector<std::vector<std::string>>> LoadLabels(
    const std::string& folder, const v1::ModelConfig& config) {
  std::vector<std::vector<std::string>> labels;
  for (const v1::OutputConfig& output : config.output()) {
    labels.emplace_back();
    if (output.labels_file().empty()) continue;
    const std::string path = folder + "/" + output.labels_file();
    ASSIGN_OR_RETURN(labels.back(), ReadLabels(path));
    if (static_cast<int>(labels.back().size()) != output.dim()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": has ", labels.back().size(), " labels but output '",
          output.name(), "' has dim ", output.dim()));
    }
  }
  return labels;
}

std::string ModelPath(const std::string& folder, int64_t version) {
  return absl::StrCat(folder, "/", version, "/", kModelFile);
}

// `stage` is the linked source for a pipeline stage, empty otherwise.
absl::StatusOr<std::shared_ptr<const Model>> BuildModel(
    const std::string& folder, const v1::ModelConfig& config, int64_t version,
    StageInput stage, const BatchObserver& on_batch) {
  ASSIGN_OR_RETURN(auto labels, LoadLabels(folder, config));
  const std::string model_path = ModelPath(folder, version);
  std::vector<int64_t> input_shape = stage.shape;
  if (!IsStage(config)) input_shape = {config.segment().window_samples()};
  std::vector<std::unique_ptr<BatchRunner>> runners;
  std::vector<std::vector<int64_t>> output_shapes;
  for (int i = 0; i < config.instances().count(); ++i) {
    ASSIGN_OR_RETURN(std::unique_ptr<TorchRunner> runner,
                     TorchRunner::Create(config, model_path, input_shape));
    output_shapes = runner->output_shapes();
    runners.push_back(std::move(runner));
  }
  SchedulerParts parts;
  parts.name = config.name();
  parts.input_shape = std::move(input_shape);
  parts.runners = std::move(runners);
  if (on_batch) {
    parts.on_batch = [name = config.name(), on_batch](const BatchStats& s) {
      on_batch(name, s);
    };
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Scheduler> scheduler,
                   CreateScheduler(config.batching(), std::move(parts)));
  return std::make_shared<const Model>(
      config, version, std::move(labels), std::move(scheduler),
      std::move(stage.sources), std::move(output_shapes));
}

// For a stage: finds its sources and links to them (filling the inherited
// timing into `result->config`). Sets source_failed on failure.
absl::StatusOr<StageInput> ResolveStage(const LoadOptions& options,
                                        const std::string& config_path,
                                        LoadResult* result) {
  std::vector<std::shared_ptr<const Model>> sources;
  for (const v1::ModelInput& from : StageSources(result->config)) {
    absl::StatusOr<std::shared_ptr<const Model>> source =
        options.find_source ? options.find_source(from.model())
                            : absl::FailedPreconditionError("no source lookup");
    if (!source.ok()) {
      result->source_failed = true;
      return absl::Status(
          source.status().code(),
          absl::StrCat("source model '", from.model(),
                       "' is not available: ", source.status().message()));
    }
    sources.push_back(*std::move(source));
  }
  absl::StatusOr<StageInput> input = LinkStage(sources, &result->config);
  if (!input.ok()) {
    result->source_failed = true;
    return absl::Status(
        input.status().code(),
        absl::StrCat(config_path, ": ", input.status().message()));
  }
  return input;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListModelFolders(
    const std::string& root) {
  std::error_code ec;
  if (!fs::exists(root, ec)) {
    return absl::NotFoundError(
        absl::StrCat("model repository ", root, " does not exist"));
  }
  if (!fs::is_directory(root, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat("model repository ", root, " is not a directory"));
  }
  std::vector<std::string> names;
  for (const fs::directory_entry& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name[0] == '.') continue;
    std::error_code dir_ec;
    if (entry.is_directory(dir_ec)) names.push_back(name);
  }
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot list model repository ", root, ": ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<int64_t> ListVersions(const std::string& folder) {
  std::vector<int64_t> versions;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, ec)) {
    int64_t version = 0;
    std::error_code dir_ec;
    if (entry.is_directory(dir_ec) &&
        IsVersionName(entry.path().filename().string(), &version)) {
      versions.push_back(version);
    }
  }
  std::sort(versions.begin(), versions.end());
  return versions;
}

std::string FolderFingerprint(const std::string& folder) {
  std::vector<std::string> stamps;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(folder, ec)) {
    std::error_code entry_ec;
    if (entry.is_regular_file(entry_ec)) stamps.push_back(FileStamp(entry));
  }
  for (int64_t version : ListVersions(folder)) {
    stamps.push_back(absl::StrCat(
        version, "/",
        FileStamp(fs::path(folder) / absl::StrCat(version) / kModelFile)));
  }
  std::sort(stamps.begin(), stamps.end());
  return absl::StrJoin(stamps, ";");
}

std::vector<std::string> StageSourcesOf(const std::string& folder) {
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(folder + "/" + kConfigFile);
  std::vector<std::string> names;
  if (!config.ok()) return names;
  for (const v1::ModelInput& from : StageSources(*config)) {
    names.push_back(from.model());
  }
  return names;
}

bool LooksLikeCompleteZip(const std::string& path) {
  // The record is 22 bytes plus a comment of at most 65535 bytes.
  constexpr int64_t kRecord = 22;
  constexpr int64_t kMaxTail = kRecord + 65535;
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return false;
  const int64_t size = static_cast<int64_t>(in.tellg());
  if (size < kRecord) return false;
  const int64_t tail = std::min(size, kMaxTail);
  std::string bytes(tail, '\0');
  in.seekg(size - tail);
  if (!in.read(bytes.data(), tail)) return false;
  for (int64_t i = tail - kRecord; i >= 0; --i) {
    if (bytes.compare(i, 4, "PK\x05\x06") != 0) continue;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(bytes.data() + i);
    const int64_t comment = p[20] | (p[21] << 8);
    if (i + kRecord + comment == tail) return true;
  }
  return false;
}

LoadResult LoadModelFolder(const std::string& root, const std::string& name,
                           const LoadOptions& options) {
  LoadResult result;
  const std::string folder = root + "/" + name;
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(folder + "/" + kConfigFile);
  if (!config.ok()) {
    result.status = config.status();
    return result;
  }
  result.config = *std::move(config);
  result.status = NormalizeModelConfig(name, &result.config);
  if (!result.status.ok()) {
    result.status = absl::Status(
        result.status.code(),
        absl::StrCat(folder, "/", kConfigFile, ": ", result.status.message()));
    return result;
  }
  result.config_valid = true;
  StageInput stage;
  if (IsStage(result.config)) {
    absl::StatusOr<StageInput> linked =
        ResolveStage(options, folder + "/" + kConfigFile, &result);
    if (!linked.ok()) {
      result.status = linked.status();
      return result;
    }
    stage = *std::move(linked);
  }
  absl::StatusOr<int64_t> version = ChooseVersion(folder, result.config);
  if (!version.ok()) {
    result.status = version.status();
    return result;
  }
  result.version = *version;
  const std::string model_path = ModelPath(folder, result.version);
  if (options.defer_incomplete && !LooksLikeCompleteZip(model_path)) {
    result.incomplete = true;
    result.status = absl::UnavailableError(
        absl::StrCat(model_path,
                     " looks incomplete (no zip end record; still being "
                     "written?); waiting for it to settle"));
    return result;
  }
  absl::StatusOr<std::shared_ptr<const Model>> model =
      BuildModel(folder, result.config, result.version, std::move(stage),
                 options.on_batch);
  if (!model.ok()) {
    result.status = model.status();
    return result;
  }
  result.model = *std::move(model);
  return result;
}

}  // namespace audiotag
