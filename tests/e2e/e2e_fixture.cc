#include "tests/e2e/e2e_fixture.h"

#include <chrono>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "tests/model/test_models.h"

namespace audiotag::testing {

void WriteStatsModel(const std::string& root, const std::string& name,
                     int64_t version, const std::string& extra_config) {
  const std::string config = absl::StrCat(
      R"pb(
        description: "segment statistics, for end-to-end tests"
        input {
          sample_rate: 16000
          waveform {}
        }
        segment { window_samples: 16000 hop_samples: 16000 }
        output { name: "stats" kind: EMBEDDING source: "0" dim: 4 }
        output { name: "levels" kind: TAGS source: "1" dim: 3 }
        output { name: "timeline" kind: ACTIVATIONS source: "1" dim: 3 }
        batching { max_batch_size: 4 max_queue_delay_us: 1000 }
      )pb",
      extra_config);
  const std::string forward = R"(
def forward(self, x):
    rms = x.pow(2).mean(1).sqrt()
    stats = torch.stack([x.mean(1), rms, x.max(1)[0], x.min(1)[0]], 1)
    levels = torch.stack([rms, 2.0 * rms, torch.full_like(rms, 0.1)], 1)
    return (stats, levels)
)";
  WriteModelFolder(root, name, config, 0, version, forward);
  WriteTextFile(root + "/" + name + "/labels.txt", "quiet\nloud\nfloor\n");
}

std::string MakeE2ERepository() {
  const std::string root = NewTempDir("audiotag-e2e-models");
  WriteStatsModel(root, "stats");
  // A model whose TorchScript file is not TorchScript.
  WriteTextFile(root + "/broken/config.pbtxt", R"pb(
    input {
      sample_rate: 16000
      waveform {}
    }
    segment { window_samples: 16000 }
    output { name: "e" kind: EMBEDDING dim: 4 }
  )pb");
  WriteTextFile(root + "/broken/1/model.pt", "this is not a TorchScript zip");
  // A config with an unknown field on its third line.
  WriteTextFile(root + "/typo/config.pbtxt",
                "input { sample_rate: 16000 waveform {} }\n"
                "segment { window_samples: 16000 }\n"
                "output { name: \"e\" kind: EMBEDDING dim: 4 colour: 3 }\n");
  SaveScriptModule(root + "/typo/1/model.pt",
                   "def forward(self, x):\n    return x[:, :4]\n");
  return root;
}

std::unique_ptr<v1::AudioTagger::Stub> MakeStub(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return v1::AudioTagger::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args));
}

grpc::Status CallAnalyze(v1::AudioTagger::Stub& stub, const std::string& audio,
                         const v1::AnalyzeOptions& options,
                         v1::AnalyzeResponse* response,
                         double timeout_seconds) {
  v1::AnalyzeRequest request;
  request.set_audio(audio);
  *request.mutable_options() = options;
  grpc::ClientContext context;
  context.set_deadline(
      std::chrono::system_clock::now() +
      std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  return stub.Analyze(&context, request, response);
}

const v1::ModelResult* FindResult(const v1::AnalyzeResponse& response,
                                  const std::string& model) {
  for (const v1::ModelResult& r : response.results()) {
    if (r.model() == model) return &r;
  }
  return nullptr;
}

const v1::OutputResult* FindOutput(const v1::ModelResult& result,
                                   const std::string& output) {
  for (const v1::OutputResult& o : result.outputs()) {
    if (o.name() == output) return &o;
  }
  return nullptr;
}

}  // namespace audiotag::testing
