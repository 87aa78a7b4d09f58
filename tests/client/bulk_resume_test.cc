// Resume: what a run finds after a crash (cut lines, shards without lines).

#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/audiotag_client.h"
#include "client/bulk/durable_file.h"
#include "client/bulk/npy.h"
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
    ASSERT_TRUE((*sink)->Commit({"c", "c.wav"}, Analyzed("cc", 5)).ok());
    // No Finish: a SIGKILL here keeps every committed line (and its rows),
    // since they are written at once.
  }
  std::ofstream(dir + "/results.jsonl", std::ios::app) << "{\"id\":\"zz\",";
  auto sink = ResultSink::Open(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_EQ((*sink)->recovered_lines(), 3);
  EXPECT_EQ((*sink)->dropped_lines(), 0);
  EXPECT_TRUE((*sink)->Done("a"));
  EXPECT_TRUE((*sink)->Done("b"));
  EXPECT_TRUE((*sink)->Done("c"));
  EXPECT_FALSE((*sink)->Done("zz"));
  EXPECT_TRUE((*sink)->HasResult("aa"));
  // A duplicate of an earlier run's track copies its line.
  ASSERT_TRUE((*sink)->CommitDuplicate({"a2", "x/a2.wav"}, "aa").ok());
  ASSERT_TRUE((*sink)
                  ->CommitError({"d", "d.wav"}, "", absl::NotFoundError("gone"))
                  .ok());
  EXPECT_TRUE((*sink)->Failed("d"));
  EXPECT_FALSE((*sink)->Failed("a2"));
  ASSERT_TRUE((*sink)->Finish().ok());
  const std::vector<std::string> lines =
      absl::StrSplit(Slurp(dir + "/results.jsonl"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(lines[3],
            "{\"id\":\"a2\",\"path\":\"x/a2.wav\",\"duplicate_of\":\"a\","
            "\"sha256\":\"aa\",\"duration_seconds\":1,\"embeddings\":{\"m/e\":"
            "{\"shard\":\"m__e/shard-00000.npy\",\"row\":0,\"rows\":1}}}");
  EXPECT_EQ(lines[4],
            "{\"id\":\"d\",\"path\":\"d.wav\",\"error\":{\"code\":"
            "\"NOT_FOUND\",\"message\":\"gone\"}}");
  // Two rows per shard: a and b in the first, c in the second.
  EXPECT_TRUE(fs::exists(dir + "/embeddings/m__e/shard-00001.npy"));
  EXPECT_FALSE(fs::exists(dir + "/embeddings/m__e/shard-00002.npy"));
}

TEST(ResultSink, ErrorLinesAreRememberedAcrossRunsAndCopiedToDuplicates) {
  const std::string dir = FreshDir("bulk-sink-errors");
  SinkOptions options{dir, EmbeddingMode::kPooled, 4};
  {
    auto sink = ResultSink::Open(options);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)
                    ->CommitError({"bad", "bad.wav"}, "ff",
                                  absl::InvalidArgumentError("not audio"))
                    .ok());
    ASSERT_TRUE((*sink)->Finish().ok());
  }
  auto sink = ResultSink::Open(options);
  ASSERT_TRUE(sink.ok());
  EXPECT_TRUE((*sink)->Failed("bad"));
  ASSERT_TRUE((*sink)->CommitDuplicate({"bad2", "bad2.wav"}, "ff").ok());
  EXPECT_TRUE((*sink)->Failed("bad2"));
}

// Power loss: the result line reached the disk but its rows did not.
TEST(ResultSink, LinesWhoseRowsAreMissingAreDroppedAndRedone) {
  const std::string dir = FreshDir("bulk-sink-lost-rows");
  SinkOptions options{dir, EmbeddingMode::kPooled, 4};
  const std::string shard = dir + "/embeddings/m__e/shard-00000.npy";
  {
    auto sink = ResultSink::Open(options);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Commit({"a", "a.wav"}, Analyzed("aa", 1)).ok());
    ASSERT_TRUE((*sink)->Commit({"b", "b.wav"}, Analyzed("bb", 3)).ok());
    ASSERT_TRUE((*sink)->Commit({"c", "c.wav"}, Analyzed("cc", 5)).ok());
    ASSERT_TRUE((*sink)->CommitDuplicate({"c2", "c2.wav"}, "cc").ok());
    ASSERT_TRUE((*sink)->Finish().ok());
  }
  // Keep the header and a's row only.
  fs::resize_file(shard, 128 + 8);
  auto sink = ResultSink::Open(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_TRUE((*sink)->Done("a"));
  EXPECT_FALSE((*sink)->Done("b"));
  EXPECT_FALSE((*sink)->Done("c"));
  EXPECT_FALSE((*sink)->Done("c2"));
  EXPECT_EQ((*sink)->dropped_lines(), 3);
  EXPECT_EQ(
      Slurp(dir + "/embeddings/m__e/index.jsonl"),
      "{\"id\":\"a\",\"shard\":\"shard-00000.npy\",\"row\":0,\"rows\":1}\n");
  // b goes on in the same shard, right after a.
  ASSERT_TRUE((*sink)->Commit({"b", "b.wav"}, Analyzed("bb", 3)).ok());
  ASSERT_TRUE((*sink)->Finish().ok());
  const std::string npy = Slurp(shard);
  absl::StatusOr<NpyShape> shape = ParseNpyHeader(npy);
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->rows, 2);
  EXPECT_EQ(npy.size(), 128u + 2 * 8);
  float b0 = 0;
  std::memcpy(&b0, npy.data() + 128 + 8, 4);
  EXPECT_EQ(b0, 3);
  const std::vector<std::string> lines =
      absl::StrSplit(Slurp(dir + "/results.jsonl"), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[1], ::testing::HasSubstr("\"row\":1,\"rows\":1"));
}

// A SIGKILL between a track's rows (appended to the open shard) and its
// result line: the rows and index line are cut off on resume.
TEST(ResultSink, RowsOfATrackWithoutResultLineAreTruncated) {
  const std::string dir = FreshDir("bulk-sink-tail");
  SinkOptions options{dir, EmbeddingMode::kPooled, 4};
  const std::string folder = dir + "/embeddings/m__e";
  {
    auto sink = ResultSink::Open(options);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Commit({"a", "a.wav"}, Analyzed("aa", 1)).ok());
    ASSERT_TRUE((*sink)->Commit({"x", "x.wav"}, Analyzed("xx", 7)).ok());
  }
  const std::string results = Slurp(dir + "/results.jsonl");
  std::ofstream(dir + "/results.jsonl", std::ios::trunc)
      << results.substr(0, results.find('\n') + 1);
  ASSERT_EQ(fs::file_size(folder + "/shard-00000.npy"), 128u + 2 * 8);
  auto sink = ResultSink::Open(options);
  ASSERT_TRUE(sink.ok()) << sink.status();
  EXPECT_FALSE((*sink)->Done("x"));
  EXPECT_EQ(fs::file_size(folder + "/shard-00000.npy"), 128u + 8);
  absl::StatusOr<NpyShape> shape =
      ParseNpyHeader(Slurp(folder + "/shard-00000.npy"));
  ASSERT_TRUE(shape.ok());
  EXPECT_EQ(shape->rows, 1);
  EXPECT_EQ(
      Slurp(folder + "/index.jsonl"),
      "{\"id\":\"a\",\"shard\":\"shard-00000.npy\",\"row\":0,\"rows\":1}\n");
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
  // A SIGKILL after b's rows and index line but before its result line.
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
