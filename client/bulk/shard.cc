#include "client/bulk/shard.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace audiotag::bulk {

uint64_t StableHash(absl::string_view id) {
  uint64_t hash = 14695981039346656037ull;
  for (const char c : id) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

bool InShard(absl::string_view id, int index, int count) {
  return StableHash(id) % static_cast<uint64_t>(count) ==
         static_cast<uint64_t>(index);
}

absl::StatusOr<int> ResolveShardIndex(int flag_value, const char* env_value,
                                      int count) {
  if (count < 1)
    return absl::InvalidArgumentError("--shard_count must be >= 1");
  int index = 0;
  if (flag_value >= 0) {
    index = flag_value;
  } else if (env_value != nullptr && *env_value != '\0') {
    if (!absl::SimpleAtoi(env_value, &index)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "JOB_COMPLETION_INDEX '", env_value, "' is not an integer"));
    }
  }
  if (index < 0 || index >= count) {
    return absl::InvalidArgumentError(
        absl::StrCat("shard index ", index, " is not in [0, ", count, ")"));
  }
  return index;
}

}  // namespace audiotag::bulk
