/* The data set once per node in MPI-3 shared memory (shared_data.c): the node's first rank
 * loads it (data_load_into) straight into the window, the node's ranks map the same pages
 * read-only. */
#ifndef ENSDISTILL_SHARED_DATA_H
#define ENSDISTILL_SHARED_DATA_H

#include "ensdistill/dataset.h"

#include <mpi.h>
#include <stddef.h>

typedef struct {
    MPI_Win win;
    MPI_Comm node;     /* the ranks of this node */
    int ranks_on_node;
    size_t bytes;      /* the shared copy, once per node */
} SharedData;
/* Collective over MPI_COMM_WORLD: fills split as data_load would, its arrays in the window. */
void data_load_shared(DataSplit *split, const DataConfig *cfg, SharedData *sh);
/* Collective: releases the window (the split's arrays with it) and clears split. */
void data_free_shared(DataSplit *split, SharedData *sh);

#endif
