#ifndef AUDIOTAG_SERVER_ADMISSION_H_
#define AUDIOTAG_SERVER_ADMISSION_H_

// Admission of analyses by count and by bytes. Each accepted analysis holds
// one Slot: one of `max_calls` call slots plus the bytes it is charged (its
// upload, then an estimate of the decoded audio it holds while analyzed), out
// of a budget of `max_bytes`. A call that would pass either limit is refused
// with RESOURCE_EXHAUSTED at once; nothing queues here. The Slot gives back
// its call and its bytes when it is destroyed or Release()d, whichever comes
// first: the one place a call's resources are returned.
//
// Thread-safety: AdmissionControl is thread-safe. A Slot belongs to one call;
// its methods must not race with each other.

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace audiotag {

class AdmissionControl {
 public:
  class Slot;

  // `max_calls`: analyses admitted at once (0: no limit). `max_bytes`: bytes
  // charged to admitted analyses at once (0: no limit).
  AdmissionControl(int max_calls, int64_t max_bytes)
      : max_calls_(max_calls), max_bytes_(max_bytes) {}
  AdmissionControl(const AdmissionControl&) = delete;
  AdmissionControl& operator=(const AdmissionControl&) = delete;

  // A call slot charged `bytes` (>= 0), or RESOURCE_EXHAUSTED naming the
  // limit (and its flag) that refused it.
  absl::StatusOr<Slot> Acquire(int64_t bytes);

  int calls() const;
  int64_t bytes() const;

 private:
  // Adds `bytes` to the charge, or leaves it and returns RESOURCE_EXHAUSTED.
  absl::Status Charge(int64_t bytes);
  void Return(int calls, int64_t bytes);

  const int max_calls_;
  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

// One admitted call and the bytes charged to it (RAII, move-only). A
// default-constructed or moved-from Slot holds nothing.
class AdmissionControl::Slot {
 public:
  Slot() = default;
  Slot(Slot&& other) noexcept { *this = std::move(other); }
  Slot& operator=(Slot&& other) noexcept;
  ~Slot() { Release(); }

  bool held() const { return owner_ != nullptr; }
  // Bytes charged to this call so far.
  int64_t bytes() const { return bytes_; }

  // Charges `bytes` (>= 0) more to this call, e.g. a stream's next chunk;
  // RESOURCE_EXHAUSTED (and nothing charged) when the budget has no room.
  absl::Status Grow(int64_t bytes);

  // Returns the call slot and every byte charged; later calls do nothing.
  void Release();

 private:
  friend class AdmissionControl;
  Slot(AdmissionControl* owner, int64_t bytes) : owner_(owner), bytes_(bytes) {}

  AdmissionControl* owner_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace audiotag

#endif  // AUDIOTAG_SERVER_ADMISSION_H_
