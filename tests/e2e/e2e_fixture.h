#ifndef AUDIOTAG_TESTS_E2E_E2E_FIXTURE_H_
#define AUDIOTAG_TESTS_E2E_E2E_FIXTURE_H_

// Shared set-up of the end-to-end suites: a model repository written by the
// test (real TorchScript files) and the real audiotag-server serving it.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {

// The "stats" model: waveform at 16 kHz, 1 s segments, hop 1 s, padded last
// segment. Its EMBEDDING "stats" is [mean, rms, max, min] of each segment, so
// what the server returns proves decoding, resampling and segmentation; its
// TAGS/ACTIVATIONS "levels" are [rms, 2*rms, 0.1] with labels quiet, loud,
// floor.
void WriteStatsModel(const std::string& root, const std::string& name,
                     int64_t version = 1, const std::string& extra_config = "");

// A repository with: stats (ready), broken (corrupt model.pt), and
// typo (config with an unknown field).
std::string MakeE2ERepository();

std::unique_ptr<v1::AudioTagger::Stub> MakeStub(const std::string& address);

// Calls Analyze with `audio` and the given options.
grpc::Status CallAnalyze(v1::AudioTagger::Stub& stub, const std::string& audio,
                         const v1::AnalyzeOptions& options,
                         v1::AnalyzeResponse* response,
                         double timeout_seconds = 60);

// The result for `model` in `response`, or nullptr.
const v1::ModelResult* FindResult(const v1::AnalyzeResponse& response,
                                  const std::string& model);
const v1::OutputResult* FindOutput(const v1::ModelResult& result,
                                   const std::string& output);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_E2E_E2E_FIXTURE_H_
