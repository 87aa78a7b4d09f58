// audiotag: the command-line client. `audiotag --help` lists the commands,
// `audiotag COMMAND --help` a command's flags.
//
//   audiotag analyze FILE... [--format=table] [--models=a,b] [--top_k=5]
//   audiotag models | model NAME | health [--service=NAME]
//   audiotag bulk ... | bench ...

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/audiotag_client.h"
#include "client/commands.h"
#include "client/connection_flags.h"
#include "client/output_format.h"
#include "client/request_flags.h"
#include "google/protobuf/struct.pb.h"
#include "src/common/command_line.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051",
          "audiotag-server address (host:port or a gRPC target).");
ABSL_FLAG(std::string, format, "json", "Output: json or table.");
ABSL_FLAG(double, timeout_seconds, 0, "Deadline per call; 0 for none.");
ABSL_FLAG(int64_t, max_message_bytes, int64_t{4} << 20,
          "Files larger than this are sent in chunks with AnalyzeStream; "
          "smaller ones in one Analyze message, which must fit the server's "
          "--max_message_bytes.");
ABSL_FLAG(std::string, service, "",
          "health: the grpc.health.v1 service to check: \"\" (default) or "
          "audiotag.v1.AudioTagger for readiness, liveness for a live "
          "process, or a model name.");

namespace audiotag {
namespace {

using ::grpc::health::v1::HealthCheckResponse;

struct Command {
  std::string name;
  std::string brief;     // one line for `audiotag --help`
  std::string synopsis;  // after "audiotag NAME"
  std::string summary;
  std::string example;
  // Flags it takes beyond the ones every command takes.
  std::vector<std::string> flags;
  // Source file whose flags all belong to this command (bulk and bench).
  std::string flags_file;
};

std::vector<std::string> Concat(std::vector<std::vector<std::string>> parts) {
  std::vector<std::string> all;
  for (auto& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

// Flags of every command: where the server is, how to reach it.
std::vector<std::string> CommonFlags() {
  return Concat(
      {{"server", "timeout_seconds"}, ConnectionFlagNames(), {"dry_run"}});
}

// Names of the flags defined in `file` (a path ending), sorted.
std::vector<std::string> FlagsDefinedIn(const std::string& file) {
  std::vector<std::string> names;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::EndsWith(flag->Filename(), file)) names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

const std::vector<Command>& Commands() {
  static const auto* commands = new std::vector<Command>{
      {"analyze", "tags, activations and embeddings of audio files",
       "FILE... [flags]",
       "Tags, activations and pooled embeddings of each audio file (any "
       "format FFmpeg reads). One file: pretty JSON; several: one JSON line "
       "per file, each with its \"path\" and, for a file that failed, an "
       "\"error\" {code, message}. Exits 1 if any file failed.",
       "audiotag analyze song.mp3 --format=table --top_k=5",
       Concat({{"format", "max_message_bytes"}, RequestFlagNames()}), ""},
      {"models",
       "list the server's models and their state",
       "[flags]",
       "The server's models: state (with the reason of a FAILED one), "
       "version, sample rate, segment length, outputs and labels.",
       "audiotag models --format=table",
       {"format"},
       ""},
      {"model",
       "describe one model",
       "NAME [flags]",
       "One model, as `audiotag models` shows it.",
       "audiotag model panns_cnn14 --format=table",
       {"format"},
       ""},
      {"health",
       "check the server's health (exit 0 when SERVING)",
       "[--service=NAME] [flags]",
       "grpc.health.v1 Check: prints the status and exits 0 when SERVING, "
       "1 otherwise. Use it as a container or Kubernetes probe.",
       "audiotag health --service=liveness",
       {"service"},
       ""},
      {"bulk", "tag and embed a whole catalog, resumably",
       "MANIFEST --output=DIR [flags]\n"
       "       audiotag bulk --input_dir=DIR --output=DIR [flags]",
       "Tags and embeds a whole catalog into result lines and .npy shards, "
       "resumably (docs/bulk.md).",
       "audiotag bulk catalog.jsonl --output=/data/out "
       "--server=dns:///audiotag:50051",
       Concat({RequestFlagNames(/*with_outputs=*/false),
               {"max_message_bytes", "concurrency"}}),
       "client/bulk_command.cc"},
      {"bench", "load-test a server", "[flags]",
       "Load generator: a closed loop (--concurrency) or an open loop "
       "(--rate) of Analyze calls; latency, throughput and batch sizes "
       "(docs/performance.md).",
       "audiotag bench --synth_seconds=10 --concurrency=32 --format=table",
       Concat({{"format"}, RequestFlagNames()}), "client/bench_command.cc"},
      {"fewshot",
       "few-shot tags on a served backbone (create, eval)",
       "create --backbone MODEL [--backbone ...] --out DIR "
       "--tag LABEL=FILE[,FILE...] [--tag ...] [flags]\n"
       "       audiotag fewshot eval --backbone MODEL --tag ... [flags]",
       "Learns tags from a few example files on a served backbone's "
       "embeddings; `create` publishes them as a pipeline stage in the "
       "repository (docs/fewshot.md). Besides the flags below it takes, each "
       "as often as needed: --backbone MODEL (several: the head reads their "
       "embeddings concatenated), --embedding OUTPUT (once, or once per "
       "--backbone; default embedding), --tag LABEL=FILE[,FILE...], "
       "--tag_dir LABEL=DIR and --negatives FILE[,FILE...].",
       "audiotag fewshot create --backbone openmic_student --out models/lofi "
       "--tag lofi=a.wav,b.wav --tag rock=c.wav,d.wav",
       {"pooling", "max_message_bytes"},
       "client/fewshot/fewshot_command.cc"},
  };
  return *commands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// Every flag `command` accepts, in help order.
std::vector<std::string> CommandFlags(const Command& command) {
  std::vector<std::string> names = command.flags;
  if (!command.flags_file.empty()) {
    for (const std::string& name : FlagsDefinedIn(command.flags_file)) {
      if (std::find(names.begin(), names.end(), name) == names.end()) {
        names.push_back(name);
      }
    }
  }
  return Concat({names, CommonFlags()});
}

std::string MainHelp() {
  std::string text =
      "audiotag: the client of audiotag-server (tags, instrument "
      "activations and embeddings of audio).\n\n"
      "usage: audiotag COMMAND [ARGS] [flags]\n\ncommands:\n";
  for (const Command& c : Commands()) {
    absl::StrAppend(&text, "  ", c.name,
                    std::string(10 - std::min<size_t>(9, c.name.size()), ' '),
                    c.brief, "\n");
  }
  absl::StrAppend(
      &text,
      "\n`audiotag COMMAND --help` lists that command's flags and an "
      "example.\n`audiotag --version` prints the version.\n\n"
      "flags every command takes (TLS and tokens: docs/operations.md):\n",
      FlagHelp(CommonFlags()), "\nexample:\n  audiotag models --server=",
      "audiotag.example.com:50051 --tls --auth_token_file=token.txt\n");
  return text;
}

std::string CommandHelp(const Command& c) {
  return absl::StrCat("usage: audiotag ", c.name, " ", c.synopsis, "\n\n",
                      WrapText(c.summary, "", 78), "\nexample:\n  ", c.example,
                      "\n\nflags:\n", FlagHelp(CommandFlags(c)));
}

bool DryRun() { return absl::GetFlag(FLAGS_dry_run); }

int UsageError(const std::string& command, const std::string& why) {
  std::cerr << "audiotag" << (command.empty() ? "" : " ") << command << ": "
            << why << "\n(see `audiotag" << (command.empty() ? "" : " ")
            << command << " --help`)\n";
  return 2;
}

int Fail(const absl::Status& status, const std::string& what,
         const Connection& connection) {
  std::cerr << "audiotag: " << what << ": "
            << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  if (const std::string hint = connection.Hint(status); !hint.empty()) {
    std::cerr << "audiotag: hint: " << hint << "\n";
  }
  return 1;
}

// A JSON string literal.
std::string Quote(const std::string& s) {
  google::protobuf::Value value;
  value.set_string_value(s);
  return ToJson(value, /*pretty=*/false);
}

// `json` (an object) with "path" as its first member.
std::string WithPath(const std::string& json, const std::string& path) {
  const std::string member = absl::StrCat("\"path\":", Quote(path));
  if (json == "{}" || json.size() < 2) return absl::StrCat("{", member, "}");
  if (json[1] != '\n') return absl::StrCat("{", member, ",", json.substr(1));
  // Pretty: the same indentation as the next member.
  const size_t indent = json.find_first_not_of(' ', 2) - 2;
  return absl::StrCat("{\n", std::string(indent, ' '),
                      "\"path\": ", Quote(path), ",", json.substr(1));
}

std::string ErrorJson(const std::string& path, const absl::Status& status) {
  return absl::StrCat(
      "{\"path\":", Quote(path),
      ",\"error\":{\"code\":", Quote(absl::StatusCodeToString(status.code())),
      ",\"message\":", Quote(std::string(status.message())), "}}");
}

int Analyze(const std::vector<std::string>& files, bool table,
            const ClientOptions& client_options) {
  if (files.empty()) return UsageError("analyze", "name at least one file");
  absl::StatusOr<v1::AnalyzeOptions> options =
      RequestOptionsFromFlags(v1::PRIORITY_INTERACTIVE);
  if (!options.ok()) {
    return UsageError("analyze", std::string(options.status().message()));
  }
  if (DryRun()) return FinishDryRun();
  AudioTagClient client(client_options);
  const bool pretty = files.size() == 1;
  int rc = 0;
  for (const std::string& file : files) {
    absl::StatusOr<v1::AnalyzeResponse> response;
    if (absl::StatusOr<std::string> audio = ReadFile(file); audio.ok()) {
      response = client.Analyze(*audio, *options);
    } else {
      response = audio.status();
    }
    if (!response.ok()) {
      rc = Fail(response.status(), file, client_options.connection);
      if (!table) std::cout << ErrorJson(file, response.status()) << "\n";
      continue;
    }
    std::cout << (table ? AnalyzeTable(file, *response)
                        : WithPath(ToJson(*response, pretty), file))
              << "\n";
  }
  return rc;
}

int Health(const AudioTagClient& client, const Connection& connection) {
  const std::string service = absl::GetFlag(FLAGS_service);
  absl::StatusOr<HealthCheckResponse::ServingStatus> status =
      client.Health(service);
  if (!status.ok()) {
    return Fail(status.status(),
                absl::StrCat("health of service \"", service, "\""),
                connection);
  }
  std::cout << HealthCheckResponse::ServingStatus_Name(*status) << "\n";
  return *status == HealthCheckResponse::SERVING ? 0 : 1;
}

int Run(const Command& command, const std::vector<std::string>& rest) {
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "json" && format != "table") {
    return UsageError(command.name, "--format must be json or table");
  }
  if (command.name == "bulk") return RunBulkCommand(rest);
  if (command.name == "bench") return RunBenchCommand(rest);

  absl::StatusOr<Connection> connection = ConnectionFromFlags();
  if (!connection.ok()) {
    return UsageError(command.name, std::string(connection.status().message()));
  }
  ClientOptions options;
  options.server = absl::GetFlag(FLAGS_server);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  options.connection = *connection;
  const bool table = format == "table";
  if (command.name == "analyze") return Analyze(rest, table, options);

  if (command.name == "model" ? rest.size() != 1 : !rest.empty()) {
    return UsageError(command.name, command.name == "model"
                                        ? "name exactly one model"
                                        : "takes no positional arguments");
  }
  if (DryRun()) return FinishDryRun();
  AudioTagClient client(options);
  if (command.name == "health") return Health(client, *connection);
  if (command.name == "models") {
    absl::StatusOr<v1::ListModelsResponse> models = client.ListModels();
    if (!models.ok()) return Fail(models.status(), "models", *connection);
    std::cout << (table ? ModelsTable(*models) : ToJson(*models, true)) << "\n";
    return 0;
  }
  absl::StatusOr<v1::ModelInfo> model = client.GetModel(rest[0]);
  if (!model.ok()) return Fail(model.status(), rest[0], *connection);
  std::cout << (table ? ModelTable(*model) : ToJson(*model, true)) << "\n";
  return 0;
}

int Main(int argc, char** argv) {
  ConfigureAbslUsage("audiotag");
  const CommandLine line = CheckCommandLine(argc, argv);
  const std::string name = line.positional.empty() ? "" : line.positional[0];
  if (name == "help" || (line.help && name.empty())) {
    const Command* command =
        line.positional.size() > 1 ? FindCommand(line.positional[1]) : nullptr;
    std::cout << (command ? CommandHelp(*command) : MainHelp());
    return 0;
  }
  if (line.version) {
    std::cout << VersionString("audiotag") << "\n";
    return 0;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return UsageError("", name.empty()
                              ? "name a command"
                              : absl::StrCat("unknown command '", name, "'"));
  }
  if (line.help) {
    std::cout << CommandHelp(*command);
    return 0;
  }
  // fewshot parses its own repeated flags (--tag, --backbone, ...).
  if (command->name == "fewshot") return RunFewShotCommand(argc, argv);
  if (!line.status.ok()) {
    return UsageError(command->name, std::string(line.status.message()));
  }
  const std::vector<std::string> accepted = CommandFlags(*command);
  for (const std::string& flag : line.flags) {
    const absl::CommandLineFlag* f = absl::FindCommandLineFlag(flag);
    const bool absl_own =
        f != nullptr && absl::StrContains(f->Filename(), "absl/flags/");
    if (!absl_own &&
        std::find(accepted.begin(), accepted.end(), flag) == accepted.end()) {
      return UsageError(command->name,
                        absl::StrCat("--", flag, " is not a flag of `audiotag ",
                                     command->name, "`"));
    }
  }
  absl::ParseCommandLine(argc, argv);
  return Run(*command, std::vector<std::string>(line.positional.begin() + 1,
                                                line.positional.end()));
}

}  // namespace

int FinishDryRun() {
  std::cout << "ok\n";
  return 0;
}

}  // namespace audiotag

int main(int argc, char** argv) { return audiotag::Main(argc, argv); }
