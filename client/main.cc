// audiotag: the command-line client.
//
//   audiotag analyze FILE... [--format=table] [--models=a,b] [--top_k=5]
//   audiotag models
//   audiotag model NAME

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/audiotag_client.h"
#include "client/commands.h"
#include "client/output_format.h"

ABSL_FLAG(std::string, server, "127.0.0.1:50051",
          "audiotag-server address (host:port or a gRPC target).");
ABSL_FLAG(std::string, format, "json", "Output: json or table.");
ABSL_FLAG(std::vector<std::string>, models, {},
          "Models to run (comma-separated); default every ready model.");
ABSL_FLAG(std::vector<std::string>, outputs,
          std::vector<std::string>({"tags", "activations", "embeddings",
                                    "segment_embeddings"}),
          "Which outputs: tags, activations, embeddings, segment_embeddings.");
ABSL_FLAG(int, top_k, 10, "Tags per output; -1 for all.");
ABSL_FLAG(double, threshold, 0, "Drop tags scoring below this.");
ABSL_FLAG(std::string, pooling, "mean", "Clip pooling: mean or max.");
ABSL_FLAG(
    std::string, priority, "",
    "interactive or bulk; default interactive (bulk for `audiotag bulk`).");
ABSL_FLAG(double, timeout_seconds, 0, "Deadline per call; 0 for none.");
ABSL_FLAG(int64_t, max_message_bytes, int64_t{4} << 20,
          "Files larger than this are streamed with AnalyzeStream.");
ABSL_FLAG(std::string, request_id, "", "Request id sent with each call.");

namespace audiotag {
namespace {

int Fail(const absl::Status& status, const std::string& what) {
  std::cerr << "audiotag: " << what << ": "
            << absl::StatusCodeToString(status.code()) << ": "
            << status.message() << "\n";
  return 1;
}

absl::StatusOr<v1::AnalyzeOptions> OptionsFromFlags() {
  v1::AnalyzeOptions options;
  for (const std::string& m : absl::GetFlag(FLAGS_models))
    options.add_models(m);
  v1::OutputSelection* sel = options.mutable_outputs();
  for (const std::string& o : absl::GetFlag(FLAGS_outputs)) {
    if (o == "tags")
      sel->set_tags(true);
    else if (o == "activations")
      sel->set_activations(true);
    else if (o == "embeddings")
      sel->set_embeddings(true);
    else if (o == "segment_embeddings")
      sel->set_segment_embeddings(true);
    else
      return absl::InvalidArgumentError(
          absl::StrCat("unknown output '", o, "'"));
  }
  options.set_top_k(absl::GetFlag(FLAGS_top_k));
  options.set_threshold(static_cast<float>(absl::GetFlag(FLAGS_threshold)));
  const std::string pooling = absl::GetFlag(FLAGS_pooling);
  if (pooling != "mean" && pooling != "max") {
    return absl::InvalidArgumentError("--pooling must be mean or max");
  }
  options.set_pooling(pooling == "max" ? v1::POOLING_MAX : v1::POOLING_MEAN);
  const std::string priority = absl::GetFlag(FLAGS_priority);
  if (priority != "" && priority != "interactive" && priority != "bulk") {
    return absl::InvalidArgumentError("--priority must be interactive or bulk");
  }
  options.set_priority(priority == "bulk" ? v1::PRIORITY_BULK
                                          : v1::PRIORITY_INTERACTIVE);
  options.set_request_id(absl::GetFlag(FLAGS_request_id));
  return options;
}

int Analyze(const AudioTagClient& client, const std::vector<char*>& files,
            bool table) {
  if (files.empty()) {
    std::cerr << "audiotag analyze: name at least one audio file\n";
    return 2;
  }
  absl::StatusOr<v1::AnalyzeOptions> options = OptionsFromFlags();
  if (!options.ok()) return Fail(options.status(), "bad flags");
  int rc = 0;
  for (const char* file : files) {
    absl::StatusOr<std::string> audio = ReadFile(file);
    if (!audio.ok()) {
      rc = Fail(audio.status(), file);
      continue;
    }
    absl::StatusOr<v1::AnalyzeResponse> response =
        client.Analyze(*audio, *options);
    if (!response.ok()) {
      rc = Fail(response.status(), file);
      continue;
    }
    std::cout << (table ? AnalyzeTable(file, *response)
                        : ToJson(*response, /*pretty=*/files.size() == 1))
              << "\n";
  }
  return rc;
}

int Run(const std::vector<char*>& args) {
  const std::string format = absl::GetFlag(FLAGS_format);
  if (format != "json" && format != "table") {
    std::cerr << "audiotag: --format must be json or table\n";
    return 2;
  }
  const bool table = format == "table";
  ClientOptions options;
  options.server = absl::GetFlag(FLAGS_server);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_seconds));
  AudioTagClient client(options);

  const std::string command = args.size() > 1 ? args[1] : "";
  const std::vector<char*> rest(args.begin() + std::min<size_t>(2, args.size()),
                                args.end());
  if (command == "analyze") return Analyze(client, rest, table);
  if (command == "bulk" || command == "bench") {
    const std::vector<std::string> positional(rest.begin(), rest.end());
    return command == "bulk" ? RunBulkCommand(positional)
                             : RunBenchCommand(positional);
  }
  if (command == "models") {
    absl::StatusOr<v1::ListModelsResponse> models = client.ListModels();
    if (!models.ok()) return Fail(models.status(), "models");
    std::cout << (table ? ModelsTable(*models) : ToJson(*models, true)) << "\n";
    return 0;
  }
  if (command == "model" && rest.size() == 1) {
    absl::StatusOr<v1::ModelInfo> model = client.GetModel(rest[0]);
    if (!model.ok()) return Fail(model.status(), rest[0]);
    std::cout << ToJson(*model, true) << "\n";
    return 0;
  }
  std::cerr << absl::ProgramUsageMessage() << "\n";
  return 2;
}

}  // namespace
}  // namespace audiotag

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "usage: audiotag <command> [flags]\n"
      "  analyze FILE...   tags, activations and embeddings for audio files\n"
      "  models            list the server's models\n"
      "  model NAME        describe one model\n"
      "  bulk              tag and embed a catalog (see --helpfull)\n"
      "  bench             load-test a server (see --helpfull)\n"
      "  fewshot create|eval  tags from a few examples on a served backbone\n"
      "Common flags: --server=host:port --format=json|table (see --help)");
  if (argc > 1 && std::string(argv[1]) == "fewshot") {
    return audiotag::RunFewShotCommand(argc, argv);
  }
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  return audiotag::Run(args);
}
