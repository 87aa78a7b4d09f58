// The /metrics endpoint under abuse (docs/hardening.md, "Metrics endpoint"):
// it answers scrapes while a thousand idle connections, a trickler and a
// client that never reads are connected, survives malformed requests, and
// SIGTERM still ends the process within the grace period.

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/e2e/e2e_fixture.h"
#include "tests/e2e/e2e_metrics.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {
namespace {

constexpr int kGraceSeconds = 5;

// A TCP connection to 127.0.0.1:`port` (-1 on failure), with an optional
// small receive buffer set before connecting.
int Connect(int port, int receive_buffer = 0) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (receive_buffer > 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer,
               sizeof(receive_buffer));
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One HTTP exchange with a 10 s receive timeout: everything the server sent
// until it closed or went quiet.
std::string Exchange(int port, const std::string& request) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  std::string reply;
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    char buffer[8192];
    for (ssize_t n; (n = recv(fd, buffer, sizeof(buffer), 0)) > 0;) {
      reply.append(buffer, static_cast<size_t>(n));
    }
  }
  close(fd);
  return reply;
}

std::string Scrape(int port) {
  return Exchange(port,
                  "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Connection: close\r\n\r\n");
}

class MetricsEndpointE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    repository_ = NewTempDir("audiotag-metrics-models");
    WriteStatsModel(repository_, "stats");
    metrics_port_ = PickFreePort();
    auto server = ServerProcess::Start(
        repository_, {absl::StrCat("--metrics_port=", metrics_port_),
                      absl::StrCat("--grace_period_seconds=", kGraceSeconds),
                      "--metrics_idle_timeout_seconds=30"});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  std::string repository_;
  int metrics_port_ = 0;
  std::unique_ptr<ServerProcess> server_;
};

TEST_F(MetricsEndpointE2E, AnswersWhileAbusiveClientsAreConnected) {
  ASSERT_TRUE(absl::StrContains(Scrape(metrics_port_), "audiotag_"));

  // A thousand connections that never send a byte.
  std::vector<int> idle;
  for (int i = 0; i < 1000; ++i) {
    const int fd = Connect(metrics_port_);
    ASSERT_GE(fd, 0) << "connection " << i;
    idle.push_back(fd);
  }
  // A client that never reads: many pipelined scrapes into a small buffer.
  const int non_reader = Connect(metrics_port_, 4096);
  ASSERT_GE(non_reader, 0);
  std::string pipelined;
  for (int i = 0; i < 200; ++i) {
    pipelined += "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  }
  send(non_reader, pipelined.data(), pipelined.size(),
       MSG_NOSIGNAL | MSG_DONTWAIT);
  // A trickler: one byte of a request every 1.5 s until told to stop.
  absl::Notification stop;
  std::thread trickler([&] {
    const int fd = Connect(metrics_port_);
    const std::string request = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    for (size_t i = 0; i < request.size() && fd >= 0; ++i) {
      if (send(fd, &request[i], 1, MSG_NOSIGNAL) != 1) break;
      if (stop.WaitForNotificationWithTimeout(absl::Milliseconds(1500))) break;
    }
    if (fd >= 0) close(fd);
  });

  for (int i = 0; i < 5; ++i) {
    const std::string reply = Scrape(metrics_port_);
    EXPECT_TRUE(absl::StartsWith(reply, "HTTP/1.1 200"))
        << "scrape " << i << ": '" << reply.substr(0, 200) << "'";
    EXPECT_TRUE(absl::StrContains(reply, "audiotag_")) << "scrape " << i;
  }
  // Malformed and wrong requests get an answer, and the endpoint stays up.
  EXPECT_TRUE(absl::StartsWith(
      Exchange(metrics_port_, "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n"),
      "HTTP/1.1 404"));
  EXPECT_TRUE(absl::StartsWith(Exchange(metrics_port_,
                                        "POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                        "Content-Length: 0\r\n\r\n"),
                               "HTTP/1.1 405"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(metrics_port_, "\x01\x02 garbage \xff\r\n\r\n"), "HTTP/1.1 4"));
  EXPECT_TRUE(absl::StartsWith(
      Exchange(metrics_port_,
               absl::StrCat("GET /metrics HTTP/1.1\r\nX: ",
                            std::string(1 << 20, 'a'), "\r\n\r\n")),
      "HTTP/1.1 4"));
  EXPECT_TRUE(absl::StrContains(Scrape(metrics_port_), "audiotag_"));

  // SIGTERM ends the process within the grace period (plus start-up of the
  // drain), all of them still connected.
  const absl::StatusOr<int> code =
      server_->Terminate(absl::Seconds(kGraceSeconds + 10));
  ASSERT_TRUE(code.ok()) << code.status() << "\n" << server_->Log();
  EXPECT_EQ(*code, 0) << server_->Log();

  stop.Notify();
  trickler.join();
  close(non_reader);
  for (int fd : idle) close(fd);
}

// Unprotected by TLS or tokens, /metrics binds 127.0.0.1 unless
// --metrics_host says otherwise: not reachable on the host's other addresses.
TEST_F(MetricsEndpointE2E, ListensOnLocalhostByDefault) {
  EXPECT_TRUE(absl::StrContains(
      server_->Log(), absl::StrCat("msg=\"serving metrics\" address=127.0.0.1:",
                                   metrics_port_)))
      << server_->Log();
  ifaddrs* addresses = nullptr;
  ASSERT_EQ(getifaddrs(&addresses), 0);
  int tried = 0;
  for (ifaddrs* a = addresses; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || a->ifa_addr->sa_family != AF_INET) continue;
    sockaddr_in addr = *reinterpret_cast<sockaddr_in*>(a->ifa_addr);
    if (ntohl(addr.sin_addr.s_addr) >> 24 == 127) continue;
    addr.sin_port = htons(metrics_port_);
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_NE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << "reachable on " << a->ifa_name;
    close(fd);
    ++tried;
  }
  freeifaddrs(addresses);
  if (tried == 0) GTEST_SKIP() << "no non-loopback IPv4 address to try";
}

}  // namespace
}  // namespace audiotag::testing
