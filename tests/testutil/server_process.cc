#include "tests/testutil/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace audiotag::testing {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Polls for the child's exit until `deadline`; true when it exited.
bool WaitExit(pid_t pid, absl::Time deadline, int* code) {
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return true;
    }
    if (r < 0 || absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& out_path,
            const std::string& err_path) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  const int null = open("/dev/null", O_RDONLY);
  dup2(null, 0);
  dup2(out, 1);
  dup2(err, 2);
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  _exit(127);
}

}  // namespace

std::string BinaryPath(const std::string& name) {
  return absl::StrCat(AUDIOTAG_BINARY_DIR, "/bin/", name);
}

std::string NewTempDir(const std::string& name) {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern =
      absl::StrCat(base ? base : "/tmp", "/", name, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) return "";
  return pattern;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& repository, const std::vector<std::string>& extra_flags,
    absl::Duration timeout) {
  const std::string dir = NewTempDir("audiotag-server");
  const std::string port_file = dir + "/port";
  const std::string log = dir + "/server.log";
  std::vector<std::string> argv = {BinaryPath("audiotag-server"), "--port=0",
                                   "--port_file=" + port_file,
                                   "--model_repository=" + repository};
  // Tests run in parallel: no fixed metrics port unless a test asks for one.
  if (std::none_of(extra_flags.begin(), extra_flags.end(),
                   [](const std::string& f) {
                     return f.rfind("--metrics_port", 0) == 0;
                   })) {
    argv.push_back("--metrics_port=0");
  }
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  const pid_t pid = Spawn(argv, dir + "/server.out", log);
  if (pid < 0) return absl::InternalError("fork failed");
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string port = ReadAll(port_file);
    if (!port.empty() && port.back() == '\n') {
      return std::unique_ptr<ServerProcess>(
          new ServerProcess(pid, std::stoi(port), log));
    }
    int code = 0;
    if (WaitExit(pid, absl::Now(), &code)) {
      return absl::InternalError(absl::StrCat("audiotag-server exited with ",
                                              code, " before serving:\n",
                                              ReadAll(log)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  kill(pid, SIGKILL);
  int code = 0;
  WaitExit(pid, absl::InfiniteFuture(), &code);
  return absl::DeadlineExceededError(
      absl::StrCat("audiotag-server did not start:\n", ReadAll(log)));
}

ServerProcess::~ServerProcess() {
  if (exited_) return;
  kill(pid_, SIGKILL);
  int code = 0;
  WaitExit(pid_, absl::InfiniteFuture(), &code);
}

absl::StatusOr<int> ServerProcess::Terminate(absl::Duration timeout) {
  if (exited_) return absl::FailedPreconditionError("already exited");
  kill(pid_, SIGTERM);
  int code = 0;
  if (!WaitExit(pid_, absl::Now() + timeout, &code)) {
    return absl::DeadlineExceededError("server did not exit after SIGTERM");
  }
  exited_ = true;
  return code;
}

std::string ServerProcess::Log() const { return ReadAll(log_path_); }

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout) {
  const std::string dir = NewTempDir("audiotag-cmd");
  const pid_t pid = Spawn(argv, dir + "/out", dir + "/err");
  if (pid < 0) return absl::InternalError("fork failed");
  CommandResult result;
  if (!WaitExit(pid, absl::Now() + timeout, &result.exit_code)) {
    kill(pid, SIGKILL);
    WaitExit(pid, absl::InfiniteFuture(), &result.exit_code);
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " did not finish in time"));
  }
  result.out = ReadAll(dir + "/out");
  result.err = ReadAll(dir + "/err");
  return result;
}

}  // namespace audiotag::testing
