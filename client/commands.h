#ifndef AUDIOTAG_CLIENT_COMMANDS_H_
#define AUDIOTAG_CLIENT_COMMANDS_H_

// The CLI's long-running commands, each in its own file. `args` are the
// positional arguments after the command name; flags are absl flags defined
// in the command's own file. Each returns the process exit code: 2 for a
// usage error (a bad flag value, a missing argument). Under --dry_run each
// checks its flags and arguments as a real run would, then returns
// FinishDryRun() before reading any file or calling any server.

#include <string>
#include <vector>

namespace audiotag {

// Under --dry_run, a command that has checked its flags and arguments calls
// this instead of doing anything: prints "ok" and returns exit code 0.
int FinishDryRun();

// audiotag bulk: tag and embed a whole catalog (client/bulk_command.cc).
int RunBulkCommand(const std::vector<std::string>& args);

// audiotag bench: closed- and open-loop load generator
// (client/bench_command.cc).
int RunBenchCommand(const std::vector<std::string>& args);

// audiotag fewshot create|eval: few-shot tags on a served backbone
// (client/fewshot/fewshot_command.cc). Takes the whole argv ("fewshot" at
// argv[1]) because its repeated flags (--tag, --tag_dir, --negatives,
// --backbone) are collected before absl parses the rest.
int RunFewShotCommand(int argc, char** argv);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_COMMANDS_H_
