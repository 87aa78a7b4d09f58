#ifndef AUDIOTAG_CLIENT_BULK_TRACK_RESULT_H_
#define AUDIOTAG_CLIENT_BULK_TRACK_RESULT_H_

// Turns one AnalyzeResponse into the compact body of a results.jsonl line and
// the embedding rows that go to the .npy shards.

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "audiotag/v1/audiotag.pb.h"

namespace audiotag::bulk {

enum class EmbeddingMode { kNone, kPooled, kSegments };

// One EMBEDDING output of one track: `rows` x `dim` floats.
struct EmbeddingRows {
  std::string key;  // "<model>/<output>"
  int dim = 0;
  int rows = 0;
  std::vector<float> values;
  // kSegments: [start, end) seconds of each row.
  std::vector<std::pair<double, double>> spans;
};

struct AnalyzedTrack {
  std::string sha256;
  // The line's fields from "sha256" on, without braces: sha256, models,
  // tags, activations_summary, duration_seconds, timings.
  std::string body;
  std::vector<EmbeddingRows> embeddings;
  double duration_seconds = 0;
};

struct CallTiming {
  double client_seconds = 0;  // wall time of the successful call
  int attempts = 1;
};

AnalyzedTrack FromResponse(const std::string& sha256,
                           const v1::AnalyzeResponse& response,
                           EmbeddingMode mode, const CallTiming& timing);

// The body of an error line: sha256 (if known) and
// "error": {"code": "INVALID_ARGUMENT", "message": "..."}.
std::string ErrorBody(const std::string& sha256, const absl::Status& status);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_TRACK_RESULT_H_
