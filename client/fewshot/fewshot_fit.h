#ifndef AUDIOTAG_CLIENT_FEWSHOT_FEWSHOT_FIT_H_
#define AUDIOTAG_CLIENT_FEWSHOT_FEWSHOT_FIT_H_

// Fitting few-shot tag classifiers on a frozen backbone's embeddings
// (docs/fewshot.md): a support set of embeddings, each labelled with the tags
// it is an example of (none for a negative), becomes one linear classifier
// per tag on centred, L2-normalised embeddings, calibrated so that a sigmoid
// of its logit is 0.5 where "present" and "absent" are equally likely.
//
// Every classifier is linear in z = (x - center) / |x - center|, so the whole
// head is logits = z W^T + b, the form the exported TorchScript head computes.
//
// Pure functions on plain vectors; no LibTorch, no gRPC; thread-compatible.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace audiotag::fewshot {

// One row of the support set: one embedding (a whole file's pooled embedding,
// or one segment of it).
struct SupportRow {
  // The backbone's embedding, `dim` floats.
  std::vector<float> embedding;
  // Index of the file the row comes from. Leave-one-out leaves out whole
  // files, so the segments of one file never score each other.
  int group = 0;
  // positive[k]: the row is an example of tag k. All false: a negative.
  std::vector<bool> positive;
};

struct FitOptions {
  // Softmax over tags (each positive row is an example of exactly one tag)
  // instead of an independent sigmoid per tag.
  bool exclusive = false;
  // Negatives were given explicitly (--negatives); makes the logistic probe a
  // candidate for tags with fewer than `probe_min_positives` files.
  bool explicit_negatives = false;
  // Positive files from which the probe is a candidate without explicit
  // negatives. Default 5.
  int probe_min_positives = 5;
  // L2 penalty of the logistic probe's weights. Default 0.05.
  double probe_l2 = 0.05;
  // Gradient steps of the probe fit. Default 400.
  int probe_steps = 400;
  // Most folds of the cross-validation: with more files than this, files
  // are dealt round-robin into this many folds instead of leaving one out at
  // a time, which bounds the fitting time (a fold's fit costs about
  // probe_steps x rows x dim). Default 20.
  int max_folds = 20;
};

enum class Method { kPrototype, kProbe };
const char* MethodName(Method method);

// Leave-one-out quality of one tag at the calibrated 0.5 threshold (argmax
// for an exclusive set), counted over files.
struct TagReport {
  std::string label;
  Method method = Method::kPrototype;
  // Whether the probe was a candidate (enough examples and negatives).
  bool probe_considered = false;
  // Balanced log-loss of the calibrated leave-one-out scores of each
  // candidate (the lower one is chosen); -1 for a method not considered.
  double prototype_loss = -1;
  double probe_loss = -1;
  int positives = 0;  // files
  int negatives = 0;  // files
  double accuracy = 0;
  double precision = 0;  // 0 when nothing was predicted present
  double recall = 0;
};

// The fitted head: logits = normalize(x - center) W^T + bias, then a sigmoid
// per tag (or a softmax over tags when exclusive).
struct Head {
  std::vector<float> center;               // [dim]
  std::vector<std::vector<float>> weight;  // [tags][dim]
  std::vector<float> bias;                 // [tags]
  std::vector<TagReport> reports;          // one per tag, cross-validated
  // Folds of the cross-validation; equal to the number of files when that
  // was leave-one-out.
  int folds = 0;
  int files = 0;
};

// "leave-one-out" or "N-fold cross-validation", for reports.
std::string ValidationName(const Head& head);

// Fits one classifier per tag of `labels` on `rows`, choosing per tag between
// the cosine prototype and the logistic probe by leave-one-out loss (folds
// of files beyond options.max_folds files), and
// calibrating the chosen one (Platt scaling, class-balanced, on its
// leave-one-out scores). INVALID_ARGUMENT when a tag has fewer than one
// positive file, when a tag has no negative file (a single tag without
// --negatives), when an exclusive row is an example of several tags or of
// none, or when embeddings differ in size or are not finite.
absl::StatusOr<Head> FitHead(const std::vector<std::string>& labels,
                             const std::vector<SupportRow>& rows,
                             const FitOptions& options);

// Applies `head` to one embedding: the per-tag probabilities (sigmoid, or
// softmax when `exclusive`). For tests and the evaluation report.
std::vector<float> Score(const Head& head, const std::vector<float>& embedding,
                         bool exclusive);

// A plain-text table of the reports: tag, method, files, accuracy,
// precision, recall.
std::string ReportTable(const std::vector<TagReport>& reports);

}  // namespace audiotag::fewshot

#endif  // AUDIOTAG_CLIENT_FEWSHOT_FEWSHOT_FIT_H_
