#ifndef AUDIOTAG_CLIENT_BULK_DURABLE_FILE_H_
#define AUDIOTAG_CLIENT_BULK_DURABLE_FILE_H_

// Crash-safe files for bulk jobs: whole files replaced atomically, and
// append-only line logs that a SIGKILL can cut only between lines.

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audiotag::bulk {

// Writes `data` to "<path>.tmp", fsyncs it, renames it to `path` and fsyncs
// the folder: after a crash `path` is either absent/old or complete.
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data);

// A file of '\n'-terminated lines, appended with one write() per line so a
// reader never sees half a line unless the process died inside write(), which
// Open repairs.
//
// Thread-safety: not thread-safe; callers serialize.
class LineLog {
 public:
  // Opens (creating) `path`. If it ends in a partial line (a crash cut a
  // write), truncates the file after its last '\n'. `contents` receives the
  // remaining complete lines.
  static absl::StatusOr<LineLog> Open(const std::string& path,
                                      std::string* contents);
  LineLog(LineLog&& other) noexcept;
  LineLog& operator=(LineLog&& other) noexcept;
  ~LineLog();

  // Appends `line` (without '\n'; it must not contain one) and '\n' in one
  // write(). Returns the line's byte offset.
  absl::StatusOr<int64_t> Append(absl::string_view line);

  // Several lines, each already '\n'-terminated, in one write().
  absl::Status AppendRaw(absl::string_view lines);

  // Reads `length` bytes at `offset` (a line Append returned).
  absl::StatusOr<std::string> ReadAt(int64_t offset, int64_t length) const;

  // fdatasync.
  absl::Status Sync();

  // Replaces the file's contents atomically with `lines` (all complete).
  absl::Status Rewrite(absl::string_view lines);

 private:
  LineLog(std::string path, int fd, int64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}

  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_DURABLE_FILE_H_
