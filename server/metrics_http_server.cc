#include "server/metrics_http_server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace audiotag {
namespace {

// A bound, listening socket for `host`:`port`, or the error.
absl::StatusOr<int> Listen(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                  &hints, &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot resolve metrics address '", host, "'"));
  }
  const int fd =
      socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const int one = 1;
  if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const bool bound = fd >= 0 &&
                     bind(fd, found->ai_addr, found->ai_addrlen) == 0 &&
                     listen(fd, SOMAXCONN) == 0;
  const int error = errno;
  freeaddrinfo(found);
  if (!bound) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", host, ":", port, ": ", std::strerror(error)));
  }
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  return addr.ss_family == AF_INET6
             ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
             : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

MHD_Result Queue(MHD_Connection* connection, unsigned int code,
                 const char* type, const std::string& body) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  const MHD_Result result = MHD_queue_response(connection, code, response);
  MHD_destroy_response(response);
  return result;
}

MHD_Result Answer(void* cls, MHD_Connection* connection, const char* url,
                  const char* method, const char* /*version*/,
                  const char* /*upload_data*/, size_t* /*upload_data_size*/,
                  void** /*request_state*/) {
  const auto& render = *static_cast<const std::function<std::string()>*>(cls);
  const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                   std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
  if (!get) {
    return Queue(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                 "only GET /metrics\n");
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return Queue(connection, MHD_HTTP_NOT_FOUND, "text/plain",
                 "try /metrics\n");
  }
  return Queue(connection, MHD_HTTP_OK, "text/plain; version=0.0.4", render());
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const MetricsHttpOptions& options, std::function<std::string()> render) {
  absl::StatusOr<int> fd = Listen(options.host, options.port);
  if (!fd.ok()) return fd.status();
  std::unique_ptr<MetricsHttpServer> server(
      new MetricsHttpServer(BoundPort(*fd), std::move(render)));
  const auto timeout = static_cast<unsigned int>(
      std::max<int64_t>(1, absl::ToInt64Seconds(options.idle_timeout)));
  server->daemon_ = MHD_start_daemon(
      MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC, 0, nullptr, nullptr, &Answer,
      const_cast<std::function<std::string()>*>(&server->render_),
      MHD_OPTION_LISTEN_SOCKET, *fd, MHD_OPTION_THREAD_POOL_SIZE,
      static_cast<unsigned int>(kThreads), MHD_OPTION_CONNECTION_TIMEOUT,
      timeout, MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned int>(std::max(1, options.max_connections)),
      MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    close(*fd);
    return absl::UnavailableError(
        absl::StrCat("cannot start the metrics server on ", options.host, ":",
                     options.port));
  }
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (daemon_ == nullptr) return;
  // MHD_stop_daemon closes the listening socket it was given; a connection
  // it is writing to never blocks it (sockets are non-blocking).
  MHD_stop_daemon(daemon_);
}

}  // namespace audiotag
