#ifndef AUDIOTAG_CLIENT_CONNECTION_FLAGS_H_
#define AUDIOTAG_CLIENT_CONNECTION_FLAGS_H_

// The connection flags every `audiotag` command that talks to a server
// takes: --tls, --tls_ca, --tls_cert, --tls_key, --tls_server_name,
// --auth_token_file (else $AUDIOTAG_TOKEN).

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "client/connection.h"

namespace audiotag {

// The flags' values, and $AUDIOTAG_TOKEN when --auth_token_file is unset.
ConnectionOptions ConnectionOptionsFromFlags();

// Checks and reads the files the flags name; INVALID_ARGUMENT naming the
// flag otherwise. Under --dry_run only checks, reading nothing.
absl::StatusOr<Connection> ConnectionFromFlags();

// The flags' names, in help order.
const std::vector<std::string>& ConnectionFlagNames();

}  // namespace audiotag

#endif  // AUDIOTAG_CLIENT_CONNECTION_FLAGS_H_
