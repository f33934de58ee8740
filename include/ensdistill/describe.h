/* Readable summaries of the files src/io writes (describe.c), for `ensdistill inspect` and the
 * table `run` prints at the end. */
#ifndef ENSDISTILL_DESCRIBE_H
#define ENSDISTILL_DESCRIBE_H

#include "ensdistill/runfile.h" /* ResultRow */

#include <stddef.h>
#include <stdio.h>

/* Prints a readable summary of the checkpoint at path to out: attributes, progress, checksum
 * status (every dataset read back), tensor counts (and every tensor with its shape and type
 * when show_tensors), a mid-epoch cursor, logits shapes and the per-epoch history.
 * Returns 0, or -1 when the file is unreadable or fails verification (the reason is printed). */
int ckpt_describe(const char *path, FILE *out, int show_tensors);
/* Prints a readable summary of a run.h5 path: attributes, checksum status, teacher logits,
 * linked models, results table, accuracy vs ensemble size. Returns 0, or -1 when it is
 * unreadable, not a run file, or fails verification (the reason is printed). */
int runfile_describe(const char *path, FILE *out);
/* Prints rows of the results table to out: name, role, models, test accuracy, its std, NLL,
 * ECE (accuracies in percent; multi/single-view columns when any row has them). The one
 * printer of the table: `run` prints its summary rows, `inspect` every row. */
void runfile_print_results(FILE *out, const ResultRow *rows, int n_rows);
/* An accuracy in [0, 1] as "   97.20%" (9 characters), or "-" right-aligned when not finite
 * (not measured). */
void io_print_percent(FILE *out, double v);
/* "1.3 MiB" into buf; returns buf. */
const char *io_human_size(char *buf, size_t size, long long bytes);

#endif
