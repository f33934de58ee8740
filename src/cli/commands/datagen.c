/* ensdistill datagen CONFIG OUT.h5 [--set key=value ...]: loads or generates the config's data set
 * (data section) and writes it in the generic HDF5 layout that source "hdf5" reads back, with
 * the view vectors, tags and generator attributes of multi-view data. Rank 0 does the work. */
#include "ensdistill/alloc.h"
#include "ensdistill/cli.h"
#include "ensdistill/clock.h"
#include "ensdistill/config.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *datagen_usage =
    "usage: ensdistill datagen CONFIG OUT.h5 [--set key=value ...]\n"
    "  writes the data set of CONFIG's data section to OUT.h5: /train and /test (images, labels,\n"
    "  tags), /views and the generator's attributes for multi-view data.\n";

int cmd_datagen(int argc, char **argv) {
    const char *config_path = NULL, *out_path = NULL;
    char **overrides = xcalloc((size_t)argc + 1, sizeof(char *));
    int n_overrides = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(datagen_usage, stdout);
            free(overrides);
            return 0;
        } else if (strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc) {
                ed_error("--set needs key=value");
                fputs(datagen_usage, stderr);
                free(overrides);
                return ED_EXIT_USER;
            }
            overrides[n_overrides++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            overrides[n_overrides++] = argv[i] + 6;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            ed_error("unknown option '%s'", argv[i]);
            fputs(datagen_usage, stderr);
            free(overrides);
            return ED_EXIT_USER;
        } else if (!config_path) {
            config_path = argv[i];
        } else if (!out_path) {
            out_path = argv[i];
        } else {
            ed_error("unexpected argument '%s'", argv[i]);
            fputs(datagen_usage, stderr);
            free(overrides);
            return ED_EXIT_USER;
        }
    }
    if (!config_path || !out_path) {
        ed_error("datagen needs CONFIG and OUT.h5");
        fputs(datagen_usage, stderr);
        free(overrides);
        return ED_EXIT_USER;
    }
    if (ed_rank() != 0) { /* one writer; the others have nothing to do */
        free(overrides);
        return 0;
    }

    Config *cfg = xcalloc(1, sizeof(Config));
    char err[1024];
    if (config_load(cfg, config_path, n_overrides, overrides, err, sizeof(err)) != 0)
        ed_fail("%s", err);
    free(overrides);

    double t0 = clock_now_seconds();
    DataSplit split;
    data_load(&split, &cfg->data);
    char *yaml = config_to_yaml(cfg);
    h5data_write(&split, &cfg->data, yaml, out_path);
    double t1 = clock_now_seconds();

    char line[256];
    printf("%s\n", dataset_describe(&split.train, line, sizeof(line)));
    printf("%s\n", dataset_describe(&split.test, line, sizeof(line)));
    if (split.train.tags) {
        int mv_train = 0, mv_test = 0;
        for (int i = 0; i < split.train.N; i++)
            mv_train += split.train.tags[i];
        for (int i = 0; i < split.test.N; i++)
            mv_test += split.test.tags[i];
        printf("multi-view samples: train %d of %d, test %d of %d; noise %s sigma %g\n", mv_train,
               split.train.N, mv_test, split.test.N, config_noise_names[cfg->data.multiview.noise],
               cfg->data.multiview.sigma);
    }
    printf("wrote %s in %.2f s\n", out_path, t1 - t0);
    free(yaml);
    datasplit_free(&split);
    free(cfg);
    return 0;
}
