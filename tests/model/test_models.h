#ifndef AUDIOTAG_TESTS_MODEL_TEST_MODELS_H_
#define AUDIOTAG_TESTS_MODEL_TEST_MODELS_H_

// Test helpers for the model layer: TorchScript modules defined in C++
// (torch::jit::Module::define, so no Python runs at test time) and model
// folders written into a temporary repository.

#include <cstdint>
#include <string>
#include <vector>

namespace audiotag::testing {

// A fresh empty folder under the test's temporary directory.
std::string MakeTempDir(const std::string& name);

// Writes `contents` to `path`, creating parent folders.
void WriteTextFile(const std::string& path, const std::string& contents);

// Saves a TorchScript module whose `forward` is `forward_source`, a complete
// TorchScript `def forward(self, x): ...`, to `path` (parents created).
void SaveScriptModule(const std::string& path,
                      const std::string& forward_source);

// Labels "l0".."l<n-1>", one per line.
std::string NumberedLabels(int n);

// A config for a waveform model with `window` samples at 16 kHz, instances on
// the CPU, no warm-up unless the caller adds it; `outputs` is appended as is
// (text-format `output { ... }` blocks).
std::string WaveformConfig(int64_t window, const std::string& outputs);

// Writes <root>/<name>/config.pbtxt, labels.txt when `labels` > 0, and
// <root>/<name>/<version>/model.pt from `forward_source`.
void WriteModelFolder(const std::string& root, const std::string& name,
                      const std::string& config, int labels, int64_t version,
                      const std::string& forward_source);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_MODEL_TEST_MODELS_H_
