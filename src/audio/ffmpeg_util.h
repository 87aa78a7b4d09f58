#ifndef AUDIOTAG_SRC_AUDIO_FFMPEG_UTIL_H_
#define AUDIOTAG_SRC_AUDIO_FFMPEG_UTIL_H_

// Owning smart pointers for the FFmpeg objects the decoder uses, and helpers
// that turn FFmpeg error codes into absl::Status. Internal to src/audio.

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/dict.h>
#include <libswresample/swresample.h>
}

namespace audiotag::audio_internal {

struct AVFormatContextDeleter {
  void operator()(AVFormatContext* p) const { avformat_close_input(&p); }
};
struct AVCodecContextDeleter {
  void operator()(AVCodecContext* p) const { avcodec_free_context(&p); }
};
struct AVPacketDeleter {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct AVFrameDeleter {
  void operator()(AVFrame* p) const { av_frame_free(&p); }
};
struct SwrContextDeleter {
  void operator()(SwrContext* p) const { swr_free(&p); }
};
struct AVDictionaryDeleter {
  void operator()(AVDictionary* p) const { av_dict_free(&p); }
};
// Frees the IO buffer too, which FFmpeg may have reallocated behind our back.
struct AVIOContextDeleter {
  void operator()(AVIOContext* p) const {
    if (p != nullptr) av_freep(&p->buffer);
    avio_context_free(&p);
  }
};

using FormatContextPtr =
    std::unique_ptr<AVFormatContext, AVFormatContextDeleter>;
using CodecContextPtr = std::unique_ptr<AVCodecContext, AVCodecContextDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, AVPacketDeleter>;
using FramePtr = std::unique_ptr<AVFrame, AVFrameDeleter>;
using SwrContextPtr = std::unique_ptr<SwrContext, SwrContextDeleter>;
using DictionaryPtr = std::unique_ptr<AVDictionary, AVDictionaryDeleter>;
using IOContextPtr = std::unique_ptr<AVIOContext, AVIOContextDeleter>;

// FFmpeg's text for an AVERROR code.
std::string AvErrorString(int errnum);

// INVALID_ARGUMENT (or RESOURCE_EXHAUSTED for ENOMEM) saying `what` failed and
// FFmpeg's reason.
absl::Status AvErrorToStatus(int errnum, absl::string_view what);

// The most one av_malloc may take (av_max_alloc), set by ConfigureFfmpeg.
inline constexpr size_t kMaxFfmpegAllocationBytes = 64 << 20;

// FFmpeg's process-wide settings, applied on the first call (safe to call
// many times): its logging to stderr is silenced, and no single allocation
// may exceed kMaxFfmpegAllocationBytes, so that sizes read out of an upload
// fail with ENOMEM instead of touching gigabytes. (An 899-byte WAV whose
// LIST chunk and INFO entry claim 2 GB made libavformat allocate and zero
// 2 GB: the decoder fuzzer found it.)
void ConfigureFfmpeg();

}  // namespace audiotag::audio_internal

#endif  // AUDIOTAG_SRC_AUDIO_FFMPEG_UTIL_H_
