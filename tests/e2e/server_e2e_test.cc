// End-to-end: the real audiotag-server on a free port, a model repository of
// real TorchScript files, real audio encoded by the ffmpeg CLI, called through
// gRPC and through the real `audiotag` CLI.

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "grpc_health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using ::testing::HasSubstr;

class ServerE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repository_ = new std::string(MakeE2ERepository());
    auto server = ServerProcess::Start(
        *repository_,
        {"--max_upload_bytes=3000000", "--max_duration_seconds=60"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    delete repository_;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    stub_ = MakeStub(server_->address());
  }

  // A good request answers correctly: called after every bad one.
  void ExpectStillServing() {
    AudioSpec spec;
    spec.seconds = 2;
    auto audio = MakeAudioFile(spec);
    ASSERT_TRUE(audio.ok()) << audio.status();
    v1::AnalyzeResponse response;
    v1::AnalyzeOptions options;
    options.add_models("stats");
    grpc::Status status = CallAnalyze(*stub_, *audio, options, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.results(0).num_segments(), 2);
  }

  grpc::Status AnalyzeBytes(const std::string& bytes,
                            v1::AnalyzeResponse* response,
                            const std::string& model = "stats") {
    v1::AnalyzeOptions options;
    if (!model.empty()) options.add_models(model);
    return CallAnalyze(*stub_, bytes, options, response);
  }

  std::vector<std::string> Cli(std::vector<std::string> args) {
    args.insert(args.begin(),
                {BinaryPath("audiotag"), "--server=" + server_->address()});
    return args;
  }

  static std::string* repository_;
  static ServerProcess* server_;
  std::unique_ptr<v1::AudioTagger::Stub> stub_;
};

std::string* ServerE2E::repository_ = nullptr;
ServerProcess* ServerE2E::server_ = nullptr;

TEST_F(ServerE2E, AnalyzesMp3ThroughTheWholeStack) {
  AudioSpec spec;
  spec.format = "mp3";
  spec.sample_rate = 44100;
  spec.channels = 2;
  spec.seconds = 3.0;
  spec.amplitude = 0.5;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok()) << audio.status();

  v1::AnalyzeOptions options;
  options.mutable_outputs()->set_segment_embeddings(true);
  options.mutable_outputs()->set_tags(true);
  options.mutable_outputs()->set_activations(true);
  v1::AnalyzeResponse response;
  grpc::Status status = CallAnalyze(*stub_, *audio, options, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  EXPECT_EQ(response.audio().codec(), "mp3float");
  EXPECT_EQ(response.audio().sample_rate(), 44100);
  EXPECT_EQ(response.audio().channels(), 2);
  EXPECT_NEAR(response.audio().duration_seconds(), 3.0, 0.06);
  ASSERT_EQ(response.results_size(), 1);  // only the ready model
  const v1::ModelResult& r = response.results(0);
  EXPECT_EQ(r.model(), "stats");
  EXPECT_EQ(r.num_segments(), 3);
  EXPECT_DOUBLE_EQ(r.segment_seconds(), 1.0);

  // A 0.5-amplitude sine: rms 0.354, peaks +-0.5, mean 0, in every segment.
  const v1::OutputResult* stats = FindOutput(r, "stats");
  ASSERT_NE(stats, nullptr);
  ASSERT_EQ(stats->pooled().values_size(), 4);
  EXPECT_NEAR(stats->pooled().values(0), 0.0, 0.01);
  EXPECT_NEAR(stats->pooled().values(1), 0.5 / std::sqrt(2.0), 0.03);
  ASSERT_EQ(stats->segments_size(), 3);
  for (int s = 0; s < 2; ++s) {
    EXPECT_DOUBLE_EQ(stats->segments(s).start_seconds(), s);
    EXPECT_DOUBLE_EQ(stats->segments(s).end_seconds(), s + 1);
    EXPECT_NEAR(stats->segments(s).values(2), 0.5, 0.05);
    EXPECT_NEAR(stats->segments(s).values(3), -0.5, 0.05);
  }

  const v1::OutputResult* levels = FindOutput(r, "levels");
  ASSERT_NE(levels, nullptr);
  ASSERT_EQ(levels->tags_size(), 3);
  EXPECT_EQ(levels->tags(0).label(), "loud");
  EXPECT_EQ(levels->tags(1).label(), "quiet");
  EXPECT_EQ(levels->tags(2).label(), "floor");
  EXPECT_NEAR(levels->tags(2).score(), 0.1, 1e-6);

  const v1::OutputResult* timeline = FindOutput(r, "timeline");
  ASSERT_NE(timeline, nullptr);
  EXPECT_THAT(timeline->labels(),
              ::testing::ElementsAre("quiet", "loud", "floor"));
  ASSERT_EQ(timeline->frames_size(), 3);
  EXPECT_DOUBLE_EQ(timeline->frames(2).start_seconds(), 2.0);
  EXPECT_EQ(timeline->frames(1).scores_size(), 3);
}

TEST_F(ServerE2E, ResamplesEveryFormatToTheModelRate) {
  for (const std::string format : {"wav", "flac", "ogg", "opus", "m4a"}) {
    AudioSpec spec;
    spec.format = format;
    spec.sample_rate = format == "opus" ? 48000 : 22050;
    spec.channels = 1;
    spec.seconds = 2.0;
    auto audio = MakeAudioFile(spec);
    ASSERT_TRUE(audio.ok()) << format << ": " << audio.status();
    v1::AnalyzeResponse response;
    grpc::Status status = AnalyzeBytes(*audio, &response);
    ASSERT_TRUE(status.ok()) << format << ": " << status.error_message();
    const v1::ModelResult* r = FindResult(response, "stats");
    ASSERT_NE(r, nullptr);
    EXPECT_GE(r->num_segments(), 2) << format;
    EXPECT_NEAR(FindOutput(*r, "stats")->pooled().values(1),
                0.5 / std::sqrt(2.0), 0.05)
        << format;
  }
}

TEST_F(ServerE2E, ListsModelsWithStateAndReason) {
  v1::ListModelsResponse models;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListModels(&context, {}, &models).ok());
  ASSERT_EQ(models.models_size(), 3);
  EXPECT_EQ(models.models(0).name(), "broken");
  EXPECT_EQ(models.models(0).state(), v1::FAILED);
  EXPECT_THAT(models.models(0).state_reason(), HasSubstr("model.pt"));
  EXPECT_EQ(models.models(1).name(), "stats");
  EXPECT_EQ(models.models(1).state(), v1::READY);
  EXPECT_EQ(models.models(1).sample_rate(), 16000);
  EXPECT_DOUBLE_EQ(models.models(1).segment_seconds(), 1.0);
  EXPECT_EQ(models.models(2).name(), "typo");
  EXPECT_EQ(models.models(2).state(), v1::FAILED);
  // The config error names the file and the line.
  EXPECT_THAT(models.models(2).state_reason(), HasSubstr("config.pbtxt:3"));
  EXPECT_THAT(models.models(2).state_reason(), HasSubstr("colour"));
}

TEST_F(ServerE2E, GetModelDescribesOneModel) {
  grpc::ClientContext context;
  v1::GetModelRequest request;
  request.set_name("stats");
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModel(&context, request, &info).ok());
  ASSERT_EQ(info.outputs_size(), 3);
  EXPECT_THAT(info.outputs(1).labels(),
              ::testing::ElementsAre("quiet", "loud", "floor"));

  grpc::ClientContext context2;
  request.set_name("nope");
  grpc::Status status = stub_->GetModel(&context2, request, &info);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServerE2E, HealthPerModel) {
  auto health = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials()));
  const auto check = [&](const std::string& service) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health->Check(&context, request, &response);
    return status.ok() ? response.status()
                       : grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN;
  };
  EXPECT_EQ(check(""), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(check("stats"), grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(check("broken"),
            grpc::health::v1::HealthCheckResponse::NOT_SERVING);
}

// --- Bad input: each gets the right code and a message; the server goes on.

TEST_F(ServerE2E, EmptyUploadIsInvalidArgument) {
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes("", &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("empty"));
  ExpectStillServing();
}

TEST_F(ServerE2E, RandomBytesAreInvalidArgument) {
  std::string bytes(50000, '\0');
  uint32_t x = 12345;
  for (char& c : bytes)
    c = static_cast<char>((x = x * 1664525 + 1013904223) >> 24);
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(bytes, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();
  ExpectStillServing();
}

TEST_F(ServerE2E, TextFileIsInvalidArgument) {
  std::string text;
  for (int i = 0; i < 200; ++i)
    absl::StrAppend(&text, "line ", i, " of a text file\n");
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(text, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ExpectStillServing();
}

TEST_F(ServerE2E, TruncatedMp3DecodesWhatIsThere) {
  AudioSpec spec;
  spec.format = "mp3";
  spec.seconds = 4.0;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeResponse response;
  grpc::Status status =
      AnalyzeBytes(audio->substr(0, audio->size() / 2), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_GT(response.audio().duration_seconds(), 1.0);
  EXPECT_LT(response.audio().duration_seconds(), 3.0);
  ExpectStillServing();
}

TEST_F(ServerE2E, HeaderClaimingHoursHoldingSeconds) {
  AudioSpec spec;
  spec.seconds = 2.0;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  std::string wav = *audio;
  // RIFF size and data size set to ~4 GB: hours at 16 kHz mono 16-bit.
  const size_t data = wav.find("data");
  ASSERT_NE(data, std::string::npos);
  for (int i = 0; i < 4; ++i) {
    wav[4 + i] = '\xF0';
    wav[data + 4 + i] = '\xF0';
  }
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(wav, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NEAR(response.audio().duration_seconds(), 2.0, 0.01);
  ExpectStillServing();
}

TEST_F(ServerE2E, ZeroChannelStreamIsInvalidArgument) {
  AudioSpec spec;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  std::string wav = *audio;
  wav[22] = 0;  // NumChannels in the fmt chunk
  wav[23] = 0;
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(wav, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  wav = *audio;
  for (int i = 24; i < 28; ++i) wav[i] = 0;  // SampleRate
  status = AnalyzeBytes(wav, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ExpectStillServing();
}

TEST_F(ServerE2E, UploadOverTheByteLimitIsResourceExhausted) {
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(std::string(3100000, 'x'), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_upload_bytes"));
  ExpectStillServing();
}

TEST_F(ServerE2E, AudioOverTheDurationLimitIsResourceExhausted) {
  AudioSpec spec;
  spec.format = "ogg";
  spec.sample_rate = 8000;
  spec.seconds = 70;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(*audio, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << status.error_message();
  ExpectStillServing();
}

TEST_F(ServerE2E, UnknownModelIsNotFound) {
  AudioSpec spec;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(*audio, &response, "no_such_model");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("no_such_model"));
  ExpectStillServing();
}

TEST_F(ServerE2E, CorruptModelIsFailedPrecondition) {
  AudioSpec spec;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeResponse response;
  grpc::Status status = AnalyzeBytes(*audio, &response, "broken");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("broken"));
  ExpectStillServing();
}

TEST_F(ServerE2E, BadOptionsAreInvalidArgument) {
  AudioSpec spec;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  v1::AnalyzeOptions options;
  options.set_top_k(-5);
  v1::AnalyzeResponse response;
  EXPECT_EQ(CallAnalyze(*stub_, *audio, options, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  options.set_top_k(1);
  options.set_threshold(-1);
  EXPECT_EQ(CallAnalyze(*stub_, *audio, options, &response).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  ExpectStillServing();
}

TEST_F(ServerE2E, ConcurrentRequestsMatchSequentialOnes) {
  std::vector<std::string> files;
  for (int i = 0; i < 6; ++i) {
    AudioSpec spec;
    spec.seconds = 1.0 + i;
    spec.frequencies = {200.0 + 100 * i};
    spec.amplitude = 0.1 + 0.1 * i;
    auto audio = MakeAudioFile(spec);
    ASSERT_TRUE(audio.ok());
    files.push_back(*audio);
  }
  v1::AnalyzeOptions options;
  options.add_models("stats");
  options.mutable_outputs()->set_segment_embeddings(true);
  std::vector<v1::AnalyzeResponse> sequential(files.size());
  for (size_t i = 0; i < files.size(); ++i) {
    ASSERT_TRUE(CallAnalyze(*stub_, files[i], options, &sequential[i]).ok());
  }
  constexpr int kRounds = 4;
  std::vector<v1::AnalyzeResponse> concurrent(files.size() * kRounds);
  std::vector<grpc::Status> statuses(concurrent.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < concurrent.size(); ++i) {
    threads.emplace_back([&, i] {
      statuses[i] =
          CallAnalyze(*stub_, files[i % files.size()], options, &concurrent[i]);
    });
  }
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < concurrent.size(); ++i) {
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    const auto& a = *FindOutput(concurrent[i].results(0), "stats");
    const auto& b =
        *FindOutput(sequential[i % files.size()].results(0), "stats");
    ASSERT_EQ(a.segments_size(), b.segments_size());
    for (int s = 0; s < a.segments_size(); ++s) {
      for (int k = 0; k < 4; ++k) {
        EXPECT_NEAR(a.segments(s).values(k), b.segments(s).values(k), 1e-6);
      }
    }
  }
}

// --- The CLI.

TEST_F(ServerE2E, CliAnalyzePrintsJson) {
  AudioSpec spec;
  spec.format = "mp3";
  spec.seconds = 2.0;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  auto path = WriteTempFile("song.mp3", *audio);
  ASSERT_TRUE(path.ok());
  auto run = RunCommand(
      Cli({"analyze", *path,
           "--outputs=tags,activations,embeddings,segment_embeddings"}));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->exit_code, 0) << run->err;
  // The reply's JSON, with the input's "path" added.
  EXPECT_THAT(run->out, HasSubstr("\"path\": \"" + *path + "\""));
  google::protobuf::util::JsonParseOptions lenient;
  lenient.ignore_unknown_fields = true;
  v1::AnalyzeResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(run->out, &parsed, lenient)
          .ok())
      << run->out;
  EXPECT_EQ(parsed.audio().codec(), "mp3float");
  const v1::ModelResult* r = FindResult(parsed, "stats");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->num_segments(), 2);
  EXPECT_EQ(FindOutput(*r, "stats")->segments_size(), 2);
  EXPECT_GT(FindOutput(*r, "levels")->tags_size(), 0);
  EXPECT_EQ(FindOutput(*r, "timeline")->frames_size(), 2);
}

TEST_F(ServerE2E, CliStreamsLargeFilesWithTheSameResult) {
  AudioSpec spec;
  spec.format = "wav";
  spec.seconds = 5.0;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  auto path = WriteTempFile("long.wav", *audio);
  ASSERT_TRUE(path.ok());
  auto unary = RunCommand(Cli({"analyze", *path}));
  auto streamed =
      RunCommand(Cli({"analyze", "--max_message_bytes=20000", *path}));
  ASSERT_TRUE(unary.ok() && streamed.ok());
  ASSERT_EQ(streamed->exit_code, 0) << streamed->err;
  google::protobuf::util::JsonParseOptions lenient;  // "path" is not a field
  lenient.ignore_unknown_fields = true;
  v1::AnalyzeResponse a, b;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(unary->out, &a, lenient)
          .ok());
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(streamed->out, &b, lenient)
          .ok());
  // Timing and the server-generated request id differ between two calls.
  a.clear_timing();
  b.clear_timing();
  a.clear_request_id();
  b.clear_request_id();
  EXPECT_EQ(a.SerializeAsString(), b.SerializeAsString());
}

TEST_F(ServerE2E, CliTableAndModels) {
  AudioSpec spec;
  auto audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok());
  auto path = WriteTempFile("tone.wav", *audio);
  ASSERT_TRUE(path.ok());
  auto table = RunCommand(Cli({"analyze", "--format=table", *path}));
  ASSERT_TRUE(table.ok());
  EXPECT_EQ(table->exit_code, 0) << table->err;
  EXPECT_THAT(table->out, HasSubstr("model stats"));
  EXPECT_THAT(table->out, HasSubstr("loud"));

  auto models = RunCommand(Cli({"models", "--format=table"}));
  ASSERT_TRUE(models.ok());
  EXPECT_EQ(models->exit_code, 0) << models->err;
  EXPECT_THAT(models->out, HasSubstr("stats"));
  EXPECT_THAT(models->out, HasSubstr("READY"));
  EXPECT_THAT(models->out, HasSubstr("FAILED"));
  EXPECT_THAT(models->out, HasSubstr("quiet, loud, floor"));

  auto json = RunCommand(Cli({"models"}));
  ASSERT_TRUE(json.ok());
  v1::ListModelsResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(json->out, &parsed).ok());
  EXPECT_EQ(parsed.models_size(), 3);
}

TEST_F(ServerE2E, CliReportsErrorsWithNonZeroExit) {
  auto missing = RunCommand(Cli({"analyze", "/nonexistent/file.mp3"}));
  ASSERT_TRUE(missing.ok());
  EXPECT_NE(missing->exit_code, 0);
  EXPECT_THAT(missing->err, HasSubstr("/nonexistent/file.mp3"));

  auto path = WriteTempFile("notes.txt", "just some text, not audio at all\n");
  ASSERT_TRUE(path.ok());
  auto bad = RunCommand(Cli({"analyze", *path}));
  ASSERT_TRUE(bad.ok());
  EXPECT_NE(bad->exit_code, 0);
  EXPECT_THAT(bad->err, HasSubstr("INVALID_ARGUMENT"));
}

}  // namespace
}  // namespace audiotag::testing
