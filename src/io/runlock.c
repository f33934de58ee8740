/* The run directory's lock (see runlock.h): rank 0 of a run holds RUN_DIR/run.lock with
 * flock() for the life of the process, so the kernel releases it when the process dies and a
 * killed run never leaves a stale lock. Where the file system offers no flock at all, an
 * O_EXCL marker file stands in for it (a stale one is recognised only on the same host). */
#define _GNU_SOURCE
#include "ensdistill/runlock.h"

#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The held lock: its descriptor stays open (and locked) until the process exits. */
static int held_fd = -1;
static char marker_path[ED_PATH_MAX + 32]; /* the O_EXCL fall-back's file, removed at exit */
static pid_t marker_owner;

/* flock() failed for want of support, not because another process holds the lock. */
static int flock_unsupported(int err) {
    return err == ENOLCK || err == EOPNOTSUPP || err == ENOSYS || err == EINVAL;
}

/* "host PID started-at" of this process into out. */
static void holder_line(char *out, size_t size) {
    char host[256] = "?", now[32];
    if (gethostname(host, sizeof(host)) != 0) snprintf(host, sizeof(host), "?");
    host[sizeof(host) - 1] = 0;
    fs_utc_now(now, sizeof(now));
    snprintf(out, size, "host %s pid %ld since %s\n", host, (long)getpid(), now);
}

/* What a lock file says about its holder, one line without its newline. */
static void read_holder(const char *path, char *out, size_t size) {
    char *text = fs_read_text(path);
    if (!text || !text[0]) {
        snprintf(out, size, "a process that has not written its name yet");
    } else {
        text[strcspn(text, "\n")] = 0;
        snprintf(out, size, "%s", text);
    }
    free(text);
}

static void remove_marker(void) {
    if (marker_path[0] && getpid() == marker_owner) unlink(marker_path);
}

/* The fall-back where flock is unsupported: create RUN_DIR/run.lock.excl with O_EXCL. A marker
 * left by a dead process of this host is removed and taken over; one of another host cannot be
 * checked from here, so the message says how to remove it. */
static int lock_with_marker(const char *run_dir, char *err, size_t size) {
    snprintf(marker_path, sizeof(marker_path), "%s/run.lock.excl", run_dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(marker_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            char line[512];
            holder_line(line, sizeof(line));
            int ok = write(fd, line, strlen(line)) == (ssize_t)strlen(line) && fsync(fd) == 0;
            close(fd);
            if (!ok) {
                unlink(marker_path);
                snprintf(err, size, "cannot write %s: %s", marker_path, strerror(errno));
                marker_path[0] = 0;
                return -1;
            }
            marker_owner = getpid();
            atexit(remove_marker);
            return 0;
        }
        if (errno != EEXIST) {
            snprintf(err, size, "cannot create %s: %s", marker_path, strerror(errno));
            marker_path[0] = 0;
            return -1;
        }
        char holder[512], host[256] = "", me[256] = "";
        long pid = 0;
        read_holder(marker_path, holder, sizeof(holder));
        gethostname(me, sizeof(me));
        me[sizeof(me) - 1] = 0;
        int stale = sscanf(holder, "host %255s pid %ld", host, &pid) == 2 &&
                    strcmp(host, me) == 0 && pid > 0 && kill((pid_t)pid, 0) != 0 &&
                    errno == ESRCH;
        if (!stale || attempt > 0) {
            snprintf(err, size,
                     "%s is in use by another ensdistill run (%s; this file system has no "
                     "flock, so the lock is the file %s: if that run is dead, remove the file)",
                     run_dir, holder, marker_path);
            marker_path[0] = 0;
            return -1;
        }
        unlink(marker_path); /* its process is gone: take it over */
    }
    marker_path[0] = 0;
    return -1;
}

int runlock_acquire(const char *run_dir, char *err, size_t size) {
    if (held_fd >= 0) return 0;
    char path[ED_PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/run.lock", run_dir);
    fs_mkdirs(run_dir);
    for (;;) {
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            snprintf(err, size, "cannot open the lock file %s: %s", path, strerror(errno));
            return -1;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (flock_unsupported(e)) return lock_with_marker(run_dir, err, size);
            if (e != EWOULDBLOCK && e != EINTR) {
                snprintf(err, size, "cannot lock %s: %s", path, strerror(e));
                return -1;
            }
            char holder[512];
            read_holder(path, holder, sizeof(holder));
            snprintf(err, size,
                     "%s is in use by another ensdistill run (%s, lock file %s): wait for it to "
                     "finish or stop it; two runs in one directory would write the same files",
                     run_dir, holder, path);
            return -1;
        }
        /* Locked: but the file may have been replaced between open and flock (a user removed
         * it); then lock the new one. */
        struct stat by_fd, by_name;
        if (fstat(fd, &by_fd) == 0 && stat(path, &by_name) == 0 && by_fd.st_dev == by_name.st_dev &&
            by_fd.st_ino == by_name.st_ino) {
            char line[512];
            holder_line(line, sizeof(line));
            if (ftruncate(fd, 0) != 0 || pwrite(fd, line, strlen(line), 0) != (ssize_t)strlen(line))
                ed_warn("cannot write the holder's name into %s: %s", path, strerror(errno));
            held_fd = fd;
            return 0;
        }
        close(fd);
    }
}
