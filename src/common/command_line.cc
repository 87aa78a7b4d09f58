#include "src/common/command_line.h"

#include <algorithm>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "audiotag/version.h"

ABSL_FLAG(bool, dry_run, false,
          "Parse and check the command line as a real run would, print \"ok\" "
          "and exit 0; contact no server and open no file.");

namespace audiotag {
namespace {

bool IsHelpFlag(absl::string_view name) {
  return name == "help" || name == "h" || name == "helpfull" ||
         name == "helpshort" || name == "helppackage";
}

}  // namespace

std::string WrapText(absl::string_view text, absl::string_view indent,
                     size_t width) {
  std::string out;
  std::string line;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (!line.empty() &&
        indent.size() + line.size() + 1 + word.size() > width) {
      absl::StrAppend(&out, indent, line, "\n");
      line.clear();
    }
    if (!line.empty()) line += ' ';
    absl::StrAppend(&line, word);
  }
  if (!line.empty()) absl::StrAppend(&out, indent, line, "\n");
  return out;
}

namespace {

// A flag's location relative to the source tree: no build machine paths.
std::string NormalizeFilename(absl::string_view path) {
  if (const size_t absl_dir = path.find("absl/flags/");
      absl_dir != absl::string_view::npos) {
    return std::string(path.substr(absl_dir));
  }
  size_t best = absl::string_view::npos;
  for (absl::string_view top : {"/client/", "/server/", "/src/", "/tests/"}) {
    best = std::min(best, path.find(top));
  }
  if (best != absl::string_view::npos)
    return std::string(path.substr(best + 1));
  while (absl::ConsumePrefix(&path, "../") ||
         absl::ConsumePrefix(&path, "./")) {
  }
  return std::string(path);
}

bool IsAbslFlag(const absl::CommandLineFlag& flag) {
  return absl::StrContains(flag.Filename(), "absl/flags/");
}

}  // namespace

CommandLine CheckCommandLine(int argc, char** argv) {
  CommandLine line;
  auto fail = [&line](std::string message) {
    if (line.status.ok()) line.status = absl::InvalidArgumentError(message);
  };
  bool only_positional = false;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (only_positional || arg.size() < 2 || arg[0] != '-') {
      line.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positional = true;
      continue;
    }
    absl::string_view body = arg.substr(arg[1] == '-' ? 2 : 1);
    const size_t eq = body.find('=');
    const bool has_value = eq != absl::string_view::npos;
    const absl::string_view name = body.substr(0, eq);
    absl::string_view value = has_value ? body.substr(eq + 1) : "";
    if (IsHelpFlag(name)) {
      line.help = true;
      continue;
    }
    if (name == "version") {
      line.version = true;
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr || flag->IsRetired()) {
      fail(absl::StrCat("unknown flag --", name));
      continue;
    }
    std::string storage;
    if (flag->IsOfType<bool>()) {
      if (negated) {
        if (has_value) {
          fail(absl::StrCat("--", name, " takes no value"));
          continue;
        }
        value = "false";
      } else if (!has_value) {
        value = "true";
      }
    } else if (!has_value) {
      if (i + 1 >= argc) {
        fail(absl::StrCat("--", name, " needs a value"));
        continue;
      }
      storage = argv[++i];
      value = storage;
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) {
      fail(absl::StrCat("bad value for --", flag->Name(), ": ", error));
      continue;
    }
    line.flags.emplace_back(flag->Name());
  }
  return line;
}

std::string FlagHelp(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) {
    const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr) continue;
    std::string value = flag->DefaultValue();
    if (value.empty()) value = "\"\"";
    absl::StrAppend(&out, "  --", name, "=", value, "\n",
                    WrapText(flag->Help(), "      ", 78));
  }
  return out;
}

std::vector<std::string> ProgramFlagNames() {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!flag->IsRetired() && !IsAbslFlag(*flag)) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string VersionString(absl::string_view program) {
  return absl::StrCat(program, " ", AUDIOTAG_VERSION_STRING, " (git ",
                      AUDIOTAG_GIT_REVISION, ", ", AUDIOTAG_BUILD_TYPE,
                      " build)");
}

void ConfigureAbslUsage(absl::string_view program) {
  absl::FlagsUsageConfig config;
  const std::string version = VersionString(program);
  config.version_string = [version] { return version + "\n"; };
  config.normalize_filename = [](absl::string_view path) {
    return NormalizeFilename(path);
  };
  config.contains_help_flags = [](absl::string_view path) {
    return !absl::StrContains(path, "absl/flags/");
  };
  config.contains_helpshort_flags = config.contains_help_flags;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace audiotag
