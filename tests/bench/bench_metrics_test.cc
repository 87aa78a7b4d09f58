#include "client/bench_metrics.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiotag {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

constexpr char kText[] =
    R"(# HELP audiotag_batch_size Segments per forward call.
# TYPE audiotag_batch_size histogram
audiotag_batch_size_bucket{model="vggish",le="1"} 2
audiotag_batch_size_bucket{model="vggish",le="4"} 5
audiotag_batch_size_bucket{model="vggish",le="+Inf"} 9 1700000000000
audiotag_batch_size_sum{model="vggish"} 60
audiotag_batch_size_count{model="vggish"} 9
audiotag_batch_size_bucket{le="1",model="tagger"} 1
audiotag_batch_size_bucket{model="tagger",le="+Inf"} 1
audiotag_batch_size_sum{model="tagger"} 1
audiotag_batch_size_count{model="tagger"} 1
audiotag_batch_size_seconds_bucket{model="vggish",le="1"} 100
audiotag_requests_total{model="vggish",code="OK"} 12
)";

TEST(ParseHistograms, ReadsBucketsSumAndCountPerModel) {
  absl::StatusOr<HistogramsByLabel> h =
      ParseHistograms(kText, "audiotag_batch_size", "model");
  ASSERT_TRUE(h.ok()) << h.status();
  ASSERT_EQ(h->size(), 2u);
  const Histogram& v = h->at("vggish");
  EXPECT_THAT(v.buckets, ::testing::ElementsAre(::testing::Pair(1.0, 2.0),
                                                ::testing::Pair(4.0, 5.0),
                                                ::testing::Pair(kInf, 9.0)));
  EXPECT_EQ(v.sum, 60);
  EXPECT_EQ(v.count, 9);
  EXPECT_EQ(h->at("tagger").count, 1);
}

TEST(ParseHistograms, AbsentFamilyIsEmpty) {
  absl::StatusOr<HistogramsByLabel> h =
      ParseHistograms("other_metric 1\n", "audiotag_batch_size", "model");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(h->empty());
}

TEST(ParseHistograms, LabelValuesMayHoldCommasAndQuotes) {
  absl::StatusOr<HistogramsByLabel> h = ParseHistograms(
      "m_bucket{model=\"a,\\\"b\\\"\",le=\"2\"} 3\n", "m", "model");
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->at("a,\"b\"").buckets.at(2.0), 3);
}

TEST(ParseHistograms, MalformedSampleIsAnError) {
  absl::StatusOr<HistogramsByLabel> h =
      ParseHistograms("ok 1\nm_bucket{model=\"a\",le=\"2\"} x\n", "m", "model");
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(h.status().message(), ::testing::HasSubstr("line 2"));
}

TEST(HistogramDelta, SubtractsBeforeFromAfter) {
  HistogramsByLabel before = *ParseHistograms(
      "m_bucket{model=\"a\",le=\"1\"} 1\nm_bucket{model=\"a\",le=\"+Inf\"} 2\n"
      "m_sum{model=\"a\"} 5\nm_count{model=\"a\"} 2\n",
      "m", "model");
  HistogramsByLabel after = *ParseHistograms(
      "m_bucket{model=\"a\",le=\"1\"} 4\nm_bucket{model=\"a\",le=\"+Inf\"} 10\n"
      "m_sum{model=\"a\"} 45\nm_count{model=\"a\"} 10\n"
      "m_bucket{model=\"b\",le=\"+Inf\"} 3\n",
      "m", "model");
  HistogramsByLabel d = HistogramDelta(after, before);
  EXPECT_EQ(d.at("a").buckets.at(1.0), 3);
  EXPECT_EQ(d.at("a").buckets.at(kInf), 8);
  EXPECT_EQ(d.at("a").sum, 40);
  EXPECT_EQ(d.at("a").count, 8);
  EXPECT_EQ(d.at("b").buckets.at(kInf), 3);
  // Per bucket: 3 in (0, 1], 5 in (1, +Inf].
  EXPECT_THAT(BucketCounts(d.at("a")),
              ::testing::ElementsAre(::testing::Pair(1.0, 3.0),
                                     ::testing::Pair(kInf, 5.0)));
}

// Serves one canned HTTP reply on a loopback port.
class OneShotHttpServer {
 public:
  explicit OneShotHttpServer(std::string reply) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(fd_, 1);
    thread_ = std::thread([this, reply = std::move(reply)] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;  // shut down without a client
      char buffer[4096];
      const ssize_t n = recv(c, buffer, sizeof(buffer), 0);
      request_.assign(buffer, n > 0 ? n : 0);
      send(c, reply.data(), reply.size(), 0);
      close(c);
    });
  }
  ~OneShotHttpServer() {
    // Ends a wait in accept() when the client never connected.
    shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }
  int port() const { return port_; }
  // What the client sent; waits for the reply to have been sent.
  const std::string& request() {
    if (thread_.joinable()) thread_.join();
    return request_;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::string request_;
};

TEST(HttpGet, ReturnsTheBodyOfA200) {
  OneShotHttpServer server(
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nm_count 3\n");
  absl::StatusOr<std::string> body =
      HttpGet(absl::StrCat("127.0.0.1:", server.port()), absl::Seconds(5));
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "m_count 3\n");
  EXPECT_THAT(server.request(), ::testing::StartsWith("GET /metrics HTTP/1.0"));
}

TEST(HttpGet, Non200IsUnavailable) {
  OneShotHttpServer server("HTTP/1.0 404 Not Found\r\n\r\nnope");
  absl::StatusOr<std::string> body = HttpGet(
      absl::StrCat("http://127.0.0.1:", server.port(), "/x"), absl::Seconds(5));
  EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(body.status().message(), ::testing::HasSubstr("404"));
  EXPECT_THAT(server.request(), ::testing::StartsWith("GET /x HTTP/1.0"));
}

TEST(HttpGet, NoListenerIsUnavailable) {
  // Bind a port and close it so nothing listens there.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  absl::StatusOr<std::string> body = HttpGet(
      absl::StrCat("127.0.0.1:", ntohs(addr.sin_port)), absl::Seconds(2));
  EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable);
}

TEST(HttpGet, BadUrlIsInvalidArgument) {
  EXPECT_EQ(HttpGet("no-port", absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  for (const char* url : {"https://127.0.0.1:9464/metrics", "ftp://h:21/x",
                          "http://:9464", "127.0.0.1:port"}) {
    absl::StatusOr<std::string> body = HttpGet(url, absl::Seconds(1));
    EXPECT_EQ(body.status().code(), absl::StatusCode::kInvalidArgument) << url;
    EXPECT_THAT(body.status().message(), ::testing::HasSubstr(url));
  }
}

TEST(HttpGet, ResolvesHostNames) {
  OneShotHttpServer server("HTTP/1.0 200 OK\r\n\r\nok\n");
  absl::StatusOr<std::string> body = HttpGet(
      absl::StrCat("localhost:", server.port(), "/m"), absl::Seconds(5));
  // localhost may resolve to ::1 first; libcurl falls back to 127.0.0.1.
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "ok\n");
  EXPECT_THAT(server.request(), ::testing::StartsWith("GET /m HTTP/1.0"));
}

// A peer that answers something other than HTTP: a clear UNAVAILABLE naming
// the url, never a crash or an empty success.
TEST(HttpGet, GarbageReplyIsUnavailable) {
  for (const char* garbage :
       {"SSH-2.0-OpenSSH_9.2\r\n", "\x16\x03\x01 garbage\r\n\r\n", ""}) {
    OneShotHttpServer server(garbage);
    const std::string url = absl::StrCat("127.0.0.1:", server.port());
    absl::StatusOr<std::string> body = HttpGet(url, absl::Seconds(5));
    EXPECT_EQ(body.status().code(), absl::StatusCode::kUnavailable)
        << "reply '" << garbage << "': " << body.status();
    EXPECT_THAT(body.status().message(),
                ::testing::HasSubstr("malformed HTTP reply"))
        << "reply '" << garbage << "'";
    EXPECT_THAT(body.status().message(), ::testing::HasSubstr(url));
  }
}

// What `audiotag bench --metrics_url` reads: the histograms of a 200, or a
// clear error for a non-200, garbage, or a page whose samples do not parse.
TEST(ReadHistograms, ParsesTheBodyOfA200) {
  OneShotHttpServer server(absl::StrCat(
      "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n", kText));
  absl::StatusOr<HistogramsByLabel> h =
      ReadHistograms(absl::StrCat("http://127.0.0.1:", server.port()),
                     "audiotag_batch_size", "model", absl::Seconds(5));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->at("vggish").count, 9);
  EXPECT_EQ(h->at("tagger").sum, 1);
}

TEST(ReadHistograms, Non200IsUnavailableWithTheStatusLine) {
  OneShotHttpServer server(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy");
  absl::StatusOr<HistogramsByLabel> h =
      ReadHistograms(absl::StrCat("127.0.0.1:", server.port()),
                     "audiotag_batch_size", "model", absl::Seconds(5));
  EXPECT_EQ(h.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(h.status().message(),
              ::testing::HasSubstr("HTTP reply 'HTTP/1.1 503 Service "
                                   "Unavailable'"));
}

TEST(ReadHistograms, GarbageIsUnavailable) {
  OneShotHttpServer server("audiotag_batch_size_count 3\n");
  absl::StatusOr<HistogramsByLabel> h =
      ReadHistograms(absl::StrCat("127.0.0.1:", server.port()),
                     "audiotag_batch_size", "model", absl::Seconds(5));
  EXPECT_EQ(h.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(h.status().message(),
              ::testing::HasSubstr("malformed HTTP reply"));
}

TEST(ReadHistograms, UnparsableSampleNamesTheUrlAndLine) {
  OneShotHttpServer server(
      "HTTP/1.0 200 OK\r\n\r\n# TYPE audiotag_batch_size histogram\n"
      "audiotag_batch_size_bucket{model=\"m\",le=\"1\"} many\n");
  const std::string url = absl::StrCat("127.0.0.1:", server.port());
  absl::StatusOr<HistogramsByLabel> h =
      ReadHistograms(url, "audiotag_batch_size", "model", absl::Seconds(5));
  EXPECT_EQ(h.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(h.status().message(), ::testing::HasSubstr(url));
  EXPECT_THAT(h.status().message(), ::testing::HasSubstr("metrics line 2"));
}

}  // namespace
}  // namespace audiotag
