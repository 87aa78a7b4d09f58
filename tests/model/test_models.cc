#include "tests/model/test_models.h"

#include <torch/script.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace audiotag::testing {

namespace fs = std::filesystem;

std::string MakeTempDir(const std::string& name) {
  const ::testing::TestInfo* info =
      ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = fs::path(::testing::TempDir()) /
                 absl::StrCat("audiotag_model_", info->test_suite_name(), "_",
                              info->name(), "_", name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void WriteTextFile(const std::string& path, const std::string& contents) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

void SaveScriptModule(const std::string& path,
                      const std::string& forward_source) {
  fs::create_directories(fs::path(path).parent_path());
  torch::jit::Module module("TestModel");
  module.define(forward_source);
  module.save(path);
}

std::string NumberedLabels(int n) {
  std::string labels;
  for (int i = 0; i < n; ++i) absl::StrAppend(&labels, "l", i, "\n");
  return labels;
}

std::string WaveformConfig(int64_t window, const std::string& outputs) {
  return absl::StrCat(R"pb(
                        input {
                          sample_rate: 16000
                          waveform {}
                        }
                        segment { window_samples:)pb",
                      window, R"pb(}
                                   warmup_batches: 1
    )pb",
                      outputs);
}

void WriteModelFolder(const std::string& root, const std::string& name,
                      const std::string& config, int labels, int64_t version,
                      const std::string& forward_source) {
  const std::string folder = root + "/" + name;
  WriteTextFile(folder + "/config.pbtxt", config);
  if (labels > 0) WriteTextFile(folder + "/labels.txt", NumberedLabels(labels));
  SaveScriptModule(absl::StrCat(folder, "/", version, "/model.pt"),
                   forward_source);
}

std::string StageConfig(const std::string& source, const std::string& output,
                        const std::string& outputs) {
  return absl::StrCat(
      "input { from_model { model: \"", source, "\" output: \"", output,
      "\" } }\n", "batching { max_batch_size: 4 max_queue_delay_us: 500 }\n",
      outputs);
}

void WriteBackboneAndHeads(const std::string& root) {
  WriteModelFolder(
      root, "backbone",
      absl::StrCat(WaveformConfig(16000,
                                  "output { name: \"embedding\" kind: "
                                  "EMBEDDING dim: 2 }\n"),
                   "batching { max_batch_size: 4 max_queue_delay_us: 500 }\n"),
      0, 1, R"(
def forward(self, x):
    return torch.stack([x.max(1)[0], x.pow(2).mean(1).sqrt()], 1)
)");
  WriteModelFolder(
      root, "head_a",
      StageConfig("backbone", "embedding",
                  "output { name: \"out\" kind: EMBEDDING dim: 2 }\n"),
      0, 1, R"(
def forward(self, e):
    return torch.stack([e[:, 0] + 2.0 * e[:, 1], 3.0 * e[:, 0] - e[:, 1]], 1)
)");
  WriteModelFolder(
      root, "head_b",
      StageConfig("backbone", "embedding",
                  "output { name: \"scores\" kind: TAGS dim: 3 }\n"),
      3, 1, R"(
def forward(self, e):
    return torch.stack([e[:, 1], -e[:, 0], e[:, 0] + e[:, 1]], 1)
)");
}

namespace {

constexpr char kLogMelInput[] = R"pb(
  input {
    sample_rate: 16000
    log_mel { n_fft: 400 hop_length: 160 n_mels: 16 log_offset: 0.01 }
  }
  segment { window_samples: 16000 }
  batching { max_batch_size: 4 max_queue_delay_us: 500 }
)pb";

}  // namespace

void WriteReprogrammingChain(const std::string& root) {
  WriteModelFolder(
      root, "transform",
      absl::StrCat(kLogMelInput,
                   "output { name: \"features\" kind: EMBEDDING dim: 16 }\n"),
      0, 1, "def forward(self, x):\n    return 0.5 * x + 1.0\n");
  WriteModelFolder(
      root, "frozen",
      StageConfig("transform", "features",
                  "output { name: \"embedding\" kind: EMBEDDING dim: 16 }\n"),
      0, 1, "def forward(self, f):\n    return f.mean(1)\n");
  WriteModelFolder(
      root, "mapping",
      StageConfig("frozen", "embedding",
                  "output { name: \"out\" kind: EMBEDDING dim: 2 }\n"),
      0, 1, R"(
def forward(self, e):
    return torch.stack([e[:, :8].sum(1), e[:, 8:].sum(1)], 1)
)");
  WriteModelFolder(
      root, "reference",
      absl::StrCat(kLogMelInput,
                   "output { name: \"out\" kind: EMBEDDING dim: 2 }\n"),
      0, 1, R"(
def forward(self, x):
    e = (0.5 * x + 1.0).mean(1)
    return torch.stack([e[:, :8].sum(1), e[:, 8:].sum(1)], 1)
)");
}

}  // namespace audiotag::testing
