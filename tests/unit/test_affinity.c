/* The CPU lists of the start-up report: ranges, singles, gaps, an empty set, a list too long
 * for its buffer. */
#include "ensdistill/affinity.h"
#include "check.h"

#include <string.h>

static void set_cpus(unsigned char *mask, const int *cpus, int n) {
    memset(mask, 0, 128);
    for (int i = 0; i < n; i++) mask[cpus[i] / 8] |= (unsigned char)(1u << (cpus[i] % 8));
}

int main(void) {
    unsigned char mask[128];
    char out[64];
    set_cpus(mask, (int[]){0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, 16);
    affinity_format(mask, 1024, out, sizeof(out));
    EXPECT(strcmp(out, "0-7,16-23") == 0, "got '%s'", out);
    set_cpus(mask, (int[]){1, 3, 4, 9}, 4);
    affinity_format(mask, 1024, out, sizeof(out));
    EXPECT(strcmp(out, "1,3-4,9") == 0, "got '%s'", out);
    set_cpus(mask, (int[]){0}, 0);
    affinity_format(mask, 1024, out, sizeof(out));
    EXPECT(strcmp(out, "") == 0, "got '%s'", out);
    int every_other[200];
    for (int i = 0; i < 200; i++) every_other[i] = 2 * i;
    set_cpus(mask, every_other, 200);
    affinity_format(mask, 1024, out, sizeof(out));
    EXPECT(strlen(out) < sizeof(out) && strcmp(out + strlen(out) - 3, "...") == 0, "got '%s'", out);
    report("affinity_format: ranges, singles, empty, truncated");
    return failures != 0;
}
