/* File-system helpers shared by every module (core): mkdir -p, fsync, the durable
 * tmp-file-then-rename commit, existence and size, whole-file reads, and the one limit on the
 * length of a path. Functions that can fail on the user's input (a directory that cannot be
 * created, a full disk) stop with ed_fail naming the path; queries return a value. */
#ifndef ENSDISTILL_FSUTIL_H
#define ENSDISTILL_FSUTIL_H

#include <stddef.h>

/* Size of every buffer that holds a path (Linux's PATH_MAX), with its terminating 0. Config
 * values are limited to it too, so a path built from one (RUN_DIR/models/NAME.h5.tmp) can
 * overflow only by its suffix: where that can happen, the builder checks and stops. */
#define ED_PATH_MAX 4096

/* mkdir -p; ed_fail naming the directory on failure or when dir exists as a non-directory. */
void fs_mkdirs(const char *dir);
/* mkdir -p of the directory part of path. */
void fs_mkdirs_parent(const char *path);
/* fsync a file / the directory that holds path; ed_fail naming it on failure. */
void fs_fsync_file(const char *path);
void fs_fsync_parent_dir(const char *path);
/* The durable end of writing a file under a temporary name: fsync tmp, rename it to path,
 * fsync the directory. ed_fail naming both on failure. */
void fs_commit(const char *tmp, const char *path);
/* fs_commit that keeps the file it replaces as NAME.prev.h5 (fs_prev_path) until the new one
 * has its name: the old path is hard-linked (or, where links fail, renamed) to prev, tmp is
 * renamed over path, the directory fsynced, then prev removed. A crash at any point leaves
 * path, prev or both, never neither (ckpt_read falls back to prev). */
void fs_commit_keep_prev(const char *tmp, const char *path);
/* The reverse, after path was found damaged: path is moved aside to path.damaged (when it
 * exists), prev renamed to path, the directory fsynced. A crash between the two leaves only
 * prev, which a reader takes as the case of an interrupted fs_commit_keep_prev. */
void fs_restore_prev(const char *path);
int fs_exists(const char *path);
/* Size of a file in bytes, or -1. */
long long fs_file_size(const char *path);
/* The whole file as a 0-terminated malloc'd string (free() it); NULL if it cannot be read. */
char *fs_read_text(const char *path);
/* out = dir/name; a path longer than size - 1 is the user's: ed_fail naming it. */
void fs_join(char *out, size_t size, const char *dir, const char *name);
/* NAME.h5 -> NAME.prev.h5 (any other name: NAME.prev). */
void fs_prev_path(char *out, size_t size, const char *path);
/* Current UTC time "2024-05-01T12:00:00Z". */
void fs_utc_now(char *out, size_t size);
/* The absolute path of an existing path, symbolic links resolved, into out[ED_PATH_MAX].
 * Returns 0, or -1 with errno set. */
int fs_realpath(const char *path, char *out);

#endif
