#ifndef AUDIOTAG_CLIENT_FEWSHOT_FEWSHOT_MODEL_H_
#define AUDIOTAG_CLIENT_FEWSHOT_FEWSHOT_MODEL_H_

// Writing a few-shot head as a model folder of a repository: a pipeline
// stage on its backbone(s) (docs/fewshot.md, docs/model_repository.md).
//
//   <out>/config.pbtxt   input { from_model { model: <backbone>
//                                             output: <embedding> dim: D } }
//                        (several backbones: input { from_models {
//                          source { ... } source { ... } } })
//                        outputs "tags" (TAGS) and "activations"
//                        (ACTIVATIONS), sigmoid or softmax, K labels
//   <out>/labels.txt     the K tags
//   <out>/1/model.pt     the head (head_module.h)
//
// The folder is built completely in a hidden staging folder next to it
// (`<parent>/.fewshot-<name>-XXXXXX`, ignored by the repository scanner) and
// renamed into place, so a polling server sees no model or a complete one;
// on any failure the staging folder is removed and nothing is left in the
// repository.

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "audiotag/v1/model_config.pb.h"
#include "client/fewshot/fewshot_fit.h"

namespace audiotag::fewshot {

// A backbone model and the EMBEDDING output of it the head reads.
struct SourceSpec {
  std::string backbone;
  std::string embedding;
  // Size of that embedding.
  int dim = 0;
};

struct ModelSpec {
  // The model folder to create; its last component is the model name.
  std::string out_dir;
  // One or more; with several the head reads their embeddings concatenated
  // in this order, aligned onto the first one's segments (input.from_models).
  std::vector<SourceSpec> sources;
  // Softmax over tags instead of a sigmoid per tag.
  bool exclusive = false;
  std::vector<std::string> labels;
};

// Checks, before any work, that `out_dir` can be published: its name is a
// valid model name (not empty, not starting with '.', no '/'), its parent is
// an existing folder, and it does not exist yet. INVALID_ARGUMENT or
// ALREADY_EXISTS naming the path otherwise.
absl::Status CheckOutDir(const std::string& out_dir);

// Checks a tag label: 1..128 bytes, no control characters, no surrounding
// whitespace (labels.txt is one label per line).
absl::Status CheckLabel(const std::string& label);

// The config.pbtxt of the few-shot stage.
v1::ModelConfig StageConfig(const ModelSpec& spec, const Head& head);

// Writes and publishes the model folder (see above). Errors: those of
// CheckOutDir, INTERNAL for a failed write or rename (nothing left behind).
absl::Status PublishModel(const ModelSpec& spec, const Head& head);

}  // namespace audiotag::fewshot

#endif  // AUDIOTAG_CLIENT_FEWSHOT_FEWSHOT_MODEL_H_
