#ifndef AUDIOTAG_TESTS_TESTUTIL_SERVER_PROCESS_H_
#define AUDIOTAG_TESTS_TESTUTIL_SERVER_PROCESS_H_

// Runs the real audiotag-server binary as a child process on a free port, for
// end-to-end tests, and runs the real CLI against it.

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace audiotag::testing {

// Path of a binary built into build/bin (AUDIOTAG_BINARY_DIR/bin/<name>).
std::string BinaryPath(const std::string& name);

class ServerProcess {
 public:
  // Starts audiotag-server with `--model_repository=<repository>`, a free
  // port, and `extra_flags`; waits until it is serving (port file written)
  // or until `timeout`.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& repository,
      const std::vector<std::string>& extra_flags = {},
      absl::Duration timeout = absl::Seconds(60));

  // Kills the server if it still runs.
  ~ServerProcess();

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  pid_t pid() const { return pid_; }

  // Sends SIGTERM and waits for the exit; returns the exit code (or
  // 128+signal if it was killed by a signal).
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(60));

  // Everything the server wrote to stderr so far.
  std::string Log() const;

 private:
  ServerProcess(pid_t pid, int port, std::string log_path)
      : pid_(pid), port_(port), log_path_(std::move(log_path)) {}

  pid_t pid_;
  int port_;
  std::string log_path_;
  bool exited_ = false;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `argv` (argv[0] a path), waits for it, and captures its output.
absl::StatusOr<CommandResult> RunCommand(
    const std::vector<std::string>& argv,
    absl::Duration timeout = absl::Seconds(120));

// A fresh folder under the test's temporary directory.
std::string NewTempDir(const std::string& name);

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_TESTUTIL_SERVER_PROCESS_H_
