#include "server/admission.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace audiotag {
namespace {

absl::Status OverBudget(int64_t wanted, int64_t charged, int64_t limit) {
  return absl::ResourceExhaustedError(absl::StrCat(
      "server is at its memory budget: this call needs ", wanted,
      " more bytes, ", charged, " of ", limit,
      " are taken by calls in flight (--max_inflight_bytes); retry later"));
}

}  // namespace

absl::StatusOr<AdmissionControl::Slot> AdmissionControl::Acquire(
    int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (max_calls_ > 0 && calls_ >= max_calls_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "server is at its limit of ", max_calls_,
        " concurrent analyses (--max_inflight_requests); retry later"));
  }
  if (max_bytes_ > 0 && bytes_ + bytes > max_bytes_) {
    return OverBudget(bytes, bytes_, max_bytes_);
  }
  ++calls_;
  bytes_ += bytes;
  return Slot(this, bytes);
}

absl::Status AdmissionControl::Charge(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  if (max_bytes_ > 0 && bytes_ + bytes > max_bytes_) {
    return OverBudget(bytes, bytes_, max_bytes_);
  }
  bytes_ += bytes;
  return absl::OkStatus();
}

void AdmissionControl::Return(int calls, int64_t bytes) {
  absl::MutexLock lock(&mu_);
  calls_ -= calls;
  bytes_ -= bytes;
}

int AdmissionControl::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

int64_t AdmissionControl::bytes() const {
  absl::MutexLock lock(&mu_);
  return bytes_;
}

AdmissionControl::Slot& AdmissionControl::Slot::operator=(
    Slot&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

absl::Status AdmissionControl::Slot::Grow(int64_t bytes) {
  if (owner_ == nullptr) {
    return absl::FailedPreconditionError("no admitted call to charge");
  }
  if (absl::Status s = owner_->Charge(bytes); !s.ok()) return s;
  bytes_ += bytes;
  return absl::OkStatus();
}

void AdmissionControl::Slot::Release() {
  if (owner_ == nullptr) return;
  owner_->Return(1, bytes_);
  owner_ = nullptr;
  bytes_ = 0;
}

}  // namespace audiotag
