#ifndef AUDIOTAG_SRC_AUDIO_MEMORY_IO_H_
#define AUDIOTAG_SRC_AUDIO_MEMORY_IO_H_

// An AVIOContext that reads from a buffer in memory, so libavformat can demux
// an upload without a temporary file. Internal to src/audio.

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "src/audio/ffmpeg_util.h"

namespace audiotag::audio_internal {

// Read position over borrowed bytes. Besides serving reads and seeks
// (including AVSEEK_SIZE), it caps the total bytes served at a multiple of the
// input's size, so a demuxer that keeps seeking back over hostile data cannot
// loop forever: once the budget is spent every read reports an I/O error.
class MemoryReader {
 public:
  // `bytes` must outlive the reader and every AVIOContext made from it.
  explicit MemoryReader(absl::string_view bytes);

  MemoryReader(const MemoryReader&) = delete;
  MemoryReader& operator=(const MemoryReader&) = delete;

  // AVIOContext callbacks; `opaque` is a MemoryReader*.
  static int Read(void* opaque, uint8_t* buf, int buf_size);
  static int64_t Seek(void* opaque, int64_t offset, int whence);

 private:
  absl::string_view bytes_;
  int64_t position_ = 0;
  int64_t served_ = 0;
  int64_t budget_ = 0;
};

// A read-only, seekable AVIOContext over `reader`, which must outlive it.
absl::StatusOr<IOContextPtr> MakeMemoryIoContext(MemoryReader* reader);

}  // namespace audiotag::audio_internal

#endif  // AUDIOTAG_SRC_AUDIO_MEMORY_IO_H_
