#include "tests/hardening/hostile_inputs.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using Code = grpc::StatusCode;

const std::set<Code> kInvalid = {Code::INVALID_ARGUMENT};
const std::set<Code> kOkOrInvalid = {Code::OK, Code::INVALID_ARGUMENT};

std::string Le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>(v >> (8 * i)));
  return out;
}

std::string Be(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>(v >> (8 * i)));
  }
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// An ISO-BMFF box.
std::string Box(const std::string& type, const std::string& payload) {
  return Be(8 + payload.size(), 4) + type + payload;
}

// `type` boxes nested `depth` deep inside a moov, after an ftyp.
std::string NestedMp4(const std::string& type, int depth) {
  std::string inner;
  for (int i = 0; i < depth; ++i) inner = Box(type, inner);
  return Box("ftyp", "isom" + Be(512, 4) + "isomiso2mp41") + Box("moov", inner);
}

// An EBML header for Matroska, then a Segment of unknown size holding
// `depth` Tracks elements of unknown size, each inside the previous one.
std::string NestedMatroska(int depth) {
  const std::string doctype = "\x42\x82\x88matroska";
  std::string out = "\x1A\x45\xDF\xA3";
  out += static_cast<char>(0x80 | doctype.size());
  out += doctype;
  out += std::string("\x18\x53\x80\x67\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 12);
  for (int i = 0; i < depth; ++i) out += "\x16\x54\xAE\x6B\xFF";
  return out;
}

std::string SyncSafe(uint32_t v) {
  std::string out;
  for (int i = 3; i >= 0; --i)
    out.push_back(static_cast<char>((v >> (7 * i)) & 0x7F));
  return out;
}

// An ID3v2.3 tag holding one TXXX frame of `payload_bytes` bytes.
std::string Id3WithFrame(size_t payload_bytes) {
  const std::string frame = "TXXX" + Be(payload_bytes, 4) +
                            std::string(2, '\0') +
                            std::string(payload_bytes, 'a');
  return std::string("ID3\x03\x00\x00", 6) + SyncSafe(frame.size()) + frame;
}

std::string FlipBits(std::string bytes, size_t every, size_t from) {
  for (size_t i = from; i < bytes.size(); i += every) bytes[i] ^= 0x5A;
  return bytes;
}

std::string Pseudorandom(size_t n) {
  std::string bytes(n, '\0');
  uint32_t x = 2024;
  for (char& c : bytes)
    c = static_cast<char>((x = x * 1664525 + 1013904223) >> 24);
  return bytes;
}

std::string Tone(const std::string& out_name, double seconds,
                 const std::string& args = "") {
  return Ffmpeg(absl::StrCat("-f lavfi -i sine=frequency=440:sample_rate=16000:"
                             "duration=",
                             seconds, " ", args),
                out_name);
}

}  // namespace

std::string MakeWav(int rate, int channels, int bits, bool is_float,
                    int64_t samples, const std::string& data) {
  const int64_t block = static_cast<int64_t>(channels) * bits / 8;
  const std::string pcm =
      data.empty() ? std::string(samples * block, '\0') : data;
  std::string fmt = Le(is_float ? 3 : 1, 2) + Le(channels, 2) + Le(rate, 4) +
                    Le(rate * block, 4) + Le(block, 2) + Le(bits, 2);
  return "RIFF" + Le(4 + 8 + fmt.size() + 8 + pcm.size(), 4) + "WAVE" + "fmt " +
         Le(fmt.size(), 4) + fmt + "data" + Le(pcm.size(), 4) + pcm;
}

std::string FloatWav(const std::vector<float>& values) {
  std::string pcm(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(pcm.data(), values.data(), pcm.size());
  return MakeWav(16000, 1, 32, true, static_cast<int64_t>(values.size()), pcm);
}

std::string Ffmpeg(const std::string& args, const std::string& out_name) {
  const std::string dir = NewTempDir("audiotag-hostile");
  const std::string out = dir + "/" + out_name;
  auto run = RunCommand(
      {"/bin/sh", "-c",
       absl::StrCat("ffmpeg -nostdin -v error -y ", args, " ", out)});
  EXPECT_TRUE(run.ok() && run->exit_code == 0)
      << "ffmpeg " << args << ": " << (run.ok() ? run->err : "");
  return Slurp(out);
}

std::string GoodWav() {
  std::vector<float> tone(32000);
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] = 0.5f * std::sin(2 * M_PI * 440.0 * i / 16000.0);
  }
  std::string pcm;
  for (float x : tone)
    pcm += Le(static_cast<uint16_t>(static_cast<int16_t>(x * 32767)), 2);
  return MakeWav(16000, 1, 16, false, 32000, pcm);
}

std::vector<HostileUpload> HostileUploads() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<HostileUpload> c;
  const std::string wav = GoodWav();

  // Empty and truncated.
  c.push_back({"empty", "", kInvalid});
  c.push_back({"riff_header_only", wav.substr(0, 12), kInvalid});
  c.push_back({"wav_cut_in_fmt", wav.substr(0, 30), kInvalid});
  c.push_back({"wav_no_samples", MakeWav(16000, 1, 16, false, 0), kInvalid});
  c.push_back({"wav_cut_mid_data", wav.substr(0, wav.size() / 3), {Code::OK}});

  // Huge claimed sizes.
  std::string huge = wav;
  for (int i = 0; i < 4; ++i) huge[4 + i] = huge[40 + i] = '\xFF';
  c.push_back({"wav_riff_and_data_size_4g", huge, {Code::OK}});
  std::string fmt_huge = wav;
  for (int i = 0; i < 4; ++i) fmt_huge[16 + i] = '\xF0';
  c.push_back({"wav_fmt_chunk_size_4g", fmt_huge, kOkOrInvalid});
  std::string align0 = wav;
  align0[32] = align0[33] = 0;
  c.push_back({"wav_block_align_zero", align0, kOkOrInvalid});
  c.push_back({"wav_zero_bits",
               MakeWav(16000, 1, 0, false, 100, std::string(200, 'x')),
               kInvalid});

  // Extreme rates and channel counts.
  c.push_back(
      {"wav_1hz_100_samples", MakeWav(1, 1, 16, false, 100), kOkOrInvalid});
  c.push_back({"wav_1hz_over_duration_limit",
               MakeWav(1, 1, 16, false, 20000),
               {Code::RESOURCE_EXHAUSTED, Code::INVALID_ARGUMENT}});
  c.push_back({"wav_768khz", MakeWav(768000, 1, 16, false, 76800), {Code::OK}});
  c.push_back(
      {"wav_255_channels", MakeWav(16000, 255, 16, false, 1600), kInvalid});
  c.push_back(
      {"wav_65535_channels", MakeWav(16000, 65535, 8, false, 4), kInvalid});

  // Non-finite and out-of-range PCM (what happens to NaN is checked by its
  // own test; here only that the server survives it).
  c.push_back({"float_all_nan", FloatWav(std::vector<float>(16000, nan)),
               kOkOrInvalid});
  c.push_back({"float_all_inf", FloatWav(std::vector<float>(16000, inf)),
               kOkOrInvalid});
  // Finite but far out of range: refused, naming the peak.
  c.push_back(
      {"float_1e30", FloatWav(std::vector<float>(16000, 1e30f)), kInvalid});
  c.push_back(
      {"float_1e18", FloatWav(std::vector<float>(16000, 1e18f)), kInvalid});
  c.push_back(
      {"float_max", FloatWav(std::vector<float>(16000, 3.4e38f)), kInvalid});

  // Garbage.
  c.push_back({"random_64k", Pseudorandom(65536), kInvalid});
  c.push_back({"zeros_64k", std::string(65536, '\0'), kInvalid});
  std::string sync_spam;
  for (int i = 0; i < 20000; ++i) sync_spam += "\xFF\xFB\x90\x00";
  c.push_back({"mp3_frame_sync_spam", sync_spam, kOkOrInvalid});

  // Damaged real files.
  const std::string mp3 = Tone("t.mp3", 3);
  c.push_back({"mp3_bit_flipped", FlipBits(mp3, 97, 200), kOkOrInvalid});
  const std::string flac = Tone("t.flac", 1);
  c.push_back({"flac_cut_in_streaminfo", flac.substr(0, 30), kInvalid});
  std::string flac_total = flac;
  flac_total[21] |= 0x0F;
  for (int i = 22; i < 26; ++i) flac_total[i] = '\xFF';
  c.push_back({"flac_claims_68g_samples", flac_total, {Code::OK}});
  std::string flac_rate0 = flac;
  flac_rate0[18] = flac_rate0[19] = 0;
  flac_rate0[20] &= 0x0F;
  c.push_back({"flac_zero_rate", flac_rate0, kOkOrInvalid});
  const std::string m4a = Tone("t.m4a", 1, "-c:a aac -b:a 32k");
  std::string moov_huge = m4a;
  const size_t moov = moov_huge.find("moov");
  if (moov != std::string::npos && moov >= 4) {
    for (int i = 0; i < 4; ++i)
      moov_huge[moov - 4 + i] = i == 0 ? '\x7F' : '\xFF';
  }
  c.push_back({"m4a_moov_size_2g", moov_huge, kOkOrInvalid});
  c.push_back({"m4a_without_moov", m4a.substr(0, m4a.size() / 2), kInvalid});
  const std::string ogg = Tone("t.ogg", 0.5, "-c:a libvorbis");
  c.push_back({"ogg_bit_flipped", FlipBits(ogg, 61, 100), kOkOrInvalid});
  std::string chained;
  for (int i = 0; i < 50; ++i) chained += ogg;
  c.push_back({"ogg_50_chained_copies", chained, {Code::OK}});

  // Deeply nested containers and tags.
  c.push_back({"mp4_trak_nested_5000", NestedMp4("trak", 5000), kInvalid});
  c.push_back({"mp4_udta_nested_5000", NestedMp4("udta", 5000), kInvalid});
  c.push_back({"matroska_tracks_nested_5000", NestedMatroska(5000), kInvalid});
  c.push_back({"id3_claims_256m_then_mp3",
               std::string("ID3\x04\x00\x00", 6) + SyncSafe(0x0FFFFFFF) + mp3,
               kOkOrInvalid});
  c.push_back(
      {"id3_real_2m_frame_then_mp3", Id3WithFrame(2 << 20) + mp3, {Code::OK}});
  std::string id3_chain;
  for (int i = 0; i < 2000; ++i) id3_chain += Id3WithFrame(16);
  c.push_back({"id3_2000_tags_then_mp3", id3_chain + mp3, kOkOrInvalid});

  // Many streams, video.
  std::string maps;
  for (int i = 0; i < 100; ++i) maps += " -map 0:a";
  c.push_back({"mka_100_audio_streams",
               Tone("t.mka", 1, maps + " -c:a pcm_s16le"),
               kInvalid});  // the decoder allows 64 streams
  c.push_back(
      {"mkv_video_with_audio",
       Ffmpeg("-f lavfi -i testsrc=size=64x48:rate=5:duration=1 -f lavfi "
              "-i sine=sample_rate=16000:duration=1 -c:v mpeg4 -c:a "
              "pcm_s16le",
              "v.mkv"),
       {Code::OK}});
  c.push_back(
      {"mkv_video_only",
       Ffmpeg("-f lavfi -i testsrc=size=64x48:rate=5:duration=1 -c:v mpeg4",
              "v.mkv"),
       kInvalid});

  // Playlists and "endless" inputs: the decoder must not open anything else.
  c.push_back({"ffconcat_playlist",
               "ffconcat version 1.0\nfile '/dev/zero'\nfile '/dev/zero'\n",
               kInvalid});
  c.push_back(
      {"hls_playlist_to_local_file",
       "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///dev/zero\n"
       "#EXT-X-ENDLIST\n",
       kInvalid});
  c.push_back({"sdp_rtp_session",
               "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\n"
               "m=audio 5004 RTP/AVP 0\n",
               kInvalid});
  c.push_back({"flac_silence_over_duration_limit",
               Ffmpeg("-f lavfi -i anullsrc=r=8000:cl=mono -t 200", "s.flac"),
               {Code::RESOURCE_EXHAUSTED}});
  c.push_back({"over_upload_limit",
               std::string(kHostileMaxUploadBytes + 1, 'x'),
               {Code::RESOURCE_EXHAUSTED}});
  return c;
}

}  // namespace audiotag::testing
