#include "tests/testutil/pki.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tests/testutil/server_process.h"

namespace audiotag::testing {

absl::StatusOr<Pki> MakePki() {
  Pki pki{NewTempDir("audiotag-pki")};
  const std::string script = absl::StrCat(
      "set -e; cd ", pki.dir, "\n",
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
      "-keyout ca.key -out ca.pem 2>/dev/null\n",
      "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext\n",
      "for who in server client; do\n",
      "  openssl req -newkey rsa:2048 -nodes -subj /CN=$who -keyout $who.key "
      "-out $who.csr 2>/dev/null\n",
      "  openssl x509 -req -in $who.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -days 2 -extfile san.ext -out $who.pem 2>/dev/null\n",
      "done\n");
  absl::StatusOr<CommandResult> run = RunCommand({"/bin/sh", "-c", script});
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return absl::InternalError(
        absl::StrCat("openssl failed (exit ", run->exit_code, "): ", run->err));
  }
  return pki;
}

}  // namespace audiotag::testing
