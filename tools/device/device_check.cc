// Runs one model folder on the CPU and on CUDA through the server's
// TorchRunner (front-end, TorchScript forward, activations), feeds both the
// same random batch, and prints, per output, the largest difference, then
// the time per batch on each device. Exit 1 if CUDA is missing or an output
// differs by more than 1e-3 of its largest value.
//
//   device_check MODEL_DIR [BATCH]
//
// Built by tools/device/CMakeLists.txt; run by tools/device/run.sh.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "src/model/model_config.h"
#include "src/model/torch_runner.h"

namespace audiotag {
namespace {

constexpr double kRelativeTolerance = 1e-3;

absl::StatusOr<std::unique_ptr<TorchRunner>> Load(const std::string& dir,
                                                  const std::string& device,
                                                  int batch) {
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(absl::StrCat(dir, "/config.pbtxt"));
  if (!config.ok()) return config.status();
  config->mutable_instances()->set_device(device);
  config->mutable_batching()->set_max_batch_size(batch);
  const std::string folder = std::filesystem::path(dir).filename().string();
  if (absl::Status s = NormalizeModelConfig(folder, &*config); !s.ok()) {
    return s;
  }
  int64_t version = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.is_directory() && !name.empty() &&
        std::all_of(name.begin(), name.end(), ::isdigit)) {
      version = std::max<int64_t>(version, std::stoll(name));
    }
  }
  return TorchRunner::Create(*config,
                             absl::StrCat(dir, "/", version, "/model.pt"));
}

// Milliseconds per Run, after warm-up; the outputs of the last run.
absl::StatusOr<double> Time(TorchRunner& runner, const Tensor& batch, int runs,
                            std::vector<Tensor>* outputs) {
  for (int i = 0; i < runs + 3; ++i) {
    if (i == 3) {
      const auto start = std::chrono::steady_clock::now();
      for (int j = 0; j < runs; ++j) {
        absl::StatusOr<std::vector<Tensor>> out = runner.Run(batch);
        if (!out.ok()) return out.status();
        *outputs = std::move(*out);
      }
      return std::chrono::duration<double, std::milli>(
                 std::chrono::steady_clock::now() - start)
                 .count() /
             runs;
    }
    if (absl::StatusOr<std::vector<Tensor>> out = runner.Run(batch);
        !out.ok()) {
      return out.status();
    }
  }
  return 0.0;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: device_check MODEL_DIR [BATCH]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const int batch_size = argc > 2 ? std::max(1, std::atoi(argv[2])) : 8;
  std::printf("CudaAvailable() = %d\n", CudaAvailable());
  const char* kDevices[2] = {"cpu", "cuda"};
  std::unique_ptr<TorchRunner> runners[2];
  for (int d = 0; d < 2; ++d) {
    absl::StatusOr<std::unique_ptr<TorchRunner>> runner =
        Load(dir, kDevices[d], batch_size);
    if (!runner.ok()) {
      std::fprintf(stderr, "%s: %s\n", kDevices[d],
                   runner.status().ToString().c_str());
      return 1;
    }
    std::printf("%s runner on %s\n", kDevices[d], (*runner)->device().c_str());
    runners[d] = std::move(*runner);
  }
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(absl::StrCat(dir, "/config.pbtxt"));
  if (!config.ok()) return 1;  // Load read it already
  Tensor batch;
  batch.shape = {batch_size, config->segment().window_samples()};
  batch.data.resize(static_cast<size_t>(batch.shape[0] * batch.shape[1]));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> noise(-0.5f, 0.5f);
  for (float& x : batch.data) x = noise(rng);

  std::vector<Tensor> outputs[2];
  double ms[2];
  for (int d = 0; d < 2; ++d) {
    absl::StatusOr<double> t =
        Time(*runners[d], batch, d == 0 ? 3 : 20, &outputs[d]);
    if (!t.ok()) {
      std::fprintf(stderr, "%s: %s\n", kDevices[d],
                   t.status().ToString().c_str());
      return 1;
    }
    ms[d] = *t;
  }
  bool ok = CudaAvailable();
  for (size_t k = 0; k < outputs[0].size(); ++k) {
    double max_diff = 0, max_value = 0;
    for (size_t i = 0; i < outputs[0][k].data.size(); ++i) {
      max_diff = std::max<double>(
          max_diff, std::fabs(outputs[0][k].data[i] - outputs[1][k].data[i]));
      max_value = std::max<double>(max_value, std::fabs(outputs[0][k].data[i]));
    }
    std::printf("output %zu %s: max |cpu - cuda| = %.3g (max |cpu| %.3g)\n", k,
                outputs[0][k].ShapeString().c_str(), max_diff, max_value);
    ok = ok && max_diff <= kRelativeTolerance * std::max(1.0, max_value);
  }
  std::printf("batch %d: cpu %.2f ms, cuda %.2f ms per batch (cpu/cuda %.1f)\n",
              batch_size, ms[0], ms[1], ms[0] / ms[1]);
  std::printf("%s\n", ok ? "DEVICE CHECK OK" : "DEVICE CHECK FAILED");
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace audiotag

int main(int argc, char** argv) { return audiotag::Main(argc, argv); }
