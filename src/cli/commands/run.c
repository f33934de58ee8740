/* PLACEHOLDER: replaced by the module that owns this command. */
#include "ensdistill/cli.h"
#include <stdio.h>
int cmd_run(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "ensdistill: 'run' is not built yet\n");
    return 2;
}
