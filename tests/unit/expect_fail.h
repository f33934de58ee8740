/* Test helpers for code that stops the process (ed_fail exits with status 2, ED_CHECK with 3):
 * expect_fail() runs a function in a forked child, captures its stderr through a pipe and checks
 * the exit status and that the message contains a given text; a mismatch counts as a failure of
 * check.h (the one failure idiom of the tests). Also a scratch temp directory. Header-only
 * (static functions), for any tests/unit/test_*.c. Do not use after MPI_Init. */
#ifndef ENSDISTILL_TEST_EXPECT_FAIL_H
#define ENSDISTILL_TEST_EXPECT_FAIL_H

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Runs fn(arg) in a child process. Returns 1 when the child exits with `status` and its stderr
 * contains `needle` (NULL: any message); else prints what differed (labelled `what`), counts a
 * failure and returns 0. A child that returns from fn exits 0, so "no error" is caught. */
__attribute__((unused)) static int expect_fail(const char *what, void (*fn)(void *), void *arg,
                                               int status, const char *needle) {
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return 0;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        fn(arg);
        fflush(NULL);
        _exit(0);
    }
    close(fds[1]);
    size_t cap = 4096, len = 0;
    char *msg = malloc(cap);
    ssize_t r;
    while ((r = read(fds[0], msg + len, cap - 1 - len)) > 0) {
        len += (size_t)r;
        if (len + 1 >= cap) msg = realloc(msg, cap *= 2);
    }
    msg[len] = 0;
    close(fds[0]);
    int ws = 0;
    waitpid(pid, &ws, 0);
    int ok = 1;
    if (!WIFEXITED(ws)) {
        fprintf(stderr, "FAIL %s: child did not exit normally (signal %d)\n", what,
                WIFSIGNALED(ws) ? WTERMSIG(ws) : 0);
        ok = 0;
    } else if (WEXITSTATUS(ws) != status) {
        fprintf(stderr, "FAIL %s: exit status %d, expected %d\n", what, WEXITSTATUS(ws), status);
        ok = 0;
    }
    if (needle && !strstr(msg, needle)) {
        fprintf(stderr, "FAIL %s: message does not contain \"%s\"\n", what, needle);
        ok = 0;
    }
    if (!ok) {
        fprintf(stderr, "  child's stderr: %s", len ? msg : "(empty)\n");
        failures++;
    }
    else
        printf("ok   %s: %s", what, len ? msg : "(no message)\n");
    free(msg);
    return ok;
}

/* A fresh directory under $TMPDIR (or /tmp), written into dir (at least 256 bytes). */
__attribute__((unused)) static void test_tmpdir(char *dir, size_t size, const char *name) {
    const char *base = getenv("TMPDIR");
    snprintf(dir, size, "%s/ed-%s-XXXXXX", base && base[0] ? base : "/tmp", name);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Removes dir and everything in it (tests write only plain files there). */
__attribute__((unused)) static void test_rmdir(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
}

#endif
