// Soak run of the hardening suite (not part of `make test`; see
// docs/hardening.md): a bounded run of mixed good and hostile requests at
// concurrency 16 against the real audiotag-server. Passes when the server
// never dies, no good request fails, and its resident memory (VmRSS) stays
// flat after warm-up.
//
//   AUDIOTAG_SOAK_SECONDS   length of the run (default 180)
//   AUDIOTAG_SOAK_CLIENTS   concurrent client threads (default 16)

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "audiotag/v1/audiotag.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/hardening/hostile_inputs.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using Code = grpc::StatusCode;

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

// VmRSS of `pid` in MiB, or -1.
double RssMib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atof(line.c_str() + 6) / 1024;
  }
  return -1;
}

struct Good {
  std::string name;
  std::string bytes;
  bool stream = false;
};

std::vector<Good> GoodRequests() {
  std::vector<Good> good = {{"wav_2s", GoodWav()}};
  for (const char* format : {"mp3", "flac", "ogg", "m4a"}) {
    AudioSpec spec;
    spec.format = format;
    spec.sample_rate = 44100;
    spec.channels = 2;
    spec.frequencies = {440, 660};
    spec.seconds = 8;
    auto bytes = MakeAudioFile(spec);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    if (bytes.ok()) good.push_back({format, *bytes});
  }
  good.push_back({"mp3_stream", good[1].bytes, true});
  return good;
}

grpc::Status StreamCall(v1::AudioTagger::Stub& stub, const std::string& audio,
                        const v1::AnalyzeOptions& options) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(120));
  v1::AnalyzeResponse response;
  auto writer = stub.AnalyzeStream(&context, &response);
  v1::AnalyzeStreamRequest first;
  *first.mutable_options() = options;
  writer->Write(first);
  for (size_t i = 0; i < audio.size(); i += 16384) {
    v1::AnalyzeStreamRequest chunk;
    chunk.set_audio_chunk(audio.substr(i, 16384));
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  return writer->Finish();
}

TEST(Soak, MixedTrafficKeepsServingWithFlatMemory) {
  const int seconds = EnvInt("AUDIOTAG_SOAK_SECONDS", 180);
  const int clients = EnvInt("AUDIOTAG_SOAK_CLIENTS", 16);
  const std::string repository = NewTempDir("audiotag-soak-models");
  WriteStatsModel(repository, "stats");
  WriteStatsModel(repository, "stats2");
  auto server = ServerProcess::Start(
      repository,
      {absl::StrCat("--max_upload_bytes=", kHostileMaxUploadBytes),
       absl::StrCat("--max_duration_seconds=", kHostileMaxDurationSeconds)});
  ASSERT_TRUE(server.ok()) << server.status();
  const pid_t pid = (*server)->pid();

  const std::vector<Good> good = GoodRequests();
  const std::vector<HostileUpload> bad = HostileUploads();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> good_ok{0}, good_failed{0}, bad_total{0},
      bad_unexpected{0};
  std::mutex mu;
  std::vector<std::string> failures;

  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      auto stub = MakeStub((*server)->address());
      uint32_t x = 977 * (t + 1);
      while (!stop.load()) {
        x = x * 1664525 + 1013904223;
        v1::AnalyzeOptions options;
        options.add_models((x >> 8) % 2 ? "stats" : "stats2");
        if ((x >> 16) % 10 < 7) {
          const Good& g = good[(x >> 4) % good.size()];
          v1::AnalyzeResponse response;
          grpc::Status s =
              g.stream ? StreamCall(*stub, g.bytes, options)
                       : CallAnalyze(*stub, g.bytes, options, &response, 120);
          if (s.ok()) {
            good_ok++;
          } else {
            good_failed++;
            std::lock_guard<std::mutex> lock(mu);
            failures.push_back(absl::StrCat(g.name, ": ", s.error_code(), " ",
                                            s.error_message()));
          }
        } else {
          const HostileUpload& b = bad[(x >> 4) % bad.size()];
          v1::AnalyzeResponse response;
          grpc::Status s = CallAnalyze(*stub, b.bytes, options, &response, 120);
          bad_total++;
          if (!b.codes.count(s.error_code())) {
            bad_unexpected++;
            std::lock_guard<std::mutex> lock(mu);
            failures.push_back(absl::StrCat(b.name, ": ", s.error_code(), " ",
                                            s.error_message()));
          }
        }
      }
    });
  }

  std::vector<double> rss;
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start <
         std::chrono::seconds(seconds)) {
    std::this_thread::sleep_for(std::chrono::seconds(5));
    ASSERT_EQ(kill(pid, 0), 0) << "server died:\n" << (*server)->Log();
    rss.push_back(RssMib(pid));
    std::cout << "[soak] t=" << 5 * rss.size() << "s rss=" << rss.back()
              << "MiB good_ok=" << good_ok << " bad=" << bad_total << "\n"
              << std::flush;
  }
  stop = true;
  for (auto& t : threads) t.join();

  std::cout << "[soak] rss_mib=" << absl::StrJoin(rss, ",") << "\n"
            << "[soak] good_ok=" << good_ok << " good_failed=" << good_failed
            << " bad=" << bad_total << " bad_unexpected=" << bad_unexpected
            << "\n";
  for (size_t i = 0; i < failures.size() && i < 20; ++i) {
    std::cout << "[soak] failure: " << failures[i] << "\n";
  }
  EXPECT_EQ(good_failed.load(), 0);
  EXPECT_EQ(bad_unexpected.load(), 0);
  EXPECT_GT(good_ok.load(), 0);
  EXPECT_GT(bad_total.load(), 0);
  // Flat after warm-up: the first third warms caches, pools and allocator
  // arenas; afterwards the peak may not exceed the post-warm-up level by
  // more than 10% + 32 MiB.
  ASSERT_GE(rss.size(), 6u);
  const size_t warm = rss.size() / 3;
  double after_warmup = 0;
  for (size_t i = warm; i < warm + 2; ++i) after_warmup += rss[i] / 2;
  double peak_late = 0;
  for (size_t i = rss.size() - rss.size() / 3; i < rss.size(); ++i) {
    peak_late = std::max(peak_late, rss[i]);
  }
  std::cout << "[soak] rss after warm-up " << after_warmup
            << " MiB, peak of last third " << peak_late << " MiB\n";
  EXPECT_LE(peak_late, after_warmup * 1.10 + 32);
}

}  // namespace
}  // namespace audiotag::testing
