// --help, --version and --dry_run of the real audiotag and audiotag-server
// binaries, and every command line in README.md and docs/*.md run through
// them with --dry_run: the flags the docs show exist and parse.

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(AUDIOTAG_SOURCE_DIR) + "/" + relative);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Names of the flags ABSL_FLAG defines in a source file.
std::vector<std::string> FlagsDefinedIn(const std::string& relative) {
  const std::string text = ReadSource(relative);
  EXPECT_FALSE(text.empty()) << relative;
  std::vector<std::string> names;
  static const std::regex kFlag(R"(ABSL_FLAG\(\s*[^,]+,\s*(\w+)\s*,)");
  for (std::sregex_iterator it(text.begin(), text.end(), kFlag), end; it != end;
       ++it) {
    names.push_back((*it)[1]);
  }
  return names;
}

CommandResult Exec(const std::string& binary, std::vector<std::string> args) {
  args.insert(args.begin(), BinaryPath(binary));
  auto run = RunCommand(args);
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? *run : CommandResult();
}

void ExpectNoBuildPaths(const std::string& text) {
  EXPECT_THAT(text, Not(HasSubstr(AUDIOTAG_SOURCE_DIR)));
  EXPECT_THAT(text, Not(HasSubstr(AUDIOTAG_BINARY_DIR)));
  EXPECT_THAT(text, Not(HasSubstr(".cc")));
  EXPECT_THAT(text, Not(HasSubstr("No flags matched")));
}

const std::vector<std::string> kConnectionFlags = {
    "server",          "timeout_seconds", "tls",
    "tls_ca",          "tls_cert",        "tls_key",
    "tls_server_name", "auth_token_file", "dry_run"};

TEST(CliHelp, MainHelpListsCommandsAndCommonFlags) {
  for (const char* form : {"--help", "-h", "--helpfull", "help"}) {
    const CommandResult help = Exec("audiotag", {form});
    EXPECT_EQ(help.exit_code, 0) << form;
    for (const std::string command :
         {"analyze", "models", "model", "health", "bulk", "bench", "fewshot"}) {
      EXPECT_THAT(help.out, HasSubstr("  " + command + " ")) << form;
    }
    for (const std::string& flag : kConnectionFlags) {
      EXPECT_THAT(help.out, HasSubstr("--" + flag + "=")) << form;
    }
    ExpectNoBuildPaths(help.out);
  }
}

TEST(CliHelp, EachCommandListsItsFlagsWithDefaultsAndAnExample) {
  const std::vector<std::string> request = {"models",    "outputs", "top_k",
                                            "threshold", "pooling", "priority",
                                            "request_id"};
  std::map<std::string, std::vector<std::string>> expected = {
      {"analyze", request},
      {"models", {"format"}},
      {"model", {"format"}},
      {"health", {"service"}},
      {"bulk", FlagsDefinedIn("client/bulk_command.cc")},
      {"bench", FlagsDefinedIn("client/bench_command.cc")},
      {"fewshot", FlagsDefinedIn("client/fewshot/fewshot_command.cc")},
  };
  expected["analyze"].push_back("max_message_bytes");
  expected["analyze"].push_back("format");
  for (const std::string& flag : request) {
    if (flag != "outputs") expected["bulk"].push_back(flag);
    expected["bench"].push_back(flag);
  }
  expected["bulk"].push_back("concurrency");
  for (auto& [command, flags] : expected) {
    const CommandResult help = Exec("audiotag", {command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_THAT(help.out, HasSubstr("usage: audiotag " + command)) << command;
    EXPECT_THAT(help.out, HasSubstr("example:\n  audiotag " + command))
        << command;
    flags.insert(flags.end(), kConnectionFlags.begin(), kConnectionFlags.end());
    for (const std::string& flag : flags) {
      EXPECT_THAT(help.out, HasSubstr("  --" + flag + "="))
          << command << " --help lacks --" << flag;
    }
    ExpectNoBuildPaths(help.out);
    // The same from `audiotag help COMMAND`.
    EXPECT_EQ(Exec("audiotag", {"help", command}).out, help.out);
  }
  // Defaults are shown.
  EXPECT_THAT(Exec("audiotag", {"analyze", "--help"}).out,
              HasSubstr("--outputs=tags,activations,embeddings\n"));
  EXPECT_THAT(Exec("audiotag", {"bench", "--help"}).out,
              HasSubstr("--concurrency=1\n"));
}

TEST(CliHelp, ServerHelpListsEveryServerFlag) {
  const CommandResult help = Exec("audiotag-server", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  const std::vector<std::string> flags = FlagsDefinedIn("server/main.cc");
  EXPECT_GT(flags.size(), 10u);
  for (const std::string& flag : flags) {
    EXPECT_THAT(help.out, HasSubstr("  --" + flag + "=")) << flag;
  }
  EXPECT_THAT(help.out, HasSubstr("--dry_run="));
  ExpectNoBuildPaths(help.out);
}

// scripts/run-benchmarks.sh and docs/performance.md call it by hand too.
TEST(CliHelp, ForwardBenchHelpListsItsFlagsAndRejectsUnknownOnes) {
#ifndef AUDIOTAG_HAVE_FORWARD_BENCH
  GTEST_SKIP() << "built with AUDIOTAG_BUILD_BENCH=OFF";
#endif
  const CommandResult help = Exec("audiotag_forward_bench", {"--help"});
  EXPECT_EQ(help.exit_code, 0);
  const std::vector<std::string> flags =
      FlagsDefinedIn("bench/forward_bench.cc");
  EXPECT_GE(flags.size(), 5u);
  for (const std::string& flag : flags) {
    EXPECT_THAT(help.out, HasSubstr("  --" + flag + "=")) << flag;
  }
  ExpectNoBuildPaths(help.out);
  const CommandResult bad = Exec("audiotag_forward_bench", {"--batch_size=4"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--batch_size"));
}

TEST(CliVersion, BothBinariesPrintTheBuildsVersion) {
  for (const std::string binary : {"audiotag", "audiotag-server"}) {
    const CommandResult version = Exec(binary, {"--version"});
    EXPECT_EQ(version.exit_code, 0) << binary;
    const std::regex form(binary + R"( (\S+) \(git (\S+), (\S+) build\)\n)");
    std::smatch m;
    ASSERT_TRUE(std::regex_match(version.out, m, form)) << version.out;
    EXPECT_EQ(m[1], AUDIOTAG_PROJECT_VERSION);
    EXPECT_EQ(m[3], AUDIOTAG_BUILD_TYPE_NAME);
    // A commit of this repository (the build's HEAD, "-dirty" with local
    // changes), unless built outside git.
    const std::string full_revision = m[2];
    if (full_revision == "unknown") continue;
    absl::string_view revision_view = full_revision;
    absl::ConsumeSuffix(&revision_view, "-dirty");
    const std::string revision(revision_view);
    auto git = RunCommand({"git", "-C", AUDIOTAG_SOURCE_DIR, "cat-file", "-e",
                           revision + "^{commit}"});
    if (git.ok() && git->exit_code != 127) {
      EXPECT_EQ(git->exit_code, 0) << revision << " is no commit";
    }
    EXPECT_THAT(version.out, Not(HasSubstr("NDEBUG")));
  }
}

TEST(CliDryRun, ChecksEverythingAndTouchesNothing) {
  struct Case {
    std::string binary;
    std::vector<std::string> args;
    int exit_code;
    std::string err;  // expected in stderr when exit_code != 0
  };
  const std::vector<Case> cases = {
      // No server listens on port 1 and no such files exist: still ok.
      {"audiotag",
       {"analyze", "/nonexistent/a.mp3", "--server=127.0.0.1:1"},
       0,
       ""},
      {"audiotag", {"models", "--tls_ca=/nonexistent/ca.pem"}, 0, ""},
      {"audiotag", {"model", "x", "--format=table"}, 0, ""},
      {"audiotag", {"health", "--service=liveness"}, 0, ""},
      {"audiotag", {"bench", "--audio=/nonexistent/a.wav", "--rate=3"}, 0, ""},
      {"audiotag",
       {"bulk", "/nonexistent/catalog.jsonl", "--output=/nonexistent/out",
        "--shard_count=4", "--shard_index=1"},
       0,
       ""},
      // What a real run would reject, with exit code 2.
      {"audiotag", {"analyze"}, 2, "name at least one file"},
      {"audiotag", {"analyze", "a.wav", "--top_k=many"}, 2, "--top_k"},
      {"audiotag",
       {"analyze", "a.wav", "--outputs=everything"},
       2,
       "everything"},
      {"audiotag", {"models", "--no_such_flag"}, 2, "--no_such_flag"},
      {"audiotag", {"models", "--top_k=3"}, 2, "not a flag of"},
      {"audiotag", {"model"}, 2, "name exactly one model"},
      {"audiotag", {"models", "--format=yaml"}, 2, "--format"},
      {"audiotag", {"models", "--tls_cert=c.pem"}, 2, "--tls_key"},
      {"audiotag", {"bench"}, 2, "--synth_seconds"},
      {"audiotag",
       {"bulk", "--manifest=/nonexistent/m.jsonl", "--output=o"},
       0,
       ""},
      {"audiotag",
       {"bulk", "m.jsonl", "--output=o", "--shard-count=4"},
       2,
       "unknown flag --shard-count"},
      {"audiotag", {"bulk", "m.jsonl"}, 2, "--output"},
      // The request flags bulk shares with analyze (client/request_flags.h).
      {"audiotag",
       {"bulk", "m.jsonl", "--output=o", "--priority=urgent"},
       2,
       "--priority must be interactive or bulk"},
      {"audiotag",
       {"bulk", "m.jsonl", "--output=o", "--pooling=median"},
       2,
       "--pooling must be mean or max"},
      {"audiotag",
       {"bulk", "m.jsonl", "--output=o", "--outputs=tags"},
       2,
       "not a flag of"},
      {"audiotag", {"frobnicate"}, 2, "unknown command"},
      {"audiotag-server", {"--model_repository=/nonexistent"}, 0, ""},
      {"audiotag-server", {"--port=99999"}, 2, "--port"},
      {"audiotag-server", {"--tls_cert=c.pem"}, 2, "--tls_key"},
      {"audiotag-server", {"--no_such_flag=1"}, 2, "--no_such_flag"},
      {"audiotag-server", {"extra"}, 2, "positional"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--dry_run");
    const CommandResult run = Exec(c.binary, args);
    const std::string what =
        absl::StrCat(c.binary, " ", absl::StrJoin(args, " "));
    EXPECT_EQ(run.exit_code, c.exit_code) << what << "\n" << run.err;
    if (c.exit_code == 0) {
      EXPECT_EQ(run.out, "ok\n") << what;
    } else {
      EXPECT_THAT(run.err, HasSubstr(c.err)) << what;
      EXPECT_EQ(run.out, "") << what;
    }
  }
}

// --- Every command line in the docs.

struct DocCommand {
  std::string where;  // file:line
  std::vector<std::string> argv;
};

// Splits a shell command line into words: quotes and backslashes as a
// shell does, no expansion ($VAR stays as written, harmless under
// --dry_run).
std::vector<std::string> ShellWords(const std::string& line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quote != 0) {
      if (c == quote) {
        quote = 0;
      } else {
        word += c;
      }
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < line.size()) {
      word += line[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t') {
      if (in_word) words.push_back(word);
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (in_word) words.push_back(word);
  return words;
}

bool IsOurBinary(const std::string& word, std::string* binary) {
  for (const std::string name : {"audiotag-server", "audiotag"}) {
    if (word == name || absl::EndsWith(word, "/" + name)) {
      *binary = name;
      return true;
    }
  }
  return false;
}

// Command lines in ``` blocks that run audiotag or audiotag-server.
std::vector<DocCommand> DocCommands(const fs::path& file,
                                    const std::string& relative) {
  std::ifstream in(file);
  std::vector<DocCommand> commands;
  std::string line;
  std::string pending;
  int pending_line = 0;
  bool in_block = false;
  for (int number = 1; std::getline(in, line); ++number) {
    if (absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "```")) {
      in_block = !in_block;
      pending.clear();
      continue;
    }
    if (!in_block) continue;
    if (pending.empty()) pending_line = number;
    // A trailing backslash continues the command on the next line.
    if (absl::EndsWith(line, "\\")) {
      pending += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    const std::string full = pending + line;
    pending.clear();
    // Shell comments, and the commands of a pipeline or && chain.
    const std::string code = full.substr(0, full.find(" #"));
    for (absl::string_view part :
         absl::StrSplit(code, absl::ByAnyChar("|;&"), absl::SkipWhitespace())) {
      std::vector<std::string> words = ShellWords(std::string(part));
      size_t first = 0;
      // Leading "$ " prompts and VAR=value assignments.
      while (first < words.size() &&
             (words[first] == "$" ||
              std::regex_match(words[first], std::regex(R"(\w+=.*)")))) {
        ++first;
      }
      std::string binary;
      if (first >= words.size() || !IsOurBinary(words[first], &binary)) {
        continue;
      }
      // Program output, such as "audiotag bench: closed loop, ...".
      if (first + 1 < words.size() &&
          (absl::EndsWith(words[first + 1], ":") ||
           (first + 2 < words.size() && words[first + 2] == ":"))) {
        continue;
      }
      DocCommand command;
      command.where = absl::StrCat(relative, ":", pending_line);
      command.argv.push_back(BinaryPath(binary));
      for (size_t i = first + 1; i < words.size(); ++i) {
        // Output redirections are the shell's, not the binary's.
        if (words[i] == ">" || words[i] == "2>" || words[i] == "<") {
          ++i;
          continue;
        }
        if (absl::StartsWith(words[i], ">") || words[i] == "2>&1") continue;
        command.argv.push_back(words[i]);
      }
      commands.push_back(command);
    }
  }
  return commands;
}

TEST(DocsCommands, EveryDocumentedCommandLineParses) {
  const fs::path root = AUDIOTAG_SOURCE_DIR;
  std::vector<std::pair<fs::path, std::string>> files = {
      {root / "README.md", "README.md"}};
  for (const auto& entry : fs::directory_iterator(root / "docs")) {
    if (entry.path().extension() == ".md") {
      files.push_back(
          {entry.path(), "docs/" + entry.path().filename().string()});
    }
  }
  int checked = 0;
  std::set<std::string> binaries;
  for (const auto& [path, relative] : files) {
    for (DocCommand command : DocCommands(path, relative)) {
      command.argv.push_back("--dry_run");
      auto run = RunCommand(command.argv);
      ASSERT_TRUE(run.ok()) << run.status();
      EXPECT_EQ(run->exit_code, 0)
          << command.where << ": "
          << absl::StrJoin(command.argv.begin() + 1, command.argv.end(), " ")
          << "\n"
          << run->err;
      EXPECT_EQ(run->out, "ok\n") << command.where;
      binaries.insert(fs::path(command.argv[0]).filename().string());
      ++checked;
    }
  }
  // The docs do show both binaries at work.
  EXPECT_GT(checked, 10);
  EXPECT_EQ(binaries.size(), 2u);
}

}  // namespace
}  // namespace audiotag::testing
