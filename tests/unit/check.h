/* Shared by the unit tests: EXPECT(cond, fmt, ...) counts and prints a failure with file:line;
 * report(fmt, ...) prints "ok" or "FAIL" for the checks since the last report. A test returns
 * failures != 0. Header-only (static), include once per test program. */
#ifndef ENSDISTILL_TEST_CHECK_H
#define ENSDISTILL_TEST_CHECK_H

#include <stdarg.h>
#include <stdio.h>

static int failures = 0;
#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

__attribute__((unused)) static int reported = 0;
/* Prints "ok" or "FAIL" (when a check failed since the last report) and the message. */
static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2), unused));
static void report(const char *fmt, ...) {
    va_list ap;
    fputs(failures > reported ? "FAIL " : "ok   ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    reported = failures;
}

#endif
