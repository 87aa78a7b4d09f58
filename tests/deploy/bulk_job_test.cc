// The Kubernetes bulk-tagging Job runs as shipped: its literal container
// command and args, read from deploy/jobs/bulk-tagging/job.yaml, run the real
// `audiotag bulk` once per completion index (as the Indexed Job's pods do)
// against a real server. Only what a cluster provides is replaced: the
// server address (a server on a free port), the volume mount paths (temp
// folders) and the catalog in the manifest ConfigMap (generated files).

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/audiotag_client.h"
#include "client/bulk/json_text.h"
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

// The Job's first container as JSON: {"command", "args", "mounts":
// {name: path}, "completions", "configmap_volumes": {volume: configmap}}.
Struct JobContainer(const std::string& yaml_path) {
  const std::string script = R"(
import json, sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
spec = job["spec"]
pod = spec["template"]["spec"]
c = pod["containers"][0]
print(json.dumps({
    "command": c.get("command", []),
    "args": c.get("args", []),
    "mounts": {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])},
    "completions": spec.get("completions", 1),
}))
)";
  auto result = RunCommand({"/usr/bin/python3", "-c", script, yaml_path});
  EXPECT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0) << result->err;
  absl::StatusOr<Struct> parsed = ParseJsonObject(result->out);
  EXPECT_TRUE(parsed.ok()) << result->out;
  return parsed.ok() ? *parsed : Struct();
}

std::vector<std::string> Strings(const Struct& s, const std::string& key) {
  std::vector<std::string> out;
  for (const auto& v : s.fields().at(key).list_value().values()) {
    out.push_back(v.string_value());
  }
  return out;
}

TEST(BulkJobManifest, LiteralJobArgsTagTheCatalogAcrossAllIndexes) {
  const std::string job_yaml =
      absl::StrCat(AUDIOTAG_SOURCE_DIR, "/deploy/jobs/bulk-tagging/job.yaml");
  const Struct job = JobContainer(job_yaml);
  ASSERT_TRUE(job.fields().contains("args"));
  const std::vector<std::string> command = Strings(job, "command");
  const std::vector<std::string> args = Strings(job, "args");
  const int completions =
      static_cast<int>(job.fields().at("completions").number_value());
  ASSERT_EQ(command.size(), 1u);
  ASSERT_GE(completions, 1);

  const std::string repository = NewTempDir("bulk-job-models");
  WriteStatsModel(repository, "stats");
  auto server = ServerProcess::Start(repository, {"--metrics_port=0"});
  ASSERT_TRUE(server.ok()) << server.status();

  // Each volume mount becomes a temp folder.
  const fs::path root = NewTempDir("bulk-job");
  std::map<std::string, std::string> mounts;  // mountPath -> temp folder
  for (const auto& [name, path] :
       job.fields().at("mounts").struct_value().fields()) {
    const fs::path local = root / name;
    fs::create_directories(local);
    mounts[path.string_value()] = local.string();
  }

  // The container's args with cluster paths and the address replaced.
  std::string manifest_path;
  std::vector<std::string> argv = {
      BinaryPath(fs::path(command[0]).filename().string())};
  bool replaced_server = false;
  for (const std::string& arg : args) {
    std::string local = arg;
    if (absl::StartsWith(arg, "--server=")) {
      local = "--server=" + (*server)->address();
      replaced_server = true;
    }
    for (const auto& [mount, folder] : mounts) {
      const size_t at = local.find("=" + mount);
      if (at != std::string::npos && (local.size() == at + 1 + mount.size() ||
                                      local[at + 1 + mount.size()] == '/')) {
        local.replace(at + 1, mount.size(), folder);
        break;  // the temp folder may itself be under a mount path (/tmp)
      }
    }
    if (absl::StartsWith(local, "--manifest=")) {
      manifest_path = local.substr(11);
    } else if (!absl::StartsWith(local, "-") && local != "bulk") {
      manifest_path = local;  // given as the positional argument
    }
    argv.push_back(local);
  }
  ASSERT_TRUE(replaced_server) << "the Job passes no --server";
  ASSERT_FALSE(manifest_path.empty()) << "the Job passes no manifest";

  // The ConfigMap's manifest.txt: the same format (one path per line) with
  // generated files in four formats.
  const char* formats[] = {"flac", "mp3", "wav", "ogg"};
  std::set<std::string> catalog;
  {
    fs::create_directories(fs::path(manifest_path).parent_path());
    std::ofstream manifest(manifest_path);
    for (int i = 0; i < 12; ++i) {
      AudioSpec spec;
      spec.format = formats[i % 4];
      spec.seconds = 1 + i % 3;
      spec.frequencies = {300.0 + 45 * i};
      absl::StatusOr<std::string> bytes = MakeAudioFile(spec);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      const fs::path path =
          root / "catalog" / absl::StrFormat("%06d.%s", i + 1, spec.format);
      fs::create_directories(path.parent_path());
      std::ofstream(path, std::ios::binary) << *bytes;
      manifest << path.string() << "\n";
      catalog.insert(path.string());
    }
  }

  // One run per completion index, like the Indexed Job's pods.
  for (int index = 0; index < completions; ++index) {
    ASSERT_EQ(setenv("JOB_COMPLETION_INDEX", std::to_string(index).c_str(), 1),
              0);
    auto run = RunCommand(argv);
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->exit_code, 0)
        << "index " << index << ": " << absl::StrJoin(argv, " ") << "\n"
        << run->err;
  }
  unsetenv("JOB_COMPLETION_INDEX");

  // Together the shards tag every track exactly once.
  std::multiset<std::string> tagged;
  std::string output_dir;
  for (const auto& [mount, folder] : mounts) {
    for (const std::string& arg : argv) {
      if (arg == "--output=" + folder) output_dir = folder;
    }
  }
  ASSERT_FALSE(output_dir.empty()) << "--output is not on a volume mount";
  int shard_dirs = 0;
  for (const fs::directory_entry& dir : fs::directory_iterator(output_dir)) {
    ++shard_dirs;
    absl::StatusOr<std::string> text =
        ReadFile((dir.path() / "results.jsonl").string());
    ASSERT_TRUE(text.ok()) << dir.path();
    for (absl::string_view line :
         absl::StrSplit(*text, '\n', absl::SkipEmpty())) {
      absl::StatusOr<Struct> entry = ParseJsonObject(line);
      ASSERT_TRUE(entry.ok()) << line;
      EXPECT_FALSE(entry->fields().contains("error")) << line;
      EXPECT_TRUE(entry->fields().at("tags").struct_value().fields().contains(
          "stats/levels"))
          << line;
      tagged.insert(StringField(*entry, "path"));
    }
    EXPECT_TRUE(fs::exists(dir.path() / "summary.json"));
  }
  EXPECT_EQ(shard_dirs, completions);
  EXPECT_EQ(tagged, std::multiset<std::string>(catalog.begin(), catalog.end()));
}

}  // namespace
}  // namespace audiotag::testing
