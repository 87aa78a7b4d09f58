#ifndef AUDIOTAG_CLIENT_CONNECTION_H_
#define AUDIOTAG_CLIENT_CONNECTION_H_

// How every CLI command reaches a server: the channel's transport security
// (plaintext, TLS, mutual TLS) and the bearer token sent with each call as
// "authorization: Bearer <token>", which is what audiotag-server's
// --auth_token_file checks (server/security.h).
//
// Thread-safety: a Connection is immutable once made; share it freely.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace audiotag {

struct ConnectionOptions {
  // TLS, verifying the server against the system's root CAs.
  bool tls = false;
  // PEM CA bundle to verify the server with instead of the system's roots.
  // Implies TLS.
  std::string tls_ca_file;
  // PEM client certificate chain and its private key, for a server that
  // requires client certificates (mutual TLS). Both or neither; implies TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Name the server's certificate must carry when it differs from the host
  // in the target (e.g. connecting by IP). Implies TLS.
  std::string tls_server_name;
  // File whose first line that is neither blank nor a '#' comment is the
  // token. Wins over `auth_token`.
  std::string auth_token_file;
  // The token itself (the CLI takes it from $AUDIOTAG_TOKEN).
  std::string auth_token;

  bool UsesTls() const {
    return tls || !tls_ca_file.empty() || !tls_cert_file.empty() ||
           !tls_key_file.empty() || !tls_server_name.empty();
  }
};

// Checks the combination without reading any file: INVALID_ARGUMENT when
// only one of tls_cert_file / tls_key_file is set.
absl::Status ValidateConnectionOptions(const ConnectionOptions& options);

class Connection {
 public:
  // Plaintext, no token.
  Connection() = default;

  // Reads the CA, certificate, key and token files. INVALID_ARGUMENT naming
  // the flag and file when one is missing, unreadable or empty.
  static absl::StatusOr<Connection> Make(const ConnectionOptions& options);

  // A channel to `target` ("host:port" or any gRPC target) with these
  // credentials; `args` are added to.
  std::shared_ptr<grpc::Channel> NewChannel(const std::string& target,
                                            grpc::ChannelArguments args) const;

  // Adds the token, if any, to a call's metadata.
  void Authorize(grpc::ClientContext* context) const;

  bool tls() const { return credentials_ != nullptr; }
  bool has_token() const { return !token_.empty(); }

  // A sentence that says which flag likely fixes `status` (a call's
  // failure): a token for UNAUTHENTICATED, TLS flags for a connection the
  // server closed or a handshake that failed. Empty when there is none.
  std::string Hint(const absl::Status& status) const;

 private:
  std::shared_ptr<grpc::ChannelCredentials> credentials_;  // null: plaintext
  std::string server_name_;
  std::string token_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_CONNECTION_H_
