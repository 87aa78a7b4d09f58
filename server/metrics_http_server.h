#ifndef AUDIOTAG_SERVER_METRICS_HTTP_SERVER_H_
#define AUDIOTAG_SERVER_METRICS_HTTP_SERVER_H_

// The Prometheus /metrics endpoint, served by GNU libmicrohttpd (Debian's
// libmicrohttpd12): GET or HEAD /metrics answers with the text exposition
// format, any other path with 404, any other method with 405.
//
// It is event-driven (epoll, `kThreads` polling threads), so idle, slow or
// non-reading clients cost a file descriptor each and never hold up a scrape;
// a connection silent for `idle_timeout` is closed, and at most
// `max_connections` are open at once (more are refused at accept). The
// destructor closes every connection at once, so it never delays shutdown.
//
// Why not prometheus-cpp's Exposer: Debian's civetweb starts its worker
// threads with a fixed 100 KiB stack, and in a process that loads LibTorch
// the static TLS of the libraries it brings (OpenBLAS 60 KiB, glog 30 KiB,
// libtorch_cpu 10 KiB, ...) does not fit in it, so pthread_create fails with
// EINVAL ("Cannot create first worker thread"). civetweb also gives each
// connection a worker thread until its request arrives, so a thousand idle
// connections would starve the scrapes anyway (docs/hardening.md).
//
// Thread-safety: Start/destructor from one thread; `render` is called from
// the polling threads, possibly at once.

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct MHD_Daemon;

namespace audiotag {

struct MetricsHttpOptions {
  // Host to bind: a numeric address or a name (first address found).
  std::string host = "127.0.0.1";
  // Port; 0 picks a free one (see port()).
  int port = 0;
  // A connection with no traffic for this long is closed (whole seconds, at
  // least 1).
  absl::Duration idle_timeout = absl::Seconds(10);
  // Connections open at once; more are closed right after accept.
  int max_connections = 4096;
};

class MetricsHttpServer {
 public:
  // Binds and starts serving; `render` returns the exposition text.
  // UNAVAILABLE if the address cannot be bound, INVALID_ARGUMENT if it does
  // not resolve.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const MetricsHttpOptions& options, std::function<std::string()> render);

  // Closes the listening socket and every connection, joins the threads.
  ~MetricsHttpServer();

  int port() const { return port_; }

  // The polling threads libmicrohttpd runs.
  static constexpr int kThreads = 2;

 private:
  MetricsHttpServer(int port, std::function<std::string()> render)
      : port_(port), render_(std::move(render)) {}

  const int port_;
  const std::function<std::string()> render_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_METRICS_HTTP_SERVER_H_
