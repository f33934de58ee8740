/* Private to src/nn: when our own loops fork OpenMP threads. Every parallel loop splits work
 * into pieces whose arithmetic does not depend on the thread count (whole channels, planes,
 * samples or elements; reductions over fixed chunks combined in order), so results are
 * bitwise the same at any thread count. Below PAR_MIN_WORK elements a fork costs more than
 * the loop. */
#ifndef ENSDISTILL_NN_PARALLEL_H
#define ENSDISTILL_NN_PARALLEL_H

#include "ensdistill/threads.h" /* ED_PARALLEL_FOR */

#define PAR_MIN_WORK 32768

#endif
