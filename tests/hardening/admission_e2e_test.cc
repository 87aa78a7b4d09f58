// Admission by time and bytes against the real server (docs/hardening.md,
// "Admission"): stalled and trickling AnalyzeStreams lose their slot within
// the upload timeout, large and compressed uploads are refused at once past
// the byte budget, and the server's RSS stays within budget plus a margin.

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/hardening/hostile_inputs.h"
#include "tests/testutil/audio_files.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

using Code = grpc::StatusCode;
using ::testing::HasSubstr;

constexpr int kUploadTimeoutSeconds = 3;

// A stub on its own TCP connection, so that many streams are not queued
// behind one connection's --max_concurrent_streams.
std::unique_ptr<v1::AudioTagger::Stub> StubOnOwnConnection(
    const std::string& address, int index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("audiotag.test_connection", index);
  args.SetMaxSendMessageSize(64 << 20);
  return v1::AudioTagger::NewStub(grpc::CreateCustomChannel(
      address, grpc::InsecureChannelCredentials(), args));
}

v1::AnalyzeOptions StatsOptions() {
  v1::AnalyzeOptions options;
  options.add_models("stats");
  return options;
}

v1::AnalyzeStreamRequest OptionsMessage() {
  v1::AnalyzeStreamRequest message;
  *message.mutable_options() = StatsOptions();
  return message;
}

// The server's resident set (VmRSS) or its peak (VmHWM), in bytes.
int64_t ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) != 0) continue;
    int64_t kb = 0;
    std::string value = line.substr(field.size() + 1);
    value = value.substr(0, value.find("kB"));
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(value), &kb)) {
      return kb * 1024;
    }
  }
  return -1;
}

// Resets VmHWM to the current RSS.
void ResetPeakRss(pid_t pid) {
  std::ofstream(absl::StrCat("/proc/", pid, "/clear_refs")) << "5";
}

// Analyze with a good file until it is not refused for lack of room (bounded).
grpc::Status AnalyzeUntilAdmitted(v1::AudioTagger::Stub& stub,
                                  absl::Duration patience) {
  const absl::Time give_up = absl::Now() + patience;
  grpc::Status status;
  do {
    v1::AnalyzeResponse response;
    status = CallAnalyze(stub, GoodWav(), StatsOptions(), &response, 30);
    if (status.error_code() != Code::RESOURCE_EXHAUSTED) return status;
    absl::SleepFor(absl::Milliseconds(200));
  } while (absl::Now() < give_up);
  return status;
}

// `count` AnalyzeStreams that send their options and then nothing, spread
// over `connections` connections, driven on one completion queue.
class StalledStreams {
 public:
  StalledStreams(const std::string& address, int count, int connections) {
    for (int c = 0; c < connections; ++c) {
      stubs_.push_back(StubOnOwnConnection(address, 1000 + c));
    }
    calls_ = std::vector<Call>(count);
    for (int i = 0; i < count; ++i) {
      Call& call = calls_[i];
      call.writer = stubs_[i % connections]->AsyncAnalyzeStream(
          &call.context, &call.response, &cq_, Tag(i, kStarted));
    }
  }
  ~StalledStreams() {
    for (Call& call : calls_) call.context.TryCancel();
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  // Drives the calls until every one has finished or `deadline` passes;
  // returns how many finished.
  int RunUntil(absl::Time deadline) {
    void* tag;
    bool ok;
    while (finished_ < static_cast<int>(calls_.size())) {
      const auto next = cq_.AsyncNext(&tag, &ok, absl::ToChronoTime(deadline));
      if (next != grpc::CompletionQueue::GOT_EVENT) break;
      const auto value = reinterpret_cast<intptr_t>(tag);
      Call& call = calls_[value / 4];
      switch (value % 4) {
        case kStarted:
          if (ok) {
            call.writer->Write(OptionsMessage(), Tag(value / 4, kWritten));
          } else {
            call.writer->Finish(&call.status, Tag(value / 4, kFinished));
          }
          break;
        case kWritten:
          written_.fetch_add(1);
          call.writer->Finish(&call.status, Tag(value / 4, kFinished));
          break;
        case kFinished:
          ++finished_;
          break;
      }
    }
    return finished_;
  }

  // Streams whose options reached the server's transport.
  int written() const { return written_.load(); }

  // Calls that finished with `code`.
  int Count(Code code) const {
    int n = 0;
    for (const Call& call : calls_) n += call.status.error_code() == code;
    return n;
  }
  const grpc::Status& status(int i) const { return calls_[i].status; }

 private:
  enum Phase { kStarted = 0, kWritten = 1, kFinished = 2 };
  static void* Tag(int i, Phase phase) {
    return reinterpret_cast<void*>(static_cast<intptr_t>(i) * 4 + phase);
  }
  struct Call {
    grpc::ClientContext context;
    v1::AnalyzeResponse response;
    std::unique_ptr<grpc::ClientAsyncWriter<v1::AnalyzeStreamRequest>> writer;
    grpc::Status status{grpc::StatusCode::UNKNOWN, "not finished"};
  };
  std::vector<std::unique_ptr<v1::AudioTagger::Stub>> stubs_;
  grpc::CompletionQueue cq_;
  std::vector<Call> calls_;
  int finished_ = 0;
  std::atomic<int> written_{0};
};

TEST(AdmissionE2E, StalledStreamsEndWithinTheUploadTimeoutAndFreeTheirSlots) {
  const std::string repository = NewTempDir("audiotag-admission-models");
  WriteStatsModel(repository, "stats");
  auto server = ServerProcess::Start(
      repository,
      {"--max_inflight_requests=512",
       absl::StrCat("--upload_timeout_seconds=", kUploadTimeoutSeconds)});
  ASSERT_TRUE(server.ok()) << server.status();

  StalledStreams stalled((*server)->address(), 512, 4);
  // Every stream is accepted and has sent its options by the time the good
  // calls start, so all 512 slots are taken then.
  const absl::Time give_up =
      absl::Now() + absl::Seconds(kUploadTimeoutSeconds + 30);
  std::thread driver([&] { stalled.RunUntil(give_up); });
  for (int i = 0; i < 300 && stalled.written() < 512; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_EQ(stalled.written(), 512);

  auto stub = StubOnOwnConnection((*server)->address(), 1);
  for (int i = 0; i < 10; ++i) {
    const grpc::Status status =
        AnalyzeUntilAdmitted(*stub, absl::Seconds(kUploadTimeoutSeconds + 20));
    EXPECT_TRUE(status.ok()) << "good call " << i << ": " << status.error_code()
                             << " " << status.error_message();
  }
  driver.join();
  EXPECT_EQ(stalled.Count(Code::DEADLINE_EXCEEDED), 512)
      << "first stream: " << stalled.status(0).error_code() << " "
      << stalled.status(0).error_message();
  EXPECT_THAT(stalled.status(0).error_message(),
              HasSubstr("--upload_timeout_seconds"));
  EXPECT_EQ(kill((*server)->pid(), 0), 0) << (*server)->Log();
}

TEST(AdmissionE2E, TricklingStreamEndsWithDeadlineExceeded) {
  const std::string repository = NewTempDir("audiotag-admission-models");
  WriteStatsModel(repository, "stats");
  auto server = ServerProcess::Start(
      repository,
      {absl::StrCat("--upload_timeout_seconds=", kUploadTimeoutSeconds)});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = MakeStub((*server)->address());
  grpc::ClientContext context;
  v1::AnalyzeResponse response;
  auto writer = stub->AnalyzeStream(&context, &response);
  ASSERT_TRUE(writer->Write(OptionsMessage()));
  // One byte every 250 ms: far below the minimum rate. The server ends the
  // call, after which writes fail; give up after 60 s.
  const std::string wav = GoodWav();
  int sent = 0;
  for (; sent < 240; ++sent) {
    v1::AnalyzeStreamRequest chunk;
    chunk.set_audio_chunk(wav.substr(sent, 1));
    if (!writer->Write(chunk)) break;
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_LT(sent, 240) << "the server let a trickling upload go on";
  const grpc::Status status = writer->Finish();
  EXPECT_EQ(status.error_code(), Code::DEADLINE_EXCEEDED)
      << status.error_message();
}

// The byte budget (--max_inflight_bytes, and gRPC's quota,
// --grpc_memory_bytes) of the tests below, and the margin the server's RSS
// may grow past the two: each connection's and call's fixed state, decoder
// buffers, allocator slack.
constexpr int64_t kBudgetBytes = int64_t{40} << 20;
constexpr int64_t kRssMarginBytes = int64_t{200} << 20;
constexpr int kClients = 40;

// 60 s of 48 kHz stereo 16-bit WAV: 11.5 MB.
const std::string& LargeWav() {
  static const std::string* wav =
      new std::string(MakeWav(48000, 2, 16, false, 48000 * 60));
  return *wav;
}

class ByteBudgetE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string repository = NewTempDir("audiotag-budget-models");
    WriteStatsModel(repository, "stats");
    auto server = ServerProcess::Start(
        repository,
        {"--max_upload_bytes=16777216", "--max_message_bytes=16777216",
         "--analysis_bytes_estimate=4194304",
         absl::StrCat("--max_inflight_bytes=", kBudgetBytes),
         absl::StrCat("--grpc_memory_bytes=", kBudgetBytes),
         "--analysis_threads=2"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto stub = MakeStub(server_->address());
    v1::AnalyzeResponse response;
    ASSERT_TRUE(CallAnalyze(*stub, GoodWav(), StatsOptions(), &response).ok());
    baseline_ = ProcStatusBytes(server_->pid(), "VmRSS");
    ResetPeakRss(server_->pid());
  }

  // Runs `call(client)` on kClients threads at once; returns the codes.
  std::vector<Code> RunClients(const std::function<grpc::Status(int)>& call) {
    std::vector<Code> codes(kClients, Code::UNKNOWN);
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) {
      threads.emplace_back([&, c] { codes[c] = call(c).error_code(); });
    }
    for (std::thread& t : threads) t.join();
    return codes;
  }

  void ExpectRssWithinBudget() {
    const int64_t peak = ProcStatusBytes(server_->pid(), "VmHWM");
    EXPECT_LT(peak - baseline_, 2 * kBudgetBytes + kRssMarginBytes)
        << "peak RSS " << peak << " from " << baseline_;
  }

  std::unique_ptr<ServerProcess> server_;
  int64_t baseline_ = 0;
};

std::string Codes(const std::vector<Code>& codes) {
  std::string text;
  for (Code code : codes) absl::StrAppend(&text, static_cast<int>(code), " ");
  return text;
}

int CountOf(const std::vector<Code>& codes, Code code) {
  return static_cast<int>(std::count(codes.begin(), codes.end(), code));
}

TEST_F(ByteBudgetE2E, LargeStreamUploadsPastTheBudgetAreRefusedEarly) {
  constexpr size_t kChunk = 1 << 20;
  const size_t chunks = (LargeWav().size() + kChunk - 1) / kChunk;
  std::atomic<int> refused_early{0};
  const std::vector<Code> codes = RunClients([&](int c) {
    auto stub = StubOnOwnConnection(server_->address(), c);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(120));
    v1::AnalyzeResponse response;
    auto writer = stub->AnalyzeStream(&context, &response);
    size_t sent = 0;
    if (writer->Write(OptionsMessage())) {
      for (; sent < chunks; ++sent) {
        v1::AnalyzeStreamRequest chunk;
        chunk.set_audio_chunk(LargeWav().substr(sent * kChunk, kChunk));
        if (!writer->Write(chunk)) break;
      }
      if (sent == chunks) writer->WritesDone();
    }
    const grpc::Status status = writer->Finish();
    if (status.error_code() == Code::RESOURCE_EXHAUSTED && sent < chunks) {
      ++refused_early;
    }
    return status;
  });
  EXPECT_GE(CountOf(codes, Code::OK), 1);
  EXPECT_GE(CountOf(codes, Code::RESOURCE_EXHAUSTED), 1);
  EXPECT_EQ(CountOf(codes, Code::OK) + CountOf(codes, Code::RESOURCE_EXHAUSTED),
            kClients)
      << Codes(codes);
  // Refused as the chunk that did not fit arrived, not after the upload.
  EXPECT_GE(refused_early.load(), 1);
  ExpectRssWithinBudget();
}

// A unary message is read whole before the handler can refuse it; gRPC's
// quota bounds those buffers by closing connections (UNAVAILABLE), and the
// budget refuses what arrived (RESOURCE_EXHAUSTED). Both are retryable.
TEST_F(ByteBudgetE2E, LargeUnaryUploadsPastTheBudgetAreRefused) {
  const std::vector<Code> codes = RunClients([&](int c) {
    auto stub = StubOnOwnConnection(server_->address(), c);
    v1::AnalyzeResponse response;
    return CallAnalyze(*stub, LargeWav(), StatsOptions(), &response, 120);
  });
  EXPECT_GE(CountOf(codes, Code::OK), 1) << Codes(codes);
  EXPECT_GE(CountOf(codes, Code::RESOURCE_EXHAUSTED) +
                CountOf(codes, Code::UNAVAILABLE),
            1);
  EXPECT_EQ(CountOf(codes, Code::OK) +
                CountOf(codes, Code::RESOURCE_EXHAUSTED) +
                CountOf(codes, Code::UNAVAILABLE),
            kClients)
      << Codes(codes);
  ExpectRssWithinBudget();
}

TEST_F(ByteBudgetE2E, CompressedUploadsAreRefusedBeforeTheyInflate) {
  // 11.5 MB of silence gzips to about 12 KB on the wire.
  const std::vector<Code> codes = RunClients([&](int c) {
    auto stub = StubOnOwnConnection(server_->address(), c);
    v1::AnalyzeRequest request;
    request.set_audio(LargeWav());
    *request.mutable_options() = StatsOptions();
    grpc::ClientContext context;
    context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(120));
    v1::AnalyzeResponse response;
    return stub->Analyze(&context, request, &response);
  });
  EXPECT_EQ(CountOf(codes, Code::UNIMPLEMENTED), kClients)
      << "first: " << codes[0];
  ExpectRssWithinBudget();
  // Uncompressed calls still work.
  auto stub = MakeStub(server_->address());
  v1::AnalyzeResponse response;
  EXPECT_TRUE(CallAnalyze(*stub, GoodWav(), StatsOptions(), &response).ok());
}

}  // namespace
}  // namespace audiotag::testing
