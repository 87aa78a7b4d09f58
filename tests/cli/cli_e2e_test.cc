// The audiotag CLI as a user runs it: the real binary against the real
// audiotag-server on a free port, over plaintext, TLS, mutual TLS and with
// bearer tokens; `health`; the tables; analyze's lines for several files.

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/model/test_models.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/pki.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string StatsRepository() {
  const std::string root = NewTempDir("audiotag-cli-models");
  WriteStatsModel(root, "stats");
  return root;
}

std::string WavFile(const std::string& name, double seconds = 2.0) {
  AudioSpec spec;
  spec.seconds = seconds;
  auto audio = MakeAudioFile(spec);
  EXPECT_TRUE(audio.ok()) << audio.status();
  auto path = WriteTempFile(name, audio.ok() ? *audio : "");
  EXPECT_TRUE(path.ok());
  return path.ok() ? *path : "";
}

CommandResult Cli(std::vector<std::string> args) {
  args.insert(args.begin(), BinaryPath("audiotag"));
  auto run = RunCommand(args);
  EXPECT_TRUE(run.ok()) << run.status();
  return run.ok() ? *run : CommandResult();
}

google::protobuf::Struct ParseObject(const std::string& json) {
  google::protobuf::Struct object;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &object).ok())
      << json;
  return object;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Every command that calls the server, with `flags` added; each must reach
// the server (exit 0) or each must fail, with `failure` in its stderr.
void ExpectEveryCommand(const std::string& address,
                        const std::vector<std::string>& flags, bool succeed,
                        const std::string& failure = "") {
  const std::string wav = WavFile("tls.wav");
  const std::string manifest_dir = NewTempDir("audiotag-cli-bulk");
  const std::string manifest = manifest_dir + "/catalog.jsonl";
  WriteTextFile(manifest,
                absl::StrCat("{\"id\":\"t1\",\"path\":\"", wav, "\"}\n"));
  const std::vector<std::vector<std::string>> commands = {
      {"models"},
      {"model", "stats"},
      {"analyze", wav},
      {"bench", "--synth_seconds=1", "--requests=2", "--duration_seconds=0"},
      {"bulk", manifest, "--output=" + manifest_dir + "/out",
       "--embeddings=none", "--max_retries=0"},
  };
  for (std::vector<std::string> args : commands) {
    const std::string name = args[0];
    args.push_back("--server=" + address);
    args.push_back("--timeout_seconds=20");
    args.insert(args.end(), flags.begin(), flags.end());
    const CommandResult run = Cli(args);
    if (name == "bulk") {
      // A track that fails is an error line in results.jsonl.
      const std::string results = ReadText(manifest_dir + "/out/results.jsonl");
      if (succeed) {
        EXPECT_EQ(run.exit_code, 0) << name << ": " << run.err;
        EXPECT_THAT(results, Not(HasSubstr("\"error\""))) << results;
      } else {
        EXPECT_THAT(results + run.err, HasSubstr(failure)) << name;
      }
      std::filesystem::remove_all(manifest_dir + "/out");
      continue;
    }
    if (succeed) {
      EXPECT_EQ(run.exit_code, 0) << name << ": " << run.err;
    } else {
      EXPECT_EQ(run.exit_code, 1) << name << ": " << run.out;
      EXPECT_THAT(run.err, HasSubstr(failure)) << name;
      EXPECT_THAT(run.err, HasSubstr("hint: ")) << name;
    }
  }
}

TEST(CliTls, ReachesATlsServerOnlyWithTlsFlags) {
  absl::StatusOr<Pki> made = MakePki();
  ASSERT_TRUE(made.ok()) << made.status();
  const Pki& pki = *made;
  auto server = ServerProcess::Start(
      StatsRepository(),
      {"--tls_cert=" + pki.server_cert(), "--tls_key=" + pki.server_key()});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  ExpectEveryCommand(address, {"--tls_ca=" + pki.ca()}, /*succeed=*/true);
  // Plaintext against TLS: the hint names the TLS flags.
  ExpectEveryCommand(address, {}, /*succeed=*/false, "UNAVAILABLE");
  const CommandResult plain = Cli({"models", "--server=" + address});
  EXPECT_THAT(plain.err, HasSubstr("--tls"));

  // The certificate names 127.0.0.1 and localhost, not other.example.
  EXPECT_EQ(Cli({"models", "--server=" + address, "--tls_ca=" + pki.ca(),
                 "--tls_server_name=localhost"})
                .exit_code,
            0);
  const CommandResult wrong_name =
      Cli({"models", "--server=" + address, "--tls_ca=" + pki.ca(),
           "--tls_server_name=other.example"});
  EXPECT_EQ(wrong_name.exit_code, 1);
  EXPECT_THAT(wrong_name.err, HasSubstr("--tls_server_name"));
  // --tls alone trusts the system's CAs, which did not sign this one.
  EXPECT_EQ(Cli({"models", "--server=" + address, "--tls"}).exit_code, 1);
}

TEST(CliTls, MutualTlsNeedsTheClientCertificate) {
  absl::StatusOr<Pki> made = MakePki();
  ASSERT_TRUE(made.ok()) << made.status();
  const Pki& pki = *made;
  auto server = ServerProcess::Start(
      StatsRepository(),
      {"--tls_cert=" + pki.server_cert(), "--tls_key=" + pki.server_key(),
       "--tls_client_ca=" + pki.ca()});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  ExpectEveryCommand(address,
                     {"--tls_ca=" + pki.ca(), "--tls_cert=" + pki.client_cert(),
                      "--tls_key=" + pki.client_key()},
                     /*succeed=*/true);
  ExpectEveryCommand(address, {"--tls_ca=" + pki.ca()}, /*succeed=*/false,
                     "UNAVAILABLE");
  const CommandResult anonymous =
      Cli({"models", "--server=" + address, "--tls_ca=" + pki.ca()});
  EXPECT_THAT(anonymous.err, HasSubstr("--tls_cert"));

  // Half a key pair, or a file that is not there, is a usage error.
  const CommandResult half =
      Cli({"models", "--server=" + address, "--tls_cert=" + pki.client_cert()});
  EXPECT_EQ(half.exit_code, 2);
  EXPECT_THAT(half.err, HasSubstr("--tls_key"));
  const CommandResult missing =
      Cli({"models", "--server=" + address, "--tls_ca=/nonexistent/ca.pem"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/ca.pem"));
}

TEST(CliAuth, SendsTheTokenFromAFileOrTheEnvironment) {
  const std::string dir = NewTempDir("audiotag-cli-tokens");
  WriteTextFile(dir + "/tokens", "# team tokens\nsecret-one\nsecret-two\n");
  WriteTextFile(dir + "/mine", "# mine\n\n  secret-two  \n");
  WriteTextFile(dir + "/wrong", "not-a-token\n");
  auto server = ServerProcess::Start(StatsRepository(),
                                     {"--auth_token_file=" + dir + "/tokens"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  ExpectEveryCommand(address, {"--auth_token_file=" + dir + "/mine"},
                     /*succeed=*/true);
  ExpectEveryCommand(address, {}, /*succeed=*/false, "UNAUTHENTICATED");
  ExpectEveryCommand(address, {"--auth_token_file=" + dir + "/wrong"},
                     /*succeed=*/false, "UNAUTHENTICATED");
  const CommandResult none = Cli({"models", "--server=" + address});
  EXPECT_THAT(none.err, HasSubstr("--auth_token_file"));
  EXPECT_THAT(none.err, HasSubstr("AUDIOTAG_TOKEN"));

  // $AUDIOTAG_TOKEN when there is no --auth_token_file.
  auto env =
      RunCommand({"/usr/bin/env", "AUDIOTAG_TOKEN=secret-one",
                  BinaryPath("audiotag"), "models", "--server=" + address});
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(env->exit_code, 0) << env->err;
  // Health stays open, as probes have no token.
  EXPECT_EQ(Cli({"health", "--server=" + address}).exit_code, 0);
}

TEST(CliHealth, ExitsZeroOnlyWhenServing) {
  auto server = ServerProcess::Start(MakeE2ERepository());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  CommandResult serving = Cli({"health", "--server=" + address});
  EXPECT_EQ(serving.exit_code, 0) << serving.err;
  EXPECT_EQ(serving.out, "SERVING\n");
  // A model name is a service too: ready, failed, unknown.
  EXPECT_EQ(Cli({"health", "--server=" + address, "--service=stats"}).exit_code,
            0);
  const CommandResult broken =
      Cli({"health", "--server=" + address, "--service=broken"});
  EXPECT_EQ(broken.exit_code, 1);
  EXPECT_EQ(broken.out, "NOT_SERVING\n");
  const CommandResult unknown =
      Cli({"health", "--server=" + address, "--service=no_such_model"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_THAT(unknown.err, HasSubstr("NOT_FOUND"));

  // A server with no ready model is not ready.
  auto empty = ServerProcess::Start(NewTempDir("audiotag-cli-empty"));
  ASSERT_TRUE(empty.ok()) << empty.status();
  const CommandResult not_ready =
      Cli({"health", "--server=" + (*empty)->address()});
  EXPECT_EQ(not_ready.exit_code, 1);
  EXPECT_EQ(not_ready.out, "NOT_SERVING\n");

  // Nothing listening.
  const int port = (*empty)->port();
  ASSERT_TRUE((*empty)->Terminate().ok());
  const CommandResult down =
      Cli({"health", absl::StrCat("--server=127.0.0.1:", port),
           "--timeout_seconds=5"});
  EXPECT_EQ(down.exit_code, 1);
  EXPECT_THAT(down.err, HasSubstr("UNAVAILABLE"));
}

TEST(CliTables, ModelTablesShowWhyAModelFailed) {
  auto server = ServerProcess::Start(MakeE2ERepository());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  const CommandResult models =
      Cli({"models", "--server=" + address, "--format=table"});
  ASSERT_EQ(models.exit_code, 0) << models.err;
  // Each FAILED row is followed by its reason.
  const std::vector<std::string> lines = absl::StrSplit(models.out, '\n');
  int failed = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!absl::StrContains(lines[i], "FAILED")) continue;
    ++failed;
    ASSERT_LT(i + 1, lines.size());
    EXPECT_THAT(lines[i + 1], HasSubstr("reason: ")) << models.out;
    EXPECT_GT(lines[i + 1].size(), std::string("    reason: ").size() + 5);
  }
  EXPECT_EQ(failed, 2) << models.out;            // broken and typo
  EXPECT_THAT(models.out, HasSubstr("colour"));  // typo's unknown field

  const CommandResult one =
      Cli({"model", "broken", "--server=" + address, "--format=table"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_THAT(one.out, HasSubstr("MODEL"));
  EXPECT_THAT(one.out, HasSubstr("FAILED"));
  EXPECT_THAT(one.out, HasSubstr("reason: "));
  EXPECT_NE(one.out[0], '{') << "a table, not JSON: " << one.out;
  const CommandResult json = Cli({"model", "stats", "--server=" + address});
  EXPECT_EQ(ParseObject(json.out).fields().at("name").string_value(), "stats");
}

TEST(CliAnalyze, OneLinePerFileWithPathAndErrors) {
  auto server = ServerProcess::Start(StatsRepository());
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string good = WavFile("good.wav", 3.0);
  auto text = WriteTempFile("notes.txt", "not audio at all\n");
  ASSERT_TRUE(text.ok());
  const std::string missing = "/nonexistent/gone.wav";
  const CommandResult run = Cli(
      {"analyze", good, *text, missing, "--server=" + (*server)->address()});
  EXPECT_EQ(run.exit_code, 1) << "a file failed";
  const std::vector<std::string> lines =
      absl::StrSplit(run.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << run.out;

  const google::protobuf::Struct ok = ParseObject(lines[0]);
  EXPECT_EQ(ok.fields().at("path").string_value(), good);
  EXPECT_EQ(ok.fields().count("error"), 0u);
  const auto& results = ok.fields().at("results").list_value().values();
  ASSERT_EQ(results.size(), 1);
  bool saw_tags = false;
  for (const auto& output :
       results[0].struct_value().fields().at("outputs").list_value().values()) {
    const auto& fields = output.struct_value().fields();
    // Per-segment embeddings are off unless asked for, as in the proto.
    EXPECT_TRUE(fields.count("segments") == 0 ||
                fields.at("segments").list_value().values().empty())
        << lines[0];
    if (fields.count("tags") == 0) continue;
    for (const auto& tag : fields.at("tags").list_value().values()) {
      saw_tags = true;
      const auto& t = tag.struct_value().fields();
      EXPECT_TRUE(t.count("label") && t.count("score") && t.count("index"))
          << lines[0];
    }
  }
  EXPECT_TRUE(saw_tags) << lines[0];

  const google::protobuf::Struct bad = ParseObject(lines[1]);
  EXPECT_EQ(bad.fields().at("path").string_value(), *text);
  const auto& bad_error = bad.fields().at("error").struct_value().fields();
  EXPECT_EQ(bad_error.at("code").string_value(), "INVALID_ARGUMENT");
  EXPECT_FALSE(bad_error.at("message").string_value().empty());

  const google::protobuf::Struct gone = ParseObject(lines[2]);
  EXPECT_EQ(gone.fields().at("path").string_value(), missing);
  EXPECT_EQ(gone.fields()
                .at("error")
                .struct_value()
                .fields()
                .at("code")
                .string_value(),
            "NOT_FOUND");
}

TEST(CliAnalyze, MessageLimitErrorSaysHowToStream) {
  auto server =
      ServerProcess::Start(StatsRepository(), {"--max_message_bytes=100000"});
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string wav = WavFile("big.wav", 8.0);  // 256 kB
  const CommandResult unary =
      Cli({"analyze", wav, "--server=" + (*server)->address(),
           "--max_message_bytes=10000000"});
  EXPECT_EQ(unary.exit_code, 1);
  EXPECT_THAT(unary.err, HasSubstr("RESOURCE_EXHAUSTED"));
  EXPECT_THAT(unary.err, HasSubstr("AnalyzeStream"));
  EXPECT_THAT(unary.err, HasSubstr("--max_message_bytes"));
  // Following the advice works.
  const CommandResult streamed =
      Cli({"analyze", wav, "--server=" + (*server)->address(),
           "--max_message_bytes=50000"});
  EXPECT_EQ(streamed.exit_code, 0) << streamed.err;
}

}  // namespace
}  // namespace audiotag::testing
