#ifndef AUDIOTAG_CLIENT_BULK_NPY_H_
#define AUDIOTAG_CLIENT_BULK_NPY_H_

// NumPy .npy files (format version 1.0) of little-endian float32 matrices,
// readable with numpy.load():
//   "\x93NUMPY" 0x01 0x00 <uint16 LE header length> <header dict> <data>
// where the dict is "{'descr': '<f4', 'fortran_order': False, 'shape': (N, D),
// }" padded with spaces and a final '\n' so that the data starts at a multiple
// of 64 bytes.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace audiotag::bulk {

// The magic, version, length and padded header of an N x D float32 array.
// With `min_bytes`, the header is padded to at least that many bytes (a
// multiple of 64), so a file written with a large enough `min_bytes` can have
// its row count rewritten in place as rows are appended (128 bytes hold any
// int64 shape).
std::string NpyHeader(int64_t rows, int64_t cols, size_t min_bytes = 0);

// Header size that fits every shape, for files whose rows grow in place.
inline constexpr size_t kGrowableNpyHeaderBytes = 128;

// A whole .npy file: the header and `values` (rows * cols floats, row-major).
std::string EncodeNpy(int64_t rows, int64_t cols,
                      const std::vector<float>& values);

struct NpyShape {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t data_offset = 0;  // bytes from the file's start
};

// Reads back the header EncodeNpy writes; INVALID_ARGUMENT otherwise.
absl::StatusOr<NpyShape> ParseNpyHeader(const std::string& bytes);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_NPY_H_
