// The bare-forward ceiling: how many segments per second one model instance
// computes when nothing but its front-end and network run, at several batch
// sizes. It uses the server's own TorchRunner (front-end + TorchScript
// forward + output activations + copy to host), so the difference between
// this and `audiotag bench` against a server is the cost of gRPC, decoding,
// segmenting, queueing and batching.
//
//   audiotag_forward_bench --model_dir=DIR/vggish_bench
//       [--batch_sizes=1,2,4,8,16,32,64] [--min_seconds=3]
//       [--intra_op_threads=0] [--format=text|json]
//
// Input: uniform random audio in [-0.5, 0.5), one window per segment.
// Prints segments/s and milliseconds per batch for each batch size, then the
// best.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "src/common/command_line.h"
#include "src/model/model_config.h"
#include "src/model/torch_runner.h"

ABSL_FLAG(std::string, model_dir, "",
          "A model folder: config.pbtxt and <version>/model.pt.");
ABSL_FLAG(std::vector<std::string>, batch_sizes,
          std::vector<std::string>({"1", "2", "4", "8", "16", "32", "64"}),
          "Batch sizes to time.");
ABSL_FLAG(double, min_seconds, 3, "Timed seconds per batch size (at least).");
ABSL_FLAG(int, min_iterations, 3, "Timed batches per batch size (at least).");
ABSL_FLAG(int, intra_op_threads, 0,
          "LibTorch intra-op threads, as the server's flag (0: default).");
ABSL_FLAG(std::string, format, "text", "text or json.");

namespace audiotag {
namespace {

double Since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// The highest numbered version folder's model.pt, as the server picks it.
std::string ModelPath(const std::string& dir) {
  int64_t best = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.empty() ||
        !std::all_of(name.begin(), name.end(), ::isdigit)) {
      continue;
    }
    best = std::max<int64_t>(best, std::stoll(name));
  }
  return absl::StrCat(dir, "/", best, "/model.pt");
}

struct Point {
  int batch = 0;
  double segments_per_second = 0;
  double ms_per_batch = 0;
};

int Main() {
  const std::string dir = absl::GetFlag(FLAGS_model_dir);
  if (dir.empty()) {
    std::cerr << "audiotag_forward_bench: --model_dir is required\n";
    return 2;
  }
  std::vector<int> sizes;
  for (const std::string& s : absl::GetFlag(FLAGS_batch_sizes)) {
    sizes.push_back(std::stoi(s));
  }
  absl::StatusOr<v1::ModelConfig> config =
      ReadModelConfig(absl::StrCat(dir, "/config.pbtxt"));
  if (!config.ok()) {
    std::cerr << config.status() << "\n";
    return 1;
  }
  // The runner refuses batches above max_batch_size; our own warm-up below
  // replaces the load-time one.
  config->mutable_batching()->set_max_batch_size(
      *std::max_element(sizes.begin(), sizes.end()));
  config->set_warmup_batches(0);
  const std::string folder = std::filesystem::path(dir).filename().string();
  if (absl::Status s = NormalizeModelConfig(folder, &*config); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  SetProcessIntraOpThreads(absl::GetFlag(FLAGS_intra_op_threads));
  absl::StatusOr<std::unique_ptr<TorchRunner>> runner =
      TorchRunner::Create(*config, ModelPath(dir));
  if (!runner.ok()) {
    std::cerr << runner.status() << "\n";
    return 1;
  }
  const int64_t window = config->segment().window_samples();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> noise(-0.5f, 0.5f);

  std::vector<Point> points;
  for (int b : sizes) {
    Tensor batch;
    batch.shape = {b, window};
    batch.data.resize(static_cast<size_t>(b * window));
    for (float& x : batch.data) x = noise(rng);
    // TorchScript's profiling executor optimizes during the first runs.
    for (int i = 0; i < 2; ++i) {
      if (auto out = (*runner)->Run(batch); !out.ok()) {
        std::cerr << out.status() << "\n";
        return 1;
      }
    }
    int iterations = 0;
    const auto start = std::chrono::steady_clock::now();
    while (iterations < absl::GetFlag(FLAGS_min_iterations) ||
           Since(start) < absl::GetFlag(FLAGS_min_seconds)) {
      if (auto out = (*runner)->Run(batch); !out.ok()) {
        std::cerr << out.status() << "\n";
        return 1;
      }
      ++iterations;
    }
    const double elapsed = Since(start);
    points.push_back({b, b * iterations / elapsed, 1e3 * elapsed / iterations});
    if (absl::GetFlag(FLAGS_format) == "text") {
      std::printf("batch %3d: %9.2f segments/s  %9.2f ms/batch  (%d batches)\n",
                  b, points.back().segments_per_second,
                  points.back().ms_per_batch, iterations);
      std::fflush(stdout);
    }
  }
  const Point best = *std::max_element(
      points.begin(), points.end(), [](const Point& a, const Point& b) {
        return a.segments_per_second < b.segments_per_second;
      });
  if (absl::GetFlag(FLAGS_format) == "json") {
    std::vector<std::string> rows;
    for (const Point& p : points) {
      rows.push_back(absl::StrFormat(
          "{\"batch\":%d,\"segments_per_second\":%.4f,\"ms_per_batch\":%.3f}",
          p.batch, p.segments_per_second, p.ms_per_batch));
    }
    absl::PrintF(
        "{\"model\":\"%s\",\"points\":[%s],\"best_batch\":%d,"
        "\"best_segments_per_second\":%.4f}\n",
        folder, absl::StrJoin(rows, ","), best.batch, best.segments_per_second);
  } else {
    absl::PrintF("best: batch %d, %.2f segments/s (%s, %d-sample segments)\n",
                 best.batch, best.segments_per_second, folder, window);
  }
  return 0;
}

}  // namespace
}  // namespace audiotag

int main(int argc, char** argv) {
  using audiotag::CheckCommandLine;
  audiotag::ConfigureAbslUsage("audiotag_forward_bench");
  const audiotag::CommandLine line = CheckCommandLine(argc, argv);
  if (line.help) {
    std::cout << "audiotag_forward_bench: segments/s of one model instance's "
                 "front-end and forward\nat several batch sizes (the bare-"
                 "forward ceiling).\n\n  audiotag_forward_bench "
                 "--model_dir=DIR [flags]\n\nFlags:\n"
              << audiotag::FlagHelp(audiotag::ProgramFlagNames());
    return 0;
  }
  if (line.version) {
    std::cout << audiotag::VersionString("audiotag_forward_bench") << "\n";
    return 0;
  }
  if (!line.status.ok() || !line.positional.empty()) {
    std::cerr << "audiotag_forward_bench: "
              << (line.status.ok() ? "takes no positional arguments"
                                   : line.status.message())
              << "\n(see `audiotag_forward_bench --help`)\n";
    return 2;
  }
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_dry_run)) {
    std::cout << "ok\n";
    return 0;
  }
  return audiotag::Main();
}
