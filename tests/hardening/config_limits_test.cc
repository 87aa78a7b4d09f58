// Regression tests for hostile model configs found by config_fuzzer: a
// config must be rejected with INVALID_ARGUMENT before audiotag allocates
// anything its numbers ask for, since one bad config.pbtxt dropped into a
// polled repository must not take the whole server down.

#include <new>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "src/model/model_config.h"

namespace audiotag {
namespace {

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AUDIOTAG_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define AUDIOTAG_UNDER_ASAN 1
#endif

absl::Status Normalize(const std::string& text) {
  absl::StatusOr<v1::ModelConfig> config = ParseModelConfig(text, "x.pbtxt");
  if (!config.ok()) return config.status();
  return NormalizeModelConfig("x", &*config);
}

// n_mels above n_fft / 2 + 1 is invalid anyway; the mel filterbank
// (n_fft / 2 + 1) x n_mels floats, here 4 TB, must not be built to find out.
TEST(ConfigLimits, HugeMelFilterbankIsRejectedWithoutAllocatingIt) {
#ifdef AUDIOTAG_UNDER_ASAN
  GTEST_SKIP() << "ASan aborts on the 4 TB allocation instead of throwing";
#endif
  const std::string config = R"pb(
    input {
      sample_rate: 16000
      log_mel { n_fft: 2000000 n_mels: 1000000 hop_length: 160 }
    }
    segment { window_samples: 4000000 }
    output { name: "e" kind: EMBEDDING dim: 4 }
  )pb";
  absl::Status status;
  try {
    status = Normalize(config);
  } catch (const std::bad_alloc&) {
    FAIL() << "NormalizeModelConfig threw std::bad_alloc: it built the "
              "filterbank before checking n_mels and n_fft";
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

// An absurd n_fft with few bands: a 512 GB filterbank for one model.
TEST(ConfigLimits, AbsurdNfftIsInvalidArgument) {
#ifdef AUDIOTAG_UNDER_ASAN
  GTEST_SKIP() << "ASan aborts on the allocation instead of throwing";
#endif
  const std::string config = R"pb(
    input {
      sample_rate: 16000
      log_mel { n_fft: 2000000000 n_mels: 128 hop_length: 160 }
    }
    segment { window_samples: 2100000000 }
    output { name: "e" kind: EMBEDDING dim: 4 }
  )pb";
  absl::Status status;
  try {
    status = Normalize(config);
  } catch (const std::bad_alloc&) {
    FAIL() << "NormalizeModelConfig threw std::bad_alloc";
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
}

}  // namespace
}  // namespace audiotag
