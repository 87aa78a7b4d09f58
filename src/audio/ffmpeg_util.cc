#include "src/audio/ffmpeg_util.h"

#include <mutex>

#include "absl/strings/str_cat.h"

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
#include <libavutil/mem.h>
}

namespace audiotag::audio_internal {

std::string AvErrorString(int errnum) {
  char buffer[AV_ERROR_MAX_STRING_SIZE] = {};
  if (av_strerror(errnum, buffer, sizeof(buffer)) < 0) {
    return absl::StrCat("FFmpeg error ", errnum);
  }
  return buffer;
}

absl::Status AvErrorToStatus(int errnum, absl::string_view what) {
  std::string message = absl::StrCat(what, ": ", AvErrorString(errnum));
  if (errnum == AVERROR(ENOMEM)) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InvalidArgumentError(message);
}

void ConfigureFfmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_QUIET);
    av_max_alloc(kMaxFfmpegAllocationBytes);
  });
}

}  // namespace audiotag::audio_internal
