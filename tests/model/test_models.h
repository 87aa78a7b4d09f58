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

// A config for a pipeline stage fed by output `output` of model `source`
// (input.from_model; no segment of its own); `outputs` appended as is.
std::string StageConfig(const std::string& source, const std::string& output,
                        const std::string& outputs);

// Pipeline models shared by the analysis and end-to-end tests:
//  "backbone": 16 kHz waveform, 1 s segments, EMBEDDING "embedding" =
//    [max, rms] of each segment;
//  "head_a": from backbone/embedding, EMBEDDING "out" = [e0 + 2 e1, 3 e0 - e1];
//  "head_b": from backbone/embedding, TAGS "scores" (labels l0..l2) =
//    [e1, -e0, e0 + e1].
void WriteBackboneAndHeads(const std::string& root);

// The reprogramming chain and a single model computing the same thing:
//  "transform": 16 kHz log-mel (n_fft 400, hop 160, 16 mels, log offset 0.01),
//    1 s segments; EMBEDDING "features" = 0.5 * mel + 1, frame-wise [T, 16];
//  "frozen": from transform/features; EMBEDDING "embedding" = mean over
//    frames, [16];
//  "mapping": from frozen/embedding; EMBEDDING "out" = [sum of bands 0..7,
//    sum of bands 8..15];
//  "reference": the same front-end and segments, computing mapping(frozen(
//    transform(x))) in one network, EMBEDDING "out".
void WriteReprogrammingChain(const std::string& root);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_MODEL_TEST_MODELS_H_
