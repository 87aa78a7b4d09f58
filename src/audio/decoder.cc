#include "src/audio/decoder.h"

#include <cmath>

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "src/audio/ffmpeg_util.h"
#include "src/audio/memory_io.h"
#include "src/audio/mono_resampler.h"
#include "src/common/status_macros.h"

namespace audiotag {
namespace {

using audio_internal::AvErrorString;
using audio_internal::AvErrorToStatus;
using audio_internal::CodecContextPtr;
using audio_internal::DictionaryPtr;
using audio_internal::FormatContextPtr;
using audio_internal::FramePtr;
using audio_internal::MonoResampler;
using audio_internal::PacketPtr;

constexpr int kMaxChannels = 64;
constexpr int kMaxSourceRate = 768000;
constexpr int kMaxOutputRate = 384000;
constexpr int64_t kMaxStreams = 64;
// How much of the upload libavformat may read, and how much media time it may
// look at, to learn the streams' parameters.
constexpr const char* kProbeSizeBytes = "5000000";
constexpr const char* kAnalyzeDurationMicros = "5000000";
// How much of a WAV's PCM payload libavformat sniffs for compressed audio
// wrapped as PCM (its smallest allowed probesize; see OpenInput).
constexpr int64_t kWavPayloadProbeBytes = 32;

absl::Status ValidateRequest(absl::string_view bytes,
                             absl::Span<const int> output_rates,
                             const DecoderOptions& options) {
  if (bytes.empty()) return absl::InvalidArgumentError("upload is empty");
  if (static_cast<int64_t>(bytes.size()) > options.max_input_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("upload is ", bytes.size(), " bytes, over the limit of ",
                     options.max_input_bytes, " bytes"));
  }
  if (options.max_chunk_samples <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_chunk_samples must be positive, got ", options.max_chunk_samples));
  }
  for (int rate : output_rates) {
    if (rate < 1 || rate > kMaxOutputRate) {
      return absl::InvalidArgumentError(
          absl::StrCat("output sample rate ", rate,
                       " Hz is out of range (1 to ", kMaxOutputRate, " Hz)"));
    }
  }
  return absl::OkStatus();
}

// Checks the parameters a stream or frame claims before anything is sized
// from them.
absl::Status ValidateAudioParams(int channels, int sample_rate) {
  if (channels <= 0 || channels > kMaxChannels) {
    return absl::InvalidArgumentError(
        absl::StrCat("the audio stream has ", channels,
                     " channels; supported are 1 to ", kMaxChannels));
  }
  if (sample_rate <= 0 || sample_rate > kMaxSourceRate) {
    return absl::InvalidArgumentError(
        absl::StrCat("the audio stream's sample rate is ", sample_rate,
                     " Hz; supported are 1 to ", kMaxSourceRate, " Hz"));
  }
  return absl::OkStatus();
}

// Demuxers such as HLS, DASH or concat would open the files and URLs that an
// upload names; an upload must never reach outside its own bytes.
int RefuseNestedOpen(AVFormatContext*, AVIOContext**, const char*, int,
                     AVDictionary**) {
  return AVERROR(EPERM);
}

absl::StatusOr<FormatContextPtr> OpenInput(AVIOContext* io) {
  AVFormatContext* raw = avformat_alloc_context();
  if (raw == nullptr) {
    return absl::ResourceExhaustedError("could not allocate a demuxer");
  }
  raw->pb = io;
  raw->io_open = &RefuseNestedOpen;
  raw->max_streams = kMaxStreams;
  AVDictionary* raw_options = nullptr;
  av_dict_set(&raw_options, "probesize", kProbeSizeBytes, 0);
  // The upload arrives through `pb`; no demuxer may open a protocol of its
  // own (an SDP upload would otherwise make FFmpeg listen for RTP on UDP).
  av_dict_set(&raw_options, "protocol_whitelist", "none", 0);
  av_dict_set(&raw_options, "analyzeduration", kAnalyzeDurationMicros, 0);
  // On failure avformat_open_input frees the context itself.
  const int err = avformat_open_input(&raw, nullptr, nullptr, &raw_options);
  const DictionaryPtr unused_options(raw_options);
  if (err < 0) {
    // Whatever FFmpeg says (even ENOMEM, from sizes read out of the data),
    // the upload is at fault.
    return absl::InvalidArgumentError(absl::StrCat(
        "could not read the upload as an audio file (unknown or damaged "
        "container): ",
        AvErrorString(err)));
  }
  FormatContextPtr format(raw);
  // The WAV demuxer marks 16-bit PCM streams for content probing (DTS, AC-3
  // or MP3 stored as PCM): every codec prober re-runs on up to 32 packets,
  // about 1.7 ms per upload, most of the cost of a short clip. With the
  // container already identified, a tiny probesize ends that after one look
  // at the first packet, where such a payload's sync words are.
  if (absl::string_view(format->iformat->name) == "wav") {
    format->probesize = kWavPayloadProbeBytes;
  }
  // Missing details are tolerated here as the ffmpeg CLI does; a stream that
  // stays unusable is caught when it is validated.
  avformat_find_stream_info(format.get(), nullptr);
  return format;
}

absl::StatusOr<CodecContextPtr> OpenDecoder(const AVStream& stream,
                                            const AVCodec& codec) {
  CodecContextPtr context(avcodec_alloc_context3(&codec));
  if (context == nullptr) {
    return absl::ResourceExhaustedError("could not allocate a decoder");
  }
  int err = avcodec_parameters_to_context(context.get(), stream.codecpar);
  if (err < 0) return AvErrorToStatus(err, "could not configure the decoder");
  context->pkt_timebase = stream.time_base;
  // Requests run concurrently; one decode uses one core.
  context->thread_count = 1;
  err = avcodec_open2(context.get(), &codec, nullptr);
  if (err < 0) {
    return AvErrorToStatus(
        err, absl::StrCat("could not open the ", codec.name, " decoder"));
  }
  return context;
}

// The state of one DecodeAudio call once the input is open.
class Decoding {
 public:
  Decoding(AVFormatContext* format, AVCodecContext* codec, int stream_index,
           const DecoderOptions& options, AudioInfo* info)
      : format_(format),
        codec_(codec),
        stream_index_(stream_index),
        options_(options),
        info_(info) {}

  absl::Status Run(absl::Span<const int> output_rates, const PcmSink& sink);

 private:
  absl::Status ReceiveFrames();
  absl::Status HandleFrame(const AVFrame& frame);
  absl::Status NoAudioError() const;

  AVFormatContext* const format_;
  AVCodecContext* const codec_;
  const int stream_index_;
  const DecoderOptions& options_;
  AudioInfo* const info_;
  std::vector<std::unique_ptr<MonoResampler>> resamplers_;
  FramePtr frame_;
  int64_t frames_decoded_ = 0;
  int last_error_ = 0;
};

absl::Status Decoding::Run(absl::Span<const int> output_rates,
                           const PcmSink& sink) {
  for (size_t i = 0; i < output_rates.size(); ++i) {
    resamplers_.push_back(
        std::make_unique<MonoResampler>(static_cast<int>(i), output_rates[i],
                                        options_.max_chunk_samples, &sink));
  }
  PacketPtr packet(av_packet_alloc());
  frame_.reset(av_frame_alloc());
  if (packet == nullptr || frame_ == nullptr) {
    return absl::ResourceExhaustedError("could not allocate decode buffers");
  }
  for (;;) {
    // A read error is the end of the usable data, as in the ffmpeg CLI.
    if (av_read_frame(format_, packet.get()) < 0) break;
    if (packet->stream_index != stream_index_) {
      av_packet_unref(packet.get());
      continue;
    }
    const int err = avcodec_send_packet(codec_, packet.get());
    av_packet_unref(packet.get());
    if (err == AVERROR(ENOMEM)) return AvErrorToStatus(err, "decoding failed");
    if (err < 0 && err != AVERROR(EAGAIN)) {
      last_error_ = err;  // damaged packet: skip it
      continue;
    }
    RETURN_IF_ERROR(ReceiveFrames());
  }
  if (avcodec_send_packet(codec_, nullptr) >= 0) {
    RETURN_IF_ERROR(ReceiveFrames());
  }
  if (frames_decoded_ == 0) return NoAudioError();
  for (auto& resampler : resamplers_) RETURN_IF_ERROR(resampler->Finish());
  return absl::OkStatus();
}

absl::Status Decoding::ReceiveFrames() {
  for (;;) {
    const int err = avcodec_receive_frame(codec_, frame_.get());
    if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return absl::OkStatus();
    if (err == AVERROR(ENOMEM)) return AvErrorToStatus(err, "decoding failed");
    if (err < 0) {
      last_error_ = err;
      return absl::OkStatus();
    }
    absl::Status status = HandleFrame(*frame_);
    av_frame_unref(frame_.get());
    RETURN_IF_ERROR(status);
  }
}

absl::Status Decoding::HandleFrame(const AVFrame& frame) {
  if (frame.nb_samples <= 0) return absl::OkStatus();
  RETURN_IF_ERROR(
      ValidateAudioParams(frame.ch_layout.nb_channels, frame.sample_rate));
  ++frames_decoded_;
  info_->duration_seconds +=
      static_cast<double>(frame.nb_samples) / frame.sample_rate;
  if (info_->duration_seconds > options_.max_duration_seconds) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the audio is longer than the limit of %.0f seconds",
                        options_.max_duration_seconds));
  }
  for (auto& resampler : resamplers_) RETURN_IF_ERROR(resampler->Push(frame));
  return absl::OkStatus();
}

absl::Status Decoding::NoAudioError() const {
  std::string message =
      absl::StrCat("could not decode any audio from the upload (container: ",
                   info_->container, ", codec: ", info_->codec, ")");
  if (last_error_ != 0) {
    absl::StrAppend(&message, ": ", AvErrorString(last_error_));
  }
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<AudioInfo> DecodeAudio(absl::string_view bytes,
                                      absl::Span<const int> output_rates,
                                      const DecoderOptions& options,
                                      const PcmSink& sink) {
  audio_internal::ConfigureFfmpeg();
  RETURN_IF_ERROR(ValidateRequest(bytes, output_rates, options));

  audio_internal::MemoryReader reader(bytes);
  // Declared before the demuxer, which must be closed first.
  ASSIGN_OR_RETURN(audio_internal::IOContextPtr io,
                   audio_internal::MakeMemoryIoContext(&reader));
  ASSIGN_OR_RETURN(FormatContextPtr format, OpenInput(io.get()));

  AudioInfo info;
  info.size_bytes = static_cast<int64_t>(bytes.size());
  info.container = format->iformat->name;
  const AVCodec* codec = nullptr;
  const int index =
      av_find_best_stream(format.get(), AVMEDIA_TYPE_AUDIO, -1, -1, &codec, 0);
  if (index == AVERROR_DECODER_NOT_FOUND) {
    return absl::InvalidArgumentError(
        absl::StrCat("the upload's audio codec is not supported (container: ",
                     info.container, ")"));
  }
  if (index < 0 || codec == nullptr) {
    // Say what is wrong with an audio stream libavformat would not pick.
    for (unsigned i = 0; i < format->nb_streams; ++i) {
      const AVCodecParameters& par = *format->streams[i]->codecpar;
      if (par.codec_type == AVMEDIA_TYPE_AUDIO) {
        RETURN_IF_ERROR(
            ValidateAudioParams(par.ch_layout.nb_channels, par.sample_rate));
      }
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "could not find an audio stream in the upload (container: ",
        info.container, ")"));
  }
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (static_cast<int>(i) != index) {
      format->streams[i]->discard = AVDISCARD_ALL;
    }
  }
  const AVStream& stream = *format->streams[index];
  info.codec = codec->name;
  info.channels = stream.codecpar->ch_layout.nb_channels;
  info.sample_rate = stream.codecpar->sample_rate;
  RETURN_IF_ERROR(ValidateAudioParams(info.channels, info.sample_rate));
  ASSIGN_OR_RETURN(CodecContextPtr decoder, OpenDecoder(stream, *codec));

  Decoding decoding(format.get(), decoder.get(), index, options, &info);
  // A float WAV can hold NaN or Inf, which would come out of every model as
  // NaN scores: refuse it.
  const PcmSink finite_sink = [&sink](int rate_index,
                                      absl::Span<const float> samples) {
    for (float s : samples) {
      if (!std::isfinite(s)) {
        return absl::InvalidArgumentError(
            "the audio contains NaN or infinite samples");
      }
    }
    return sink(rate_index, samples);
  };
  RETURN_IF_ERROR(decoding.Run(output_rates, finite_sink));
  return info;
}

absl::StatusOr<std::vector<std::vector<float>>> DecodeAudioToVectors(
    absl::string_view bytes, absl::Span<const int> output_rates,
    const DecoderOptions& options, AudioInfo* info) {
  std::vector<std::vector<float>> out(output_rates.size());
  ASSIGN_OR_RETURN(
      AudioInfo decoded,
      DecodeAudio(bytes, output_rates, options,
                  [&out](int rate_index, absl::Span<const float> samples) {
                    out[rate_index].insert(out[rate_index].end(),
                                           samples.begin(), samples.end());
                    return absl::OkStatus();
                  }));
  if (info != nullptr) *info = std::move(decoded);
  return out;
}

}  // namespace audiotag
