/* The data set once per node (see shared_data.h): the node's first rank runs data_load_into
 * with an allocator that, once the source knows every array's size, sends the sizes to the
 * node's other ranks and creates one MPI-3 shared window (MPI_Win_allocate_shared on the
 * node's communicator) with them; the source then reads each sample straight into the window,
 * so the loading rank never holds a second copy. The other ranks lay out the same arrays over
 * the same pages. A node with R ranks holds the data once instead of R times (CIFAR-10: 176
 * MiB instead of R x 176 MiB). Nothing writes to a data set after loading. */
#include "ensdistill/error.h"
#include "ensdistill/shared_data.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { SHARED_ALIGN = 64 };

/* Offsets of the arrays in the window, each SHARED_ALIGN-aligned; returns the total. */
static size_t window_layout(const size_t bytes[2][DATA_ARRAYS], size_t offset[2][DATA_ARRAYS]) {
    size_t total = 0;
    for (int p = 0; p < 2; p++)
        for (int a = 0; a < DATA_ARRAYS; a++) {
            offset[p][a] = total;
            total += (bytes[p][a] + SHARED_ALIGN - 1) / SHARED_ALIGN * SHARED_ALIGN;
        }
    return total;
}

/* Collective over sh->node, every rank with the same bytes: creates the window (its memory on
 * the node's rank 0), opens a passive epoch on it and points split's arrays into it. */
static void window_create(SharedData *sh, int node_rank, const size_t bytes[2][DATA_ARRAYS],
                          DataSplit *split) {
    size_t offset[2][DATA_ARRAYS];
    sh->bytes = window_layout(bytes, offset);
    char *mine = NULL, *base = NULL;
    MPI_CHECK(MPI_Win_allocate_shared(node_rank == 0 ? (MPI_Aint)sh->bytes : 0, 1, MPI_INFO_NULL,
                                      sh->node, &mine, &sh->win));
    MPI_Aint size;
    int disp_unit;
    MPI_CHECK(MPI_Win_shared_query(sh->win, 0, &size, &disp_unit, &base));
    ED_CHECK((size_t)size >= sh->bytes, "shared window of %zu bytes for %zu", (size_t)size,
             sh->bytes);
    MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, sh->win));
    Dataset *parts[2] = {&split->train, &split->test};
    for (int p = 0; p < 2; p++)
        for (int a = 0; a < DATA_ARRAYS; a++)
            dataset_set_array(parts[p], a, bytes[p][a] ? base + offset[p][a] : NULL);
}

/* The leader's DataAlloc: the sizes to the node, then the window. */
typedef struct {
    DataAlloc base; /* first: a DataAlloc * to this is a WindowAlloc * */
    SharedData *sh;
} WindowAlloc;

static void window_arrays(DataAlloc *self, DataSplit *split, const size_t bytes[2][DATA_ARRAYS]) {
    WindowAlloc *w = (WindowAlloc *)self;
    size_t sizes[2][DATA_ARRAYS];
    memcpy(sizes, bytes, sizeof(sizes));
    MPI_CHECK(MPI_Bcast(sizes, (int)sizeof(sizes), MPI_BYTE, 0, w->sh->node));
    window_create(w->sh, 0, sizes, split);
}

void data_load_shared(DataSplit *split, const DataConfig *cfg, SharedData *sh) {
    int world_rank, node_rank;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL,
                                  &sh->node));
    MPI_CHECK(MPI_Comm_rank(sh->node, &node_rank));
    MPI_CHECK(MPI_Comm_size(sh->node, &sh->ranks_on_node));
    DataSplit local;
    memset(&local, 0, sizeof(local));
    if (node_rank == 0) {
        WindowAlloc w = {.base = {window_arrays}, .sh = sh};
        data_load_into(&local, cfg, &w.base); /* calls window_arrays once, before reading */
    } else {
        size_t sizes[2][DATA_ARRAYS];
        MPI_CHECK(MPI_Bcast(sizes, (int)sizeof(sizes), MPI_BYTE, 0, sh->node));
        window_create(sh, node_rank, sizes, &local);
    }
    MPI_CHECK(MPI_Win_sync(sh->win)); /* the leader's stores, visible after the barrier */
    MPI_CHECK(MPI_Barrier(sh->node));
    MPI_CHECK(MPI_Win_sync(sh->win));
    MPI_CHECK(MPI_Win_unlock_all(sh->win));
    /* The headers (shapes, names, normalisation); each rank keeps its own array pointers. */
    DataSplit head = local;
    MPI_CHECK(MPI_Bcast(&head, (int)sizeof(head), MPI_BYTE, 0, sh->node));
    Dataset *parts[2] = {&local.train, &local.test}, *heads[2] = {&head.train, &head.test};
    for (int p = 0; p < 2; p++)
        for (int a = 0; a < DATA_ARRAYS; a++)
            dataset_set_array(heads[p], a, dataset_array(parts[p], a));
    *split = head;
}

void data_free_shared(DataSplit *split, SharedData *sh) {
    memset(split, 0, sizeof(*split)); /* the arrays belong to the window */
    MPI_CHECK(MPI_Win_free(&sh->win));
    MPI_CHECK(MPI_Comm_free(&sh->node));
}
