#include "client/connection_flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "src/common/command_line.h"

ABSL_FLAG(bool, tls, false,
          "Connect with TLS, verifying the server against the system's root "
          "CAs.");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA bundle to verify the server's certificate with (implies "
          "--tls).");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate chain, for a server that requires client "
          "certificates (mutual TLS); needs --tls_key.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert.");
ABSL_FLAG(std::string, tls_server_name, "",
          "Name to check the server's certificate against when it differs "
          "from the host in --server (implies --tls).");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding the bearer token sent with every call (its first line "
          "that is not blank or a '#' comment); default $AUDIOTAG_TOKEN.");

namespace audiotag {

ConnectionOptions ConnectionOptionsFromFlags() {
  ConnectionOptions options;
  options.tls = absl::GetFlag(FLAGS_tls);
  options.tls_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  options.auth_token_file = absl::GetFlag(FLAGS_auth_token_file);
  if (const char* token = std::getenv("AUDIOTAG_TOKEN"); token != nullptr) {
    options.auth_token = token;
  }
  return options;
}

absl::StatusOr<Connection> ConnectionFromFlags() {
  const ConnectionOptions options = ConnectionOptionsFromFlags();
  if (absl::GetFlag(FLAGS_dry_run)) {
    if (absl::Status s = ValidateConnectionOptions(options); !s.ok()) return s;
    return Connection();
  }
  return Connection::Make(options);
}

const std::vector<std::string>& ConnectionFlagNames() {
  static const auto* names =
      new std::vector<std::string>({"tls", "tls_ca", "tls_cert", "tls_key",
                                    "tls_server_name", "auth_token_file"});
  return *names;
}

}  // namespace audiotag
