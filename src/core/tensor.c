/* The named tensor table (see tensor.h). */
#include "ensdistill/tensor.h"
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tensor_table_add(TensorTable *t, const char *name, TensorKind kind, int ndim,
                     const int64_t *shape) {
    ED_CHECK(ndim >= 0 && ndim <= TENSOR_MAX_DIMS, "tensor %s: %d dimensions", name, ndim);
    ED_CHECK(strlen(name) < TENSOR_NAME_MAX, "tensor name too long: %s", name);
    ED_CHECK(tensor_table_find(t, name) < 0, "duplicate tensor name %s", name);
    if (t->count == t->capacity) {
        t->capacity = t->capacity ? 2 * t->capacity : 64;
        t->items = xrealloc(t->items, (size_t)t->capacity * sizeof(TensorInfo));
    }
    TensorInfo *info = &t->items[t->count];
    memset(info, 0, sizeof(*info));
    snprintf(info->name, sizeof(info->name), "%s", name);
    info->ndim = ndim;
    info->numel = 1;
    for (int d = 0; d < ndim; d++) {
        info->shape[d] = shape[d];
        info->numel *= (size_t)shape[d];
    }
    info->kind = kind;
    info->trainable = kind == TENSOR_PARAM;
    if (kind == TENSOR_PARAM) {
        info->offset = t->param_floats;
        t->param_floats += info->numel;
    } else {
        info->offset = t->buffer_floats;
        t->buffer_floats += info->numel;
    }
    return t->count++;
}

int tensor_table_find(const TensorTable *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->items[i].name, name) == 0) return i;
    return -1;
}

void tensor_table_free(TensorTable *t) {
    free(t->items);
    memset(t, 0, sizeof(*t));
}

const char *tensor_shape_str(const TensorInfo *info, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < info->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "",
                                 (long long)info->shape[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}
