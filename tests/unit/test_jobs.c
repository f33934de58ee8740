/* Job placement: equal jobs go round-robin (member j to group j % G); unequal ones longest
 * first onto the least-loaded group, so the train-the-sum control (L nets) does not share a
 * group with half of the other students. */
#include "ensdistill/pipeline.h"

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
    for (int G = 1; G <= 5; G++) {
        for (int j = 0; j < 10; j++) set(&jobs[j], 7, 1);
        jobs_assign_groups(jobs, 10, G);
        for (int j = 0; j < 10; j++) {
            EXPECT(jobs[j].group == j % G, "equal jobs, G=%d: job %d on group %d, want %d", G, j,
                   jobs[j].group, j % G);
        }
    }
    /* students of a 4-member run with 2 KD and 2 self students on 2 groups */
    set(&jobs[0], 5, 4); /* sum */
    for (int j = 1; j <= 4; j++) set(&jobs[j], 5, 1);
    jobs_assign_groups(jobs, 5, 2);
    double load[2] = {0, 0};
    for (int j = 0; j < 5; j++) load[jobs[j].group] += jobs[j].epochs * jobs[j].sum_of;
    printf("sum + 4 students on 2 groups: loads %g and %g (round-robin: 30 and 10)\n", load[0], load[1]);
    EXPECT(jobs[0].group == 0, "the longest job goes first to group 0");
    EXPECT(load[0] == 20 && load[1] == 20, "loads balanced at 20 and 20");
    /* more groups than jobs: every job its own group */
    for (int j = 0; j < 3; j++) set(&jobs[j], 3, 1);
    jobs_assign_groups(jobs, 3, 8);
    EXPECT(jobs[0].group == 0 && jobs[1].group == 1 && jobs[2].group == 2, "3 jobs on 8 groups");
    if (failures) return 1;
    printf("job placement ok\n");
    return 0;
}
