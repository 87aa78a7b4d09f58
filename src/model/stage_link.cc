#include "src/model/stage_link.h"

#include <algorithm>
#include <deque>
#include <functional>
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

// The shortest path of source links from `name` back to itself
// ([name, source, ..., name]), or empty when `name` is on no cycle.
std::vector<std::string> CycleThrough(
    const std::string& name,
    const std::map<std::string, std::vector<std::string>>& sources) {
  std::map<std::string, std::string> reached_from;  // name -> previous
  std::deque<std::string> frontier = {name};
  while (!frontier.empty()) {
    const std::string at = frontier.front();
    frontier.pop_front();
    auto it = sources.find(at);
    if (it == sources.end()) continue;
    for (const std::string& next : it->second) {
      if (next == name) {
        std::vector<std::string> path = {name};
        for (std::string n = at; n != name; n = reached_from[n]) {
          path.push_back(n);
        }
        path.push_back(name);
        std::reverse(path.begin() + 1, path.end() - 1);
        return path;
      }
      if (reached_from.emplace(next, at).second) frontier.push_back(next);
    }
  }
  return {};
}

}  // namespace

absl::StatusOr<StageInput> LinkStage(
    const std::vector<std::shared_ptr<const Model>>& sources,
    v1::ModelConfig* stage) {
  const std::vector<v1::ModelInput> wanted = StageSources(*stage);
  if (wanted.empty() || wanted.size() != sources.size()) {
    return absl::InternalError(absl::StrCat("LinkStage: ", sources.size(),
                                            " source models for ",
                                            wanted.size(), " sources"));
  }
  const bool several = wanted.size() > 1;
  StageInput input;
  int64_t total_dim = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    const v1::ModelInput& from = wanted[i];
    const std::string field = StageSourceField(*stage, static_cast<int>(i));
    const v1::ModelConfig& sc = sources[i]->config();
    const int index = FindOutput(sc, from.output());
    if (index < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".output: model '", sc.name(), "' has no output '",
          from.output(), "' (outputs: ", absl::StrJoin(OutputNames(sc), ", "),
          ")"));
    }
    const v1::OutputConfig& out = sc.output(index);
    if (from.dim() != 0 && from.dim() != out.dim()) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".dim: the stage expects dim ", from.dim(), " but output '",
          out.name(), "' of model '", sc.name(), "' has dim ", out.dim()));
    }
    if (several) {
      if (out.kind() != v1::EMBEDDING) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".output: output '", out.name(), "' of model '", sc.name(),
            "' is ", v1::OutputKind_Name(out.kind()),
            "; a stage with several sources concatenates EMBEDDING outputs"));
      }
      const std::vector<int64_t> shape = sources[i]->output_shape(index);
      if (!shape.empty() && shape.size() != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            field, ".output: output '", out.name(), "' of model '", sc.name(),
            "' is frame-wise (", shape.size(),
            " axes per segment); a stage with several sources takes one "
            "vector per segment from each"));
      }
      total_dim += out.dim();
    }
    input.sources.push_back(ModelSource{sources[i], index});
  }
  InheritRootTiming(sources[0]->config(), stage);
  if (several) {
    input.shape = {total_dim};
  } else {
    const ModelSource& only = input.sources[0];
    input.shape = only.model->output_shape(only.output);
    const v1::OutputConfig& out = only.model->config().output(only.output);
    const OutputKindTraits* kind = FindOutputKind(out.kind());
    if (input.shape.empty() && kind != nullptr) {
      input.shape = ShapeFromConfig(*kind, out.dim());
    }
  }
  return input;
}

LoadOrder OrderBySource(
    const std::map<std::string, std::vector<std::string>>& sources) {
  LoadOrder result;
  for (const auto& [name, from] : sources) {
    std::vector<std::string> cycle = CycleThrough(name, sources);
    if (!cycle.empty()) result.cycles[name] = absl::StrJoin(cycle, " -> ");
  }
  // The longest path to an audio model; names on a cycle, unknown names and
  // audio models count 0. Off the cycles the links form a DAG, so the
  // recursion ends.
  std::map<std::string, int> depths;
  std::function<int(const std::string&)> depth = [&](const std::string& name) {
    if (result.cycles.count(name) > 0) return 0;
    auto known = depths.find(name);
    if (known != depths.end()) return known->second;
    int d = 0;
    auto it = sources.find(name);
    if (it != sources.end()) {
      for (const std::string& source : it->second) {
        d = std::max(d, depth(source) + 1);
      }
    }
    depths[name] = d;
    return d;
  };
  std::vector<std::pair<int, std::string>> by_depth;
  for (const auto& [name, from] : sources) {
    if (result.cycles.count(name) == 0)
      by_depth.emplace_back(depth(name), name);
  }
  std::sort(by_depth.begin(), by_depth.end());
  for (auto& [d, name] : by_depth) result.order.push_back(std::move(name));
  return result;
}

}  // namespace audiotag
