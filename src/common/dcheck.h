/* wigeon: WG_DCHECK(cond), for the invariants the state diagrams and lock rules state (never for
 * input: bad input is an error code). In builds without NDEBUG (Debug, the sanitizer builds) a
 * false condition prints file:line and the condition to stderr and aborts; with NDEBUG it
 * compiles to nothing and the condition is not evaluated. */
#ifndef WG_COMMON_DCHECK_H
#define WG_COMMON_DCHECK_H

#ifdef NDEBUG
#define WG_DCHECK(cond) ((void)0)
#define WG_DCHECK_ENABLED 0
#else
#include <stdio.h>
#include <stdlib.h>
#define WG_DCHECK(cond)                                                                            \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "%s:%d: WG_DCHECK failed: %s\n", __FILE__, __LINE__, #cond);                 \
      abort();                                                                                     \
    }                                                                                              \
  } while (0)
#define WG_DCHECK_ENABLED 1
#endif

#endif
