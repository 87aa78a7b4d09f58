#ifndef AUDIOTAG_SRC_COMMON_COMMAND_LINE_H_
#define AUDIOTAG_SRC_COMMON_COMMAND_LINE_H_

// The command-line front end that audiotag and audiotag-server share, on top
// of Abseil flags:
//
//  - CheckCommandLine looks at argv before absl::ParseCommandLine does, so
//    that --help and --version exit 0 with our own text (Abseil's 2022 parser
//    exits 1 after help and prints build paths), and so that an unknown flag
//    or a bad value is reported with exit code 2 (Abseil exits 1);
//  - FlagHelp lists flags by name with their defaults, for per-command help;
//  - VersionString is "PROGRAM VERSION (git REV, BUILD_TYPE build)" from the
//    build's generated version header;
//  - --dry_run (defined here, in both binaries): parse and validate as a real
//    run would, print "ok" and exit 0 without touching anything.
//
// Thread-safety: call from main() before any other thread starts.

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

ABSL_DECLARE_FLAG(bool, dry_run);

namespace audiotag {

// What argv asks for, as far as can be told without parsing it for real.
struct CommandLine {
  // --help, -h, --helpfull, --helpshort or --helppackage was given.
  bool help = false;
  // --version was given.
  bool version = false;
  // The arguments that are not flags, in order (argv[0] excluded).
  std::vector<std::string> positional;
  // Canonical names of the flags given ("nofoo" gives "foo").
  std::vector<std::string> flags;
  // INVALID_ARGUMENT naming the first unknown flag, missing value or value
  // that does not parse; OK otherwise. Help and version are found regardless.
  absl::Status status;
};

// Checks argv[1..argc) against the registered Abseil flags. Flag values are
// parsed (and so set) exactly as absl::ParseCommandLine then sets them again.
// A --flagfile's contents are left to absl::ParseCommandLine.
CommandLine CheckCommandLine(int argc, char** argv);

// "  --name=DEFAULT\n      help text\n" for each name, in the given order;
// names that are not registered flags are skipped.
std::string FlagHelp(const std::vector<std::string>& names);

// `text` word-wrapped at `width` columns, each line led by `indent`.
std::string WrapText(absl::string_view text, absl::string_view indent,
                     size_t width);

// Names of the registered flags not defined by Abseil itself, sorted.
std::vector<std::string> ProgramFlagNames();

// "PROGRAM 0.1.0 (git 1a2b3c4d5e6f, Release build)".
std::string VersionString(absl::string_view program);

// Points Abseil's own usage output at VersionString and strips build paths
// from flag locations, for anything that reaches it (e.g. a --flagfile).
void ConfigureAbslUsage(absl::string_view program);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_COMMON_COMMAND_LINE_H_
