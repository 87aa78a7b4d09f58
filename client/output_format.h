#ifndef AUDIOTAG_CLIENT_OUTPUT_FORMAT_H_
#define AUDIOTAG_CLIENT_OUTPUT_FORMAT_H_

// How the CLI prints replies: JSON (protobuf's JSON mapping, snake_case field
// names, defaults included) for machines, aligned text for people.

#include <string>

#include "audiotag/v1/audiotag.pb.h"
#include "google/protobuf/message.h"

namespace audiotag {

// `pretty` adds newlines and indentation.
std::string ToJson(const google::protobuf::Message& message, bool pretty);

std::string AnalyzeTable(const std::string& file,
                         const v1::AnalyzeResponse& response);
// One line per model (name, state, version, sample rate, segment length,
// outputs), then its state reason (why it FAILED, or why an older version
// still serves) and each output's labels.
std::string ModelsTable(const v1::ListModelsResponse& models);
// The same table for one model.
std::string ModelTable(const v1::ModelInfo& model);

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_OUTPUT_FORMAT_H_
