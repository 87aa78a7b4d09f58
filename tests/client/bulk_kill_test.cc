// audiotag bulk durability: the real CLI against a real server, SIGKILLed at
// a random moment once some tracks are done, then resumed with the same
// command. Every track ends with exactly one result line, the index and the
// .npy shards hold exactly the rows the result lines name, and the shards
// are filled in place (their number is what the rows need, not one per
// flush or per run). A broken file gets an error line with its path, and
// makes the exit code 4.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
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

constexpr int kGoodTracks = 19;
constexpr int kShardRows = 8;

std::vector<std::string> Lines(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return {};
  return absl::StrSplit(*text, '\n', absl::SkipEmpty());
}

// Complete lines only (a line being written has no '\n' yet).
size_t CompleteLines(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return 0;
  return static_cast<size_t>(std::count(text->begin(), text->end(), '\n'));
}

// Starts `argv`; once `results` has `lines` complete lines, waits `extra`
// more and SIGKILLs it. Returns the lines present just before the kill, or
// -1 if the process finished first.
int RunAndKill(const std::vector<std::string>& argv, const std::string& results,
               size_t lines, absl::Duration extra) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    freopen((results + ".stderr").c_str(), "w", stderr);
    execv(args[0], args.data());
    _exit(127);
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(120);
  int status = 0;
  while (absl::Now() < deadline && CompleteLines(results) < lines) {
    if (waitpid(pid, &status, WNOHANG) == pid) return -1;
    absl::SleepFor(absl::Milliseconds(2));
  }
  absl::SleepFor(extra);
  const int seen = static_cast<int>(CompleteLines(results));
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return WIFSIGNALED(status) ? seen : -1;
}

TEST(BulkKill, SigkillAtARandomMomentThenResumeKeepsEveryTrackOnce) {
  const std::string repository = NewTempDir("bulk-kill-models");
  WriteStatsModel(repository, "stats");
  // Each track's segments (fewer than 128) wait 250 ms for a fuller batch,
  // so the job runs for seconds and is killed part way whatever the load.
  const std::string config_path = repository + "/stats/config.pbtxt";
  std::string config = *ReadFile(config_path);
  const std::string batching = "max_batch_size: 4 max_queue_delay_us: 1000";
  ASSERT_NE(config.find(batching), std::string::npos) << config;
  config.replace(config.find(batching), batching.size(),
                 "max_batch_size: 128 max_queue_delay_us: 250000");
  std::ofstream(config_path, std::ios::trunc) << config;
  auto server = ServerProcess::Start(repository, {"--metrics_port=0"});
  ASSERT_TRUE(server.ok()) << server.status();

  // 19 distinct WAVs of 2 to 8 s and one file that is not audio.
  const fs::path root = NewTempDir("bulk-kill-catalog");
  std::ofstream manifest(root / "catalog.txt");
  for (int i = 0; i < kGoodTracks; ++i) {
    AudioSpec spec;
    spec.seconds = 2 + 2 * (i % 4);
    spec.frequencies = {220.0 + 31 * i};
    spec.amplitude = 0.1 + 0.04 * i;
    absl::StatusOr<std::string> wav = MakeAudioFile(spec);
    ASSERT_TRUE(wav.ok()) << wav.status();
    const fs::path path = root / absl::StrFormat("t%02d.wav", i);
    std::ofstream(path, std::ios::binary) << *wav;
    manifest << path.string() << "\n";
  }
  const fs::path broken = root / "broken.wav";
  std::ofstream(broken) << "not audio\n";
  manifest << broken.string() << "\n";
  manifest.close();

  const std::string out = (root / "out").string();
  fs::create_directories(out);  // for the first run's stderr
  const std::vector<std::string> argv = {
      BinaryPath("audiotag"),
      "bulk",
      "--manifest=" + (root / "catalog.txt").string(),
      "--output=" + out,
      "--server=" + (*server)->address(),
      "--models=stats",
      "--embeddings=pooled",
      absl::StrCat("--embeddings_shard_rows=", kShardRows),
      "--concurrency=1",
      "--timeout_seconds=60"};

  std::random_device device;
  const unsigned seed = device();
  std::mt19937 random(seed);
  const size_t kill_after = 1 + random() % 10;
  const absl::Duration extra = absl::Milliseconds(random() % 300);
  SCOPED_TRACE(absl::StrCat("seed ", seed, ": kill once ", kill_after,
                            " lines exist, plus ",
                            absl::FormatDuration(extra)));
  const int seen = RunAndKill(argv, out + "/results.jsonl", kill_after, extra);
  ASSERT_GE(seen, static_cast<int>(kill_after))
      << "the job finished before it could be killed, or wrote no line "
         "while it ran: "
      << ReadFile(out + "/results.jsonl.stderr").value_or("");
  // What was written before the kill is still there: lines are not held
  // back for a periodic flush.
  EXPECT_GE(CompleteLines(out + "/results.jsonl"), static_cast<size_t>(seen));

  auto resumed = RunCommand(argv);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  // The broken file is an error line (from either run): exit code 4.
  EXPECT_EQ(resumed->exit_code, 4) << resumed->err;
  EXPECT_THAT(resumed->err, ::testing::HasSubstr("skipped"));

  // Every track exactly once.
  std::map<std::string, Struct> results;
  for (const std::string& line : Lines(out + "/results.jsonl")) {
    absl::StatusOr<Struct> entry = ParseJsonObject(line);
    ASSERT_TRUE(entry.ok()) << line;
    EXPECT_TRUE(results.emplace(StringField(*entry, "id"), *entry).second)
        << "two lines for " << line;
  }
  ASSERT_EQ(results.size(), static_cast<size_t>(kGoodTracks + 1));

  // The broken file: its path and an error object.
  const Struct& failed = results.at(broken.string());
  EXPECT_EQ(StringField(failed, "path"), broken.string());
  ASSERT_TRUE(failed.fields().contains("error"));
  const Struct& error = failed.fields().at("error").struct_value();
  EXPECT_EQ(StringField(error, "code"), "INVALID_ARGUMENT");
  EXPECT_FALSE(StringField(error, "message").empty());

  // Tags in analyze's schema; one pooled row per track, named by the index.
  const std::string folder = out + "/embeddings/stats__stats";
  std::map<std::string, Struct> index;
  for (const std::string& line : Lines(folder + "/index.jsonl")) {
    absl::StatusOr<Struct> entry = ParseJsonObject(line);
    ASSERT_TRUE(entry.ok()) << line;
    EXPECT_TRUE(index.emplace(StringField(*entry, "id"), *entry).second)
        << "index repeats " << line;
  }
  EXPECT_EQ(index.size(), static_cast<size_t>(kGoodTracks))
      << "index lines of tracks without a result line survived";
  std::map<std::string, std::set<int>> rows_named;  // shard -> rows
  for (const auto& [id, entry] : results) {
    if (id == broken.string()) continue;
    const auto& tags = entry.fields().at("tags").struct_value().fields();
    ASSERT_TRUE(tags.contains("stats/levels")) << id;
    const auto& list = tags.at("stats/levels").list_value();
    ASSERT_GT(list.values_size(), 0) << id;
    for (const auto& tag : list.values()) {
      ASSERT_TRUE(tag.has_struct_value()) << id;
      EXPECT_FALSE(StringField(tag.struct_value(), "label").empty());
      EXPECT_TRUE(tag.struct_value().fields().contains("score"));
      EXPECT_TRUE(tag.struct_value().fields().contains("index"));
    }
    const Struct& ref = entry.fields()
                            .at("embeddings")
                            .struct_value()
                            .fields()
                            .at("stats/stats")
                            .struct_value();
    ASSERT_TRUE(index.contains(id)) << id;
    EXPECT_EQ(StringField(ref, "shard"),
              "stats__stats/" + StringField(index[id], "shard"));
    EXPECT_EQ(StringField(ref, "row"), StringField(index[id], "row"));
    EXPECT_EQ(StringField(ref, "rows"), "1");
    EXPECT_TRUE(rows_named[StringField(index[id], "shard")]
                    .insert(std::stoi(StringField(ref, "row")))
                    .second)
        << "two tracks share a row: " << id;
  }

  // No orphan rows: each shard holds exactly the rows named, 0..n-1, and its
  // header says so. Shards are filled in place: ceil(19 / 8) = 3 of them.
  int shards = 0;
  for (const fs::directory_entry& file : fs::directory_iterator(folder)) {
    const std::string name = file.path().filename().string();
    if (name == "index.jsonl") continue;
    ++shards;
    ASSERT_TRUE(rows_named.contains(name)) << "shard no line names: " << name;
    absl::StatusOr<std::string> npy = ReadFile(file.path().string());
    ASSERT_TRUE(npy.ok());
    absl::StatusOr<bulk::NpyShape> shape = bulk::ParseNpyHeader(*npy);
    ASSERT_TRUE(shape.ok()) << shape.status();
    const int64_t named = static_cast<int64_t>(rows_named[name].size());
    EXPECT_EQ(shape->rows, named) << name;
    EXPECT_EQ(shape->cols, 4) << name;
    EXPECT_EQ(static_cast<int64_t>(npy->size()),
              shape->data_offset + named * 4 * 4)
        << name << " holds rows no line names";
    EXPECT_EQ(*rows_named[name].rbegin(), named - 1) << name;
  }
  EXPECT_EQ(shards, (kGoodTracks + kShardRows - 1) / kShardRows);

  // A third run has nothing left to do and changes nothing.
  const std::string before = *ReadFile(out + "/results.jsonl");
  auto again = RunCommand(argv);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->exit_code, 4) << again->err;
  EXPECT_EQ(*ReadFile(out + "/results.jsonl"), before);
}

}  // namespace
}  // namespace audiotag::testing
