// audiotag fewshot against the real server on the default student backbone
// (models/openmic_student): three tags learnt from generated examples
// (harmonic tones, low-passed noise, click rhythms), published into the
// served repository and hot-loaded; queries rendered differently (other
// pitches, seeds, tempi, spectra, codecs) are tagged correctly, and the
// backbone runs once per segment although its own outputs are requested too.
// Every bad input is a clear error that leaves the repository untouched. A
// head on two backbones (their embeddings concatenated) works the same way.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/e2e/e2e_metrics.h"
#include "tests/model/test_models.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr int kRate = 16000;

// ---- Generated audio -------------------------------------------------------

std::vector<float> Tone(double f0, double seconds, int harmonics,
                        double rolloff) {
  std::vector<float> x(static_cast<size_t>(seconds * kRate));
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = static_cast<double>(i) / kRate;
    double v = 0;
    for (int h = 1; h <= harmonics && h * f0 < kRate / 2; ++h)
      v += std::sin(2 * M_PI * h * f0 * t) / std::pow(h, rolloff);
    x[i] = 0.25 * v;
  }
  return x;
}

// White noise through a one-pole low-pass (coefficient `smooth` in [0, 1)).
std::vector<float> Noise(unsigned seed, double seconds, double smooth) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> gauss(0, 1);
  std::vector<float> x(static_cast<size_t>(seconds * kRate));
  double y = 0;
  for (float& v : x) {
    y = smooth * y + (1 - smooth) * gauss(rng);
    v = static_cast<float>(0.3 * y / std::sqrt((1 - smooth) / (1 + smooth)));
  }
  return x;
}

// Short decaying noise bursts, `rate` per second.
std::vector<float> Clicks(unsigned seed, double seconds, double rate) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> uniform(-1, 1);
  std::vector<float> x(static_cast<size_t>(seconds * kRate), 0.0f);
  const size_t period = static_cast<size_t>(kRate / rate);
  for (size_t start = 0; start < x.size(); start += period) {
    for (size_t i = 0; i < 240 && start + i < x.size(); ++i)
      x[start + i] = 0.8 * uniform(rng) * std::exp(-i / 40.0);
  }
  return x;
}

void WriteWav(const std::string& path, const std::vector<float>& samples) {
  std::ofstream out(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.write(reinterpret_cast<char*>(&v), 2); };
  const uint32_t bytes = samples.size() * 2;
  out.write("RIFF", 4);
  u32(36 + bytes);
  out.write("WAVEfmt ", 8);
  u32(16);
  u16(1);  // PCM
  u16(1);  // mono
  u32(kRate);
  u32(kRate * 2);
  u16(2);
  u16(16);
  out.write("data", 4);
  u32(bytes);
  for (float s : samples) {
    const int16_t v = static_cast<int16_t>(
        std::lround(std::clamp(s, -1.0f, 1.0f) * 32767.0f));
    out.write(reinterpret_cast<const char*>(&v), 2);
  }
}

// Writes `samples` as `<dir>/<name>.wav`, or encoded with the ffmpeg CLI
// when `format` is not "wav"; returns the path.
std::string WriteAudio(const std::string& dir, const std::string& name,
                       const std::vector<float>& samples,
                       const std::string& format = "wav") {
  const std::string wav = dir + "/" + name + ".wav";
  WriteWav(wav, samples);
  if (format == "wav") return wav;
  const std::string out = dir + "/" + name + "." + format;
  auto r = RunCommand({"/usr/bin/ffmpeg", "-nostdin", "-loglevel", "error",
                       "-y", "-i", wav, out});
  EXPECT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->err : "");
  fs::remove(wav);
  return out;
}

// `head`'s "tags" hold all three tags, `tag` first and alone above 0.5.
void ExpectTopTag(const v1::ModelResult& head, const std::string& tag,
                  const std::string& query) {
  const v1::OutputResult* tags = FindOutput(head, "tags");
  ASSERT_NE(tags, nullptr);
  ASSERT_EQ(tags->tags_size(), 3);
  EXPECT_EQ(tags->tags(0).label(), tag) << query;
  EXPECT_GT(tags->tags(0).score(), 0.5) << query;
  EXPECT_LT(tags->tags(1).score(), 0.5) << query;
}

// ---- The fixture -----------------------------------------------------------

class FewShotE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    repo_ = NewTempDir("fewshot-repo");
    fs::copy(std::string(AUDIOTAG_SOURCE_DIR) + "/models/openmic_student",
             repo_ + "/openmic_student", fs::copy_options::recursive);
    examples_ = NewTempDir("fewshot-examples");
    // Support set: 2 s WAV files.
    for (double f : {220.0, 330.0, 494.0})
      tone_.push_back(
          WriteAudio(examples_, absl::StrCat("tone", f), Tone(f, 2.0, 6, 1.0)));
    for (unsigned seed : {1u, 2u, 3u})
      noise_.push_back(WriteAudio(examples_, absl::StrCat("noise", seed),
                                  Noise(seed, 2.0, 0.3 + 0.2 * seed)));
    for (double rate : {3.0, 4.0, 6.0})
      clicks_.push_back(
          WriteAudio(examples_, absl::StrCat("clicks", rate),
                     Clicks(static_cast<unsigned>(rate), 2.0, rate)));
    metrics_port_ = PickFreePort();
    auto server = ServerProcess::Start(
        repo_, {"--poll_interval_seconds=0.2",
                absl::StrCat("--metrics_port=", metrics_port_)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    stub_ = MakeStub(server_->address());
  }

  std::vector<std::string> TagFlags() const {
    return {"--tag", "tone=" + absl::StrJoin(tone_, ","),
            "--tag=noise=" + absl::StrJoin(noise_, ","), "--tag",
            "clicks=" + absl::StrJoin(clicks_, ",")};
  }

  CommandResult Fewshot(const std::vector<std::string>& args) {
    std::vector<std::string> argv = {BinaryPath("audiotag"), "fewshot"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--server=" + server_->address());
    auto r = RunCommand(argv, absl::Seconds(300));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult();
  }

  std::vector<std::string> RepoEntries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(repo_))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

  // Waits until the server reports `model` READY.
  void AwaitReady(const std::string& model) {
    v1::ModelInfo info;
    for (int attempt = 0; attempt < 300; ++attempt) {
      grpc::ClientContext context;
      v1::GetModelRequest request;
      request.set_name(model);
      if (stub_->GetModel(&context, request, &info).ok() &&
          info.state() == v1::READY) {
        return;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    FAIL() << model << " did not become READY: " << info.state_reason();
  }

  double BatchSizeSum(const std::string& model, double at_least) {
    const std::string series =
        absl::StrCat("audiotag_batch_size_sum{model=\"", model, "\"}");
    double value = -1;
    for (int attempt = 0; attempt < 100; ++attempt) {
      value =
          MetricValue(ScrapeMetricsText(metrics_port_), series).value_or(-1);
      if (value >= at_least) break;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return value;
  }

  std::string repo_, examples_;
  std::vector<std::string> tone_, noise_, clicks_;
  int metrics_port_ = 0;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<v1::AudioTagger::Stub> stub_;
};

TEST_F(FewShotE2E, CreatedModelIsHotLoadedAndTagsNewRenderings) {
  std::vector<std::string> args = {
      "create",    "--backbone", "openmic_student", "--embedding",
      "embedding", "--out",      repo_ + "/fewtags"};
  for (const std::string& f : TagFlags()) args.push_back(f);
  CommandResult created = Fewshot(args);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("prototype"));
  EXPECT_THAT(created.out, HasSubstr("published"));
  AwaitReady("fewtags");

  struct Query {
    std::string path, tag;
  };
  const std::vector<Query> queries = {
      {WriteAudio(examples_, "q_tone", Tone(277.0, 3.0, 9, 1.6), "ogg"),
       "tone"},
      {WriteAudio(examples_, "q_tone2", Tone(392.0, 3.0, 4, 0.7), "flac"),
       "tone"},
      {WriteAudio(examples_, "q_noise", Noise(77, 3.0, 0.45), "ogg"), "noise"},
      {WriteAudio(examples_, "q_clicks", Clicks(99, 3.0, 5.0), "flac"),
       "clicks"},
  };
  for (const Query& q : queries) {
    absl::StatusOr<std::string> audio = [&]() -> absl::StatusOr<std::string> {
      std::ifstream in(q.path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), {});
    }();
    v1::AnalyzeOptions options;
    options.add_models("fewtags");
    options.add_models("openmic_student");
    options.set_top_k(-1);
    const double backbone_before = BatchSizeSum("openmic_student", 0);
    const double head_before = BatchSizeSum("fewtags", 0);
    v1::AnalyzeResponse response;
    grpc::Status status = CallAnalyze(*stub_, *audio, options, &response);
    ASSERT_TRUE(status.ok()) << q.path << ": " << status.error_message();
    const v1::ModelResult* head = FindResult(response, "fewtags");
    const v1::ModelResult* backbone = FindResult(response, "openmic_student");
    ASSERT_NE(head, nullptr);
    ASSERT_NE(backbone, nullptr);
    ExpectTopTag(*head, q.tag, q.path);
    const v1::OutputResult* frames = FindOutput(*head, "activations");
    ASSERT_NE(frames, nullptr);
    EXPECT_EQ(frames->frames_size(), backbone->num_segments());

    // One backbone forward per segment, shared by its own outputs and the
    // head.
    const int segments = backbone->num_segments();
    EXPECT_EQ(head->num_segments(), segments);
    EXPECT_EQ(BatchSizeSum("openmic_student", backbone_before + segments),
              backbone_before + segments);
    EXPECT_EQ(BatchSizeSum("fewtags", head_before + segments),
              head_before + segments);

    // Long tail: the new tags leave the backbone's own 20 answers as they
    // are without the stage (up to float rounding: batches differ).
    v1::AnalyzeOptions alone = options;
    alone.clear_models();
    alone.add_models("openmic_student");
    v1::AnalyzeResponse reference;
    ASSERT_TRUE(CallAnalyze(*stub_, *audio, alone, &reference).ok());
    const v1::OutputResult* own = FindOutput(*backbone, "tags");
    const v1::OutputResult* ref =
        FindOutput(*FindResult(reference, "openmic_student"), "tags");
    ASSERT_NE(own, nullptr);
    ASSERT_NE(ref, nullptr);
    ASSERT_EQ(own->tags_size(), 20);
    ASSERT_EQ(ref->tags_size(), 20);
    std::vector<float> own_scores(20), ref_scores(20);
    for (int i = 0; i < 20; ++i) {
      own_scores[own->tags(i).index()] = own->tags(i).score();
      ref_scores[ref->tags(i).index()] = ref->tags(i).score();
    }
    for (int i = 0; i < 20; ++i)
      EXPECT_NEAR(own_scores[i], ref_scores[i], 1e-5) << i;
  }
}

TEST_F(FewShotE2E, ExclusiveHeadScoresSumToOne) {
  std::vector<std::string> args = {
      "create",           "--backbone",  "openmic_student",   "--out",
      repo_ + "/onekind", "--exclusive", "--pooling=segments"};
  for (const std::string& f : TagFlags()) args.push_back(f);
  CommandResult created = Fewshot(args);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  AwaitReady("onekind");
  const std::string query =
      WriteAudio(examples_, "q_x", Clicks(5, 3.0, 2.5), "flac");
  std::ifstream in(query, std::ios::binary);
  const std::string audio(std::istreambuf_iterator<char>(in), {});
  v1::AnalyzeOptions options;
  options.add_models("onekind");
  options.set_top_k(-1);
  v1::AnalyzeResponse response;
  ASSERT_TRUE(CallAnalyze(*stub_, audio, options, &response).ok());
  const v1::OutputResult* tags =
      FindOutput(*FindResult(response, "onekind"), "tags");
  ASSERT_NE(tags, nullptr);
  ASSERT_EQ(tags->tags_size(), 3);
  EXPECT_EQ(tags->tags(0).label(), "clicks");
  EXPECT_NEAR(
      tags->tags(0).score() + tags->tags(1).score() + tags->tags(2).score(),
      1.0, 1e-4);
}

TEST_F(FewShotE2E, EvalReportsLeaveOneOutPerTagAndWritesNothing) {
  std::vector<std::string> args = {"eval", "--backbone", "openmic_student"};
  for (const std::string& f : TagFlags()) args.push_back(f);
  const std::vector<std::string> before = RepoEntries();
  CommandResult eval = Fewshot(args);
  ASSERT_EQ(eval.exit_code, 0) << eval.err;
  EXPECT_THAT(eval.out, ::testing::StartsWith("leave-one-out on 9 files"));
  EXPECT_THAT(eval.out, HasSubstr("accuracy"));
  EXPECT_THAT(eval.out, HasSubstr("precision"));
  EXPECT_THAT(eval.out, HasSubstr("recall"));
  for (const char* tag : {"tone", "noise", "clicks"})
    EXPECT_THAT(eval.out, HasSubstr(tag));
  EXPECT_THAT(eval.out, HasSubstr("1.000"));
  EXPECT_EQ(RepoEntries(), before);
}

TEST_F(FewShotE2E, BadInputIsAClearErrorAndWritesNothing) {
  const std::string out = repo_ + "/bad";
  const std::string garbage = examples_ + "/garbage.mp3";
  std::ofstream(garbage) << "this is not audio at all";
  const std::string short_clip =
      WriteAudio(examples_, "short", Tone(440, 0.3, 3, 1.0));
  fs::create_directory(examples_ + "/empty");
  // A served model with no EMBEDDING output at all (published by rename).
  const std::string staging = NewTempDir("fewshot-staging");
  WriteModelFolder(staging, "tagsonly",
                   WaveformConfig(16000,
                                  "output { name: \"levels\" kind: TAGS dim: "
                                  "2 activation: ACTIVATION_SIGMOID }\n"),
                   2, 1, R"(
def forward(self, x):
    return torch.stack([x.max(1)[0], x.min(1)[0]], 1)
)");
  fs::rename(staging + "/tagsonly", repo_ + "/tagsonly");
  AwaitReady("tagsonly");
  const std::string tone = "tone=" + absl::StrJoin(tone_, ",");
  const std::string noise = "noise=" + absl::StrJoin(noise_, ",");
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"--tag", tone, "--tag", "empty="}, "tag 'empty' has no examples"},
      {{"--tag", tone, "--tag_dir", "empty=" + examples_ + "/empty"},
       "tag 'empty' has no examples"},
      {{"--tag", tone, "--tag", "=" + noise_[0]}, "a tag label is empty"},
      {{"--tag", tone, "--tag", "noise=" + examples_ + "/missing.wav"},
       "example '" + examples_ + "/missing.wav': cannot open"},
      {{"--tag", tone, "--tag", "noise=" + garbage},
       "example '" + garbage + "'"},
      {{"--tag", tone, "--tag", noise, "--embedding", "tags"},
       "backbone 'openmic_student' has no EMBEDDING output 'tags' (its "
       "EMBEDDING outputs: embedding"},
      {{"--tag", tone, "--tag", "tone=" + noise_[0]},
       "tag 'tone' is given twice"},
      {{"--tag", tone, "--tag", "noise=" + noise_[0] + "," + short_clip},
       "example '" + short_clip +
           "': 0.30 s long; backbone 'openmic_student' needs at least one "
           "1.00 s segment"},
      {{"--tag", tone}, "tag 'tone' has no negative examples"},
      {{"--tag", tone, "--tag", noise, "--backbone", "openmic_student"},
       "--backbone openmic_student with --embedding embedding is given "
       "twice"},
      {{"--tag", tone, "--tag", noise, "--backbone", "tagsonly", "--embedding",
        "embedding", "--embedding", "embedding", "--embedding", "embedding"},
       "give --embedding once (for every backbone) or once per --backbone "
       "(2), not 3 times"},
      {{"--tag", tone, "--tag", noise, "--out", repo_ + "/openmic_student"},
       "already exists"},
  };
  const std::vector<std::string> before = RepoEntries();
  for (const Case& c : cases) {
    std::vector<std::string> args = {"create", "--backbone", "openmic_student"};
    if (std::find(c.args.begin(), c.args.end(), "--out") == c.args.end()) {
      args.push_back("--out");
      args.push_back(out);
    }
    args.insert(args.end(), c.args.begin(), c.args.end());
    const CommandResult r = Fewshot(args);
    EXPECT_NE(r.exit_code, 0) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(r.err, HasSubstr(c.error)) << absl::StrJoin(c.args, " ");
    EXPECT_EQ(RepoEntries(), before) << absl::StrJoin(c.args, " ");
  }
  // A backbone without any EMBEDDING output.
  CommandResult no_embedding =
      Fewshot({"create", "--backbone", "tagsonly", "--out", out, "--tag", tone,
               "--tag", noise});
  EXPECT_EQ(no_embedding.exit_code, 1);
  EXPECT_THAT(no_embedding.err,
              HasSubstr("backbone 'tagsonly' has no EMBEDDING output "
                        "'embedding' (it has no EMBEDDING output at all)"));
  EXPECT_EQ(RepoEntries(), before);
  // An unknown backbone, from the server.
  std::vector<std::string> args = {"create", "--backbone", "nope",
                                   "--out",  out,          "--tag",
                                   tone,     "--tag",      noise};
  const CommandResult r = Fewshot(args);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("backbone 'nope': unknown model 'nope'"));
  EXPECT_EQ(RepoEntries(), before);
}

// Two small backbones on different rates and segment grids, computing
// hand-made features: "level" (16 kHz, 1 s segments) log crest factor and log
// RMS; "texture" (8 kHz, 0.75 s windows every 0.375 s) zero-crossing rate and
// log mean absolute difference over RMS. Written to a staging folder and
// renamed into the served repository.
void PublishFeatureBackbones(const std::string& repo) {
  const std::string staging = NewTempDir("fewshot-backbones");
  WriteModelFolder(staging, "level", R"pb(
                     input {
                       sample_rate: 16000
                       waveform {}
                     }
                     segment { window_samples: 16000 }
                     output { name: "embedding" kind: EMBEDDING dim: 2 }
                   )pb",
                   0, 1, R"(
def forward(self, x):
    rms = x.pow(2).mean(1).sqrt() + 1e-4
    crest = x.abs().max(1)[0] / rms
    return torch.stack([crest.log(), rms.log()], 1)
)");
  WriteModelFolder(staging, "texture", R"pb(
                     input {
                       sample_rate: 8000
                       waveform {}
                     }
                     segment { window_samples: 6000 hop_samples: 3000 }
                     output { name: "embedding" kind: EMBEDDING dim: 2 }
                   )pb",
                   0, 1, R"(
def forward(self, x):
    rms = x.pow(2).mean(1).sqrt() + 1e-4
    signs = (x[:, 1:] >= 0) != (x[:, :-1] >= 0)
    zcr = signs.float().mean(1)
    diff = (x[:, 1:] - x[:, :-1]).abs().mean(1) / rms
    return torch.stack([10.0 * zcr, (diff + 1e-4).log()], 1)
)");
  for (const char* name : {"level", "texture"}) {
    fs::rename(staging + "/" + name, repo + "/" + name);
  }
}

TEST_F(FewShotE2E, HeadOnTwoBackbonesIsHotLoadedAndTagsNewRenderings) {
  PublishFeatureBackbones(repo_);
  AwaitReady("level");
  AwaitReady("texture");
  // eval accepts the same backbones and writes nothing.
  std::vector<std::string> eval = {"eval", "--backbone", "level", "--backbone",
                                   "texture"};
  for (const std::string& f : TagFlags()) eval.push_back(f);
  const std::vector<std::string> before = RepoEntries();
  CommandResult evaluated = Fewshot(eval);
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_THAT(evaluated.out,
              HasSubstr("embeddings of level/embedding + texture/embedding, "
                        "4 values"));
  EXPECT_EQ(RepoEntries(), before);

  std::vector<std::string> args = {"create",     "--backbone", "level",
                                   "--backbone", "texture",    "--embedding",
                                   "embedding",  "--out",      repo_ + "/duo"};
  for (const std::string& f : TagFlags()) args.push_back(f);
  CommandResult created = Fewshot(args);
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_THAT(created.out, HasSubstr("published"));
  AwaitReady("duo");
  {
    grpc::ClientContext context;
    v1::GetModelRequest request;
    request.set_name("duo");
    v1::ModelInfo info;
    ASSERT_TRUE(stub_->GetModel(&context, request, &info).ok());
    const v1::ModelInputs& from = info.config().input().from_models();
    ASSERT_EQ(from.source_size(), 2);
    EXPECT_EQ(from.source(0).model(), "level");
    EXPECT_EQ(from.source(1).model(), "texture");
    EXPECT_EQ(from.source(1).dim(), 2);
    EXPECT_DOUBLE_EQ(info.segment_seconds(), 1.0);  // the first backbone's
  }

  struct Query {
    std::string path, tag;
  };
  const std::vector<Query> queries = {
      {WriteAudio(examples_, "q_tone", Tone(277.0, 3.0, 9, 1.6), "ogg"),
       "tone"},
      {WriteAudio(examples_, "q_noise", Noise(77, 3.0, 0.45), "flac"), "noise"},
      {WriteAudio(examples_, "q_clicks", Clicks(99, 3.0, 5.0), "flac"),
       "clicks"},
  };
  for (const Query& q : queries) {
    std::ifstream in(q.path, std::ios::binary);
    const std::string audio(std::istreambuf_iterator<char>(in), {});
    v1::AnalyzeOptions options;
    for (const char* m : {"duo", "level", "texture"}) options.add_models(m);
    options.set_top_k(-1);
    const double level_before = BatchSizeSum("level", 0);
    const double texture_before = BatchSizeSum("texture", 0);
    const double head_before = BatchSizeSum("duo", 0);
    v1::AnalyzeResponse response;
    grpc::Status status = CallAnalyze(*stub_, audio, options, &response);
    ASSERT_TRUE(status.ok()) << q.path << ": " << status.error_message();
    const v1::ModelResult* head = FindResult(response, "duo");
    const v1::ModelResult* level = FindResult(response, "level");
    const v1::ModelResult* texture = FindResult(response, "texture");
    ASSERT_NE(head, nullptr);
    ASSERT_NE(level, nullptr);
    ASSERT_NE(texture, nullptr);
    ExpectTopTag(*head, q.tag, q.path);
    // The head has the first backbone's segments; each backbone ran once
    // per segment of its own grid although its own outputs were requested.
    EXPECT_EQ(head->num_segments(), level->num_segments());
    EXPECT_GT(texture->num_segments(), level->num_segments());
    EXPECT_EQ(BatchSizeSum("level", level_before + level->num_segments()),
              level_before + level->num_segments());
    EXPECT_EQ(BatchSizeSum("texture", texture_before + texture->num_segments()),
              texture_before + texture->num_segments());
    EXPECT_EQ(BatchSizeSum("duo", head_before + head->num_segments()),
              head_before + head->num_segments());
  }
}

}  // namespace
}  // namespace audiotag::testing
