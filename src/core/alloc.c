/* Checked allocation (see alloc.h). Running out of memory is reported with the size asked for. */
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <stdlib.h>
#include <string.h>

void *ed_malloc_at(size_t bytes, const char *file, int line) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) ed_die_at(file, line, "xmalloc", "out of memory allocating %zu bytes", bytes);
    return p;
}

void *ed_calloc_at(size_t count, size_t size, const char *file, int line) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) ed_die_at(file, line, "xcalloc", "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *ed_realloc_at(void *p, size_t bytes, const char *file, int line) {
    void *q = realloc(p, bytes ? bytes : 1);
    if (!q) ed_die_at(file, line, "xrealloc", "out of memory allocating %zu bytes", bytes);
    return q;
}

float *ed_floats_at(size_t count, const char *file, int line) {
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0)
        ed_die_at(file, line, "xfloats", "out of memory allocating %zu floats (%.1f MiB)", count,
                  bytes / 1048576.0);
    memset(p, 0, bytes);
    return p;
}

char *ed_strdup_at(const char *s, const char *file, int line) {
    size_t n = strlen(s) + 1;
    char *p = ed_malloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}
