#include "src/audio/decoder.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
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

// The audio stream to decode, and its decoder. av_find_best_stream passes
// over an audio stream whose channel count or rate probing did not learn (a
// transport stream whose audio starts after the probe window); the first
// such stream with a decoder is taken then, and its frames tell the rest.
absl::StatusOr<int> FindAudioStream(AVFormatContext* format,
                                    const std::string& container,
                                    const AVCodec** codec) {
  const absl::Status unsupported = absl::InvalidArgumentError(absl::StrCat(
      "the upload's audio codec is not supported (container: ", container,
      ")"));
  const int best =
      av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, -1, codec, 0);
  if (best == AVERROR_DECODER_NOT_FOUND) return unsupported;
  if (best >= 0 && *codec != nullptr) return best;
  bool any_audio = false;
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    const AVCodecParameters& par = *format->streams[i]->codecpar;
    if (par.codec_type != AVMEDIA_TYPE_AUDIO) continue;
    any_audio = true;
    const int channels = par.ch_layout.nb_channels;
    if (channels != 0 && par.sample_rate != 0) {
      // Declared but unusable: say what is wrong with it.
      RETURN_IF_ERROR(ValidateAudioParams(channels, par.sample_rate));
      continue;
    }
    const AVCodec* found = avcodec_find_decoder(par.codec_id);
    if (found != nullptr) {
      *codec = found;
      return static_cast<int>(i);
    }
  }
  if (any_audio) return unsupported;
  return absl::InvalidArgumentError(absl::StrCat(
      "could not find an audio stream in the upload (container: ", container,
      ")"));
}

// The count of real samples (after priming, before end padding) that an
// iTunSMPB tag records: " 00000000 PPPPPPPP EEEEEEEE CCCCCCCCCCCCCCCC ..."
// in hex (reserved, priming, padding, count). -1 if absent or unreadable.
int64_t ItunesSampleCount(const AVFormatContext& format,
                          const AVStream& stream) {
  const AVDictionaryEntry* tag =
      av_dict_get(stream.metadata, "iTunSMPB", nullptr, 0);
  if (tag == nullptr)
    tag = av_dict_get(format.metadata, "iTunSMPB", nullptr, 0);
  if (tag == nullptr) return -1;
  std::vector<std::string> fields =
      absl::StrSplit(tag->value, ' ', absl::SkipEmpty());
  uint64_t count = 0;
  if (fields.size() < 4 || fields[3].size() > 16 ||
      !absl::SimpleHexAtoi(fields[3], &count) || count == 0 ||
      count > (uint64_t{1} << 40)) {
    return -1;
  }
  return static_cast<int64_t>(count);
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
        info_(info),
        time_base_(format->streams[stream_index]->time_base) {}

  // Frames are cut at `end_pts` (in the stream's time base): where the
  // container records the presentation's end, the encoder's end padding
  // lies past it.
  void set_end_pts(int64_t end_pts) { end_pts_ = end_pts; }
  // At most `samples` samples are kept (iTunSMPB's count of real samples).
  void set_max_samples(int64_t samples) { max_samples_ = samples; }

  absl::Status Run(absl::Span<const int> output_rates, const PcmSink& sink);

  int64_t frames_decoded() const { return frames_decoded_; }
  // INVALID_ARGUMENT saying that no audio came out, with FFmpeg's last error.
  absl::Status NoAudioError() const;

 private:
  absl::Status ReceiveFrames();
  absl::Status HandleFrame(const AVFrame& frame);

  AVFormatContext* const format_;
  AVCodecContext* const codec_;
  const int stream_index_;
  const DecoderOptions& options_;
  AudioInfo* const info_;
  const AVRational time_base_;
  int64_t end_pts_ = AV_NOPTS_VALUE;
  int64_t max_samples_ = -1;
  int64_t samples_kept_ = 0;
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
  if (frames_decoded_ == 0) return absl::OkStatus();  // the caller says why
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
  int samples = frame.nb_samples;
  const int64_t pts =
      frame.pts != AV_NOPTS_VALUE ? frame.pts : frame.best_effort_timestamp;
  if (end_pts_ != AV_NOPTS_VALUE && pts != AV_NOPTS_VALUE) {
    const int64_t left = av_rescale_q(end_pts_ - pts, time_base_,
                                      AVRational{1, frame.sample_rate});
    samples = static_cast<int>(std::clamp<int64_t>(left, 0, samples));
  }
  if (max_samples_ >= 0) {
    samples = static_cast<int>(
        std::clamp<int64_t>(max_samples_ - samples_kept_, 0, samples));
  }
  if (samples == 0) return absl::OkStatus();  // all end padding
  samples_kept_ += samples;
  ++frames_decoded_;
  const AudioFormat format{frame.sample_rate, frame.ch_layout.nb_channels};
  if (info_->formats.empty()) {
    info_->sample_rate = format.sample_rate;
    info_->channels = format.channels;
  }
  // Bounded: a hostile chain of links could change format at every link.
  constexpr size_t kMaxFormats = 16;
  if (info_->formats.size() < kMaxFormats &&
      std::find(info_->formats.begin(), info_->formats.end(), format) ==
          info_->formats.end()) {
    info_->formats.push_back(format);
  }
  info_->duration_seconds += static_cast<double>(samples) / frame.sample_rate;
  if (info_->duration_seconds > options_.max_duration_seconds) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("the audio is longer than the limit of %.0f seconds",
                        options_.max_duration_seconds));
  }
  for (auto& resampler : resamplers_) {
    RETURN_IF_ERROR(resampler->Push(frame, samples));
  }
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
  ASSIGN_OR_RETURN(const int index,
                   FindAudioStream(format.get(), info.container, &codec));
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (static_cast<int>(i) != index) {
      format->streams[i]->discard = AVDISCARD_ALL;
    }
  }
  const AVStream& stream = *format->streams[index];
  info.codec = codec->name;
  // What the container claims. A stream that probing left without a channel
  // count or rate (a transport stream whose audio starts after the probe
  // window) is opened anyway: its frames say, and each is checked. It is
  // refused only if no frame ever arrives.
  const absl::Status claimed = ValidateAudioParams(
      stream.codecpar->ch_layout.nb_channels, stream.codecpar->sample_rate);
  const bool unknown = stream.codecpar->ch_layout.nb_channels == 0 ||
                       stream.codecpar->sample_rate == 0;
  if (!claimed.ok() && !unknown) return claimed;
  absl::StatusOr<CodecContextPtr> decoder = OpenDecoder(stream, *codec);
  if (!decoder.ok()) return unknown ? claimed : decoder.status();

  Decoding decoding(format.get(), decoder->get(), index, options, &info);
  // MP4 and M4A record the presentation's length (the edit list, else the
  // media duration); libavformat trims the encoder's priming through
  // skip-samples side data but not its end padding (AAC's last frame is
  // whole: up to 1023 samples of padding). Other containers' durations are
  // estimates, or their padding is trimmed by libavcodec already.
  // iTunes' own count (iTunSMPB) is exact; else the edit list, which FFmpeg
  // writes in the movie's time scale (milliseconds unless -movie_timescale),
  // so the end is as exact as that.
  if (absl::StartsWith(format->iformat->name, "mov,")) {
    if (const int64_t count = ItunesSampleCount(*format, stream); count > 0) {
      decoding.set_max_samples(count);
    } else if (stream.duration > 0 && stream.duration != AV_NOPTS_VALUE) {
      const int64_t start =
          stream.start_time != AV_NOPTS_VALUE ? stream.start_time : 0;
      decoding.set_end_pts(start + stream.duration);
    }
  }
  // A float WAV can hold NaN or Inf, which would come out of every model as
  // NaN scores, and finite values so large that a power spectrum overflows:
  // refuse both.
  std::vector<int64_t> samples_seen(output_rates.size(), 0);
  const PcmSink checked_sink = [&](int rate_index,
                                   absl::Span<const float> samples) {
    for (size_t i = 0; i < samples.size(); ++i) {
      const float s = samples[i];
      if (!std::isfinite(s)) {
        return absl::InvalidArgumentError(
            "the audio contains NaN or infinite samples");
      }
      if (std::fabs(s) > options.max_sample_magnitude) {
        const double at = static_cast<double>(samples_seen[rate_index] + i) /
                          output_rates[rate_index];
        return absl::InvalidArgumentError(absl::StrFormat(
            "the audio has a sample of magnitude %.3g at %.3f s; samples must "
            "lie within +/-%g (full scale is +/-1): rescale the audio (was "
            "it written as float with integer scaling?)",
            std::fabs(s), at, options.max_sample_magnitude));
      }
    }
    samples_seen[rate_index] += static_cast<int64_t>(samples.size());
    return sink(rate_index, samples);
  };
  RETURN_IF_ERROR(decoding.Run(output_rates, checked_sink));
  if (decoding.frames_decoded() == 0) {
    if (unknown) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the audio stream's channel count and sample rate are unknown (the "
          "container declares ",
          stream.codecpar->ch_layout.nb_channels, " channels at ",
          stream.codecpar->sample_rate,
          " Hz) and no audio frame could be decoded to tell them (container: ",
          info.container, ", codec: ", info.codec, ")"));
    }
    return decoding.NoAudioError();
  }
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
