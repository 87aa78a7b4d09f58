// audiotag bulk end to end: a catalog of a few hundred real files (mixed
// formats, duplicates, broken ones) tagged by two real servers at once; the
// first run is SIGKILLed mid-way and the same command resumes it.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "client/audiotag_client.h"
#include "client/bulk/json_text.h"
#include "client/bulk/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

namespace fs = std::filesystem;
using bulk::ParseJsonObject;
using bulk::StringField;
using google::protobuf::Struct;

// 16-bit mono 16 kHz PCM WAV of a sine: cheap distinct files.
std::string Wav(double seconds, double frequency, double amplitude) {
  const int n = static_cast<int>(seconds * 16000);
  std::string data;
  for (int i = 0; i < n; ++i) {
    const int16_t s = static_cast<int16_t>(
        32767 * amplitude * std::sin(2 * M_PI * frequency * i / 16000));
    data.append(reinterpret_cast<const char*>(&s), 2);
  }
  auto u32 = [](uint32_t v) {
    return std::string(reinterpret_cast<char*>(&v), 4);
  };
  auto u16 = [](uint16_t v) {
    return std::string(reinterpret_cast<char*>(&v), 2);
  };
  return absl::StrCat("RIFF", u32(36 + data.size()), "WAVEfmt ", u32(16),
                      u16(1), u16(1), u32(16000), u32(32000), u16(2), u16(16),
                      "data", u32(data.size()), data);
}

void Write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

struct Catalog {
  std::string manifest;
  int tracks = 0;
  std::map<std::string, std::string> broken;  // id -> expected error code
};

// ~270 tracks: 150 distinct WAVs, 24 encoded files in five other formats,
// copies of both under other names, and broken files.
Catalog MakeCatalog(const fs::path& root) {
  std::vector<std::string> paths;
  for (int i = 0; i < 150; ++i) {
    const std::string path = absl::StrFormat("wav/%03d.wav", i);
    Write(root / path,
          Wav(0.5 + (i % 6) * 0.5, 200 + 17 * i, 0.1 + (i % 8) * 0.1));
    paths.push_back(path);
  }
  const char* formats[] = {"flac", "mp3", "ogg", "opus", "m4a", "wav"};
  for (int i = 0; i < 24; ++i) {
    AudioSpec spec;
    spec.format = formats[i % 6];
    spec.seconds = 0.5 + (i % 3) * 0.75;
    spec.frequencies = {300.0 + 40 * i};
    spec.sample_rate = i % 2 ? 44100 : 16000;
    absl::StatusOr<std::string> bytes = MakeAudioFile(spec);
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    const std::string path = absl::StrCat("enc/", i, ".", spec.format);
    Write(root / path, *bytes);
    paths.push_back(path);
  }
  Catalog catalog;
  catalog.manifest = (root / "catalog.jsonl").string();
  std::ofstream manifest(catalog.manifest);
  auto add = [&](const std::string& id, const std::string& path) {
    manifest << "{\"id\":\"" << id << "\",\"path\":\"" << path << "\"}\n";
    ++catalog.tracks;
  };
  for (size_t i = 0; i < paths.size(); ++i) add(absl::StrCat("t", i), paths[i]);
  fs::create_directories(root / "copies");
  for (int i = 0; i < 90; ++i) {  // the same audio under other names
    const std::string copy = absl::StrFormat(
        "copies/%02d-%s", i,
        fs::path(paths[(i * 7) % paths.size()]).filename().string());
    fs::copy_file(root / paths[(i * 7) % paths.size()], root / copy);
    add(absl::StrCat("copy", i), copy);
  }
  std::string random(3000, '\0');
  for (size_t i = 0; i < random.size(); ++i)
    random[i] = static_cast<char>(i * 7919 % 251);
  Write(root / "bad/random.mp3", random);
  Write(root / "bad/empty.wav", "");
  Write(root / "bad/text.ogg", "this is not audio at all\n");
  Write(root / "bad/truncated.wav", Wav(1, 440, 0.5).substr(0, 30));
  catalog.broken = {{"random", "INVALID_ARGUMENT"},
                    {"empty", "INVALID_ARGUMENT"},
                    {"text", "INVALID_ARGUMENT"},
                    {"truncated", "INVALID_ARGUMENT"},
                    {"missing", "NOT_FOUND"}};
  for (const auto& [id, code] : catalog.broken) {
    if (id == "missing") continue;
    const std::string ext = id == "random" ? "mp3"
                            : id == "text" ? "ogg"
                                           : "wav";
    add(id, absl::StrCat("bad/", id, ".", ext));
  }
  add("missing", "bad/does-not-exist.flac");
  return catalog;
}

std::vector<std::string> Lines(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return {};
  EXPECT_TRUE(text->empty() || text->back() == '\n') << "cut last line";
  return absl::StrSplit(*text, '\n', absl::SkipEmpty());
}

// Starts `argv`, SIGKILLs it once `results` has `lines` lines; returns true
// if it was killed (false: it finished first).
bool RunAndKill(const std::vector<std::string>& argv,
                const std::string& results, size_t lines) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    freopen("/dev/null", "w", stderr);
    execv(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  int status = 0;
  while (absl::Now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return false;
    if (Lines(results).size() >= lines) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status);
}

TEST(BulkE2E, KilledAndResumedAgainstTwoServers) {
  const std::string repository = NewTempDir("bulk-e2e-models");
  WriteStatsModel(repository, "stats");
  // Two replicas on one machine: no metrics endpoints (they would share 9464).
  auto a = ServerProcess::Start(repository, {"--metrics_port=0"});
  auto b = ServerProcess::Start(repository, {"--metrics_port=0"});
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  const fs::path root = NewTempDir("bulk-e2e-catalog");
  const Catalog catalog = MakeCatalog(root);
  const std::string out = (root / "out").string();
  std::vector<std::string> argv = {
      BinaryPath("audiotag"),
      "bulk",
      catalog.manifest,
      "--output=" + out,
      absl::StrCat("--server=", (*a)->address(), ",", (*b)->address()),
      "--models=stats",
      "--embeddings=segments",
      "--embeddings_shard_rows=16",
      "--concurrency=4",
      "--timeout_seconds=30",
      "--progress_seconds=1"};

  EXPECT_TRUE(RunAndKill(argv, out + "/results.jsonl", 40))
      << "the first run finished before it could be killed";
  const size_t first_run = Lines(out + "/results.jsonl").size();
  auto resumed = RunCommand(argv);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  // Broken files have error lines: exit code 4.
  EXPECT_EQ(resumed->exit_code, 4) << resumed->err;
  EXPECT_THAT(resumed->err,
              ::testing::HasSubstr(absl::StrCat(first_run, " skipped")));

  // Exactly one line per track.
  std::map<std::string, Struct> results;
  for (const std::string& line : Lines(out + "/results.jsonl")) {
    absl::StatusOr<Struct> entry = ParseJsonObject(line);
    ASSERT_TRUE(entry.ok()) << line;
    const std::string id = StringField(*entry, "id");
    EXPECT_TRUE(results.emplace(id, *entry).second) << "duplicate line " << id;
  }
  EXPECT_EQ(results.size(), static_cast<size_t>(catalog.tracks));

  // Broken files: error lines with their codes.
  for (const auto& [id, code] : catalog.broken) {
    ASSERT_TRUE(results.contains(id)) << id;
    const auto& fields = results[id].fields();
    ASSERT_TRUE(fields.contains("error")) << id;
    EXPECT_EQ(StringField(fields.at("error").struct_value(), "code"), code)
        << id;
  }

  // Index lines and result lines agree; every row is in its shard.
  const std::string emb = out + "/embeddings/stats__stats";
  std::map<std::string, Struct> index;
  for (const std::string& line : Lines(emb + "/index.jsonl")) {
    absl::StatusOr<Struct> entry = ParseJsonObject(line);
    ASSERT_TRUE(entry.ok()) << line;
    EXPECT_TRUE(index.emplace(StringField(*entry, "id"), *entry).second)
        << "index repeats " << line;
  }
  int analyzed = 0, duplicates = 0;
  for (const auto& [id, entry] : results) {
    const auto& fields = entry.fields();
    if (fields.contains("error")) continue;
    const std::string original = StringField(entry, "duplicate_of");
    if (original.empty()) {
      ++analyzed;
    } else {
      ++duplicates;
      ASSERT_TRUE(results.contains(original)) << id;
      EXPECT_EQ(StringField(results[original], "sha256"),
                StringField(entry, "sha256"));
    }
    const Struct& ref = fields.at("embeddings")
                            .struct_value()
                            .fields()
                            .at("stats/stats")
                            .struct_value();
    const std::string owner = original.empty() ? id : original;
    ASSERT_TRUE(index.contains(owner)) << owner;
    EXPECT_EQ(StringField(ref, "shard"),
              "stats__stats/" + StringField(index[owner], "shard"));
    EXPECT_EQ(StringField(ref, "row"), StringField(index[owner], "row"));
    const int rows = std::stoi(StringField(ref, "rows"));
    EXPECT_EQ(rows, static_cast<int>(std::ceil(
                        fields.at("duration_seconds").number_value() - 1e-3)))
        << id;
    EXPECT_EQ(index[owner].fields().at("segments").list_value().values_size(),
              rows);
    absl::StatusOr<std::string> npy =
        ReadFile(out + "/embeddings/" + StringField(ref, "shard"));
    ASSERT_TRUE(npy.ok());
    absl::StatusOr<bulk::NpyShape> shape = bulk::ParseNpyHeader(*npy);
    ASSERT_TRUE(shape.ok());
    EXPECT_EQ(shape->cols, 4);
    EXPECT_LE(std::stoi(StringField(ref, "row")) + rows, shape->rows);
  }
  EXPECT_EQ(index.size(), static_cast<size_t>(analyzed));
  EXPECT_GE(duplicates, 90);
  EXPECT_TRUE(fs::exists(out + "/summary.json"));
}

}  // namespace
}  // namespace audiotag::testing
