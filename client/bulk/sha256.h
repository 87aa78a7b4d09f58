#ifndef AUDIOTAG_CLIENT_BULK_SHA256_H_
#define AUDIOTAG_CLIENT_BULK_SHA256_H_

// Content hashes of audio files (OpenSSL's SHA-256).

#include <string>

#include "absl/strings/string_view.h"

namespace audiotag::bulk {

// Lower-case hex SHA-256 of `data` (64 characters).
std::string Sha256Hex(absl::string_view data);

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_SHA256_H_
