#ifndef AUDIOTAG_CLIENT_BULK_MANIFEST_H_
#define AUDIOTAG_CLIENT_BULK_MANIFEST_H_

// What a bulk job works through: a list of tracks, each an id (unique in the
// job; the key of its result line) and the path of its audio file.
//
// Manifest formats, picked by the file's extension:
//   .jsonl / .ndjson  one {"id": ..., "path": ...} object per line ("id" may
//                     be a string or an integer; it defaults to the path)
//   .csv              a header naming an "id" column (optional) and a "path"
//                     column; RFC 4180 quoting
//   anything else     one path per line; the path is the id
// Empty lines and, in text manifests, lines starting with '#' are skipped.
// Relative paths are relative to the manifest's folder.

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace audiotag::bulk {

struct Track {
  std::string id;
  std::string path;
};

// Reads a manifest. A malformed line or a repeated id fails the whole read
// with INVALID_ARGUMENT naming "<file>:<line>"; NOT_FOUND if it cannot open.
absl::StatusOr<std::vector<Track>> ReadManifest(const std::string& path);

// Parses manifest text whose format is given by `file_name`'s extension;
// relative paths are resolved against `base_dir` (empty: left as they are).
absl::StatusOr<std::vector<Track>> ParseManifest(const std::string& text,
                                                 const std::string& file_name,
                                                 const std::string& base_dir);

// Every audio file under `dir` (recursively, by extension, case-insensitive),
// sorted; the id is the path relative to `dir`.
absl::StatusOr<std::vector<Track>> ListAudioFiles(const std::string& dir);

// Whether `path`'s extension is one ListAudioFiles picks.
bool HasAudioExtension(const std::string& path);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_MANIFEST_H_
