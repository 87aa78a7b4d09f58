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

}  // namespace audiotag::testing
