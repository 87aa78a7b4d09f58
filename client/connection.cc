#include "client/connection.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace audiotag {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag,
                                    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": cannot open '", path, "'"));
  }
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": '", path, "' is empty"));
  }
  return out.str();
}

absl::StatusOr<std::string> ReadToken(const std::string& path) {
  absl::StatusOr<std::string> text = ReadPem("auth_token_file", path);
  if (!text.ok()) return text.status();
  for (absl::string_view line : absl::StrSplit(*text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') return std::string(line);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--auth_token_file: '", path,
                   "' holds no token (only blank lines or "
                   "'#' comments)"));
}

}  // namespace

absl::Status ValidateConnectionOptions(const ConnectionOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key go together (mutual TLS needs both)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Connection> Connection::Make(const ConnectionOptions& options) {
  if (absl::Status s = ValidateConnectionOptions(options); !s.ok()) return s;
  Connection connection;
  if (options.UsesTls()) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> ca = ReadPem("tls_ca", options.tls_ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *std::move(ca);
    }
    if (!options.tls_cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadPem("tls_cert", options.tls_cert_file);
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadPem("tls_key", options.tls_key_file);
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    connection.credentials_ = grpc::SslCredentials(ssl);
    connection.server_name_ = options.tls_server_name;
  }
  if (!options.auth_token_file.empty()) {
    absl::StatusOr<std::string> token = ReadToken(options.auth_token_file);
    if (!token.ok()) return token.status();
    connection.token_ = *std::move(token);
  } else {
    connection.token_ =
        std::string(absl::StripAsciiWhitespace(options.auth_token));
  }
  return connection;
}

std::shared_ptr<grpc::Channel> Connection::NewChannel(
    const std::string& target, grpc::ChannelArguments args) const {
  if (!server_name_.empty()) args.SetSslTargetNameOverride(server_name_);
  return grpc::CreateCustomChannel(target,
                                   credentials_ != nullptr
                                       ? credentials_
                                       : grpc::InsecureChannelCredentials(),
                                   args);
}

void Connection::Authorize(grpc::ClientContext* context) const {
  if (!token_.empty())
    context->AddMetadata("authorization", "Bearer " + token_);
}

std::string Connection::Hint(const absl::Status& status) const {
  if (status.code() == absl::StatusCode::kUnauthenticated) {
    return has_token()
               ? "the server rejected the token: check --auth_token_file or "
                 "$AUDIOTAG_TOKEN"
               : "the server wants a bearer token: pass "
                 "--auth_token_file=FILE or set $AUDIOTAG_TOKEN";
  }
  if (status.code() != absl::StatusCode::kUnavailable) return "";
  if (!tls()) {
    return "if the server uses TLS, pass --tls (system CAs) or "
           "--tls_ca=FILE";
  }
  return "check the TLS flags: --tls_ca must hold the CA that signed the "
         "server's certificate, --tls_server_name the name it carries, and a "
         "server that requires client certificates needs --tls_cert and "
         "--tls_key";
}

}  // namespace audiotag
