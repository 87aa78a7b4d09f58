#include "src/model/stage_link.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "src/model/model_config.h"
#include "src/model/output_kind.h"

namespace audiotag {
namespace {

int FindOutput(const v1::ModelConfig& config, const std::string& name) {
  for (int i = 0; i < config.output_size(); ++i) {
    if (config.output(i).name() == name) return i;
  }
  return -1;
}

std::vector<std::string> OutputNames(const v1::ModelConfig& config) {
  std::vector<std::string> names;
  for (const v1::OutputConfig& o : config.output()) names.push_back(o.name());
  return names;
}

// The chain of sources from `name`: [name, source, source's source, ...],
// stopping at an audio model, an unknown name, or the first repeated name
// (which is then the last element).
std::vector<std::string> SourceChain(
    const std::string& name,
    const std::map<std::string, std::string>& sources) {
  std::vector<std::string> chain = {name};
  for (;;) {
    auto it = sources.find(chain.back());
    if (it == sources.end() || it->second.empty()) return chain;
    const bool seen =
        std::find(chain.begin(), chain.end(), it->second) != chain.end();
    chain.push_back(it->second);
    if (seen) return chain;
  }
}

}  // namespace

absl::StatusOr<StageInput> LinkStage(std::shared_ptr<const Model> source,
                                     v1::ModelConfig* stage) {
  const v1::ModelInput& from = stage->input().from_model();
  const v1::ModelConfig& sc = source->config();
  const int index = FindOutput(sc, from.output());
  if (index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input.from_model.output: model '", sc.name(), "' has no output '",
        from.output(), "' (outputs: ", absl::StrJoin(OutputNames(sc), ", "),
        ")"));
  }
  const v1::OutputConfig& out = sc.output(index);
  if (from.dim() != 0 && from.dim() != out.dim()) {
    return absl::InvalidArgumentError(
        absl::StrCat("input.from_model.dim: the stage expects dim ", from.dim(),
                     " but output '", out.name(), "' of model '", sc.name(),
                     "' has dim ", out.dim()));
  }
  InheritRootTiming(sc, stage);
  StageInput input;
  input.source = ModelSource{std::move(source), index};
  input.shape = input.source.model->output_shape(index);
  const OutputKindTraits* kind = FindOutputKind(out.kind());
  if (input.shape.empty() && kind != nullptr) {
    input.shape = ShapeFromConfig(*kind, out.dim());
  }
  return input;
}

LoadOrder OrderBySource(const std::map<std::string, std::string>& sources) {
  LoadOrder result;
  std::vector<std::pair<size_t, std::string>> by_depth;
  for (const auto& [name, source] : sources) {
    std::vector<std::string> chain = SourceChain(name, sources);
    const std::string& last = chain.back();
    const bool cyclic =
        std::find(chain.begin(), chain.end() - 1, last) != chain.end() - 1;
    if (!cyclic) {
      by_depth.emplace_back(chain.size(), name);
      continue;
    }
    // Only the names on the loop itself are cyclic; a stage feeding from a
    // loop is not, and fails because its source never becomes ready.
    const auto loop_start = std::find(chain.begin(), chain.end() - 1, last);
    if (loop_start == chain.begin()) {
      result.cycles[name] = absl::StrJoin(chain, " -> ");
    } else {
      by_depth.emplace_back(chain.size(), name);
    }
  }
  std::sort(by_depth.begin(), by_depth.end());
  for (auto& [depth, name] : by_depth) result.order.push_back(std::move(name));
  return result;
}

}  // namespace audiotag
