/* File-system helpers (see fsutil.h): mkdir -p, fsync, the durable tmp-then-rename commit,
 * whole-file reads and path joins. The one place that knows these POSIX calls. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "ensdistill/fsutil.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void fs_mkdirs(const char *dir) {
    char buf[ED_PATH_MAX];
    size_t n = (size_t)snprintf(buf, sizeof(buf), "%s", dir);
    if (n >= sizeof(buf)) ed_fail("directory name too long: %s", dir);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != 0) continue;
        char c = buf[i];
        buf[i] = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            ed_fail("cannot create directory %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) ed_fail("%s is not a directory", dir);
}

static void parent_dir(char *out, size_t size, const char *path) {
    snprintf(out, size, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, size, ".");
    else if (slash == out)
        out[1] = 0;
    else
        *slash = 0;
}

void fs_mkdirs_parent(const char *path) {
    char dir[ED_PATH_MAX];
    parent_dir(dir, sizeof(dir), path);
    fs_mkdirs(dir);
}

void fs_fsync_file(const char *path) {
    int fd = open(path, O_RDONLY);
    if (fd < 0 || fsync(fd) != 0) ed_fail("cannot fsync %s: %s", path, strerror(errno));
    close(fd);
}

void fs_fsync_parent_dir(const char *path) {
    char dir[ED_PATH_MAX];
    parent_dir(dir, sizeof(dir), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) ed_fail("cannot open directory %s: %s", dir, strerror(errno));
    /* Some file systems refuse fsync on a directory (EINVAL): the rename is then as durable as
     * they make it. */
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        ed_fail("cannot fsync directory %s: %s", dir, strerror(errno));
    close(fd);
}

static void rename_or_fail(const char *from, const char *to) {
    if (rename(from, to) != 0) ed_fail("cannot rename %s to %s: %s", from, to, strerror(errno));
}

void fs_commit(const char *tmp, const char *path) {
    fs_fsync_file(tmp);
    rename_or_fail(tmp, path);
    fs_fsync_parent_dir(path);
}

void fs_commit_keep_prev(const char *tmp, const char *path) {
    char prev[ED_PATH_MAX];
    fs_prev_path(prev, sizeof(prev), path);
    fs_fsync_file(tmp);
    if (fs_exists(path)) {
        if (unlink(prev) != 0 && errno != ENOENT)
            ed_fail("cannot remove stale %s: %s", prev, strerror(errno));
        if (link(path, prev) != 0 && rename(path, prev) != 0)
            ed_fail("cannot keep %s as %s: %s", path, prev, strerror(errno));
    }
    rename_or_fail(tmp, path);
    fs_fsync_parent_dir(path);
    if (fs_exists(prev)) {
        if (unlink(prev) != 0) ed_fail("cannot remove %s: %s", prev, strerror(errno));
        fs_fsync_parent_dir(path);
    }
}

void fs_restore_prev(const char *path) {
    char prev[ED_PATH_MAX], damaged[ED_PATH_MAX + 16];
    fs_prev_path(prev, sizeof(prev), path);
    snprintf(damaged, sizeof(damaged), "%s.damaged", path);
    if (fs_exists(path) && rename(path, damaged) != 0)
        ed_fail("cannot move the damaged %s aside: %s", path, strerror(errno));
    rename_or_fail(prev, path);
    fs_fsync_parent_dir(path);
}

int fs_exists(const char *path) {
    return access(path, F_OK) == 0;
}

long long fs_file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

char *fs_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    char *s = xmalloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

void fs_join(char *out, size_t size, const char *dir, const char *name) {
    if (snprintf(out, size, "%s/%s", dir, name) >= (int)size)
        ed_fail("%s/%s: path too long", dir, name);
}

void fs_prev_path(char *out, size_t size, const char *path) {
    size_t n = strlen(path);
    if (n > 3 && strcmp(path + n - 3, ".h5") == 0)
        snprintf(out, size, "%.*s.prev.h5", (int)(n - 3), path);
    else
        snprintf(out, size, "%s.prev", path);
}

void fs_utc_now(char *out, size_t size) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int fs_realpath(const char *path, char *out) {
    return realpath(path, out) ? 0 : -1;
}
