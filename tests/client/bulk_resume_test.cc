// Resume: what a run finds after a crash (cut lines, shards without lines).

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/audiotag_client.h"
#include "client/bulk/durable_file.h"
#include "client/bulk/result_sink.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag::bulk {
namespace {

namespace fs = std::filesystem;

std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string Slurp(const std::string& path) { return *ReadFile(path); }

AnalyzedTrack Analyzed(const std::string& sha, float value) {
  AnalyzedTrack t;
  t.sha256 = sha;
  t.body = absl::StrCat("\"sha256\":\"", sha, "\",\"duration_seconds\":1");
  t.embeddings.push_back({"m/e", 2, 1, {value, value + 1}, {}});
  return t;
}

TEST(LineLog, DropsTrailingPartialLine) {
  const std::string dir = FreshDir("bulk-linelog");
  std::ofstream(dir + "/r.jsonl")
      << "{\"id\":\"a\"}\n{\"id\":\"b\"}\n{\"id\":\"c";
  std::string contents;
  absl::StatusOr<LineLog> log = LineLog::Open(dir + "/r.jsonl", &contents);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(contents, "{\"id\":\"a\"}\n{\"id\":\"b\"}\n");
  EXPECT_EQ(Slurp(dir + "/r.jsonl"), contents);
  absl::StatusOr<int64_t> at = log->Append("{\"id\":\"c\"}");
  ASSERT_TRUE(at.ok());
  EXPECT_EQ(*at, static_cast<int64_t>(contents.size()));
  EXPECT_EQ(*log->ReadAt(*at, 10), "{\"id\":\"c\"}");
}

TEST(LineLog, FileWithoutNewlineIsEmptied) {
  const std::string dir = FreshDir("bulk-linelog-none");
  std::ofstream(dir + "/r.jsonl") << "{\"id\":";
  std::string contents;
  ASSERT_TRUE(LineLog::Open(dir + "/r.jsonl", &contents).ok());
  EXPECT_EQ(contents, "");
  EXPECT_EQ(fs::file_size(dir + "/r.jsonl"), 0u);
}

TEST(ResultSink, ResumeSkipsDoneAndRepairsCutLine) {
  const std::string dir = FreshDir("bulk-sink-resume");
  SinkOptions options{dir, EmbeddingMode::kPooled, 2};
  {
    auto sink = ResultSink::Open(options);
    ASSERT_TRUE(sink.ok()) << sink.status();
    ASSERT_TRUE((*sink)->Commit({"a", "a.wav"}, Analyzed("aa", 1)).ok());
    ASSERT_TRUE((*sink)->Commit({"b", "b.wav"}, Analyzed("bb", 3)).ok());
    // Two rows: the shard is full, so both lines are on disk now.
    ASSERT_TRUE((*sink)->Commit({"c", "c.wav"}, Analyzed("cc", 5)).ok());
    // "c" is only buffered: a crash here loses it, and nothing names it.
  }
  std::ofstream(dir + "/results.jsonl", std::ios::app) << "{\"id\":\"zz\",";
  auto sink = ResultSink::Open(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ((*sink)->recovered_lines(), 2);
  EXPECT_TRUE((*sink)->Done("a"));
  EXPECT_TRUE((*sink)->Done("b"));
  EXPECT_FALSE((*sink)->Done("c"));
  EXPECT_FALSE((*sink)->Done("zz"));
  EXPECT_TRUE((*sink)->HasResult("aa"));
  // A duplicate of an earlier run's track copies its line.
  ASSERT_TRUE((*sink)->CommitDuplicate({"a2", "x/a2.wav"}, "aa").ok());
  ASSERT_TRUE((*sink)
                  ->CommitError({"d", "d.wav"}, "", absl::NotFoundError("gone"))
                  .ok());
  ASSERT_TRUE((*sink)->Finish().ok());
  const std::vector<std::string> lines =
      absl::StrSplit(Slurp(dir + "/results.jsonl"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2],
            "{\"id\":\"a2\",\"path\":\"x/a2.wav\",\"duplicate_of\":\"a\","
            "\"sha256\":\"aa\",\"duration_seconds\":1,\"embeddings\":{\"m/e\":"
            "{\"shard\":\"m__e/shard-00000.npy\",\"row\":0,\"rows\":1}}}");
  EXPECT_THAT(lines[3],
              ::testing::HasSubstr("\"error\":{\"code\":\"NOT_FOUND\""));
}

TEST(ResultSink, ShardsWithoutResultLinesAreDroppedOnResume) {
  const std::string dir = FreshDir("bulk-sink-orphans");
  SinkOptions options{dir, EmbeddingMode::kPooled, 1};
  {
    auto sink = ResultSink::Open(options);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Commit({"a", "a.wav"}, Analyzed("aa", 1)).ok());
    ASSERT_TRUE((*sink)->Commit({"b", "b.wav"}, Analyzed("bb", 3)).ok());
  }
  // A crash after b's shard and index line but before its result line.
  const std::string results = Slurp(dir + "/results.jsonl");
  std::ofstream(dir + "/results.jsonl", std::ios::trunc)
      << results.substr(0, results.find('\n') + 1);
  std::ofstream(dir + "/embeddings/m__e/shard-00007.npy.tmp") << "partial";
  auto sink = ResultSink::Open(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_FALSE((*sink)->Done("b"));
  EXPECT_EQ(
      Slurp(dir + "/embeddings/m__e/index.jsonl"),
      "{\"id\":\"a\",\"shard\":\"shard-00000.npy\",\"row\":0,\"rows\":1}\n");
  EXPECT_TRUE(fs::exists(dir + "/embeddings/m__e/shard-00000.npy"));
  EXPECT_FALSE(fs::exists(dir + "/embeddings/m__e/shard-00001.npy"));
  EXPECT_FALSE(fs::exists(dir + "/embeddings/m__e/shard-00007.npy.tmp"));
  // Redoing b writes a fresh shard and exactly one index line for it.
  ASSERT_TRUE((*sink)->Commit({"b", "b.wav"}, Analyzed("bb", 3)).ok());
  ASSERT_TRUE((*sink)->Finish().ok());
  EXPECT_THAT(Slurp(dir + "/embeddings/m__e/index.jsonl"),
              ::testing::EndsWith("{\"id\":\"b\",\"shard\":\"shard-00001.npy\","
                                  "\"row\":0,\"rows\":1}\n"));
}

}  // namespace
}  // namespace audiotag::bulk
