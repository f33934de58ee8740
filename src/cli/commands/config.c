/* `ensdistill config docs`: the Markdown table of every config key (the README's table).
 * `ensdistill config check CONFIG [--set key=value ...]`: validates a config and prints it
 * resolved (every key, defaults filled) as YAML; a bad config exits 2 with FILE:LINE. */
#include "ensdistill/config.h"
#include "ensdistill/cli.h"
#include "ensdistill/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONFIG_USAGE                                                                               \
    "usage: ensdistill config docs | ensdistill config check CONFIG [--set key=value ...]"

int cmd_config(int argc, char **argv) {
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            if (ed_rank() == 0) puts(CONFIG_USAGE);
            return 0;
        }
    if (argc == 1 && strcmp(argv[0], "docs") == 0) {
        config_print_docs(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[0], "check") != 0) ed_fail("%s", CONFIG_USAGE);

    const char *path = argv[1];
    char **overrides = calloc((size_t)argc, sizeof *overrides), err[2048];
    int n = 0;
    ED_CHECK(overrides, "out of memory");
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0 && i + 1 < argc)
            overrides[n++] = argv[++i];
        else if (strncmp(argv[i], "--set=", 6) == 0)
            overrides[n++] = argv[i] + 6;
        else
            ed_fail("config check: unexpected argument '%s'\n%s", argv[i], CONFIG_USAGE);
    }
    Config c;
    if (config_load(&c, path, n, overrides, err, sizeof err) != 0) ed_fail("%s", err);
    free(overrides);
    char *yaml = config_to_yaml(&c);
    fputs(yaml, stdout);
    free(yaml);
    return 0;
}
