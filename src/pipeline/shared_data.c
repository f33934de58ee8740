/* The data set once per node (see pipeline.h): the node's first rank loads it with data_load,
 * copies every array into one MPI-3 shared window (MPI_Win_allocate_shared on the node's
 * communicator) and frees its own copy; the other ranks of the node receive the Dataset headers
 * and point into the same pages. A node with R ranks holds the data once instead of R times
 * (CIFAR-10: 176 MiB instead of R x 176 MiB). Nothing writes to a data set after loading. */
#include "ensdistill/error.h"
#include "ensdistill/pipeline.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { SHARED_ALIGN = 64, ARRAYS = 5 };

/* The arrays of a Dataset, their sizes in bytes (0: absent). */
static void arrays_of(Dataset *ds, void **ptr[ARRAYS], size_t bytes[ARRAYS]) {
    size_t n = (size_t)ds->N, per = dataset_sample_floats(ds);
    ptr[0] = (void **)&ds->u8;
    bytes[0] = ds->u8 ? n * per : 0;
    ptr[1] = (void **)&ds->f32;
    bytes[1] = ds->f32 ? n * per * sizeof(float) : 0;
    ptr[2] = (void **)&ds->labels;
    bytes[2] = ds->labels ? n * sizeof(int32_t) : 0;
    ptr[3] = (void **)&ds->tags;
    bytes[3] = ds->tags ? n : 0;
    ptr[4] = (void **)&ds->views;
    bytes[4] = ds->views ? (size_t)ds->K * 2 * ds->D * sizeof(float) : 0;
}

void data_load_shared(DataSplit *split, const DataConfig *cfg, SharedData *sh) {
    int world_rank, node_rank;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
    MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL,
                                  &sh->node));
    MPI_CHECK(MPI_Comm_rank(sh->node, &node_rank));
    MPI_CHECK(MPI_Comm_size(sh->node, &sh->ranks_on_node));
    DataSplit local = {0};
    if (node_rank == 0) data_load(&local, cfg);
    /* The headers (pointers are only read as present / absent on the other ranks). */
    MPI_CHECK(MPI_Bcast(&local, (int)sizeof(local), MPI_BYTE, 0, sh->node));

    Dataset *sets[2] = {&local.train, &local.test};
    void **ptr[2][ARRAYS];
    size_t bytes[2][ARRAYS], offset[2][ARRAYS], total = 0;
    for (int s = 0; s < 2; s++) {
        arrays_of(sets[s], ptr[s], bytes[s]);
        for (int a = 0; a < ARRAYS; a++) {
            offset[s][a] = total;
            total += (bytes[s][a] + SHARED_ALIGN - 1) / SHARED_ALIGN * SHARED_ALIGN;
        }
    }
    sh->bytes = total;
    char *mine = NULL, *base = NULL;
    MPI_CHECK(MPI_Win_allocate_shared(node_rank == 0 ? (MPI_Aint)total : 0, 1, MPI_INFO_NULL,
                                      sh->node, &mine, &sh->win));
    MPI_Aint size;
    int disp_unit;
    MPI_CHECK(MPI_Win_shared_query(sh->win, 0, &size, &disp_unit, &base));
    ED_CHECK((size_t)size >= total, "shared window of %zu bytes for %zu", (size_t)size, total);

    MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, sh->win));
    for (int s = 0; s < 2; s++)
        for (int a = 0; a < ARRAYS; a++) {
            if (!bytes[s][a]) {
                *ptr[s][a] = NULL;
                continue;
            }
            if (node_rank == 0) memcpy(base + offset[s][a], *ptr[s][a], bytes[s][a]);
            if (node_rank == 0) free(*ptr[s][a]); /* the loader's private copy */
            *ptr[s][a] = base + offset[s][a];
        }
    MPI_CHECK(MPI_Win_sync(sh->win)); /* the leader's stores, visible after the barrier */
    MPI_CHECK(MPI_Barrier(sh->node));
    MPI_CHECK(MPI_Win_sync(sh->win));
    MPI_CHECK(MPI_Win_unlock_all(sh->win));
    split->train = local.train;
    split->test = local.test;
}

void data_free_shared(DataSplit *split, SharedData *sh) {
    memset(split, 0, sizeof(*split)); /* the arrays belong to the window */
    MPI_CHECK(MPI_Win_free(&sh->win));
    MPI_CHECK(MPI_Comm_free(&sh->node));
}
