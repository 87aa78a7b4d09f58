// The hardening suite's bad-input checks: every malformed or hostile upload
// and request of the corpus goes to the real audiotag-server, which must
// answer it with the right gRPC code, not crash, and still answer a good
// request correctly afterwards.

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/hardening/hostile_inputs.h"
#include "tests/model/test_models.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using Code = grpc::StatusCode;
using ::testing::HasSubstr;

void WriteEdgeModels(const std::string& root);

class BadInputE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    repository_ = new std::string(NewTempDir("audiotag-hardening-models"));
    WriteStatsModel(*repository_, "stats");
    WriteEdgeModels(*repository_);
    auto server = ServerProcess::Start(
        *repository_,
        {absl::StrCat("--max_upload_bytes=", kHostileMaxUploadBytes),
         absl::StrCat("--max_duration_seconds=", kHostileMaxDurationSeconds),
         "--metrics_port=0"});
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

  void ExpectAlive() {
    ASSERT_EQ(kill(server_->pid(), 0), 0) << "server died:\n" << server_->Log();
  }

  // A good request answers correctly: called after every bad one.
  void ExpectStillServing() {
    ExpectAlive();
    v1::AnalyzeOptions options;
    options.add_models("stats");
    v1::AnalyzeResponse response;
    grpc::Status status = CallAnalyze(*stub_, GoodWav(), options, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).num_segments(), 2);
  }

  grpc::Status Analyze(const std::string& audio,
                       const v1::AnalyzeOptions& options,
                       v1::AnalyzeResponse* response) {
    return CallAnalyze(*stub_, audio, options, response, 120);
  }

  // Sends `messages` on one AnalyzeStream call.
  grpc::Status Stream(const std::vector<v1::AnalyzeStreamRequest>& messages) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(60));
    v1::AnalyzeResponse response;
    auto writer = stub_->AnalyzeStream(&context, &response);
    for (const auto& m : messages) {
      if (!writer->Write(m)) break;  // the server already answered
    }
    writer->WritesDone();
    return writer->Finish();
  }

  static std::string* repository_;
  static ServerProcess* server_;
  std::unique_ptr<v1::AudioTagger::Stub> stub_;
};

std::string* BadInputE2E::repository_ = nullptr;
ServerProcess* BadInputE2E::server_ = nullptr;

// Models for the decoding kinds of docs/hardening.md:
//  "drop": the stats model's input and segment, dropping partial segments;
//  "logmel": a 16 kHz log-mel front end (power spectrum, mel, log), the
//    per-band mean as EMBEDDING "mel" and its sigmoid as TAGS "bands";
//  "nan": an EMBEDDING whose every value is NaN (log of -1).
void WriteEdgeModels(const std::string& root) {
  WriteModelFolder(
      root, "drop", R"pb(
        input {
          sample_rate: 16000
          waveform {}
        }
        segment { window_samples: 16000 last_segment: LAST_SEGMENT_DROP }
        output { name: "e" kind: EMBEDDING dim: 4 }
      )pb",
      0, 1, "def forward(self, x):\n    return x[:, :4]\n");
  WriteModelFolder(
      root, "logmel", R"pb(
        input {
          sample_rate: 16000
          log_mel { n_fft: 400 hop_length: 160 n_mels: 16 log_offset: 0.01 }
        }
        segment { window_samples: 16000 }
        output { name: "mel" kind: EMBEDDING source: "0" dim: 16 }
        output { name: "bands" kind: TAGS source: "1" dim: 16 }
      )pb",
      16, 1, R"(
def forward(self, x):
    m = x.mean(1)
    return (m, torch.sigmoid(m))
)");
  WriteModelFolder(root, "nan", R"pb(
                     input {
                       sample_rate: 16000
                       waveform {}
                     }
                     segment { window_samples: 16000 }
                     output { name: "e" kind: EMBEDDING dim: 4 }
                   )pb",
                   0, 1,
                   "def forward(self, x):\n"
                   "    return torch.log(x[:, :4] * 0.0 - 1.0)\n");
}

// The path of the first NaN or infinite number anywhere in `m`, or "".
std::string FirstNonFinite(const google::protobuf::Message& m) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Reflection& r = *m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r.ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const int n = f->is_repeated() ? r.FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string at = absl::StrCat(f->name(), "[", i, "]");
      double x = 0;
      if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
        x = f->is_repeated() ? r.GetRepeatedFloat(m, f, i) : r.GetFloat(m, f);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE) {
        x = f->is_repeated() ? r.GetRepeatedDouble(m, f, i) : r.GetDouble(m, f);
      } else if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
        const std::string inner =
            FirstNonFinite(f->is_repeated() ? r.GetRepeatedMessage(m, f, i)
                                            : r.GetMessage(m, f));
        if (!inner.empty()) return absl::StrCat(at, ".", inner);
        continue;
      } else {
        continue;
      }
      if (!std::isfinite(x)) return absl::StrCat(at, " = ", x);
    }
  }
  return "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The committed fuzz seeds of `target` (tests/fuzz/corpus/<target>).
std::vector<std::pair<std::string, std::string>> FuzzSeeds(
    const std::string& target) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::filesystem::path dir =
      std::filesystem::path(AUDIOTAG_SOURCE_DIR) / "tests/fuzz/corpus" / target;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    out.emplace_back(entry.path().filename().string(),
                     ReadFile(entry.path().string()));
  }
  std::sort(out.begin(), out.end());
  return out;
}

v1::AnalyzeStreamRequest OptionsMessage() {
  v1::AnalyzeStreamRequest m;
  m.mutable_options()->add_models("stats");
  return m;
}

v1::AnalyzeStreamRequest AudioMessage(std::string bytes) {
  v1::AnalyzeStreamRequest m;
  m.set_audio_chunk(std::move(bytes));
  return m;
}

// Every float the response carries.
std::vector<float> AllScores(const v1::AnalyzeResponse& response) {
  std::vector<float> out;
  for (const auto& r : response.results()) {
    for (const auto& o : r.outputs()) {
      for (const auto& t : o.tags()) out.push_back(t.score());
      for (const auto& f : o.frames()) {
        out.insert(out.end(), f.scores().begin(), f.scores().end());
      }
      out.insert(out.end(), o.pooled().values().begin(),
                 o.pooled().values().end());
    }
  }
  return out;
}

TEST_F(BadInputE2E, CorpusIsLargeEnough) {
  EXPECT_GE(HostileUploads().size(), 30u);
}

TEST_F(BadInputE2E, EveryHostileUploadGetsItsCodeAndServerKeepsServing) {
  v1::AnalyzeOptions options;
  options.add_models("stats");
  for (const HostileUpload& upload : HostileUploads()) {
    SCOPED_TRACE(upload.name);
    v1::AnalyzeResponse response;
    const auto start = std::chrono::steady_clock::now();
    grpc::Status status = Analyze(upload.bytes, options, &response);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    EXPECT_TRUE(upload.codes.count(status.error_code()))
        << "got " << status.error_code() << ": " << status.error_message();
    // Every hostile file is answered quickly, whatever it claims (the
    // slowest good answer here takes well under a second, even under ASan).
    EXPECT_LT(seconds, 5);
    std::cout << "[hostile] " << upload.name << " (" << upload.bytes.size()
              << " bytes): code " << status.error_code() << " in " << seconds
              << " s: "
              << (status.ok()
                      ? absl::StrCat("duration ",
                                     response.audio().duration_seconds(), " s")
                      : status.error_message())
              << "\n";
    ExpectStillServing();
  }
}

// NaN or Inf samples must never turn into NaN scores: the server rejects
// them or answers with finite numbers.
TEST_F(BadInputE2E, NonFinitePcmNeverYieldsNonFiniteScores) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> one_nan(32000, 0.25f);
  one_nan[20000] = nan;
  std::vector<float> one_inf(32000, 0.25f);
  one_inf[100] = -inf;
  const std::vector<std::pair<std::string, std::vector<float>>> cases = {
      {"all_nan", std::vector<float>(16000, nan)},
      {"one_nan_in_second_segment", one_nan},
      {"all_inf", std::vector<float>(16000, inf)},
      {"one_minus_inf", one_inf},
  };
  v1::AnalyzeOptions options;
  options.add_models("stats");
  for (const auto& [name, samples] : cases) {
    SCOPED_TRACE(name);
    v1::AnalyzeResponse response;
    grpc::Status status = Analyze(FloatWav(samples), options, &response);
    if (status.ok()) {
      for (float x : AllScores(response)) {
        EXPECT_TRUE(std::isfinite(x)) << "non-finite score " << x;
      }
    } else {
      EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
          << status.error_message();
    }
    ExpectStillServing();
  }
}

TEST_F(BadInputE2E, HostileOptionsGetTheRightCode) {
  const std::string wav = GoodWav();
  v1::AnalyzeResponse response;
  {
    v1::AnalyzeOptions options;  // 10,000 unknown names: over the cap
    for (int i = 0; i < 10000; ++i) options.add_models(absl::StrCat("m", i));
    grpc::Status status = Analyze(wav, options, &response);
    EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT);
    EXPECT_LT(status.error_message().size(), 4096u)
        << "the error names every unknown model";
  }
  {
    v1::AnalyzeOptions options;  // 10,000 copies of one name: over the cap
    for (int i = 0; i < 10000; ++i) options.add_models("stats");
    grpc::Status status = Analyze(wav, options, &response);
    EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT);
    EXPECT_LT(status.error_message().size(), 4096u);
  }
  {
    v1::AnalyzeOptions options;  // one unknown name among known ones
    options.add_models("stats");
    options.add_models("no_such_model");
    EXPECT_EQ(Analyze(wav, options, &response).error_code(), Code::NOT_FOUND);
  }
  {
    v1::AnalyzeOptions options;  // copies of one name within the cap run once
    for (int i = 0; i < 10; ++i) options.add_models("stats");
    ASSERT_TRUE(Analyze(wav, options, &response).ok());
    EXPECT_EQ(response.results_size(), 1);
  }
  {
    v1::AnalyzeOptions options;
    options.add_models("stats");
    options.set_top_k(std::numeric_limits<int32_t>::max());
    ASSERT_TRUE(Analyze(wav, options, &response).ok());
    for (const auto& o : response.results(0).outputs()) {
      EXPECT_LE(o.tags_size(), 3);
    }
  }
  const auto expect_code = [&](Code code, auto edit) {
    v1::AnalyzeOptions options;
    options.add_models("stats");
    edit(options);
    grpc::Status status = Analyze(wav, options, &response);
    EXPECT_EQ(status.error_code(), code)
        << options.ShortDebugString() << ": " << status.error_message();
  };
  expect_code(Code::INVALID_ARGUMENT, [](auto& o) {
    o.set_top_k(std::numeric_limits<int32_t>::min());
  });
  expect_code(Code::INVALID_ARGUMENT, [](auto& o) { o.set_top_k(-2); });
  expect_code(Code::INVALID_ARGUMENT, [](auto& o) { o.set_threshold(-0.5f); });
  expect_code(Code::INVALID_ARGUMENT, [](auto& o) {
    o.set_threshold(std::numeric_limits<float>::quiet_NaN());
  });
  expect_code(Code::OK, [](auto& o) {
    o.set_threshold(std::numeric_limits<float>::infinity());
  });
  expect_code(Code::NOT_FOUND, [](auto& o) { o.set_models(0, "../stats"); });
  expect_code(Code::NOT_FOUND, [](auto& o) { o.set_models(0, ""); });
  // An absurdly long name is refused as such (and the message, which quotes
  // it, must not overflow the client's metadata limit and turn into
  // RESOURCE_EXHAUSTED).
  expect_code(Code::INVALID_ARGUMENT,
              [](auto& o) { o.set_models(0, std::string(100000, 'a')); });
  expect_code(Code::OK,
              [](auto& o) { o.set_request_id(std::string(1 << 20, 'r')); });
  ExpectStillServing();
}

// Out-of-range enum values (proto3 keeps them): the server must not treat an
// unknown pooling as one it knows silently.
TEST_F(BadInputE2E, UnknownEnumValuesAreRejected) {
  v1::AnalyzeOptions options;
  options.add_models("stats");
  options.set_pooling(static_cast<v1::Pooling>(99));
  v1::AnalyzeResponse response;
  grpc::Status status = Analyze(GoodWav(), options, &response);
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
      << "pooling 99 answered " << status.error_code();
  options.set_pooling(v1::POOLING_MEAN);
  options.set_priority(static_cast<v1::Priority>(99));
  status = Analyze(GoodWav(), options, &response);
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
      << "priority 99 answered " << status.error_code();
  ExpectStillServing();
}

TEST_F(BadInputE2E, StreamProtocolViolationsAreInvalidArgument) {
  const std::string wav = GoodWav();
  grpc::Status status = Stream({OptionsMessage(), OptionsMessage()});
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("options"));

  status = Stream({AudioMessage(wav.substr(0, 100)), OptionsMessage(),
                   AudioMessage(wav.substr(100))});
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
      << status.error_message();

  status = Stream({});
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
      << status.error_message();

  status = Stream({OptionsMessage()});
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
      << status.error_message();

  status = Stream({v1::AnalyzeStreamRequest(), v1::AnalyzeStreamRequest()});
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT)
      << status.error_message();
  ExpectStillServing();
}

TEST_F(BadInputE2E, StreamOverTheUploadLimitIsResourceExhausted) {
  std::vector<v1::AnalyzeStreamRequest> messages = {OptionsMessage()};
  for (int i = 0; i < 5; ++i) {
    messages.push_back(AudioMessage(std::string(1 << 20, 'x')));
  }
  EXPECT_EQ(Stream(messages).error_code(), Code::RESOURCE_EXHAUSTED);
  ExpectStillServing();
}

TEST_F(BadInputE2E, StreamOfOneByteChunksStillWorks) {
  const std::string wav = GoodWav().substr(0, 4000);
  std::vector<v1::AnalyzeStreamRequest> messages = {OptionsMessage()};
  for (char c : wav) messages.push_back(AudioMessage(std::string(1, c)));
  EXPECT_TRUE(Stream(messages).ok());
  ExpectStillServing();
}

// Kind 1 of docs/hardening.md: one sample at 44.1 kHz resamples to one
// sample at 16 kHz, which a padding model turns into one padded segment and
// a dropping model refuses for the right reason.
TEST_F(BadInputE2E, OneSampleAt44kHzGivesOnePaddedSegment) {
  for (int64_t n : {1, 2, 49}) {
    SCOPED_TRACE(absl::StrCat(n, " samples"));
    const std::string wav =
        MakeWav(44100, 1, 16, false, n,
                std::string(static_cast<size_t>(2 * n), '\x40'));
    v1::AnalyzeOptions options;
    options.add_models("stats");
    options.add_models("logmel");
    v1::AnalyzeResponse response;
    grpc::Status status = Analyze(wav, options, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_NEAR(response.audio().duration_seconds(), n / 44100.0, 1e-9);
    for (const auto& result : response.results()) {
      EXPECT_EQ(result.num_segments(), 1) << result.model();
    }
    EXPECT_EQ(FirstNonFinite(response), "");

    options.clear_models();
    options.add_models("drop");
    status = Analyze(wav, options, &response);
    EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("which drops partial segments"));
    EXPECT_THAT(status.error_message(),
                HasSubstr(absl::StrCat(
                    "(", std::max<int64_t>(1, n * 16000 / 44100), " samples")));
  }
  ExpectStillServing();
}

// Kind 3: a float WAV whose samples are finite but near 1e18 overflowed the
// power spectrum into 1,656 NaN scores in an OK reply.
TEST_F(BadInputE2E, FloatWavNear1e18IsRefusedNamingThePeak) {
  std::vector<float> samples(32000, 0.1f);
  for (size_t i = 16000; i < samples.size(); ++i) samples[i] = 1e18f;
  v1::AnalyzeOptions options;
  options.add_models("stats");
  options.add_models("logmel");
  v1::AnalyzeResponse response;
  grpc::Status status = Analyze(FloatWav(samples), options, &response);
  EXPECT_EQ(status.error_code(), Code::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("magnitude 1e+18 at 1.000 s"));
  ExpectStillServing();
}

// The last guard after every forward: a model that outputs NaN fails the
// request with an error naming it, never an OK reply with NaN in it.
TEST_F(BadInputE2E, NonFiniteModelOutputIsAnErrorNamingTheModel) {
  v1::AnalyzeOptions options;
  options.add_models("nan");
  v1::AnalyzeResponse response;
  grpc::Status status = Analyze(GoodWav(), options, &response);
  EXPECT_EQ(status.error_code(), Code::INTERNAL);
  EXPECT_THAT(status.error_message(), HasSubstr("model 'nan'"));
  EXPECT_THAT(status.error_message(), HasSubstr("non-finite"));
  ExpectStillServing();
}

// No OK reply carries NaN or Inf, over the whole bad-input corpus and every
// committed fuzz seed, through both a waveform and a log-mel front end.
TEST_F(BadInputE2E, NoOkReplyCarriesANonFiniteNumber) {
  std::vector<std::pair<std::string, std::string>> uploads;
  for (const HostileUpload& u : HostileUploads()) {
    uploads.emplace_back(u.name, u.bytes);
  }
  for (auto& seed : FuzzSeeds("decoder_fuzzer")) uploads.push_back(seed);
  // The request fuzzer reads a request's audio bytes as float samples: send
  // them both as they are and as a float WAV of those samples.
  std::vector<v1::AnalyzeOptions> request_options;
  for (const auto& [name, bytes] : FuzzSeeds("request_fuzzer")) {
    v1::AnalyzeRequest request;
    if (!request.ParseFromString(bytes)) continue;
    request_options.push_back(request.options());
    uploads.emplace_back(name + "/audio", request.audio());
    std::vector<float> floats(request.audio().size() / sizeof(float));
    if (!floats.empty()) {  // memcpy from an empty vector's null data() is UB
      std::memcpy(floats.data(), request.audio().data(),
                  floats.size() * sizeof(float));
    }
    uploads.emplace_back(name + "/as_floats", FloatWav(floats));
  }
  ASSERT_GE(request_options.size(), 3u);
  // Each upload with the default options and with each seed's options.
  v1::AnalyzeOptions plain;
  request_options.insert(request_options.begin(), plain);
  int ok = 0;
  for (const auto& [name, bytes] : uploads) {
    for (size_t i = 0; i < request_options.size(); ++i) {
      SCOPED_TRACE(absl::StrCat(name, " with options #", i));
      v1::AnalyzeOptions options = request_options[i];
      options.clear_models();
      options.add_models("stats");
      options.add_models("logmel");
      v1::AnalyzeResponse response;
      grpc::Status status = Analyze(bytes, options, &response);
      if (!status.ok()) continue;
      ++ok;
      EXPECT_EQ(FirstNonFinite(response), "");
    }
  }
  std::cout << "[non-finite] " << uploads.size() << " uploads x "
            << request_options.size() << " options: " << ok << " OK replies\n";
  EXPECT_GE(ok, 40) << "too few OK replies to check anything";
  ExpectStillServing();
}

}  // namespace
}  // namespace audiotag::testing
