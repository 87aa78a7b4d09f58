#ifndef AUDIOTAG_CLIENT_BULK_PROGRESS_H_
#define AUDIOTAG_CLIENT_BULK_PROGRESS_H_

// Shows a running job's progress on stderr from a thread of its own: on a
// terminal one line rewritten in place ('\r') twice a second, otherwise a
// plain line every `period` (logs of a Kubernetes pod).
//
// Thread-safety: Start and Stop from one thread.

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace audiotag::bulk {

class Progress {
 public:
  // `line` is called from the progress thread for the text to show.
  Progress(std::function<std::string()> line, bool terminal,
           absl::Duration period);
  ~Progress();

  void Start();
  // Stops the thread; on a terminal, ends the line with '\n'.
  void Stop();

 private:
  void Loop();

  const std::function<std::string()> line_;
  const bool terminal_;
  const absl::Duration period_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace audiotag::bulk

#endif  // AUDIOTAG_CLIENT_BULK_PROGRESS_H_
