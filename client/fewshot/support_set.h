#ifndef AUDIOTAG_CLIENT_FEWSHOT_SUPPORT_SET_H_
#define AUDIOTAG_CLIENT_FEWSHOT_SUPPORT_SET_H_

// The support set of `audiotag fewshot`: tags and their example files from
// the command line, and the files' embeddings computed by a served backbone.

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/audiotag_client.h"
#include "client/fewshot/fewshot_fit.h"
#include "src/common/segment_grid.h"

namespace audiotag::fewshot {

// Limits on what the command line may ask for.
inline constexpr int kMaxTags = 1024;
inline constexpr int kMaxFiles = 10000;

struct ExampleFile {
  std::string path;
  // positive[k]: an example of tag k; all false for a negative.
  std::vector<bool> positive;
};

struct SupportSet {
  std::vector<std::string> labels;
  std::vector<ExampleFile> files;
};

// Builds the support set from `--tag LABEL=FILE[,FILE...]`,
// `--tag_dir LABEL=DIR` (every regular file in DIR whose name does not start
// with '.', sorted; not recursive) and `--negatives FILE[,FILE...]` values.
// A file named under two tags is an example of both. INVALID_ARGUMENT for a
// value without '=', a bad label (CheckLabel), a label given twice, a tag
// without files, an unreadable folder, a negative that is also an example, or
// more than kMaxTags tags / kMaxFiles files. With `read_folders` false
// (--dry_run) no folder is read: each --tag_dir stands for one file, DIR.
absl::StatusOr<SupportSet> BuildSupportSet(
    const std::vector<std::string>& tags,
    const std::vector<std::string>& tag_dirs,
    const std::vector<std::string>& negatives, bool read_folders = true);

// The backbone's embedding output, as the server describes it.
struct Backbone {
  std::string model;
  std::string output;
  int dim = 0;
  double segment_seconds = 0;
  // Where its segments lie in time.
  SegmentGrid grid;
};

// Asks the server about `model`: it must be READY and have an EMBEDDING
// output named `output`. NOT_FOUND / FAILED_PRECONDITION / INVALID_ARGUMENT
// naming the model and its embedding outputs otherwise.
absl::StatusOr<Backbone> DescribeBackbone(const AudioTagClient& client,
                                          const std::string& model,
                                          const std::string& output);

// How a file becomes support rows.
enum class Pooling {
  kMean,      // one row: the mean of the file's segment embeddings
  kSegments,  // one row per segment
};

// Embeds every file of `set` through the server (one Analyze call per file,
// the backbones only) and returns the rows, `group` = the file's index. With
// several backbones a row is their embeddings concatenated in order: for
// kMean the pooled ones; for kSegments one row per segment of the first
// backbone, each other backbone contributing its segment nearest in time
// (NearestSegment), as the server feeds a stage with several sources.
// Errors name the file: unreadable (NOT_FOUND), not decodable (the server's
// INVALID_ARGUMENT), shorter than one segment of a backbone
// (INVALID_ARGUMENT with both durations).
absl::StatusOr<std::vector<SupportRow>> EmbedSupportSet(
    const AudioTagClient& client, const std::vector<Backbone>& backbones,
    const SupportSet& set, Pooling pooling);

}  // namespace audiotag::fewshot

#endif  // AUDIOTAG_CLIENT_FEWSHOT_SUPPORT_SET_H_
