#include "client/bulk/shard.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace audiotag::bulk {
namespace {

TEST(Shard, DisjointAndCompleteForOneToSevenShards) {
  for (int count = 1; count <= 7; ++count) {
    std::vector<int> owners(1000, 0);
    std::vector<int> sizes(count, 0);
    for (int index = 0; index < count; ++index) {
      for (int i = 0; i < 1000; ++i) {
        if (InShard(absl::StrCat("track-", i), index, count)) {
          ++owners[i];
          ++sizes[index];
        }
      }
    }
    for (int i = 0; i < 1000; ++i) {
      EXPECT_EQ(owners[i], 1) << "id " << i << " with " << count << " shards";
    }
    for (int index = 0; index < count; ++index) {
      // Roughly even: no shard gets less than half its share.
      EXPECT_GT(sizes[index], 1000 / count / 2) << index << "/" << count;
    }
  }
}

TEST(Shard, HashIsStable) {
  // FNV-1a 64 test vectors: the same split on every machine and release.
  EXPECT_EQ(StableHash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(StableHash("a"), 0xaf63dc4c8601ec8cull);
}

TEST(Shard, IndexFromFlagThenEnvironment) {
  EXPECT_EQ(*ResolveShardIndex(2, "1", 4), 2);
  EXPECT_EQ(*ResolveShardIndex(-1, "3", 4), 3);
  EXPECT_EQ(*ResolveShardIndex(-1, nullptr, 4), 0);
  EXPECT_EQ(*ResolveShardIndex(-1, "", 4), 0);
  EXPECT_FALSE(ResolveShardIndex(-1, "x", 4).ok());
  EXPECT_FALSE(ResolveShardIndex(4, nullptr, 4).ok());
  EXPECT_FALSE(ResolveShardIndex(-1, "5", 4).ok());
  EXPECT_FALSE(ResolveShardIndex(0, nullptr, 0).ok());
}

}  // namespace
}  // namespace audiotag::bulk
