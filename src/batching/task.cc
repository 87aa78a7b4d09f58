#include "src/batching/task.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace audiotag {

absl::Status RequestControl::CheckAlive(absl::Time now) const {
  if (cancelled()) {
    return absl::CancelledError(absl::StrCat("request ", id_, " cancelled"));
  }
  if (now >= deadline_) {
    return absl::DeadlineExceededError(
        absl::StrCat("request ", id_, " passed its deadline"));
  }
  return absl::OkStatus();
}

}  // namespace audiotag
