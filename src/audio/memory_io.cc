#include "src/audio/memory_io.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

extern "C" {
#include <libavutil/mem.h>
}

namespace audiotag::audio_internal {
namespace {

constexpr int kIoBufferSize = 64 * 1024;
// Generous enough for demuxers that probe, seek to the end for an index and
// come back; far below "forever".
constexpr int64_t kReadBudgetMultiple = 32;
constexpr int64_t kReadBudgetSlack = int64_t{64} << 20;

}  // namespace

MemoryReader::MemoryReader(absl::string_view bytes)
    : bytes_(bytes),
      budget_(static_cast<int64_t>(bytes.size()) * kReadBudgetMultiple +
              kReadBudgetSlack) {}

int MemoryReader::Read(void* opaque, uint8_t* buf, int buf_size) {
  auto* self = static_cast<MemoryReader*>(opaque);
  const int64_t size = static_cast<int64_t>(self->bytes_.size());
  if (self->served_ >= self->budget_) return AVERROR(EIO);
  if (self->position_ >= size) return AVERROR_EOF;
  const int64_t n =
      std::min<int64_t>(std::max(buf_size, 0), size - self->position_);
  std::memcpy(buf, self->bytes_.data() + self->position_,
              static_cast<size_t>(n));
  self->position_ += n;
  self->served_ += n;
  return static_cast<int>(n);
}

int64_t MemoryReader::Seek(void* opaque, int64_t offset, int whence) {
  auto* self = static_cast<MemoryReader*>(opaque);
  const int64_t size = static_cast<int64_t>(self->bytes_.size());
  int64_t target = 0;
  switch (whence & ~AVSEEK_FORCE) {
    case AVSEEK_SIZE:
      return size;
    case SEEK_SET:
      target = offset;
      break;
    case SEEK_CUR:
      target = self->position_ + offset;
      break;
    case SEEK_END:
      target = size + offset;
      break;
    default:
      return AVERROR(EINVAL);
  }
  if (target < 0 || target > size) return AVERROR(EINVAL);
  self->position_ = target;
  return target;
}

absl::StatusOr<IOContextPtr> MakeMemoryIoContext(MemoryReader* reader) {
  auto* buffer = static_cast<unsigned char*>(av_malloc(kIoBufferSize));
  if (buffer == nullptr) {
    return absl::ResourceExhaustedError("could not allocate the I/O buffer");
  }
  AVIOContext* io =
      avio_alloc_context(buffer, kIoBufferSize, /*write_flag=*/0, reader,
                         &MemoryReader::Read, nullptr, &MemoryReader::Seek);
  if (io == nullptr) {
    av_free(buffer);
    return absl::ResourceExhaustedError("could not allocate the I/O context");
  }
  io->seekable = AVIO_SEEKABLE_NORMAL;
  return IOContextPtr(io);
}

}  // namespace audiotag::audio_internal
