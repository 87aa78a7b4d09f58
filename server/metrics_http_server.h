#ifndef AUDIOTAG_SERVER_METRICS_HTTP_SERVER_H_
#define AUDIOTAG_SERVER_METRICS_HTTP_SERVER_H_

// A minimal HTTP/1.x endpoint for Prometheus scrapes: GET /metrics answers
// with the text exposition format, anything else with 404. One thread serves
// one connection at a time, which is what a scraper needs, with a read
// timeout so a stuck client cannot hold it. (prometheus-cpp's own exposer,
// civetweb, fails to start in a process that also loads LibTorch's libraries,
// so audiotag serves the text itself.)
//
// Thread-safety: Start/destructor from one thread; `render` is called from the
// server's thread.

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace audiotag {

class MetricsHttpServer {
 public:
  // Binds `host`:`port` (port 0 picks one) and starts serving.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& host, int port, std::function<std::string()> render);

  // Stops accepting and joins the thread.
  ~MetricsHttpServer();

  int port() const { return port_; }

 private:
  MetricsHttpServer(int fd, int port, std::function<std::string()> render);
  void Loop();
  void Serve(int client);

  const int fd_;
  const int port_;
  const std::function<std::string()> render_;
  std::thread thread_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_METRICS_HTTP_SERVER_H_
