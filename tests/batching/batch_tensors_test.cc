#include "src/batching/batch_tensors.h"

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

using ::testing::ElementsAre;
using ::testing::SizeIs;

TEST(BatchTensors, StacksInputsAlongNewAxis) {
  const Tensor a{{2}, {1, 2}};
  const Tensor b{{2}, {3, 4}};
  const Tensor batch = StackInputs({&a, &b});
  EXPECT_THAT(batch.shape, ElementsAre(2, 2));
  EXPECT_THAT(batch.data, ElementsAre(1, 2, 3, 4));
}

TEST(BatchTensors, SplitsOutputsIntoRows) {
  const std::vector<Tensor> outputs = {Tensor{{2, 3}, {1, 2, 3, 4, 5, 6}},
                                       Tensor{{2}, {7, 8}}};
  auto rows = SplitOutputs(outputs, 2);
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(2));
  EXPECT_THAT((*rows)[1][0].shape, ElementsAre(3));
  EXPECT_THAT((*rows)[1][0].data, ElementsAre(4, 5, 6));
  EXPECT_TRUE((*rows)[0][1].shape.empty());
  EXPECT_THAT((*rows)[0][1].data, ElementsAre(7));
}

TEST(BatchTensors, SplitRejectsOutputsOfAnotherBatch) {
  const auto kInternal = absl::StatusCode::kInternal;
  EXPECT_EQ(SplitOutputs({Tensor{{3}, {1, 2, 3}}}, 2).status().code(),
            kInternal);
  EXPECT_EQ(SplitOutputs({Tensor{{}, {1}}}, 1).status().code(), kInternal);
  EXPECT_EQ(SplitOutputs({Tensor{{2, 2}, {1, 2, 3}}}, 2).status().code(),
            kInternal);
}

TEST(BatchTensors, HasShapeChecksShapeAndData) {
  EXPECT_TRUE(HasShape(Tensor{{2}, {1, 2}}, {2}));
  EXPECT_FALSE(HasShape(Tensor{{2}, {1, 2}}, {1, 2}));
  EXPECT_FALSE(HasShape(Tensor{{2}, {1}}, {2}));
}

}  // namespace
}  // namespace audiotag
