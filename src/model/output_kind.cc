#include "src/model/output_kind.h"

#include "absl/strings/str_cat.h"

namespace audiotag {
namespace {

constexpr OutputKindTraits kKinds[] = {
    {v1::TAGS, "TAGS", /*framewise=*/false, /*labelled=*/true,
     Report::kRankedTags},
    {v1::ACTIVATIONS, "ACTIVATIONS", /*framewise=*/true, /*labelled=*/true,
     Report::kTimeline},
    {v1::EMBEDDING, "EMBEDDING", /*framewise=*/true, /*labelled=*/false,
     Report::kVectors},
};

}  // namespace

absl::Span<const OutputKindTraits> OutputKinds() { return kKinds; }

const OutputKindTraits* FindOutputKind(v1::OutputKind kind) {
  for (const OutputKindTraits& row : kKinds) {
    if (row.kind == kind) return &row;
  }
  return nullptr;
}

bool Reports(v1::OutputKind kind, Report report) {
  const OutputKindTraits* row = FindOutputKind(kind);
  return row != nullptr && row->report == report;
}

std::string OutputKindNames() {
  std::string names;
  const size_t n = OutputKinds().size();
  for (size_t i = 0; i < n; ++i) {
    absl::StrAppend(&names, i == 0 ? "" : (i + 1 == n ? " or " : ", "),
                    kKinds[i].name);
  }
  return names;
}

bool AcceptsRank(const OutputKindTraits& kind, int64_t rank) {
  return rank == 2 || (kind.framewise && rank == 3);
}

std::string ExpectedShapes(const OutputKindTraits& kind, int64_t batch,
                           int64_t dim) {
  std::string shapes = absl::StrCat("[", batch, ", ", dim, "]");
  if (kind.framewise)
    absl::StrAppend(&shapes, " or [", batch, ", T, ", dim, "]");
  return shapes;
}

std::vector<int64_t> ShapeFromConfig(const OutputKindTraits& kind,
                                     int64_t dim) {
  if (kind.framewise) return {};
  return {dim};
}

}  // namespace audiotag
