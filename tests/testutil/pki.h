#ifndef AUDIOTAG_TESTS_TESTUTIL_PKI_H_
#define AUDIOTAG_TESTS_TESTUTIL_PKI_H_

#include <string>

#include "absl/status/statusor.h"

namespace audiotag::testing {

// A throwaway certificate authority and the server and client certificates
// it signed (the server's valid for IP 127.0.0.1 and DNS localhost, both for
// two days), as PEM files in one temporary folder: what a TLS or mTLS test of
// the real server and CLI needs.
struct Pki {
  std::string dir;
  std::string ca() const { return dir + "/ca.pem"; }
  std::string server_cert() const { return dir + "/server.pem"; }
  std::string server_key() const { return dir + "/server.key"; }
  std::string client_cert() const { return dir + "/client.pem"; }
  std::string client_key() const { return dir + "/client.key"; }
};

// Makes one with the openssl CLI (RSA 2048). Errors: INTERNAL with openssl's
// stderr when it fails or is missing.
absl::StatusOr<Pki> MakePki();

}  // namespace audiotag::testing

#endif  // AUDIOTAG_TESTS_TESTUTIL_PKI_H_
