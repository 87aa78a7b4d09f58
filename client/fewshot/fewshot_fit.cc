#include "client/fewshot/fewshot_fit.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace audiotag::fewshot {
namespace {

using Vec = std::vector<double>;

double Dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

void Normalize(Vec& v) {
  const double n = std::sqrt(Dot(v, v));
  if (n > 1e-12)
    for (double& x : v) x /= n;
}

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Clamped log of a probability, so a confident mistake costs a lot but not
// infinity.
double SafeLog(double p) { return std::log(std::clamp(p, 1e-12, 1.0)); }

// A linear scorer on normalised embeddings: w . z + b.
struct Linear {
  Vec w;
  double b = 0;
  double Apply(const Vec& z) const { return Dot(w, z) + b; }
};

// The support set after centring and normalising, with one tag's targets.
struct Problem {
  const std::vector<Vec>* z;
  std::vector<bool> y;
};

// Cosine prototype: the normalised mean of the positive rows in `use`.
// Without any positive row it scores everything 0.
Linear FitPrototype(const Problem& p, const std::vector<bool>& use) {
  const size_t dim = (*p.z)[0].size();
  Linear out{Vec(dim, 0.0), 0};
  for (size_t i = 0; i < p.y.size(); ++i) {
    if (!use[i] || !p.y[i]) continue;
    for (size_t d = 0; d < dim; ++d) out.w[d] += (*p.z)[i][d];
  }
  Normalize(out.w);
  return out;
}

// Class-balanced, L2-regularised logistic regression by Nesterov-accelerated
// gradient descent. Rows have unit norm, so with the bias the loss's gradient
// is (0.5 + l2)-Lipschitz and 1 / that is a safe step.
Linear FitProbe(const Problem& p, const std::vector<bool>& use,
                const FitOptions& options) {
  const size_t dim = (*p.z)[0].size();
  double n_pos = 0, n_neg = 0;
  for (size_t i = 0; i < p.y.size(); ++i)
    if (use[i]) (p.y[i] ? n_pos : n_neg) += 1;
  Linear x{Vec(dim, 0.0), 0}, prev = x, look = x;
  if (n_pos == 0 || n_neg == 0) return x;
  const double step = 1.0 / (0.5 + options.probe_l2);
  Vec grad(dim);
  for (int t = 1; t <= options.probe_steps; ++t) {
    std::fill(grad.begin(), grad.end(), 0.0);
    double grad_b = 0;
    for (size_t i = 0; i < p.y.size(); ++i) {
      if (!use[i]) continue;
      const double c = p.y[i] ? 0.5 / n_pos : 0.5 / n_neg;
      const double r = c * (Sigmoid(look.Apply((*p.z)[i])) - (p.y[i] ? 1 : 0));
      for (size_t d = 0; d < dim; ++d) grad[d] += r * (*p.z)[i][d];
      grad_b += r;
    }
    Linear next = look;
    for (size_t d = 0; d < dim; ++d)
      next.w[d] -= step * (grad[d] + options.probe_l2 * look.w[d]);
    next.b -= step * grad_b;
    const double momentum = (t - 1.0) / (t + 2.0);
    for (size_t d = 0; d < dim; ++d)
      look.w[d] = next.w[d] + momentum * (next.w[d] - prev.w[d]);
    look.b = next.b + momentum * (next.b - prev.b);
    prev = next;
  }
  return prev;
}

Linear Fit(Method method, const Problem& p, const std::vector<bool>& use,
           const FitOptions& options) {
  return method == Method::kPrototype ? FitPrototype(p, use)
                                      : FitProbe(p, use, options);
}

// Platt scaling, class-balanced: a, c minimising the weighted cross-entropy
// of sigmoid(a s + c) against Platt's smoothed targets ((N+ + 1) / (N+ + 2)
// and 1 / (N- + 2)), which keep `a` finite when the scores separate. Damped
// Newton steps on the two parameters.
struct Calibration {
  double a = 1, c = 0;
  double Apply(double s) const { return a * s + c; }
};

Calibration FitPlatt(const Vec& s, const std::vector<bool>& y) {
  double n_pos = 0, n_neg = 0;
  for (bool v : y) (v ? n_pos : n_neg) += 1;
  const double t_pos = (n_pos + 1) / (n_pos + 2), t_neg = 1 / (n_neg + 2);
  auto loss = [&](const Calibration& k) {
    double l = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const double q = Sigmoid(k.Apply(s[i])), t = y[i] ? t_pos : t_neg;
      const double w = y[i] ? 0.5 / n_pos : 0.5 / n_neg;
      l -= w * (t * SafeLog(q) + (1 - t) * SafeLog(1 - q));
    }
    return l;
  };
  Calibration k;
  for (int it = 0; it < 100; ++it) {
    double ga = 0, gc = 0, haa = 1e-9, hac = 0, hcc = 1e-9;
    for (size_t i = 0; i < s.size(); ++i) {
      const double q = Sigmoid(k.Apply(s[i])), t = y[i] ? t_pos : t_neg;
      const double w = y[i] ? 0.5 / n_pos : 0.5 / n_neg;
      ga += w * (q - t) * s[i];
      gc += w * (q - t);
      const double h = w * q * (1 - q);
      haa += h * s[i] * s[i];
      hac += h * s[i];
      hcc += h;
    }
    const double det = haa * hcc - hac * hac;
    if (std::abs(ga) + std::abs(gc) < 1e-10 || det <= 0) break;
    const double da = (hcc * ga - hac * gc) / det;
    const double dc = (haa * gc - hac * ga) / det;
    const double before = loss(k);
    double scale = 1;
    Calibration next;
    for (; scale > 1e-4; scale /= 2) {
      next = {k.a - scale * da, k.c - scale * dc};
      if (loss(next) <= before) break;
    }
    if (scale <= 1e-4) break;
    k = next;
  }
  return k;
}

// Balanced log-loss of probabilities `q` against hard targets.
double BalancedLoss(const Vec& q, const std::vector<bool>& y) {
  double pos = 0, neg = 0, n_pos = 0, n_neg = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    if (y[i]) {
      pos -= SafeLog(q[i]);
      n_pos += 1;
    } else {
      neg -= SafeLog(1 - q[i]);
      n_neg += 1;
    }
  }
  return 0.5 * (pos / n_pos + neg / n_neg);
}

absl::Status CheckRows(const std::vector<std::string>& labels,
                       const std::vector<SupportRow>& rows,
                       const FitOptions& options) {
  if (labels.empty()) return absl::InvalidArgumentError("no tags");
  if (rows.empty()) return absl::InvalidArgumentError("no examples");
  const size_t dim = rows[0].embedding.size();
  if (dim == 0) return absl::InvalidArgumentError("empty embeddings");
  for (const SupportRow& row : rows) {
    if (row.embedding.size() != dim) {
      return absl::InvalidArgumentError(
          absl::StrCat("embeddings differ in size (", dim, " and ",
                       row.embedding.size(), ")"));
    }
    for (float v : row.embedding) {
      if (!std::isfinite(v))
        return absl::InvalidArgumentError("an embedding is not finite");
    }
    if (row.positive.size() != labels.size())
      return absl::InvalidArgumentError("a row has the wrong number of tags");
    const int n = std::count(row.positive.begin(), row.positive.end(), true);
    if (options.exclusive && n != 1) {
      return absl::InvalidArgumentError(
          "--exclusive: every example must belong to exactly one tag (no "
          "negatives, no file under two tags)");
    }
  }
  return absl::OkStatus();
}

// The rows' file indices, in first-seen order, and each row's index into it.
std::vector<int> GroupIndex(const std::vector<SupportRow>& rows,
                            int* num_groups) {
  std::map<int, int> index;
  std::vector<int> out;
  for (const SupportRow& row : rows) {
    auto [it, added] = index.emplace(row.group, index.size());
    out.push_back(it->second);
  }
  *num_groups = index.size();
  return out;
}

// Per-row held-out raw scores of one method for one tag: file g is in fold
// g % folds, and each fold is scored by a fit on the others.
Vec CrossValidate(Method method, const Problem& p,
                  const std::vector<int>& group, int folds,
                  const FitOptions& options) {
  Vec scores(p.y.size(), 0.0);
  std::vector<bool> use(p.y.size());
  for (int f = 0; f < folds; ++f) {
    for (size_t i = 0; i < use.size(); ++i) use[i] = group[i] % folds != f;
    const Linear fit = Fit(method, p, use, options);
    for (size_t i = 0; i < use.size(); ++i)
      if (!use[i]) scores[i] = fit.Apply((*p.z)[i]);
  }
  return scores;
}

struct Counts {
  int tp = 0, fp = 0, tn = 0, fn = 0;
};

void FillMetrics(const Counts& c, TagReport* r) {
  const int n = c.tp + c.fp + c.tn + c.fn;
  r->accuracy = n > 0 ? static_cast<double>(c.tp + c.tn) / n : 0;
  r->precision =
      c.tp + c.fp > 0 ? static_cast<double>(c.tp) / (c.tp + c.fp) : 0;
  r->recall = c.tp + c.fn > 0 ? static_cast<double>(c.tp) / (c.tp + c.fn) : 0;
}

// File-level leave-one-out metrics from the per-row calibrated logits
// (`logits[k][row]`): a file's probability is the mean of its rows', as the
// server pools segment scores.
void FileMetrics(const std::vector<Vec>& logits,
                 const std::vector<SupportRow>& rows,
                 const std::vector<int>& group, int num_groups, bool exclusive,
                 std::vector<TagReport>* reports) {
  const size_t tags = logits.size();
  std::vector<Vec> prob(num_groups, Vec(tags, 0.0));
  std::vector<int> count(num_groups, 0);
  std::vector<std::vector<bool>> truth(num_groups);
  for (size_t i = 0; i < rows.size(); ++i) {
    Vec q(tags);
    double max = -1e300, sum = 0;
    for (size_t k = 0; k < tags; ++k) max = std::max(max, logits[k][i]);
    for (size_t k = 0; k < tags; ++k) {
      q[k] = exclusive ? std::exp(logits[k][i] - max) : Sigmoid(logits[k][i]);
      sum += q[k];
    }
    for (size_t k = 0; k < tags; ++k)
      prob[group[i]][k] += exclusive ? q[k] / sum : q[k];
    ++count[group[i]];
    truth[group[i]] = rows[i].positive;
  }
  std::vector<Counts> counts(tags);
  for (int g = 0; g < num_groups; ++g) {
    const Vec& q = prob[g];
    const size_t best = std::max_element(q.begin(), q.end()) - q.begin();
    for (size_t k = 0; k < tags; ++k) {
      const bool predicted = exclusive ? k == best : q[k] / count[g] >= 0.5;
      Counts& c = counts[k];
      (truth[g][k] ? (predicted ? c.tp : c.fn) : (predicted ? c.fp : c.tn))++;
    }
  }
  for (size_t k = 0; k < tags; ++k) {
    FillMetrics(counts[k], &(*reports)[k]);
    (*reports)[k].positives = counts[k].tp + counts[k].fn;
    (*reports)[k].negatives = counts[k].tn + counts[k].fp;
  }
}

}  // namespace

std::string ValidationName(const Head& head) {
  return head.folds == head.files
             ? std::string("leave-one-out")
             : absl::StrCat(head.folds, "-fold cross-validation");
}

const char* MethodName(Method method) {
  return method == Method::kPrototype ? "prototype" : "probe";
}

absl::StatusOr<Head> FitHead(const std::vector<std::string>& labels,
                             const std::vector<SupportRow>& rows,
                             const FitOptions& options) {
  if (absl::Status s = CheckRows(labels, rows, options); !s.ok()) return s;
  const size_t dim = rows[0].embedding.size();
  Head head;
  Vec center(dim, 0.0);
  for (const SupportRow& row : rows)
    for (size_t d = 0; d < dim; ++d) center[d] += row.embedding[d];
  for (double& c : center) c /= rows.size();
  std::vector<Vec> z;
  for (const SupportRow& row : rows) {
    Vec v(dim);
    for (size_t d = 0; d < dim; ++d) v[d] = row.embedding[d] - center[d];
    Normalize(v);
    z.push_back(std::move(v));
  }
  int num_groups = 0;
  const std::vector<int> group = GroupIndex(rows, &num_groups);
  head.files = num_groups;
  head.folds = std::min(num_groups, std::max(2, options.max_folds));

  std::vector<Vec> loo_logits;
  for (size_t k = 0; k < labels.size(); ++k) {
    Problem p{&z, {}};
    std::vector<bool> pos_group(num_groups, false), seen(num_groups, false);
    for (size_t i = 0; i < rows.size(); ++i) {
      p.y.push_back(rows[i].positive[k]);
      pos_group[group[i]] = rows[i].positive[k];
      seen[group[i]] = true;
    }
    const int n_pos = std::count(pos_group.begin(), pos_group.end(), true);
    const int n_neg = num_groups - n_pos;
    if (n_pos == 0)
      return absl::InvalidArgumentError(
          absl::StrCat("tag '", labels[k], "' has no examples"));
    if (n_neg == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tag '", labels[k],
          "' has no negative examples: give another --tag or --negatives"));
    }
    TagReport report;
    report.label = labels[k];
    report.probe_considered =
        n_pos >= 2 && n_neg >= 2 &&
        (options.explicit_negatives || n_pos >= options.probe_min_positives);
    std::vector<Method> candidates = {Method::kPrototype};
    if (report.probe_considered) candidates.push_back(Method::kProbe);
    Vec best_logits;
    Calibration best_cal;
    double best_loss = 1e300;
    for (Method m : candidates) {
      const Vec raw = CrossValidate(m, p, group, head.folds, options);
      const Calibration cal = FitPlatt(raw, p.y);
      Vec logit(raw.size()), q(raw.size());
      for (size_t i = 0; i < raw.size(); ++i) {
        logit[i] = cal.Apply(raw[i]);
        q[i] = Sigmoid(logit[i]);
      }
      const double loss = BalancedLoss(q, p.y);
      (m == Method::kPrototype ? report.prototype_loss : report.probe_loss) =
          loss;
      if (loss < best_loss - 1e-9) {
        best_loss = loss;
        best_logits = logit;
        best_cal = cal;
        report.method = m;
      }
    }
    const Linear fit =
        Fit(report.method, p, std::vector<bool>(rows.size(), true), options);
    std::vector<float> w(dim);
    for (size_t d = 0; d < dim; ++d) w[d] = best_cal.a * fit.w[d];
    head.weight.push_back(std::move(w));
    head.bias.push_back(best_cal.Apply(fit.b));
    loo_logits.push_back(std::move(best_logits));
    head.reports.push_back(std::move(report));
  }
  FileMetrics(loo_logits, rows, group, num_groups, options.exclusive,
              &head.reports);
  head.center.assign(center.begin(), center.end());
  return head;
}

std::vector<float> Score(const Head& head, const std::vector<float>& embedding,
                         bool exclusive) {
  Vec z(embedding.size());
  for (size_t d = 0; d < z.size(); ++d) z[d] = embedding[d] - head.center[d];
  Normalize(z);
  Vec logits(head.bias.size());
  for (size_t k = 0; k < logits.size(); ++k) {
    logits[k] = head.bias[k];
    for (size_t d = 0; d < z.size(); ++d) logits[k] += head.weight[k][d] * z[d];
  }
  std::vector<float> out(logits.size());
  const double max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (size_t k = 0; k < logits.size(); ++k) {
    out[k] = exclusive ? std::exp(logits[k] - max) : Sigmoid(logits[k]);
    sum += out[k];
  }
  if (exclusive)
    for (float& v : out) v /= sum;
  return out;
}

std::string ReportTable(const std::vector<TagReport>& reports) {
  std::string out =
      absl::StrFormat("%-24s %-9s %5s %5s %8s %9s %6s\n", "tag", "method",
                      "pos", "neg", "accuracy", "precision", "recall");
  for (const TagReport& r : reports) {
    absl::StrAppendFormat(&out, "%-24s %-9s %5d %5d %8.3f %9.3f %6.3f", r.label,
                          MethodName(r.method), r.positives, r.negatives,
                          r.accuracy, r.precision, r.recall);
    if (r.probe_considered) {
      absl::StrAppendFormat(&out,
                            "  (held-out loss: prototype %.3f, "
                            "probe %.3f)",
                            r.prototype_loss, r.probe_loss);
    }
    out += "\n";
  }
  return out;
}

}  // namespace audiotag::fewshot
