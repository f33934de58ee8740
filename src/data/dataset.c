/* The Dataset bookkeeping every source and data_load share (dataset.h): freeing, the arrays by
 * index and their sizes, the heap allocator (data_alloc_heap) and a one-line description. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dataset_free(Dataset *ds) {
    free(ds->u8);
    free(ds->f32);
    free(ds->labels);
    free(ds->tags);
    free(ds->views);
    memset(ds, 0, sizeof(*ds));
}

void datasplit_free(DataSplit *split) {
    dataset_free(&split->train);
    dataset_free(&split->test);
}

void *dataset_array(const Dataset *ds, int a) {
    switch (a) {
    case DATA_U8:
        return ds->u8;
    case DATA_F32:
        return ds->f32;
    case DATA_LABELS:
        return ds->labels;
    case DATA_TAGS:
        return ds->tags;
    case DATA_VIEWS:
        return ds->views;
    }
    ED_DIE("data array %d: not one of DATA_U8 .. DATA_VIEWS", a);
}

void dataset_set_array(Dataset *ds, int a, void *p) {
    switch (a) {
    case DATA_U8:
        ds->u8 = p;
        return;
    case DATA_F32:
        ds->f32 = p;
        return;
    case DATA_LABELS:
        ds->labels = p;
        return;
    case DATA_TAGS:
        ds->tags = p;
        return;
    case DATA_VIEWS:
        ds->views = p;
        return;
    }
    ED_DIE("data array %d: not one of DATA_U8 .. DATA_VIEWS", a);
}

void dataset_array_bytes(const Dataset *ds, size_t bytes[DATA_ARRAYS]) {
    size_t n = (size_t)ds->N, per = dataset_sample_floats(ds);
    bytes[DATA_U8] = ds->u8 ? n * per : 0;
    bytes[DATA_F32] = ds->f32 ? n * per * sizeof(float) : 0;
    bytes[DATA_LABELS] = ds->labels ? n * sizeof(int32_t) : 0;
    bytes[DATA_TAGS] = ds->tags ? n : 0;
    bytes[DATA_VIEWS] = ds->views ? (size_t)ds->K * 2 * ds->D * sizeof(float) : 0;
}

size_t dataset_bytes(const Dataset *ds) {
    size_t bytes[DATA_ARRAYS], sum = 0;
    dataset_array_bytes(ds, bytes);
    for (int a = 0; a < DATA_ARRAYS; a++)
        sum += bytes[a];
    return sum;
}

static void heap_arrays(DataAlloc *self, DataSplit *split, const size_t bytes[2][DATA_ARRAYS]) {
    (void)self;
    Dataset *parts[2] = {&split->train, &split->test};
    for (int p = 0; p < 2; p++)
        for (int a = 0; a < DATA_ARRAYS; a++) {
            size_t n = bytes[p][a];
            void *mem = NULL; /* float arrays 64-byte aligned, like any float buffer */
            if (n)
                mem = a == DATA_F32 || a == DATA_VIEWS ? (void *)xfloats(n / sizeof(float))
                                                       : xmalloc(n);
            dataset_set_array(parts[p], a, mem);
        }
}

DataAlloc data_alloc_heap = {heap_arrays};

const char *dataset_describe(const Dataset *ds, char *buf, size_t size) {
    snprintf(buf, size, "%s: %d x %d x %d x %d %s, %d classes, %.1f MB", ds->name, ds->N, ds->C,
             ds->H, ds->W, ds->u8 ? "uint8" : "float32", ds->K, dataset_bytes(ds) / 1e6);
    return buf;
}
