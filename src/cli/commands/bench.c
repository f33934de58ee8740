/* PLACEHOLDER: replaced by the module that owns this command. */
#include "ensdistill/cli.h"
#include <stdio.h>
int cmd_bench(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ensdistill: 'bench' is not built yet\n");
    return 2;
}
