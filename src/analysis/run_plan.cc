#include "src/analysis/run_plan.h"

#include <algorithm>
#include <map>
#include <string>

namespace audiotag {
namespace {

void AddUnique(const std::shared_ptr<const Model>& model,
               std::vector<std::shared_ptr<const Model>>* models) {
  if (std::find(models->begin(), models->end(), model) == models->end()) {
    models->push_back(model);
  }
}

}  // namespace

RunPlan PlanRuns(const std::vector<std::shared_ptr<const Model>>& requested) {
  // The sources the requested stages were loaded against, by name; a name
  // with two versions in flight (mid-reload) is ambiguous and left alone.
  std::map<std::string, std::shared_ptr<const Model>> sources;
  std::map<std::string, int> versions_seen;
  std::vector<std::shared_ptr<const Model>> chain_models;
  // Every source reachable from a requested model, each version once.
  std::vector<std::shared_ptr<const Model>> pending(requested.begin(),
                                                    requested.end());
  while (!pending.empty()) {
    const std::shared_ptr<const Model> model = std::move(pending.back());
    pending.pop_back();
    for (const ModelSource& source : model->sources()) {
      const std::shared_ptr<const Model>& s = source.model;
      if (std::find(chain_models.begin(), chain_models.end(), s) !=
          chain_models.end()) {
        continue;
      }
      chain_models.push_back(s);
      sources[s->name()] = s;
      ++versions_seen[s->name()];
      pending.push_back(s);
    }
  }
  std::vector<std::shared_ptr<const Model>> wanted;
  for (const auto& model : requested) {
    auto it = sources.find(model->name());
    const bool substitute =
        it != sources.end() && versions_seen[model->name()] == 1;
    wanted.push_back(substitute ? it->second : model);
  }
  RunPlan plan;
  for (const auto& model : wanted) AddUnique(model, &plan.models);
  for (const auto& model : chain_models) AddUnique(model, &plan.models);
  std::stable_sort(
      plan.models.begin(), plan.models.end(),
      [](const auto& a, const auto& b) { return a->depth() < b->depth(); });
  for (const auto& model : wanted) {
    plan.results.push_back(static_cast<int>(
        std::find(plan.models.begin(), plan.models.end(), model) -
        plan.models.begin()));
  }
  return plan;
}

}  // namespace audiotag
