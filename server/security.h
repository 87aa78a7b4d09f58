#ifndef AUDIOTAG_SERVER_SECURITY_H_
#define AUDIOTAG_SERVER_SECURITY_H_

// Transport security and authentication: TLS with an optional client
// certificate requirement (mutual TLS), and bearer tokens from a file. Health
// and reflection stay open so that probes and tooling work without secrets.

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_context.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace audiotag {

struct TlsOptions {
  std::string cert_file;       // PEM server certificate chain; empty: no TLS
  std::string key_file;        // PEM private key of cert_file
  std::string client_ca_file;  // PEM CAs; set: clients must present a cert
};

// Insecure credentials when `options.cert_file` is empty; otherwise TLS.
// INVALID_ARGUMENT when a file is missing or only one of cert/key is given.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsOptions& options);

// Checks "authorization: Bearer <token>" against the tokens of a file (one
// per line; blank lines and lines starting with '#' ignored).
// Thread-safety: immutable after construction.
class TokenAuthenticator {
 public:
  static absl::StatusOr<std::unique_ptr<TokenAuthenticator>> FromFile(
      const std::string& path);

  // OK, or UNAUTHENTICATED saying what is missing.
  absl::Status Check(const grpc::CallbackServerContext& context) const;

 private:
  explicit TokenAuthenticator(std::vector<std::string> tokens)
      : tokens_(std::move(tokens)) {}
  const std::vector<std::string> tokens_;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_SECURITY_H_
