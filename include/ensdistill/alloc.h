/* Checked allocation: every allocation either succeeds or stops with file:line and the size.
 * Buffers of floats are 64-byte aligned (whole cache lines, full AVX-512 vectors). */
#ifndef ENSDISTILL_ALLOC_H
#define ENSDISTILL_ALLOC_H

#include <stddef.h>

void *ed_malloc_at(size_t bytes, const char *file, int line);
void *ed_calloc_at(size_t count, size_t size, const char *file, int line);
void *ed_realloc_at(void *p, size_t bytes, const char *file, int line);
/* Zeroed, 64-byte aligned; release with free(). */
float *ed_floats_at(size_t count, const char *file, int line);
char *ed_strdup_at(const char *s, const char *file, int line);

#define xmalloc(bytes) ed_malloc_at((bytes), __FILE__, __LINE__)
#define xcalloc(count, size) ed_calloc_at((count), (size), __FILE__, __LINE__)
#define xrealloc(p, bytes) ed_realloc_at((p), (bytes), __FILE__, __LINE__)
#define xfloats(count) ed_floats_at((count), __FILE__, __LINE__)
#define xstrdup(s) ed_strdup_at((s), __FILE__, __LINE__)

#endif
