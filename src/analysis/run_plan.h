#ifndef AUDIOTAG_SRC_ANALYSIS_RUN_PLAN_H_
#define AUDIOTAG_SRC_ANALYSIS_RUN_PLAN_H_

// Which model versions one request runs: the requested models and,
// transitively, the sources of the stages among them (Model::sources), each
// distinct version exactly once, so a backbone shared by two heads (or read
// by one head with several sources) runs once per segment. Pure function;
// thread-safe.

#include <memory>
#include <vector>

#include "src/model/model.h"

namespace audiotag {

struct RunPlan {
  // Every model to run, sources before their stages.
  std::vector<std::shared_ptr<const Model>> models;
  // For each requested model, in request order: its index in `models`.
  std::vector<int> results;
};

// `requested`: distinct model names. A requested model that is also the
// source of a requested stage runs as the version that stage was loaded
// against (they differ only for the moment a reload takes), so it still runs
// once.
RunPlan PlanRuns(const std::vector<std::shared_ptr<const Model>>& requested);

}  // namespace audiotag

#endif  // AUDIOTAG_SRC_ANALYSIS_RUN_PLAN_H_
