/* faultfs: an LD_PRELOAD library that makes the file system fail the way a full disk, a dying
 * disk or a read-only mount does, for the files whose path contains ED_FAULT_PATH:
 *   ED_FAULT_ERRNO  ENOSPC (default), EDQUOT, EIO or EROFS
 *   ED_FAULT_AFTER  bytes the matching files may take in all before writes fail (default 0)
 * ENOSPC / EDQUOT / EIO fail write, pwrite and (EIO) fsync of matching files once the budget is
 * spent; EROFS fails opening a matching path for writing.
 *   ED_FAULT_FLOCK  ENOLCK or EOPNOTSUPP: every flock() fails so, as on a file system without
 *                   locks (NFS mounted without a lock manager, Lustre with noflock) Only calls made through the dynamic
 * linker are seen: HDF5's sec2 driver (open, pwrite, write) is; stdio inside libc is not. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FD 4096
static char watched[MAX_FD];
static long long budget = -1; /* -1: not yet read from the environment */
static int fault_errno = ENOSPC;
static const char *pattern;

static void setup(void) {
    if (budget >= 0) return;
    pattern = getenv("ED_FAULT_PATH");
    const char *after = getenv("ED_FAULT_AFTER"), *e = getenv("ED_FAULT_ERRNO");
    budget = after ? atoll(after) : 0;
    if (e && !strcmp(e, "EIO")) fault_errno = EIO;
    if (e && !strcmp(e, "EROFS")) fault_errno = EROFS;
    if (e && !strcmp(e, "EDQUOT")) fault_errno = EDQUOT;
}

static int matches(const char *path) {
    setup();
    return pattern && pattern[0] && path && strstr(path, pattern);
}

static int opened(int fd, const char *path, int flags) {
    if (fd >= 0 && fd < MAX_FD) watched[fd] = matches(path) && (flags & (O_WRONLY | O_RDWR));
    return fd;
}

/* The next definition of name (libc's), looked up once. */
#define REAL(name)                                                                                 \
    static __typeof__(&name) real_##name;                                                          \
    if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

static int refuse_open(const char *path, int flags) {
    if (fault_errno == EROFS && matches(path) && (flags & (O_WRONLY | O_RDWR | O_CREAT))) {
        errno = EROFS;
        return 1;
    }
    return 0;
}

int open(const char *path, int flags, ...) {
    REAL(open);
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    setup();
    if (refuse_open(path, flags)) return -1;
    return opened(real_open(path, flags, mode), path, flags);
}

int open64(const char *path, int flags, ...) {
    REAL(open64);
    mode_t mode = 0;
    if (flags & O_CREAT) {
        va_list ap;
        va_start(ap, flags);
        mode = va_arg(ap, mode_t);
        va_end(ap);
    }
    setup();
    if (refuse_open(path, flags)) return -1;
    return opened(real_open64(path, flags, mode), path, flags);
}

/* 1 when this write to fd must fail (and errno is set). */
static int must_fail(int fd, size_t count) {
    setup();
    if (fd < 0 || fd >= MAX_FD || !watched[fd] || fault_errno == EROFS) return 0;
    if ((long long)count <= budget) {
        budget -= (long long)count;
        return 0;
    }
    budget = 0;
    errno = fault_errno;
    return 1;
}

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write);
    if (must_fail(fd, count)) return -1;
    return real_write(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite);
    if (must_fail(fd, count)) return -1;
    return real_pwrite(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite64);
    if (must_fail(fd, count)) return -1;
    return real_pwrite64(fd, buf, count, offset);
}

int fsync(int fd) {
    REAL(fsync);
    if (fault_errno == EIO && fd >= 0 && fd < MAX_FD && watched[fd] && budget == 0) {
        errno = EIO;
        return -1;
    }
    return real_fsync(fd);
}

int close(int fd) {
    REAL(close);
    if (fd >= 0 && fd < MAX_FD) watched[fd] = 0;
    return real_close(fd);
}

int flock(int fd, int operation) {
    REAL(flock);
    const char *e = getenv("ED_FAULT_FLOCK");
    if (e && e[0]) {
        errno = strcmp(e, "EOPNOTSUPP") == 0 ? EOPNOTSUPP : ENOLCK;
        return -1;
    }
    return real_flock(fd, operation);
}
