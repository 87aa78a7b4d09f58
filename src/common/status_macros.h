#ifndef AUDIOTAG_SRC_COMMON_STATUS_MACROS_H_
#define AUDIOTAG_SRC_COMMON_STATUS_MACROS_H_

// Early-return helpers for absl::Status. Debian's Abseil (20220623) ships no
// public RETURN_IF_ERROR, so audiotag defines its own, once, here.

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define AUDIOTAG_STATUS_CONCAT_INNER_(a, b) a##b
#define AUDIOTAG_STATUS_CONCAT_(a, b) AUDIOTAG_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                         \
  do {                                                                \
    if (absl::Status status_ = (expr); !status_.ok()) return status_; \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, MakeX());` declares x from an OK StatusOr or
// returns its status.
#define ASSIGN_OR_RETURN(lhs, expr)                                         \
  ASSIGN_OR_RETURN_IMPL_(AUDIOTAG_STATUS_CONCAT_(statusor_, __LINE__), lhs, \
                         expr)
#define ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                           \
  if (!statusor.ok()) return statusor.status();     \
  lhs = std::move(statusor).value()

#endif  // AUDIOTAG_SRC_COMMON_STATUS_MACROS_H_
