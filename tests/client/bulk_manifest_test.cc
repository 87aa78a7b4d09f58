#include "client/bulk/manifest.h"

#include <filesystem>
#include <fstream>

#include "client/bulk/json_text.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag::bulk {
namespace {

using ::testing::HasSubstr;

TEST(Manifest, TextLinesArePathsAndIds) {
  auto tracks = ParseManifest("a.wav\n\n# comment\n /abs/b.mp3 \r\n",
                              "list.txt", "/data");
  ASSERT_TRUE(tracks.ok()) << tracks.status();
  ASSERT_EQ(tracks->size(), 2u);
  EXPECT_EQ((*tracks)[0].id, "a.wav");
  EXPECT_EQ((*tracks)[0].path, "/data/a.wav");
  EXPECT_EQ((*tracks)[1].id, "/abs/b.mp3");
  EXPECT_EQ((*tracks)[1].path, "/abs/b.mp3");
}

TEST(Manifest, CsvWithQuotesAndAnyColumnOrder) {
  auto tracks = ParseManifest(
      "title,path,id\n\"Hello, world\",x/a.flac,t1\n\"say "
      "\"\"hi\"\"\",b.ogg,t2\n",
      "m.csv", "/m");
  ASSERT_TRUE(tracks.ok()) << tracks.status();
  ASSERT_EQ(tracks->size(), 2u);
  EXPECT_EQ((*tracks)[0].id, "t1");
  EXPECT_EQ((*tracks)[0].path, "/m/x/a.flac");
  EXPECT_EQ((*tracks)[1].id, "t2");
}

TEST(Manifest, CsvWithoutIdColumnUsesPath) {
  auto tracks = ParseManifest("path\na.wav\n", "m.csv", "");
  ASSERT_TRUE(tracks.ok()) << tracks.status();
  EXPECT_EQ((*tracks)[0].id, "a.wav");
}

TEST(Manifest, CsvBadLinesNameTheLine) {
  auto missing = ParseManifest("id,file\n1,a.wav\n", "m.csv", "");
  EXPECT_THAT(missing.status().message(), HasSubstr("m.csv:1: the header"));
  auto fields = ParseManifest("id,path\n1,a.wav\n2\n", "m.csv", "");
  EXPECT_EQ(fields.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(fields.status().message(),
              HasSubstr("m.csv:3: expected 2 fields, got 1"));
  auto quote = ParseManifest("id,path\n1,\"a.wav\n", "m.csv", "");
  EXPECT_THAT(quote.status().message(), HasSubstr("m.csv:2: unterminated"));
}

TEST(Manifest, JsonlWithStringAndIntegerIds) {
  auto tracks = ParseManifest(
      "{\"id\": \"x\", \"path\": \"a.wav\"}\n{\"id\": 42, \"path\": "
      "\"b.wav\"}\n"
      "{\"path\": \"c.wav\", \"extra\": [1]}\n",
      "m.jsonl", "/j");
  ASSERT_TRUE(tracks.ok()) << tracks.status();
  ASSERT_EQ(tracks->size(), 3u);
  EXPECT_EQ((*tracks)[1].id, "42");
  EXPECT_EQ((*tracks)[2].id, "c.wav");
  EXPECT_EQ((*tracks)[2].path, "/j/c.wav");
}

TEST(Manifest, JsonlBadLinesNameTheLine) {
  auto syntax = ParseManifest("{\"path\": \"a\"}\n{oops\n", "m.jsonl", "");
  EXPECT_EQ(syntax.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.status().message(), HasSubstr("m.jsonl:2:"));
  auto no_path = ParseManifest("{\"id\": \"a\"}\n", "m.jsonl", "");
  EXPECT_THAT(no_path.status().message(), HasSubstr("m.jsonl:1: no \"path\""));
  auto bad_id =
      ParseManifest("{\"id\": [1], \"path\": \"a\"}\n", "m.jsonl", "");
  EXPECT_THAT(bad_id.status().message(), HasSubstr("\"id\" must be"));
}

TEST(Manifest, RepeatedIdIsAnError) {
  auto tracks = ParseManifest("a.wav\nb.wav\na.wav\n", "l.txt", "");
  EXPECT_THAT(tracks.status().message(),
              HasSubstr("l.txt:3: id 'a.wav' repeats the one on line 1"));
}

TEST(Manifest, ListAudioFilesWalksRecursivelyByExtension) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(::testing::TempDir()) / "bulk-list";
  fs::remove_all(root);
  fs::create_directories(root / "x" / "y");
  for (const char* name : {"a.WAV", "x/b.mp3", "x/y/c.opus", "notes.txt",
                           "x/cover.jpg", "x/y/d.m4a"}) {
    std::ofstream(root / name) << "data";
  }
  auto tracks = ListAudioFiles(root.string());
  ASSERT_TRUE(tracks.ok()) << tracks.status();
  std::vector<std::string> ids;
  for (const Track& t : *tracks) ids.push_back(t.id);
  EXPECT_THAT(ids, ::testing::ElementsAre("a.WAV", "x/b.mp3", "x/y/c.opus",
                                          "x/y/d.m4a"));
  EXPECT_EQ(ListAudioFiles((root / "missing").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Manifest, ReadManifestResolvesAgainstItsFolder) {
  const std::string dir = ::testing::TempDir() + "/bulk-manifest";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/m.txt") << "sub/a.wav\n";
  auto tracks = ReadManifest(dir + "/m.txt");
  ASSERT_TRUE(tracks.ok()) << tracks.status();
  EXPECT_EQ((*tracks)[0].path, dir + "/sub/a.wav");
  EXPECT_EQ(ReadManifest(dir + "/none.txt").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(Manifest, PathsThatAreNotUtf8NameTheLine) {
  auto tracks = ParseManifest("a.wav\ncaf\xe9.wav\n", "list.txt", "");
  ASSERT_FALSE(tracks.ok());
  EXPECT_THAT(tracks.status().message(), HasSubstr("list.txt:2:"));
  EXPECT_THAT(tracks.status().message(), HasSubstr("UTF-8"));
  auto csv = ParseManifest("id,path\n\xff\xfe,a.wav\n", "m.csv", "");
  ASSERT_FALSE(csv.ok());
  EXPECT_THAT(csv.status().message(), HasSubstr("m.csv:2:"));
}

TEST(JsonText, StringsAreEscapedByProtobufAndReadBack) {
  const std::string tricky = "a\"b\\c\nd\te\x01 caf\xc3\xa9 \xe2\x80\xa8";
  const std::string json = JsonString(tricky);
  EXPECT_EQ(json.find('\n'), std::string::npos) << json;
  auto parsed = ParseJsonObject("{\"s\":" + json + "}");
  ASSERT_TRUE(parsed.ok()) << parsed.status() << " " << json;
  EXPECT_EQ(StringField(*parsed, "s"), tricky);
  // Not UTF-8: still one valid JSON string, the bad bytes visible as '?'.
  auto bad = ParseJsonObject("{\"s\":" + JsonString("x\xff\xfey") + "}");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(StringField(*bad, "s"), "x??y");
}

}  // namespace
}  // namespace audiotag::bulk
