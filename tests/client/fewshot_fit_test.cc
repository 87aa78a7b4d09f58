// Few-shot head fitting (client/fewshot/fewshot_fit.h) on synthetic
// embeddings with known structure.
#include "client/fewshot/fewshot_fit.h"

#include <cmath>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag::fewshot {
namespace {

using ::testing::HasSubstr;

constexpr int kDim = 16;

// A post-ReLU-like embedding: a shared positive offset (which centring must
// remove), the class direction, and noise.
std::vector<float> Embedding(int cls, std::mt19937& rng, double noise = 0.3) {
  std::normal_distribution<double> gauss(0, noise);
  std::vector<float> v(kDim);
  for (int d = 0; d < kDim; ++d) {
    v[d] = 3.0 + (d % 4 == cls ? 1.0 : 0.0) + gauss(rng);
  }
  return v;
}

std::vector<SupportRow> Rows(int classes, int per_class, int negatives,
                             std::mt19937& rng) {
  std::vector<SupportRow> rows;
  for (int c = 0; c < classes; ++c) {
    for (int i = 0; i < per_class; ++i) {
      std::vector<bool> pos(classes, false);
      pos[c] = true;
      rows.push_back({Embedding(c, rng), static_cast<int>(rows.size()), pos});
    }
  }
  for (int i = 0; i < negatives; ++i) {
    rows.push_back({Embedding(3, rng), static_cast<int>(rows.size()),
                    std::vector<bool>(classes, false)});
  }
  return rows;
}

TEST(FewShotFit, SeparatesClassesAndCalibratesAtOneHalf) {
  std::mt19937 rng(1);
  absl::StatusOr<Head> head =
      FitHead({"a", "b", "c"}, Rows(3, 3, 0, rng), FitOptions());
  ASSERT_TRUE(head.ok()) << head.status();
  ASSERT_EQ(head->reports.size(), 3u);
  for (const TagReport& r : head->reports) {
    EXPECT_EQ(r.method, Method::kPrototype);  // 3 examples: probe not tried
    EXPECT_FALSE(r.probe_considered);
    EXPECT_EQ(r.positives, 3);
    EXPECT_EQ(r.negatives, 6);
    EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
    EXPECT_DOUBLE_EQ(r.recall, 1.0);
  }
  for (int trial = 0; trial < 20; ++trial) {
    const int cls = trial % 3;
    const std::vector<float> scores = Score(*head, Embedding(cls, rng), false);
    for (int k = 0; k < 3; ++k) {
      if (k == cls)
        EXPECT_GT(scores[k], 0.5) << trial;
      else
        EXPECT_LT(scores[k], 0.5) << trial;
    }
  }
}

TEST(FewShotFit, ConsidersTheProbeWithNegativesAndReportsTheChoice) {
  std::mt19937 rng(2);
  FitOptions options;
  options.explicit_negatives = true;
  absl::StatusOr<Head> head = FitHead({"a", "b"}, Rows(2, 4, 4, rng), options);
  ASSERT_TRUE(head.ok()) << head.status();
  for (const TagReport& r : head->reports) {
    EXPECT_TRUE(r.probe_considered);
    EXPECT_GE(r.prototype_loss, 0);
    EXPECT_GE(r.probe_loss, 0);
    EXPECT_EQ(r.method, r.probe_loss < r.prototype_loss - 1e-9
                            ? Method::kProbe
                            : Method::kPrototype);
  }
  EXPECT_THAT(ReportTable(head->reports), HasSubstr("probe"));
  // A negative scores below 0.5 on both tags.
  const std::vector<float> scores = Score(*head, Embedding(3, rng), false);
  EXPECT_LT(scores[0], 0.5);
  EXPECT_LT(scores[1], 0.5);
}

TEST(FewShotFit, ProbeWinsWhenThePrototypeIsMisled) {
  // Tag "a" is one direction, but 9 of its 12 examples (and 3 of the 12
  // negatives) carry a nuisance component: the mean points partly at the
  // nuisance and ranks nuisance negatives above clean positives; a
  // discriminative probe learns to ignore it.
  std::mt19937 rng(3);
  std::normal_distribution<double> gauss(0, 0.05);
  std::vector<SupportRow> rows;
  for (int i = 0; i < 24; ++i) {
    const bool pos = i < 12, nuisance = pos ? i % 4 != 0 : i % 4 == 0;
    std::vector<float> v(kDim);
    for (int d = 0; d < kDim; ++d) v[d] = 1.0 + gauss(rng);
    if (pos) v[0] += 0.6;
    if (nuisance) v[1] += 1.0;
    rows.push_back({v, i, {pos}});
  }
  FitOptions options;
  options.explicit_negatives = true;
  absl::StatusOr<Head> head = FitHead({"a"}, rows, options);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->reports[0].method, Method::kProbe);
  EXPECT_GT(head->reports[0].accuracy, 0.9);
}

TEST(FewShotFit, ExclusiveScoresSumToOne) {
  std::mt19937 rng(4);
  FitOptions options;
  options.exclusive = true;
  absl::StatusOr<Head> head =
      FitHead({"a", "b", "c"}, Rows(3, 2, 0, rng), options);
  ASSERT_TRUE(head.ok()) << head.status();
  const std::vector<float> scores = Score(*head, Embedding(1, rng), true);
  EXPECT_NEAR(scores[0] + scores[1] + scores[2], 1.0, 1e-5);
  EXPECT_GT(scores[1], scores[0]);
  EXPECT_GT(scores[1], scores[2]);
  for (const TagReport& r : head->reports) EXPECT_DOUBLE_EQ(r.accuracy, 1.0);
}

TEST(FewShotFit, SegmentRowsOfOneFileAreLeftOutTogether) {
  // Two files per tag, each with three identical segments: leaving out one
  // segment at a time would let its twins score it perfectly; leaving out
  // the file leaves one other file, still enough here.
  std::mt19937 rng(5);
  std::vector<SupportRow> rows;
  for (int file = 0; file < 4; ++file) {
    const std::vector<float> e = Embedding(file / 2, rng);
    for (int s = 0; s < 3; ++s)
      rows.push_back({e, file, {file < 2, file >= 2}});
  }
  absl::StatusOr<Head> head = FitHead({"a", "b"}, rows, FitOptions());
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->reports[0].positives, 2);  // files, not segments
  EXPECT_EQ(head->reports[0].negatives, 2);
}

TEST(FewShotFit, ManyFilesAreCrossValidatedInFolds) {
  std::mt19937 rng(7);
  FitOptions options;
  options.max_folds = 4;
  absl::StatusOr<Head> head = FitHead({"a", "b"}, Rows(2, 6, 0, rng), options);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->files, 12);
  EXPECT_EQ(head->folds, 4);
  EXPECT_EQ(ValidationName(*head), "4-fold cross-validation");
  EXPECT_DOUBLE_EQ(head->reports[0].accuracy, 1.0);
  options.max_folds = 20;
  head = FitHead({"a", "b"}, Rows(2, 6, 0, rng), options);
  ASSERT_TRUE(head.ok()) << head.status();
  EXPECT_EQ(head->folds, 12);
  EXPECT_EQ(ValidationName(*head), "leave-one-out");
}

TEST(FewShotFit, ErrorsNameTheProblem) {
  std::mt19937 rng(6);
  std::vector<SupportRow> one_tag = Rows(1, 3, 0, rng);
  EXPECT_THAT(FitHead({"a"}, one_tag, FitOptions()).status().message(),
              HasSubstr("tag 'a' has no negative examples"));
  std::vector<SupportRow> rows = Rows(2, 2, 0, rng);
  rows[1].embedding.pop_back();
  EXPECT_THAT(FitHead({"a", "b"}, rows, FitOptions()).status().message(),
              HasSubstr("differ in size"));
  rows = Rows(2, 2, 0, rng);
  rows[0].embedding[0] = std::nanf("");
  EXPECT_THAT(FitHead({"a", "b"}, rows, FitOptions()).status().message(),
              HasSubstr("not finite"));
  rows = Rows(2, 2, 1, rng);
  FitOptions exclusive;
  exclusive.exclusive = true;
  EXPECT_THAT(FitHead({"a", "b"}, rows, exclusive).status().message(),
              HasSubstr("exactly one tag"));
}

}  // namespace
}  // namespace audiotag::fewshot
