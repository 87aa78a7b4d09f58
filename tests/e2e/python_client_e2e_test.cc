// An outside team's path: Python stubs generated from proto/ with Debian's
// tools (protoc + grpc_python_plugin, and python3-grpc-tools), the example
// client in client/python/ calling health, ListModels and Analyze against the
// real server, and a grpc.reflection.v1 client listing its services.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/testutil/audio_files.h"

namespace audiotag::testing {
namespace {

using ::testing::HasSubstr;

// Debian's interpreter, where python3-grpcio and python3-protobuf live (a
// python3 earlier on PATH may be another one).
constexpr char kPython[] = "/usr/bin/python3";

std::vector<std::string> ProtoFiles() {
  return {"audiotag/v1/audiotag.proto", "audiotag/v1/model_config.proto",
          "grpc_health/v1/health.proto", "grpc_reflection/v1/reflection.proto"};
}

std::string ProtoDir() { return std::string(AUDIOTAG_SOURCE_DIR) + "/proto"; }

// Runs `argv` with PYTHONPATH=`path`, through env(1).
absl::StatusOr<CommandResult> RunPython(const std::string& path,
                                        std::vector<std::string> args) {
  std::vector<std::string> argv = {"/usr/bin/env", "PYTHONPATH=" + path,
                                   kPython};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

void ExpectExampleClientWorks(const std::string& stubs,
                              const std::string& address) {
  AudioSpec spec;
  spec.seconds = 2;
  absl::StatusOr<std::string> audio = MakeAudioFile(spec);
  ASSERT_TRUE(audio.ok()) << audio.status();
  absl::StatusOr<std::string> file = WriteTempFile("clip.wav", *audio);
  ASSERT_TRUE(file.ok()) << file.status();
  auto run = RunPython(
      stubs,
      {std::string(AUDIOTAG_SOURCE_DIR) + "/client/python/audiotag_example.py",
       "--address", address, "--model", "stats", *file});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->err;
  EXPECT_THAT(run->out, HasSubstr("\"health\": \"SERVING\""));
  EXPECT_THAT(run->out, HasSubstr("\"stats\": \"READY\""));
  EXPECT_THAT(run->out, HasSubstr("\"broken\": \"FAILED\""));
  EXPECT_THAT(run->out, HasSubstr("\"model\": \"stats\""));
  EXPECT_THAT(run->out, HasSubstr("\"label\": \"loud\""));

  // A failing call reaches the user as code and message.
  auto bad = RunPython(stubs, {std::string(AUDIOTAG_SOURCE_DIR) +
                                   "/client/python/audiotag_example.py",
                               "--address", address, "--model", "nope", *file});
  ASSERT_TRUE(bad.ok()) << bad.status();
  EXPECT_EQ(bad->exit_code, 1);
  EXPECT_THAT(bad->err, HasSubstr("NOT_FOUND"));
}

class PythonClientE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start(MakeE2ERepository());
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(PythonClientE2E, StubsFromDebianProtocAndGrpcPythonPlugin) {
  const std::string out = NewTempDir("py-protoc");
  std::vector<std::string> argv = {
      "/usr/bin/protoc", "-I" + ProtoDir(), "--python_out=" + out,
      "--grpc_out=" + out,
      "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin"};
  for (const std::string& f : ProtoFiles()) argv.push_back(f);
  auto gen = RunCommand(argv);
  ASSERT_TRUE(gen.ok()) << gen.status();
  ASSERT_EQ(gen->exit_code, 0) << gen->err;
  ExpectExampleClientWorks(out, server_->address());
}

TEST_F(PythonClientE2E, StubsFromPython3GrpcTools) {
  const std::string out = NewTempDir("py-grpc-tools");
  std::vector<std::string> args = {"-m", "grpc_tools.protoc", "-I" + ProtoDir(),
                                   "--python_out=" + out,
                                   "--grpc_python_out=" + out};
  for (const std::string& f : ProtoFiles()) args.push_back(f);
  auto gen = RunPython(out, args);
  ASSERT_TRUE(gen.ok()) << gen.status();
  ASSERT_EQ(gen->exit_code, 0) << gen->err;
  ExpectExampleClientWorks(out, server_->address());
}

TEST_F(PythonClientE2E, ReflectionV1ListsTheServices) {
  const std::string out = NewTempDir("py-reflection");
  auto gen = RunCommand({"/usr/bin/protoc", "-I" + ProtoDir(),
                         "--python_out=" + out, "--grpc_out=" + out,
                         "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin",
                         "grpc_reflection/v1/reflection.proto"});
  ASSERT_TRUE(gen.ok()) << gen.status();
  ASSERT_EQ(gen->exit_code, 0) << gen->err;
  auto run = RunPython(out, {std::string(AUDIOTAG_SOURCE_DIR) +
                                 "/tests/e2e/reflection_v1_list.py",
                             server_->address()});
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->exit_code, 0) << run->err;
  EXPECT_THAT(run->out, HasSubstr("audiotag.v1.AudioTagger\n"));
  EXPECT_THAT(run->out, HasSubstr("grpc.health.v1.Health\n"));
  EXPECT_THAT(run->out, HasSubstr("grpc.reflection.v1.ServerReflection\n"));
  EXPECT_THAT(run->out,
              HasSubstr("grpc.reflection.v1alpha.ServerReflection\n"));
  EXPECT_THAT(run->out,
              HasSubstr("methods: Analyze AnalyzeStream ListModels GetModel"));
}

}  // namespace
}  // namespace audiotag::testing
