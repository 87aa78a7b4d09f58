#ifndef AUDIOTAG_CLIENT_COMMANDS_H_
#define AUDIOTAG_CLIENT_COMMANDS_H_

// The CLI's long-running commands, each in its own file. `args` are the
// positional arguments after the command name; flags are absl flags defined
// in the command's own file. Each returns the process exit code.

#include <string>
#include <vector>

namespace audiotag {

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
