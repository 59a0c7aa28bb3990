// Status helpers shared by every module. Abseil 20220623 ships no public RETURN_IF_ERROR /
// ASSIGN_OR_RETURN and no absl/log, so these small macros are ours (DESIGN.md B.9).
#ifndef FP4LM_KERNELS_CORE_STATUS_MACROS_H_
#define FP4LM_KERNELS_CORE_STATUS_MACROS_H_

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define ENGINE_STATUS_CONCAT_INNER_(a, b) a##b
#define ENGINE_STATUS_CONCAT_(a, b) ENGINE_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the enclosing function if it is not OK.
#define ENGINE_RETURN_IF_ERROR(expr)                         \
  do {                                                       \
    if (absl::Status engine_status_ = (expr); !engine_status_.ok()) { \
      return engine_status_;                                 \
    }                                                        \
  } while (0)

// ENGINE_ASSIGN_OR_RETURN(auto x, MakeX()); declares/assigns `lhs` from an OK StatusOr or
// returns its status.
#define ENGINE_ASSIGN_OR_RETURN(lhs, expr) \
  ENGINE_ASSIGN_OR_RETURN_IMPL_(ENGINE_STATUS_CONCAT_(engine_statusor_, __LINE__), lhs, expr)
#define ENGINE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return statusor.status();            \
  lhs = *std::move(statusor)

// Checks for programmer errors (violated preconditions), never for bad input. Cold paths use
// ENGINE_CHECK; hot paths ENGINE_DCHECK, which compiles away in release builds.
#define ENGINE_CHECK(cond)                                                       \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)
#ifdef NDEBUG
#define ENGINE_DCHECK(cond) \
  do {                      \
  } while (false && (cond))
#else
#define ENGINE_DCHECK(cond) ENGINE_CHECK(cond)
#endif

#endif  // FP4LM_KERNELS_CORE_STATUS_MACROS_H_
