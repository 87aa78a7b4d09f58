#include "client/bulk/progress.h"

#include <cstdio>

namespace audiotag::bulk {

Progress::Progress(std::function<std::string()> line, bool terminal,
                   absl::Duration period)
    : line_(std::move(line)),
      terminal_(terminal),
      period_(terminal ? absl::Milliseconds(500) : period) {}

Progress::~Progress() { Stop(); }

void Progress::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void Progress::Stop() {
  if (!thread_.joinable()) return;
  stop_.Notify();
  thread_.join();
  if (terminal_) {
    std::fprintf(stderr, "\r%s\033[K\n", line_().c_str());
  }
}

void Progress::Loop() {
  while (!stop_.WaitForNotificationWithTimeout(period_)) {
    const std::string text = line_();
    if (terminal_) {
      std::fprintf(stderr, "\r%s\033[K", text.c_str());
    } else {
      std::fprintf(stderr, "audiotag bulk: %s\n", text.c_str());
    }
    std::fflush(stderr);
  }
}

}  // namespace audiotag::bulk
