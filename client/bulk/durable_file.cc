#include "client/bulk/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"

namespace audiotag::bulk {
namespace {

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

absl::Status WriteAll(int fd, absl::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

absl::Status SyncFolderOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) return Errno("cannot open", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : Errno("cannot fsync", dir);
}

}  // namespace

absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  absl::Status status = WriteAll(fd, data, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = Errno("cannot fsync", tmp);
  ::close(fd);
  if (!status.ok()) return status;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Errno("cannot rename to", path);
  }
  return SyncFolderOf(path);
}

absl::StatusOr<LineLog> LineLog::Open(const std::string& path,
                                      std::string* contents) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND, 0644);
  if (fd < 0) return Errno("cannot open", path);
  LineLog log(path, fd, 0);
  contents->clear();
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::pread(fd, buffer, sizeof(buffer), contents->size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot read", path);
    if (n == 0) break;
    contents->append(buffer, static_cast<size_t>(n));
  }
  const size_t keep = contents->rfind('\n') + 1;  // 0 when there is none
  if (keep != contents->size()) {
    if (::ftruncate(fd, static_cast<off_t>(keep)) != 0) {
      return Errno("cannot truncate", path);
    }
    contents->resize(keep);
    if (::fdatasync(fd) != 0) return Errno("cannot sync", path);
  }
  log.size_ = static_cast<int64_t>(keep);
  return log;
}

LineLog::LineLog(LineLog&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      size_(other.size_) {}

LineLog& LineLog::operator=(LineLog&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
  }
  return *this;
}

LineLog::~LineLog() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<int64_t> LineLog::Append(absl::string_view line) {
  const int64_t offset = size_;
  if (absl::Status s = AppendRaw(absl::StrCat(line, "\n")); !s.ok()) return s;
  return offset;
}

absl::Status LineLog::AppendRaw(absl::string_view lines) {
  // One write() of the whole buffer: O_APPEND regular-file writes are not
  // split by signals, so a SIGKILL leaves all of it or none.
  const ssize_t n = ::write(fd_, lines.data(), lines.size());
  if (n < 0) return Errno("cannot append to", path_);
  size_ += n;
  if (static_cast<size_t>(n) != lines.size()) {
    return absl::InternalError(absl::StrCat("short write to '", path_, "'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> LineLog::ReadAt(int64_t offset,
                                            int64_t length) const {
  std::string data(static_cast<size_t>(length), '\0');
  const ssize_t n = ::pread(fd_, data.data(), data.size(), offset);
  if (n != length) return Errno("cannot read back", path_);
  return data;
}

absl::Status LineLog::Sync() {
  return ::fdatasync(fd_) == 0 ? absl::OkStatus() : Errno("cannot sync", path_);
}

absl::Status LineLog::Rewrite(absl::string_view lines) {
  if (absl::Status s = WriteFileAtomically(path_, lines); !s.ok()) return s;
  const int fd = ::open(path_.c_str(), O_RDWR | O_APPEND);
  if (fd < 0) return Errno("cannot reopen", path_);
  ::close(fd_);
  fd_ = fd;
  size_ = static_cast<int64_t>(lines.size());
  return absl::OkStatus();
}

}  // namespace audiotag::bulk
