// libFuzzer target: arbitrary bytes as a config.pbtxt -> ParseModelConfig,
// then NormalizeModelConfig on whatever parsed.

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/string_view.h"
#include "src/model/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<audiotag::v1::ModelConfig> config =
      audiotag::ParseModelConfig(text, "config.pbtxt");
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();
    }
    return 0;
  }
  const absl::Status s = audiotag::NormalizeModelConfig("fuzz_model", &*config);
  if (!s.ok() && s.code() != absl::StatusCode::kInvalidArgument) std::abort();
  if (s.ok()) {
    // Normalizing is idempotent: a normalized config stays valid.
    audiotag::v1::ModelConfig again = *config;
    if (!audiotag::NormalizeModelConfig("fuzz_model", &again).ok()) {
      std::abort();
    }
  }
  (void)audiotag::ParseDevice(config->instances().device());
  return 0;
}
