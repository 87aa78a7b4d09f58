#ifndef AUDIOTAG_CLIENT_BULK_SHARD_H_
#define AUDIOTAG_CLIENT_BULK_SHARD_H_

// Splitting a catalog across N workers (e.g. the pods of a Kubernetes Indexed
// Job): a track belongs to shard StableHash(id) % count, so every worker
// reading the same manifest picks a disjoint part and together they cover it.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audiotag::bulk {

// FNV-1a 64 of `id`: the same on every machine and build.
uint64_t StableHash(absl::string_view id);

// Whether `id` belongs to shard `index` of `count`.
bool InShard(absl::string_view id, int index, int count);

// The shard index to use: `flag_value` if >= 0, else the integer in
// `env_value` (JOB_COMPLETION_INDEX; may be null), else 0. INVALID_ARGUMENT
// if it is not in [0, count) or the environment value is not an integer.
absl::StatusOr<int> ResolveShardIndex(int flag_value, const char* env_value,
                                      int count);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_SHARD_H_
