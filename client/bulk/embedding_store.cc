#include "client/bulk/embedding_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "client/bulk/json_text.h"
#include "client/bulk/npy.h"

namespace audiotag::bulk {
namespace fs = std::filesystem;

namespace {

// One index line as read at open.
struct IndexEntry {
  std::string id;
  std::string shard;  // file name in the output folder
  int64_t row = 0;
  int64_t rows = 0;
  std::string line;  // without '\n'
};

// A shard file as found at open.
struct ShardFile {
  int dim = -1;           // -1: no readable header
  int64_t header = 0;     // bytes before the data
  int64_t data_rows = 0;  // whole rows the file holds
};

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(
      absl::StrCat(what, " '", path, "': ", std::strerror(errno)));
}

absl::Status PwriteAll(int fd, const void* data, size_t size, int64_t offset,
                       const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::pwrite(fd, p, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot write", path);
    p += n;
    size -= static_cast<size_t>(n);
    offset += n;
  }
  return absl::OkStatus();
}

std::string ShardName(int number) {
  return absl::StrFormat("shard-%05d.npy", number);
}

// The number of "shard-NNNNN.npy", or -1.
int ShardNumber(const std::string& name) {
  int number = -1;
  if (!absl::StartsWith(name, "shard-") || !absl::EndsWith(name, ".npy") ||
      !absl::SimpleAtoi(name.substr(6, name.size() - 10), &number)) {
    return -1;
  }
  return number;
}

ShardFile ReadShardFile(const std::string& path) {
  ShardFile shard;
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return shard;
  struct stat st {};
  std::string head(4096, '\0');
  const ssize_t n = ::pread(fd, head.data(), head.size(), 0);
  const bool stat_ok = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (n <= 0 || !stat_ok) return shard;
  head.resize(static_cast<size_t>(n));
  absl::StatusOr<NpyShape> shape = ParseNpyHeader(head);
  if (!shape.ok() || shape->cols <= 0 || shape->cols > (1 << 24)) return shard;
  shard.dim = static_cast<int>(shape->cols);
  shard.header = shape->data_offset;
  const int64_t bytes = std::max<int64_t>(0, st.st_size - shard.header);
  shard.data_rows = bytes / (shard.dim * static_cast<int64_t>(sizeof(float)));
  return shard;
}

int64_t NumberField(const google::protobuf::Struct& object,
                    const std::string& key) {
  const auto it = object.fields().find(key);
  if (it == object.fields().end() || !it->second.has_number_value()) return -1;
  return static_cast<int64_t>(it->second.number_value());
}

}  // namespace

struct EmbeddingStore::Output {
  std::string folder;  // under root
  std::string dir;     // root/folder
  LineLog index;
  // What Open found; used by Valid and Reconcile, then cleared.
  std::vector<IndexEntry> entries;
  absl::flat_hash_map<std::string, size_t> by_id;  // last entry per id
  std::map<std::string, ShardFile> shards;
  // The open shard.
  int fd = -1;
  int number = -1;
  int64_t header = 0;
  int64_t rows = 0;
  int next_number = 0;
  int dim = -1;  // of every row of this output
  bool dirty = false;
  bool new_file = false;

  Output(std::string f, std::string d, LineLog log)
      : folder(std::move(f)), dir(std::move(d)), index(std::move(log)) {}
  ~Output() {
    if (fd >= 0) ::close(fd);
  }
};

std::string OutputFolder(const std::string& key) {
  return absl::StrReplaceAll(key, {{"/", "__"}});
}

EmbeddingStore::EmbeddingStore(std::string root, int64_t shard_rows)
    : root_(std::move(root)), shard_rows_(shard_rows) {}

EmbeddingStore::~EmbeddingStore() = default;

absl::StatusOr<std::unique_ptr<EmbeddingStore>> EmbeddingStore::Open(
    const std::string& root, int64_t shard_rows) {
  std::unique_ptr<EmbeddingStore> store(new EmbeddingStore(root, shard_rows));
  std::error_code error;
  fs::create_directories(root, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create '", root, "': ", error.message()));
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(root, error)) {
    if (!entry.is_directory()) continue;
    const std::string folder = entry.path().filename().string();
    const size_t split = folder.find("__");
    if (split == std::string::npos) continue;
    const std::string key =
        absl::StrCat(folder.substr(0, split), "/", folder.substr(split + 2));
    std::string contents;
    absl::StatusOr<Output*> found = store->GetOutput(key, &contents);
    if (!found.ok()) return found.status();
    Output& out = **found;
    for (absl::string_view line : absl::StrSplit(contents, '\n')) {
      if (line.empty()) continue;
      absl::StatusOr<google::protobuf::Struct> parsed = ParseJsonObject(line);
      if (!parsed.ok()) continue;  // dropped by Reconcile
      IndexEntry e{StringField(*parsed, "id"), StringField(*parsed, "shard"),
                   NumberField(*parsed, "row"), NumberField(*parsed, "rows"),
                   std::string(line)};
      out.by_id[e.id] = out.entries.size();
      out.entries.push_back(std::move(e));
    }
    for (const fs::directory_entry& file :
         fs::directory_iterator(out.dir, error)) {
      const std::string name = file.path().filename().string();
      if (ShardNumber(name) >= 0) {
        out.shards[name] = ReadShardFile(file.path().string());
      }
    }
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot list '", root, "': ", error.message()));
  }
  return store;
}

bool EmbeddingStore::Valid(const std::string& owner,
                           const google::protobuf::Struct& embeddings) const {
  for (const auto& [key, value] : embeddings.fields()) {
    const auto it = outputs_.find(key);
    if (it == outputs_.end() || !value.has_struct_value()) return false;
    const Output& out = *it->second;
    const auto at = out.by_id.find(owner);
    if (at == out.by_id.end()) return false;
    const IndexEntry& entry = out.entries[at->second];
    const google::protobuf::Struct& ref = value.struct_value();
    if (StringField(ref, "shard") !=
            absl::StrCat(out.folder, "/", entry.shard) ||
        NumberField(ref, "row") != entry.row ||
        NumberField(ref, "rows") != entry.rows || entry.row < 0 ||
        entry.rows < 0) {
      return false;
    }
    if (entry.rows == 0) continue;
    const auto shard = out.shards.find(entry.shard);
    if (shard == out.shards.end() ||
        entry.row + entry.rows > shard->second.data_rows) {
      return false;
    }
  }
  return true;
}

absl::Status EmbeddingStore::Reconcile(
    const absl::flat_hash_set<std::string>& done_ids) {
  for (auto& [key, out_ptr] : outputs_) {
    Output& out = *out_ptr;
    std::string kept;
    std::map<std::string, int64_t> extent;  // rows named, by shard
    bool dropped = false;
    for (const IndexEntry& e : out.entries) {
      if (!done_ids.contains(e.id) || e.row < 0 || e.rows < 0) {
        dropped = true;
        continue;
      }
      absl::StrAppend(&kept, e.line, "\n");
      int64_t& end = extent[e.shard];
      end = std::max(end, e.row + e.rows);
    }
    if (dropped) {
      if (absl::Status s = out.index.Rewrite(kept); !s.ok()) return s;
    }
    std::error_code error;
    int last = -1;
    for (const fs::directory_entry& file :
         fs::directory_iterator(out.dir, error)) {
      const std::string name = file.path().filename().string();
      const std::string path = file.path().string();
      const int number = ShardNumber(name);
      if (absl::EndsWith(name, ".tmp") ||
          (number >= 0 && !extent.contains(name))) {
        fs::remove(file.path(), error);
        continue;
      }
      if (number < 0) continue;
      const ShardFile& shard = out.shards[name];
      const int64_t rows = extent[name];
      if (shard.dim < 0) {
        if (rows > 0) {
          return absl::DataLossError(
              absl::StrCat(path, " is named by index lines but unreadable"));
        }
        continue;
      }
      // Drop rows no index line names (their tracks have no result line).
      const std::string header = NpyHeader(rows, shard.dim, shard.header);
      if (static_cast<int64_t>(header.size()) != shard.header) {
        return absl::DataLossError(
            absl::StrCat(path, ": header does not fit in place"));
      }
      const int fd = ::open(path.c_str(), O_RDWR);
      if (fd < 0) return Errno("cannot open", path);
      absl::Status status = absl::OkStatus();
      if (::ftruncate(fd, static_cast<off_t>(shard.header +
                                             rows * shard.dim * 4)) != 0) {
        status = Errno("cannot truncate", path);
      }
      if (status.ok()) {
        status = PwriteAll(fd, header.data(), header.size(), 0, path);
      }
      if (status.ok() && ::fdatasync(fd) != 0)
        status = Errno("cannot sync", path);
      ::close(fd);
      if (!status.ok()) return status;
      out.dim = shard.dim;
      if (number > last) last = number;
    }
    out.next_number = last + 1;
    // Keep filling the last shard if it has room.
    if (last >= 0) {
      const std::string name = ShardName(last);
      const ShardFile& shard = out.shards[name];
      if (shard.dim >= 0 && extent[name] < shard_rows_ &&
          shard.header >= static_cast<int64_t>(kGrowableNpyHeaderBytes)) {
        const std::string path = absl::StrCat(out.dir, "/", name);
        out.fd = ::open(path.c_str(), O_RDWR);
        if (out.fd < 0) return Errno("cannot open", path);
        out.number = last;
        out.header = shard.header;
        out.rows = extent[name];
      }
    }
    out.entries.clear();
    out.by_id.clear();
    out.shards.clear();
  }
  return absl::OkStatus();
}

absl::StatusOr<EmbeddingStore::Output*> EmbeddingStore::GetOutput(
    const std::string& key, std::string* index_contents) {
  auto it = outputs_.find(key);
  if (it != outputs_.end()) return it->second.get();
  const std::string folder = OutputFolder(key);
  const std::string dir = absl::StrCat(root_, "/", folder);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create '", dir, "': ", error.message()));
  }
  std::string contents;
  absl::StatusOr<LineLog> index = LineLog::Open(
      dir + "/index.jsonl", index_contents ? index_contents : &contents);
  if (!index.ok()) return index.status();
  auto output = std::make_unique<Output>(folder, dir, *std::move(index));
  return outputs_.emplace(key, std::move(output)).first->second.get();
}

absl::Status EmbeddingStore::StartShard(Output& out, int dim) {
  if (out.fd >= 0) {
    const std::string old = absl::StrCat(out.dir, "/", ShardName(out.number));
    if (::fdatasync(out.fd) != 0) return Errno("cannot sync", old);
    ::close(out.fd);
    out.fd = -1;
  }
  const int number = out.next_number;
  const std::string path = absl::StrCat(out.dir, "/", ShardName(number));
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Errno("cannot create", path);
  const std::string header = NpyHeader(0, dim, kGrowableNpyHeaderBytes);
  if (absl::Status s = PwriteAll(fd, header.data(), header.size(), 0, path);
      !s.ok()) {
    ::close(fd);
    return s;
  }
  out.fd = fd;
  out.number = number;
  out.next_number = number + 1;
  out.header = static_cast<int64_t>(header.size());
  out.rows = 0;
  out.new_file = true;
  return absl::OkStatus();
}

absl::StatusOr<std::string> EmbeddingStore::Add(
    const std::string& id, const std::vector<EmbeddingRows>& rows) {
  // Check every output before writing any.
  for (const EmbeddingRows& r : rows) {
    absl::StatusOr<Output*> found = GetOutput(r.key);
    if (!found.ok()) return found.status();
    const Output& out = **found;
    if (out.dim >= 0 && r.rows > 0 && r.dim != out.dim) {
      return absl::FailedPreconditionError(absl::StrCat(
          r.key, " has dim ", r.dim, ", earlier tracks ", out.dim));
    }
    if (r.rows > 0 && (r.dim <= 0 || static_cast<int64_t>(r.values.size()) !=
                                         int64_t{r.rows} * r.dim)) {
      return absl::FailedPreconditionError(
          absl::StrCat(r.key, ": ", r.values.size(), " values for ", r.rows,
                       " rows of dim ", r.dim));
    }
  }
  std::vector<std::string> refs;
  for (const EmbeddingRows& r : rows) {
    Output& out = **GetOutput(r.key);
    if (r.rows > 0 &&
        (out.fd < 0 || (out.rows > 0 && out.rows + r.rows > shard_rows_))) {
      if (absl::Status s = StartShard(out, r.dim); !s.ok()) return s;
    }
    const int number = out.fd >= 0 ? out.number : out.next_number;
    const std::string path = absl::StrCat(out.dir, "/", ShardName(number));
    const int64_t row = out.fd >= 0 ? out.rows : 0;
    if (r.rows > 0) {
      out.dim = r.dim;
      const int64_t row_bytes = int64_t{r.dim} * 4;
      if (absl::Status s =
              PwriteAll(out.fd, r.values.data(), r.values.size() * 4,
                        out.header + row * row_bytes, path);
          !s.ok()) {
        return s;
      }
      out.rows += r.rows;
      const std::string header = NpyHeader(out.rows, r.dim, out.header);
      if (absl::Status s =
              PwriteAll(out.fd, header.data(), header.size(), 0, path);
          !s.ok()) {
        return s;
      }
    }
    std::string index_line =
        absl::StrCat("{\"id\":", JsonString(id),
                     ",\"shard\":", JsonString(ShardName(number)),
                     ",\"row\":", row, ",\"rows\":", r.rows);
    if (!r.spans.empty()) {
      std::vector<std::string> spans;
      for (const auto& [start, end] : r.spans) {
        spans.push_back(
            absl::StrCat("[", JsonNumber(start), ",", JsonNumber(end), "]"));
      }
      absl::StrAppend(&index_line, ",\"segments\":[", absl::StrJoin(spans, ","),
                      "]");
    }
    absl::StrAppend(&index_line, "}\n");
    if (absl::Status s = out.index.AppendRaw(index_line); !s.ok()) return s;
    out.dirty = true;
    refs.push_back(absl::StrCat(
        JsonString(r.key), ":{\"shard\":",
        JsonString(absl::StrCat(out.folder, "/", ShardName(number))),
        ",\"row\":", row, ",\"rows\":", r.rows, "}"));
  }
  return absl::StrCat("{", absl::StrJoin(refs, ","), "}");
}

absl::Status EmbeddingStore::Sync() {
  for (auto& [key, out] : outputs_) {
    if (!out->dirty) continue;
    if (out->fd >= 0 && ::fdatasync(out->fd) != 0) {
      return Errno("cannot sync", out->dir);
    }
    if (out->new_file) {
      const int fd = ::open(out->dir.c_str(), O_RDONLY | O_DIRECTORY);
      if (fd < 0) return Errno("cannot open", out->dir);
      const int rc = ::fsync(fd);
      ::close(fd);
      if (rc != 0) return Errno("cannot sync", out->dir);
    }
    if (absl::Status s = out->index.Sync(); !s.ok()) return s;
    out->dirty = false;
    out->new_file = false;
  }
  return absl::OkStatus();
}

}  // namespace audiotag::bulk
