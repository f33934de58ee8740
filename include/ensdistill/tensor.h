/* Flat arenas and the named tensor table.
 * A model's parameters live in one contiguous float buffer (gradients and momentum in buffers of
 * the same layout); its non-trained state (BatchNorm running statistics) in a second one. The
 * table maps every tensor to its PyTorch state_dict name, its shape and its offset, so the
 * checkpoint writer and the PyTorch loader need to know nothing about layers. */
#ifndef ENSDISTILL_TENSOR_H
#define ENSDISTILL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define TENSOR_NAME_MAX 128
#define TENSOR_MAX_DIMS 4

typedef enum {
    TENSOR_PARAM = 0, /* trained: lives in params / grads / momentum */
    TENSOR_BUFFER = 1 /* state that is not trained: lives in buffers */
} TensorKind;

typedef struct {
    char name[TENSOR_NAME_MAX]; /* PyTorch state_dict name, e.g. "layer1.0.conv1.weight" */
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t offset; /* in floats, into the arena of its kind */
    size_t numel;
    TensorKind kind;
    int trainable; /* PARAM: 0 when frozen (random-feature models); BUFFER: 0 */
    int is_integer; /* BUFFER held as float that PyTorch stores as int64 (num_batches_tracked) */
} TensorInfo;

typedef struct {
    TensorInfo *items;
    int count, capacity;
    size_t param_floats;  /* size of the parameter arena */
    size_t buffer_floats; /* size of the buffer arena */
} TensorTable;

/* Append a tensor; returns its index. Offsets are assigned in order of addition.
 * Dies on a duplicate name (a bug in a model builder). */
int tensor_table_add(TensorTable *t, const char *name, TensorKind kind, int ndim,
                     const int64_t *shape);
/* Index of the tensor with this name, or -1. */
int tensor_table_find(const TensorTable *t, const char *name);
void tensor_table_free(TensorTable *t);
/* "[64, 3, 3, 3]" into buf (at least 64 bytes). */
const char *tensor_shape_str(const TensorInfo *info, char *buf, size_t size);

#endif
