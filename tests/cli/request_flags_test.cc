// The request flags analyze, bench and bulk share (client/request_flags.h):
// what each value becomes in AnalyzeOptions, the command's default priority,
// and an error naming the flag for each bad value.

#include "client/request_flags.h"

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_DECLARE_FLAG(std::vector<std::string>, models);
ABSL_DECLARE_FLAG(std::vector<std::string>, outputs);
ABSL_DECLARE_FLAG(int, top_k);
ABSL_DECLARE_FLAG(double, threshold);
ABSL_DECLARE_FLAG(std::string, pooling);
ABSL_DECLARE_FLAG(std::string, priority);
ABSL_DECLARE_FLAG(std::string, request_id);

namespace audiotag {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(RequestFlags, DefaultsAreAnalyzesDefaults) {
  absl::FlagSaver saver;
  absl::StatusOr<v1::AnalyzeOptions> options =
      RequestOptionsFromFlags(v1::PRIORITY_INTERACTIVE);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_THAT(options->models(), ElementsAre());
  EXPECT_TRUE(options->outputs().tags());
  EXPECT_TRUE(options->outputs().activations());
  EXPECT_TRUE(options->outputs().embeddings());
  EXPECT_FALSE(options->outputs().segment_embeddings());
  EXPECT_EQ(options->top_k(), 10);
  EXPECT_EQ(options->threshold(), 0);
  EXPECT_EQ(options->pooling(), v1::POOLING_MEAN);
  EXPECT_EQ(options->priority(), v1::PRIORITY_INTERACTIVE);
  EXPECT_EQ(options->request_id(), "");
}

TEST(RequestFlags, EveryValueReachesTheRequest) {
  absl::FlagSaver saver;
  absl::SetFlag(&FLAGS_models, {"a", "b"});
  absl::SetFlag(&FLAGS_outputs, {"tags", "segment_embeddings"});
  absl::SetFlag(&FLAGS_top_k, -1);
  absl::SetFlag(&FLAGS_threshold, 0.25);
  absl::SetFlag(&FLAGS_pooling, "max");
  absl::SetFlag(&FLAGS_priority, "bulk");
  absl::SetFlag(&FLAGS_request_id, "job-7");
  absl::StatusOr<v1::AnalyzeOptions> options =
      RequestOptionsFromFlags(v1::PRIORITY_INTERACTIVE);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_THAT(options->models(), ElementsAre("a", "b"));
  EXPECT_TRUE(options->outputs().tags());
  EXPECT_FALSE(options->outputs().activations());
  EXPECT_FALSE(options->outputs().embeddings());
  EXPECT_TRUE(options->outputs().segment_embeddings());
  EXPECT_EQ(options->top_k(), -1);
  EXPECT_FLOAT_EQ(options->threshold(), 0.25f);
  EXPECT_EQ(options->pooling(), v1::POOLING_MAX);
  EXPECT_EQ(options->priority(), v1::PRIORITY_BULK);
  EXPECT_EQ(options->request_id(), "job-7");
}

// audiotag bulk asks for PRIORITY_BULK unless --priority says otherwise.
TEST(RequestFlags, UnsetPriorityIsTheCommandsDefault) {
  absl::FlagSaver saver;
  absl::StatusOr<v1::AnalyzeOptions> bulk =
      RequestOptionsFromFlags(v1::PRIORITY_BULK);
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_EQ(bulk->priority(), v1::PRIORITY_BULK);
  absl::SetFlag(&FLAGS_priority, "interactive");
  bulk = RequestOptionsFromFlags(v1::PRIORITY_BULK);
  ASSERT_TRUE(bulk.ok()) << bulk.status();
  EXPECT_EQ(bulk->priority(), v1::PRIORITY_INTERACTIVE);
}

TEST(RequestFlags, BadValuesNameTheFlag) {
  struct Case {
    void (*set)();
    std::string flag;
  };
  const std::vector<Case> cases = {
      {[] {
         absl::SetFlag(&FLAGS_outputs, {"tags", "everything"});
       },
       "--outputs"},
      {[] { absl::SetFlag(&FLAGS_pooling, "median"); }, "--pooling"},
      {[] { absl::SetFlag(&FLAGS_priority, "urgent"); }, "--priority"},
  };
  for (const Case& c : cases) {
    absl::FlagSaver saver;
    c.set();
    for (v1::Priority priority :
         {v1::PRIORITY_INTERACTIVE, v1::PRIORITY_BULK}) {
      absl::StatusOr<v1::AnalyzeOptions> options =
          RequestOptionsFromFlags(priority);
      EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument)
          << c.flag;
      EXPECT_THAT(options.status().message(), HasSubstr(c.flag));
    }
  }
}

TEST(RequestFlags, NamesInHelpOrderWithOrWithoutOutputs) {
  EXPECT_THAT(RequestFlagNames(),
              ElementsAre("models", "outputs", "top_k", "threshold", "pooling",
                          "priority", "request_id"));
  EXPECT_THAT(RequestFlagNames(/*with_outputs=*/false),
              Not(Contains("outputs")));
  EXPECT_EQ(RequestFlagNames(false).size(), 6u);
}

}  // namespace
}  // namespace audiotag
