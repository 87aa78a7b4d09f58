#include "client/bulk/embedding_store.h"

#include <filesystem>
#include <system_error>

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

struct EmbeddingStore::Output {
  std::string folder;  // under root
  LineLog index;
  int next_shard = 0;
  int dim = -1;
  int64_t rows = 0;  // buffered
  std::vector<float> values;
  std::string index_lines;  // buffered, '\n'-terminated
};

namespace {

std::string ShardName(int number) {
  return absl::StrFormat("shard-%05d.npy", number);
}

// Keeps the index lines of done tracks; returns the shard names they use.
absl::StatusOr<absl::flat_hash_set<std::string>> ReconcileIndex(
    LineLog& index, const std::string& contents,
    const absl::flat_hash_set<std::string>& done_ids) {
  std::string kept;
  absl::flat_hash_set<std::string> shards;
  bool dropped = false;
  for (absl::string_view line : absl::StrSplit(contents, '\n')) {
    if (line.empty()) continue;
    absl::StatusOr<google::protobuf::Struct> entry = ParseJsonObject(line);
    if (!entry.ok() || !done_ids.contains(StringField(*entry, "id"))) {
      dropped = true;
      continue;
    }
    shards.insert(StringField(*entry, "shard"));
    absl::StrAppend(&kept, line, "\n");
  }
  if (dropped) {
    if (absl::Status s = index.Rewrite(kept); !s.ok()) return s;
  }
  return shards;
}

// Deletes temp files and shards no index line names; returns the next free
// shard number.
int PruneShards(const std::string& folder,
                const absl::flat_hash_set<std::string>& used) {
  int next = 0;
  std::error_code error;
  for (const fs::directory_entry& entry :
       fs::directory_iterator(folder, error)) {
    const std::string name = entry.path().filename().string();
    if (absl::EndsWith(name, ".tmp") ||
        (absl::StartsWith(name, "shard-") && !used.contains(name))) {
      fs::remove(entry.path(), error);
      continue;
    }
    int number = 0;
    if (absl::StartsWith(name, "shard-") &&
        absl::SimpleAtoi(name.substr(6, name.size() - 10), &number)) {
      next = std::max(next, number + 1);
    }
  }
  return next;
}

}  // namespace

std::string OutputFolder(const std::string& key) {
  return absl::StrReplaceAll(key, {{"/", "__"}});
}

EmbeddingStore::EmbeddingStore(std::string root, int64_t shard_rows)
    : root_(std::move(root)), shard_rows_(shard_rows) {}

EmbeddingStore::~EmbeddingStore() = default;

absl::StatusOr<std::unique_ptr<EmbeddingStore>> EmbeddingStore::Open(
    const std::string& root, const absl::flat_hash_set<std::string>& done_ids,
    int64_t shard_rows) {
  std::unique_ptr<EmbeddingStore> store(new EmbeddingStore(root, shard_rows));
  store->done_ids_ = done_ids;
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
    if (absl::StatusOr<Output*> output = store->GetOutput(key); !output.ok()) {
      return output.status();
    }
  }
  return store;
}

absl::StatusOr<EmbeddingStore::Output*> EmbeddingStore::GetOutput(
    const std::string& key) {
  auto it = outputs_.find(key);
  if (it != outputs_.end()) return it->second.get();
  const std::string folder = OutputFolder(key);
  const std::string dir = absl::StrCat(root_, "/", folder);
  std::error_code error;
  fs::create_directories(dir, error);
  std::string contents;
  absl::StatusOr<LineLog> index =
      LineLog::Open(dir + "/index.jsonl", &contents);
  if (!index.ok()) return index.status();
  absl::StatusOr<absl::flat_hash_set<std::string>> used =
      ReconcileIndex(*index, contents, done_ids_);
  if (!used.ok()) return used.status();
  auto output = std::make_unique<Output>(Output{folder, *std::move(index)});
  output->next_shard = PruneShards(dir, *used);
  return outputs_.emplace(key, std::move(output)).first->second.get();
}

absl::StatusOr<std::string> EmbeddingStore::Add(
    const std::string& id, const std::vector<EmbeddingRows>& rows) {
  std::vector<std::string> refs;
  for (const EmbeddingRows& r : rows) {
    absl::StatusOr<Output*> found = GetOutput(r.key);
    if (!found.ok()) return found.status();
    Output& out = **found;
    if (out.dim >= 0 && r.rows > 0 && r.dim != out.dim) {
      return absl::FailedPreconditionError(absl::StrCat(
          r.key, " has dim ", r.dim, ", earlier tracks ", out.dim));
    }
    if (r.rows > 0) out.dim = r.dim;
    const std::string shard =
        absl::StrCat(out.folder, "/", ShardName(out.next_shard));
    std::string index_line =
        absl::StrCat("{\"id\":", JsonString(id),
                     ",\"shard\":", JsonString(ShardName(out.next_shard)),
                     ",\"row\":", out.rows, ",\"rows\":", r.rows);
    if (!r.spans.empty()) {
      std::vector<std::string> spans;
      for (const auto& [start, end] : r.spans) {
        spans.push_back(
            absl::StrCat("[", JsonNumber(start), ",", JsonNumber(end), "]"));
      }
      absl::StrAppend(&index_line, ",\"segments\":[", absl::StrJoin(spans, ","),
                      "]");
    }
    absl::StrAppend(&out.index_lines, index_line, "}\n");
    refs.push_back(
        absl::StrCat(JsonString(r.key), ":{\"shard\":", JsonString(shard),
                     ",\"row\":", out.rows, ",\"rows\":", r.rows, "}"));
    out.rows += r.rows;
    out.values.insert(out.values.end(), r.values.begin(), r.values.end());
  }
  return absl::StrCat("{", absl::StrJoin(refs, ","), "}");
}

bool EmbeddingStore::ShardFull() const {
  for (const auto& [key, out] : outputs_) {
    if (out->rows >= shard_rows_) return true;
  }
  return false;
}

bool EmbeddingStore::Empty() const {
  for (const auto& [key, out] : outputs_) {
    if (!out->index_lines.empty()) return false;
  }
  return true;
}

absl::Status EmbeddingStore::Flush() {
  for (auto& [key, out] : outputs_) {
    if (out->index_lines.empty()) continue;
    const std::string path =
        absl::StrCat(root_, "/", out->folder, "/", ShardName(out->next_shard));
    if (absl::Status s = WriteFileAtomically(
            path, EncodeNpy(out->rows, std::max(out->dim, 0), out->values));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = out->index.AppendRaw(out->index_lines); !s.ok()) {
      return s;
    }
    if (absl::Status s = out->index.Sync(); !s.ok()) return s;
    ++out->next_shard;
    out->rows = 0;
    out->values.clear();
    out->index_lines.clear();
  }
  return absl::OkStatus();
}

}  // namespace audiotag::bulk
