#include "client/bulk/npy.h"

#include <cstring>
#include <filesystem>
#include <fstream>

#include "client/audiotag_client.h"
#include "client/bulk/durable_file.h"
#include "gtest/gtest.h"
#include "tests/testutil/server_process.h"

namespace audiotag::bulk {
namespace {

TEST(Npy, HeaderIsVersionOnePaddedTo64Bytes) {
  const std::string header = NpyHeader(3, 4);
  EXPECT_EQ(header.size() % 64, 0u);
  EXPECT_EQ(header.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  const size_t length = static_cast<unsigned char>(header[8]) |
                        static_cast<unsigned char>(header[9]) << 8;
  EXPECT_EQ(length + 10, header.size());
  EXPECT_EQ(header.substr(10, 59),
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  EXPECT_EQ(header.back(), '\n');
}

TEST(Npy, WriteThenReadBack) {
  const std::vector<float> values = {0.f, 1.5f, -2.f, 3.25f, 1e-3f, 42.f};
  const std::string path = ::testing::TempDir() + "/bulk-npy-test.npy";
  ASSERT_TRUE(WriteFileAtomically(path, EncodeNpy(2, 3, values)).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  absl::StatusOr<std::string> bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  absl::StatusOr<NpyShape> shape = ParseNpyHeader(*bytes);
  ASSERT_TRUE(shape.ok()) << shape.status();
  EXPECT_EQ(shape->rows, 2);
  EXPECT_EQ(shape->cols, 3);
  EXPECT_EQ(shape->data_offset % 64, 0);
  ASSERT_EQ(bytes->size(), shape->data_offset + values.size() * 4);
  std::vector<float> read(values.size());
  std::memcpy(read.data(), bytes->data() + shape->data_offset,
              bytes->size() - shape->data_offset);
  EXPECT_EQ(read, values);
}

TEST(Npy, LargeShapesStillAlign) {
  for (int64_t rows : std::vector<int64_t>{0, 1, 999999, int64_t{1} << 40}) {
    const std::string header = NpyHeader(rows, 512);
    EXPECT_EQ(header.size() % 64, 0u) << rows;
    auto shape = ParseNpyHeader(header);
    ASSERT_TRUE(shape.ok());
    EXPECT_EQ(shape->rows, rows);
  }
}

TEST(Npy, NumpyLoadsIt) {
  if (!std::filesystem::exists("/usr/bin/python3")) GTEST_SKIP();
  auto probe = testing::RunCommand({"/usr/bin/python3", "-c", "import numpy"});
  if (!probe.ok() || probe->exit_code != 0) GTEST_SKIP() << "no numpy";
  const std::string path = ::testing::TempDir() + "/bulk-npy-numpy.npy";
  ASSERT_TRUE(WriteFileAtomically(path, EncodeNpy(2, 2, {1, 2, 3, 4.5})).ok());
  auto run = testing::RunCommand(
      {"/usr/bin/python3", "-c",
       "import numpy,sys; a=numpy.load(sys.argv[1]); "
       "assert a.shape==(2,2) and a.dtype==numpy.float32 and a[1,1]==4.5",
       path});
  ASSERT_TRUE(run.ok());
  EXPECT_EQ(run->exit_code, 0) << run->err;
}

}  // namespace
}  // namespace audiotag::bulk
