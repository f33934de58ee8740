/* The data set once per node, loaded straight into the shared window: on 2 ranks (the test
 * starts itself under ED_MPIEXEC), for data of about 50-130 MB in each source's format (CIFAR-10
 * binary, HDF5 NHWC uint8, the multi-view generator, all of Fashion-MNIST when installed, and
 * CIFAR with a train_limit), the loading rank's peak memory (VmHWM, reset before each load
 * through /proc/self/clear_refs) must grow by less than 1.3 x the shared bytes (a private copy
 * first would be 2x), the other rank's by less than 0.3 x; and the shared data set equals a
 * private data_load bitwise, arrays, headers and data fingerprint, on both ranks. */
#include "ensdistill/alloc.h"
#include "ensdistill/dataset.h"
#include "ensdistill/error.h"
#include "ensdistill/shared_data.h"

#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static int rank;

/* A field of /proc/self/status in bytes ("VmHWM", "VmRSS"). */
static double status_bytes(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kb = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') kb = atof(line + n + 1);
    if (f) fclose(f);
    if (kb < 0) ED_DIE("/proc/self/status has no %s", field);
    return kb * 1024.0;
}

/* Resets VmHWM to the current RSS; 0 when the kernel let us. */
static int reset_peak(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Pixel j of sample i: a pattern no two nearby samples share. */
static uint8_t pixel(size_t i, size_t j) {
    return (uint8_t)((i * 131 + j * 7 + (i * j >> 5)) & 255);
}

/* CIFAR-10 binary files in dir: 5 training files of per_file records, a test file of n_test. */
static void write_cifar(const char *dir, int per_file, int n_test) {
    unsigned char rec[3073];
    size_t sample = 0;
    for (int b = 0; b <= 5; b++) {
        char path[1024];
        if (b < 5)
            snprintf(path, sizeof(path), "%s/data_batch_%d.bin", dir, b + 1);
        else
            snprintf(path, sizeof(path), "%s/test_batch.bin", dir);
        FILE *f = fopen(path, "wb");
        if (!f) ED_DIE("cannot write %s", path);
        for (int r = 0; r < (b < 5 ? per_file : n_test); r++, sample++) {
            rec[0] = (unsigned char)(sample % 10);
            for (size_t j = 0; j < 3072; j++)
                rec[1 + j] = pixel(sample, j);
            if (fwrite(rec, sizeof(rec), 1, f) != 1) ED_DIE("short write to %s", path);
        }
        if (fclose(f) != 0) ED_DIE("cannot close %s", path);
    }
}

/* /part/images uint8 [N, H, W, C] (layout "NHWC") and /part/labels, written a row at a time. */
static void write_h5_part(hid_t file, const char *part, int N, int H, int W, int C, size_t first) {
    hid_t g = H5Gcreate2(file, part, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[4] = {(hsize_t)N, (hsize_t)H, (hsize_t)W, (hsize_t)C};
    hid_t space = H5Screate_simple(4, dims, NULL);
    hid_t d = H5Dcreate2(g, "images", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t sattr = H5Screate(H5S_SCALAR), str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, 4);
    hid_t a = H5Acreate2(d, "layout", str, sattr, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, str, "NHWC") < 0) ED_DIE("cannot write the layout attribute");
    H5Aclose(a);
    H5Tclose(str);
    H5Sclose(sattr);
    size_t per = (size_t)H * W * C;
    uint8_t *row = xmalloc(per);
    hsize_t one[4] = {1, (hsize_t)H, (hsize_t)W, (hsize_t)C};
    hid_t mem = H5Screate_simple(4, one, NULL);
    for (int i = 0; i < N; i++) {
        for (size_t j = 0; j < per; j++)
            row[j] = pixel(first + (size_t)i, j);
        hsize_t start[4] = {(hsize_t)i, 0, 0, 0};
        if (H5Sselect_hyperslab(space, H5S_SELECT_SET, start, NULL, one, NULL) < 0 ||
            H5Dwrite(d, H5T_NATIVE_UINT8, mem, space, H5P_DEFAULT, row) < 0)
            ED_DIE("cannot write row %d of /%s/images", i, part);
    }
    free(row);
    H5Sclose(mem);
    H5Dclose(d);
    H5Sclose(space);
    int32_t *labels = xmalloc((size_t)N * sizeof(int32_t));
    for (int i = 0; i < N; i++)
        labels[i] = (int32_t)((first + (size_t)i) % 10);
    hsize_t n = (hsize_t)N;
    space = H5Screate_simple(1, &n, NULL);
    d = H5Dcreate2(g, "labels", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, labels) < 0)
        ED_DIE("cannot write /%s/labels", part);
    free(labels);
    H5Dclose(d);
    H5Sclose(space);
    H5Gclose(g);
}

static void write_h5(const char *path, int n_train, int n_test) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) ED_DIE("cannot create %s", path);
    write_h5_part(f, "train", n_train, 32, 32, 3, 0);
    write_h5_part(f, "test", n_test, 32, 32, 3, (size_t)n_train);
    if (H5Fclose(f) < 0) ED_DIE("cannot close %s", path);
}

/* Every array, the shape and the statistics of two parts; 0 when equal, else what differs. */
static const char *dataset_diff(const Dataset *a, const Dataset *b) {
    if (strcmp(a->name, b->name) || a->N != b->N || a->C != b->C || a->H != b->H || a->W != b->W ||
        a->K != b->K || a->D != b->D || a->id_base != b->id_base || a->normalize != b->normalize ||
        memcmp(a->mean, b->mean, sizeof(a->mean)) || memcmp(a->std, b->std, sizeof(a->std)) ||
        a->orth_noise != b->orth_noise || a->noise_sigma != b->noise_sigma)
        return "header (name, shape, ids or statistics)";
    size_t ba[DATA_ARRAYS], bb[DATA_ARRAYS];
    dataset_array_bytes(a, ba);
    dataset_array_bytes(b, bb);
    static const char *names[DATA_ARRAYS] = {"uint8 samples", "float samples", "labels", "tags",
                                             "views"};
    for (int i = 0; i < DATA_ARRAYS; i++)
        if (ba[i] != bb[i] || (ba[i] && memcmp(dataset_array(a, i), dataset_array(b, i), ba[i])))
            return names[i];
    return NULL;
}

/* Loads cfg once per node, measures the peak memory of the load, then checks it against a
 * private data_load on both ranks. */
static void check_source(const char *what, const DataConfig *cfg) {
    MPI_Barrier(MPI_COMM_WORLD);
    int reset = reset_peak();
    double rss0 = status_bytes("VmRSS");
    DataSplit shared;
    SharedData sh;
    data_load_shared(&shared, cfg, &sh);
    double grew = status_bytes("VmHWM") - rss0, data = (double)sh.bytes;
    double grew_all[2] = {0, 0};
    MPI_Gather(&grew, 1, MPI_DOUBLE, grew_all, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD);
    int reset_all = 0;
    MPI_Allreduce(&reset, &reset_all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0) {
        if (reset_all != 0) {
            printf("SKIP %s: memory not measured: /proc/self/clear_refs cannot reset VmHWM here\n",
                   what);
        } else {
            EXPECT(grew_all[0] < 1.3 * data,
                   "%s: the loading rank's peak grew by %.1f MiB for %.1f MiB of data (%.2fx, "
                   "limit 1.3x: a second copy?)",
                   what, grew_all[0] / 1048576, data / 1048576, grew_all[0] / data);
            EXPECT(grew_all[0] > 0.8 * data,
                   "%s: the loading rank's peak grew by only %.1f MiB for %.1f MiB of data: the "
                   "measurement does not see the window",
                   what, grew_all[0] / 1048576, data / 1048576);
            EXPECT(grew_all[1] < 0.3 * data,
                   "%s: the other rank's peak grew by %.1f MiB for %.1f MiB of shared data", what,
                   grew_all[1] / 1048576, data / 1048576);
            report("%s: %.1f MiB shared; peak memory grew by %.1f MiB on the loading rank "
                   "(%.2fx), %.1f MiB on the other\n",
                   what, data / 1048576, grew_all[0] / 1048576, grew_all[0] / data,
                   grew_all[1] / 1048576);
        }
    }
    /* the same bytes as a private load, on every rank of the node */
    DataSplit own;
    data_load(&own, cfg);
    const char *d1 = dataset_diff(&shared.train, &own.train),
               *d2 = dataset_diff(&shared.test, &own.test);
    EXPECT(!d1 && !d2, "%s, rank %d: the shared data set differs from data_load in the %s %s", what,
           rank, d1 ? "training" : "test", d1 ? d1 : d2);
    char fa[1024], fb[1024];
    data_fingerprint(&shared, cfg, fa, sizeof(fa));
    data_fingerprint(&own, cfg, fb, sizeof(fb));
    EXPECT(strcmp(fa, fb) == 0, "%s, rank %d: fingerprints differ:\n  %s\n  %s", what, rank, fa,
           fb);
    datasplit_free(&own);
    data_free_shared(&shared, &sh);
    MPI_Barrier(MPI_COMM_WORLD); /* each rank printed its own failures above */
    if (rank == 0) report("%s: shared = private load, bitwise, on both ranks\n", what);
}

/* Not under an MPI launcher yet: run this program again on 2 ranks through ED_MPIEXEC. */
static void relaunch(char **argv) {
    if (getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_RANK") || getenv("PMIX_RANK")) return;
    const char *mpiexec = getenv("ED_MPIEXEC");
    if (!mpiexec) return; /* run by hand: a single rank still checks the loading rank */
    char *words = xstrdup(mpiexec), *args[32];
    int n = 0;
    for (char *w = strtok(words, " "); w && n < 28; w = strtok(NULL, " "))
        args[n++] = w;
    args[n++] = "-n";
    args[n++] = "2";
    args[n++] = argv[0];
    args[n] = NULL;
    execvp(args[0], args);
    perror(args[0]);
    exit(1);
}

int main(int argc, char **argv) {
    (void)argc;
    relaunch(argv);
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char dir[256] = "/tmp/ed-shm-XXXXXX";
    if (rank == 0 && !mkdtemp(dir)) ED_DIE("mkdtemp %s", dir);
    MPI_Bcast(dir, sizeof(dir), MPI_CHAR, 0, MPI_COMM_WORLD);
    char h5path[512];
    snprintf(h5path, sizeof(h5path), "%s/nhwc.h5", dir);
    if (rank == 0) {
        write_cifar(dir, 8000, 2000);  /* 42000 x 3072 bytes: 123 MiB */
        write_h5(h5path, 36000, 4000); /* 40000 x 3072 bytes: 117 MiB */
    }
    MPI_Barrier(MPI_COMM_WORLD);

    DataConfig cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.normalize = 1;
    cfg.source = SOURCE_CIFAR10;
    snprintf(cfg.path, sizeof(cfg.path), "%s", dir);
    check_source("CIFAR-10 binary, 42000 images", &cfg);
    cfg.train_limit = 12000;
    cfg.test_limit = 1000;
    check_source("CIFAR-10 binary, limits 12000 / 1000 (of 40000 / 2000)", &cfg);

    memset(&cfg, 0, sizeof(cfg));
    cfg.normalize = 1;
    cfg.source = SOURCE_HDF5;
    snprintf(cfg.path, sizeof(cfg.path), "%s", h5path);
    check_source("HDF5 NHWC uint8, 40000 images", &cfg);

    memset(&cfg, 0, sizeof(cfg));
    cfg.source = SOURCE_MULTIVIEW;
    MultiviewConfig *mv = &cfg.multiview;
    mv->k = 10, mv->d = 64, mv->patches = 16, mv->patches_per_view = 2;
    mv->n_train = 22000, mv->n_test = 3000; /* 25000 x 16 x 64 floats: 98 MiB */
    mv->view_lo = mv->view_hi = 1.0, mv->off_mv_lo = 0.05, mv->off_mv_hi = 0.1;
    mv->off_sv_lo = 0.05, mv->off_sv_hi = 0.1, mv->off_prob = 0.3, mv->mu = 0.2;
    mv->weak_scale = 0.1, mv->noise = NOISE_GAUSS, mv->sigma = 0.5, mv->seed = 3;
    cfg.train_limit = 20000;
    check_source("multi-view generator, 20000 + 3000 samples", &cfg);

    if (access(FMNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) == 0) {
        memset(&cfg, 0, sizeof(cfg));
        cfg.normalize = 1;
        cfg.source = SOURCE_FASHION_MNIST;
        check_source("all of Fashion-MNIST (gzip IDX)", &cfg);
    } else if (rank == 0) {
        printf("SKIP Fashion-MNIST: %s is not installed\n", FMNIST_DIR);
    }

    if (rank == 0) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    }
    int mine = failures, all = 0;
    MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) printf(all ? "%d failure(s)\n" : "all shared-data tests passed\n", all);
    MPI_Finalize();
    return all != 0;
}
