#include "client/bulk/npy.h"

#include <bit>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace audiotag::bulk {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the .npy writer assumes a little-endian host ('<f4')");

constexpr char kMagic[] = "\x93NUMPY\x01\x00";
constexpr size_t kPrefix = 10;  // magic (6), version (2), header length (2)

}  // namespace

std::string NpyHeader(int64_t rows, int64_t cols, size_t min_bytes) {
  std::string dict =
      absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", rows,
                   ", ", cols, "), }");
  size_t unpadded = kPrefix + dict.size() + 1;
  if (unpadded < min_bytes) {
    dict.append(min_bytes - unpadded, ' ');
    unpadded = min_bytes;
  }
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string header(kMagic, 8);
  header += static_cast<char>(dict.size() & 0xff);
  header += static_cast<char>(dict.size() >> 8);
  return header + dict;
}

std::string EncodeNpy(int64_t rows, int64_t cols,
                      const std::vector<float>& values) {
  std::string bytes = NpyHeader(rows, cols);
  const size_t header = bytes.size();
  bytes.resize(header + values.size() * sizeof(float));
  if (!values.empty()) {  // an empty vector's data() may be null
    std::memcpy(bytes.data() + header, values.data(),
                values.size() * sizeof(float));
  }
  return bytes;
}

absl::StatusOr<NpyShape> ParseNpyHeader(const std::string& bytes) {
  if (bytes.size() < kPrefix || bytes.compare(0, 8, kMagic, 8) != 0) {
    return absl::InvalidArgumentError("not a version 1.0 .npy file");
  }
  const size_t length = static_cast<unsigned char>(bytes[8]) |
                        static_cast<unsigned char>(bytes[9]) << 8;
  if (bytes.size() < kPrefix + length) {
    return absl::InvalidArgumentError("truncated .npy header");
  }
  absl::string_view dict(bytes.data() + kPrefix, length);
  if (!absl::StrContains(dict, "'descr': '<f4'") ||
      !absl::StrContains(dict, "'fortran_order': False")) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected header ", dict));
  }
  absl::string_view shape = dict.substr(dict.find("'shape': (") + 10);
  shape = shape.substr(0, shape.find(')'));
  std::vector<absl::string_view> dims = absl::StrSplit(shape, ", ");
  NpyShape result;
  result.data_offset = static_cast<int64_t>(kPrefix + length);
  if (dims.size() != 2 || !absl::SimpleAtoi(dims[0], &result.rows) ||
      !absl::SimpleAtoi(dims[1], &result.cols)) {
    return absl::InvalidArgumentError(absl::StrCat("bad shape in ", dict));
  }
  return result;
}

}  // namespace audiotag::bulk
