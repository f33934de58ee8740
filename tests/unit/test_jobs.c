/* The order in which the job queue hands out a phase's jobs: longest first (epochs x nets),
 * equal costs in list order, so the train-the-sum control (L nets) starts first and the
 * members go 0, 1, 2, ...; with one group, list order. */
#include "ensdistill/jobqueue.h"

#include "check.h"

#include <stdio.h>
#include <string.h>

static void set(Job *j, int epochs, int sum_of) {
    memset(j, 0, sizeof(*j));
    j->epochs = epochs;
    j->sum_of = sum_of;
}

int main(void) {
    Job jobs[16];
    int order[16];
    for (int j = 0; j < 10; j++) set(&jobs[j], 7, 1);
    jobs_order(jobs, 10, 2, order);
    for (int j = 0; j < 10; j++) EXPECT(order[j] == j, "equal jobs: position %d holds job %d", j, order[j]);
    /* 4 members and the sum control (last in the list) */
    for (int j = 0; j < 4; j++) set(&jobs[j], 5, 1);
    set(&jobs[4], 5, 4);
    jobs_order(jobs, 5, 1, order);
    for (int j = 0; j < 5; j++) EXPECT(order[j] == j, "one group: list order, position %d holds %d", j, order[j]);
    jobs_order(jobs, 5, 2, order);
    EXPECT(order[0] == 4, "the sum control first, got job %d", order[0]);
    for (int j = 1; j < 5; j++) EXPECT(order[j] == j - 1, "then the members in order: position %d holds %d", j, order[j]);
    /* students with different epochs */
    set(&jobs[0], 3, 1);
    set(&jobs[1], 9, 1);
    set(&jobs[2], 3, 1);
    set(&jobs[3], 6, 1);
    jobs_order(jobs, 4, 3, order);
    EXPECT(order[0] == 1 && order[1] == 3 && order[2] == 0 && order[3] == 2, "by epochs: %d %d %d %d",
           order[0], order[1], order[2], order[3]);
    report("jobs_order: longest first, stable; one group: list order");
    return failures != 0;
}
