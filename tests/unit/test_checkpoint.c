/* Checkpoint files: bitwise round trip of every tensor and of the training state, the
 * tmp + rename protocol, fall-back to NAME.prev.h5 on a damaged file, clear refusals (another
 * arch, shape, format_version, seed), and byte flips anywhere in the file never crashing or
 * loading wrong values. Also run.h5 and metrics.jsonl. */
#include "ensdistill/alloc.h"
#include "ensdistill/checkpoint.h"
#include "ensdistill/error.h"
#include "ensdistill/h5file.h"
#include "ensdistill/model.h"
#include "ensdistill/rng.h"
#include "ensdistill/runfile.h"
#include "unit/expect_fail.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

static char dir[512];

static ModelSpec small_spec(const char *arch, int hidden) {
    ModelSpec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.arch, sizeof(s.arch), "%s", arch);
    s.C = 3;
    s.H = 8;
    s.W = 8;
    s.num_classes = 10;
    s.max_batch = 4;
    s.hidden = hidden;
    return s;
}

/* Random contents everywhere (integer buffers get integer values). */
static void fill_model(Model *m, uint64_t seed) {
    Rng r = rng_make(seed, rng_stream(RNG_PURPOSE_TEST, 0, 0, 0));
    size_t P = m->tensors.param_floats, Bf = m->tensors.buffer_floats;
    for (size_t i = 0; i < P; i++)
        m->params[i] = rng_normal(&r);
    for (size_t i = 0; i < P; i++)
        m->momentum[i] = rng_normal(&r) * 0.01f;
    for (size_t i = 0; i < Bf; i++)
        m->buffers[i] = rng_uniform(&r) + 0.5f;
    for (int t = 0; t < m->tensors.count; t++) {
        const TensorInfo *ti = &m->tensors.items[t];
        if (ti->is_integer)
            for (size_t i = 0; i < ti->numel; i++)
                m->buffers[ti->offset + i] = (float)(37 + seed);
    }
}

static void fill_state(ModelState *st, int epochs_done) {
    ckpt_state_free(st);
    memset(st, 0, sizeof(*st));
    snprintf(st->role, sizeof(st->role), "member");
    st->index = 3;
    st->seed = 12345;
    st->epochs_total = 10;
    st->epoch = epochs_done;
    st->step_in_epoch = 7;
    st->step = 1000 + epochs_done;
    st->partial_loss = 3.25;
    st->partial_correct = 17;
    st->partial_seen = 64;
    st->partial_seconds = 0.125;
    for (int e = 1; e <= epochs_done; e++) {
        EpochRecord rec = {e,      0.1 / e, 2.0 / e, 0.5 + 0.01 * e, e % 2 ? NAN : 0.6 + 0.01 * e,
                           1.5 * e};
        ckpt_state_push_epoch(st, &rec);
    }
}

static int same_floats(const float *a, const float *b, size_t n) {
    return n == 0 || memcmp(a, b, n * sizeof(float)) == 0;
}

static int same_state(const ModelState *a, const ModelState *b) {
    if (strcmp(a->role, b->role) || a->index != b->index || a->seed != b->seed ||
        a->epochs_total != b->epochs_total || a->epoch != b->epoch ||
        a->step_in_epoch != b->step_in_epoch || a->step != b->step || a->complete != b->complete ||
        a->partial_loss != b->partial_loss || a->partial_correct != b->partial_correct ||
        a->partial_seen != b->partial_seen || a->partial_seconds != b->partial_seconds ||
        a->n_history != b->n_history)
        return 0;
    for (int e = 0; e < a->n_history; e++) {
        const EpochRecord *x = &a->history[e], *y = &b->history[e];
        double xv[5] = {x->lr, x->train_loss, x->train_acc, x->test_acc, x->seconds};
        double yv[5] = {y->lr, y->train_loss, y->train_acc, y->test_acc, y->seconds};
        if (x->epoch != y->epoch || memcmp(xv, yv, sizeof(xv)) != 0) return 0; /* NaN too */
    }
    return 1;
}

static int same_model(const Model *a, const Model *b) {
    return same_floats(a->params, b->params, a->tensors.param_floats) &&
           same_floats(a->momentum, b->momentum, a->tensors.param_floats) &&
           same_floats(a->buffers, b->buffers, a->tensors.buffer_floats);
}

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = xmalloc(*n + 1);
    if (fread(b, 1, *n, fp) != *n) *n = 0;
    fclose(fp);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp || fwrite(b, 1, n, fp) != n) {
        perror(path);
        exit(1);
    }
    fclose(fp);
}

/* Offset of the bytes `pat` in the file image, or -1. */
static long find_bytes(const unsigned char *hay, size_t n, const void *pat, size_t m) {
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, pat, m) == 0) return (long)i;
    return -1;
}

/* The largest parameter tensor (its middle is where a flip is planted). */
static const TensorInfo *largest_param(const Model *m) {
    const TensorInfo *best = NULL;
    for (int t = 0; t < m->tensors.count; t++) {
        const TensorInfo *ti = &m->tensors.items[t];
        if (ti->kind == TENSOR_PARAM && (!best || ti->numel > best->numel)) best = ti;
    }
    return best;
}

/* ---- children for expect_fail: each loads and checks, exits 0 only when all is right ---- */
typedef struct {
    const char *path;
    ModelSpec spec;
    const Model *expect; /* NULL: only load */
    int expect_epoch;
    ModelState want_id; /* role/index/seed given to ckpt_read */
} LoadArgs;

static void child_load(void *p) {
    LoadArgs *a = p;
    Model *m = model_create(&a->spec);
    ModelState st = a->want_id;
    st.history = NULL;
    st.n_history = st.cap_history = 0;
    int rc = ckpt_read(a->path, m, &st);
    ED_CHECK(rc == 0, "ckpt_read returned %d", rc);
    if (a->expect) {
        ED_CHECK(same_model(m, a->expect), "loaded tensors differ from what was written");
        ED_CHECK(st.epoch == a->expect_epoch, "loaded epoch %d, expected %d", st.epoch,
                 a->expect_epoch);
    }
    ckpt_state_free(&st);
    model_free(m);
}

static void test_round_trip(void) {
    char path[600];
    snprintf(path, sizeof(path), "%s/models/member-003.h5", dir);
    ModelSpec spec = small_spec("resnet-8", 0);
    Model *a = model_create(&spec);
    fill_model(a, 1);
    ModelState st = {0};
    fill_state(&st, 3);
    int K = spec.num_classes, n_train = 50, n_test = 20;
    float *tl = xfloats((size_t)n_train * K), *vl = xfloats((size_t)n_test * K);
    for (int i = 0; i < n_train * K; i++)
        tl[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < n_test * K; i++)
        vl[i] = -(float)i * 0.5f;
    CkptDataset logits[2] = {
        {.name = "logits/train", .ndim = 2, .dims = {n_train, K}, .data = tl},
        {.name = "logits/test", .ndim = 2, .dims = {n_test, K}, .data = vl},
    };
    CkptWriteOptions opt = {
        .config_text = "name: test\ntrain: {lr: 0.1}\n", .extra = logits, .n_extra = 2};
    ckpt_write(path, a, &st, &opt);
    char tmp[700], prev[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    snprintf(prev, sizeof(prev), "%s/models/member-003.prev.h5", dir);
    EXPECT(access(path, F_OK) == 0, "%s missing after ckpt_write", path);
    EXPECT(access(tmp, F_OK) != 0, "%s left behind", tmp);
    EXPECT(access(prev, F_OK) != 0, "%s left behind", prev);

    Model *b = model_create(&spec);
    ModelState got = {0};
    snprintf(got.role, sizeof(got.role), "member");
    got.index = 3;
    got.seed = 12345;
    EXPECT(ckpt_read(path, b, &got) == 0, "ckpt_read failed");
    EXPECT(same_floats(a->params, b->params, a->tensors.param_floats), "params differ");
    EXPECT(same_floats(a->momentum, b->momentum, a->tensors.param_floats), "momentum differs");
    EXPECT(same_floats(a->buffers, b->buffers, a->tensors.buffer_floats), "buffers differ");
    EXPECT(same_state(&st, &got), "ModelState differs after the round trip");
    EXPECT(strcmp(got.arch, "resnet-8") == 0, "arch '%s'", got.arch);
    int n_int = 0;
    for (int t = 0; t < b->tensors.count; t++)
        if (b->tensors.items[t].is_integer) {
            n_int++;
            EXPECT(b->buffers[b->tensors.items[t].offset] == 38.0f, "num_batches_tracked %g",
                   b->buffers[b->tensors.items[t].offset]);
        }
    EXPECT(n_int > 0, "resnet-8 has no integer buffer: the int64 path is untested");

    float *tl2 = xfloats((size_t)n_train * K), *vl2 = xfloats((size_t)n_test * K);
    EXPECT(ckpt_read_logits(path, "train", tl2, n_train, K) == 0, "no train logits");
    EXPECT(ckpt_read_logits(path, "test", vl2, n_test, K) == 0, "no test logits");
    EXPECT(same_floats(tl, tl2, (size_t)n_train * K), "train logits differ");
    EXPECT(same_floats(vl, vl2, (size_t)n_test * K), "test logits differ");

    CkptInfo info;
    char err[256];
    EXPECT(ckpt_info(path, &info, err, sizeof(err)) == 0, "ckpt_info: %s", err);
    EXPECT(info.epoch == 3 && info.n_history == 3 && info.n_train_logits == n_train &&
               info.n_test_logits == n_test && info.spec.C == 3 && info.spec.H == 8 &&
               info.spec.num_classes == 10 && strcmp(info.spec.arch, "resnet-8") == 0,
           "ckpt_info fields wrong");
    EXPECT(fabs(info.last_test_acc - 0.62) < 1e-12, "last evaluated test acc %g, expected 0.62",
           info.last_test_acc);
    long nds = h5_verify_file(path, err, sizeof(err));
    EXPECT(nds > 3 * 4, "h5_verify_file: %ld (%s)", nds, err);

    /* h5py-style checks of the layout through the C API: types and the scalar buffer */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    EXPECT(f >= 0, "H5Fopen");
    hid_t ds = H5Dopen2(f, "/buffers/bn1.num_batches_tracked", H5P_DEFAULT);
    EXPECT(ds >= 0, "/buffers/bn1.num_batches_tracked missing");
    if (ds >= 0) {
        hid_t t = H5Dget_type(ds);
        EXPECT(H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 8,
               "num_batches_tracked not int64");
        H5Tclose(t);
        H5Dclose(ds);
    }
    ds = H5Dopen2(f, "/params/conv1.weight", H5P_DEFAULT);
    EXPECT(ds >= 0, "/params/conv1.weight missing");
    if (ds >= 0) {
        hid_t dcpl = H5Dget_create_plist(ds);
        int nf = H5Pget_nfilters(dcpl), has_fletcher = 0;
        for (int i = 0; i < nf; i++) {
            unsigned flags;
            size_t nel = 0;
            unsigned cd[4];
            if (H5Pget_filter2(dcpl, (unsigned)i, &flags, &nel, cd, 0, NULL, NULL) ==
                H5Z_FILTER_FLETCHER32)
                has_fletcher = 1;
        }
        EXPECT(H5Pget_layout(dcpl) == H5D_CHUNKED && has_fletcher,
               "conv1.weight not chunked with Fletcher32");
        H5Pclose(dcpl);
        H5Dclose(ds);
    }
    H5Fclose(f);

    /* a second write replaces the first and leaves no prev/tmp */
    fill_model(a, 2);
    fill_state(&st, 4);
    st.complete = 1;
    ckpt_write(path, a, &st, &(CkptWriteOptions){.deflate = 6});
    EXPECT(access(prev, F_OK) != 0 && access(tmp, F_OK) != 0, "prev or tmp left behind");
    EXPECT(ckpt_read(path, b, &got) == 0 && same_model(a, b) && same_state(&st, &got),
           "second (deflated) checkpoint does not round-trip");
    EXPECT(ckpt_read_logits(path, "train", tl2, n_train, K) == -1, "logits should be absent");

    /* nothing to resume */
    char none[700];
    snprintf(none, sizeof(none), "%s/models/none.h5", dir);
    EXPECT(ckpt_read(none, b, &got) == 1, "missing file should return 1");

    printf("ok   round trip: %d tensors, %zu params, %zu buffer floats, state, history, logits\n",
           a->tensors.count, a->tensors.param_floats, a->tensors.buffer_floats);
    ckpt_state_free(&st);
    ckpt_state_free(&got);
    free(tl);
    free(vl);
    free(tl2);
    free(vl2);
    model_free(a);
    model_free(b);
}

/* Damaged files: fall back to prev with a warning, or stop naming the file. */
static void test_damage(void) {
    char path[600], prev[600];
    snprintf(path, sizeof(path), "%s/models/kd-000.h5", dir);
    snprintf(prev, sizeof(prev), "%s/models/kd-000.prev.h5", dir);
    ModelSpec spec = small_spec("cnn", 32);
    Model *a = model_create(&spec), *b = model_create(&spec);
    ModelState st = {0};
    fill_model(a, 5);
    fill_state(&st, 1);
    snprintf(st.role, sizeof(st.role), "kd");
    st.index = 0;
    ckpt_write(path, a, &st, &(CkptWriteOptions){.config_text = "old"});
    size_t n_old;
    unsigned char *old_img = slurp(path, &n_old);
    memcpy(b->params, a->params, a->tensors.param_floats * sizeof(float));
    memcpy(b->momentum, a->momentum, a->tensors.param_floats * sizeof(float));
    memcpy(b->buffers, a->buffers, a->tensors.buffer_floats * sizeof(float));

    fill_model(a, 6);
    fill_state(&st, 2);
    snprintf(st.role, sizeof(st.role), "kd");
    st.index = 0;
    ckpt_write(path, a, &st, &(CkptWriteOptions){.config_text = "new"});
    size_t n_new;
    unsigned char *new_img = slurp(path, &n_new);

    /* flip bytes in the middle of the largest parameter, as a plain write would */
    const TensorInfo *big = largest_param(a);
    const float *mid = a->params + big->offset + big->numel / 2;
    long off = find_bytes(new_img, n_new, mid, 32);
    EXPECT(off > 0, "could not find %s's bytes in the file", big->name);
    unsigned char *bad = xmalloc(n_new);
    memcpy(bad, new_img, n_new);
    for (int i = 0; i < 8; i++)
        bad[off + i] ^= 0x5a;
    spit(path, bad, n_new);
    spit(prev, old_img, n_old);

    LoadArgs la = {path, spec, b, 1, st};
    char needle[700];
    snprintf(needle, sizeof(needle), "resuming from the previous checkpoint %s", prev);
    expect_fail("checksum failure falls back to prev", child_load, &la, 0, needle);
    /* the good file took the name (the damaged one kept aside), so reading again is clean */
    size_t n_now;
    unsigned char *now_img = slurp(path, &n_now);
    EXPECT(n_now == n_old && memcmp(now_img, old_img, n_old) == 0 && access(prev, F_OK) != 0,
           "after the fall-back, %s is not the previous checkpoint", path);
    free(now_img);
    char damaged[700];
    snprintf(damaged, sizeof(damaged), "%s.damaged", path);
    EXPECT(access(damaged, F_OK) == 0, "the damaged file was not kept as %s", damaged);
    unlink(damaged);
    spit(path, bad, n_new);
    spit(prev, old_img, n_old);
    expect_fail("the warning names the whole-file checksum", child_load, &la, 0,
                             "whole-file CRC32 does not match");

    /* no prev: stop, naming the file */
    spit(path, bad, n_new);
    unlink(prev);
    snprintf(needle, sizeof(needle), "checkpoint %s is damaged", path);
    expect_fail("checksum failure with no prev stops", child_load, &la, ED_EXIT_USER, needle);

    /* truncated, no prev */
    spit(path, new_img, n_new / 2);
    expect_fail("truncated file with no prev stops", child_load, &la, ED_EXIT_USER, "truncated");
    /* truncated, with prev */
    spit(prev, old_img, n_old);
    expect_fail("truncated file falls back to prev", child_load, &la, 0,
                "resuming from the previous checkpoint");
    /* main missing (a crash between the two renames), prev present */
    unlink(path);
    spit(prev, old_img, n_old);
    expect_fail("missing file with a prev loads prev", child_load, &la, 0,
                             "an interrupted rename");
    /* both damaged */
    spit(path, bad, n_new);
    spit(prev, old_img, n_old / 3);
    expect_fail("both damaged stops", child_load, &la, ED_EXIT_USER, "and so is the previous one");
    unlink(prev);

    /* byte flips anywhere: never a crash, never wrong values. */
    int detected = 0, harmless = 0;
    LoadArgs exact = {path, spec, a, 2, st};
    uint64_t lcg = 88172645463325252ull;
    for (int trial = 0; trial < 40; trial++) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        size_t pos = (size_t)(lcg >> 33) % n_new;
        memcpy(bad, new_img, n_new);
        bad[pos] ^= (unsigned char)(1u << (trial % 8));
        spit(path, bad, n_new);
        int pipefd[2];
        if (pipe(pipefd) != 0) break;
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            dup2(pipefd[1], 2);
            close(pipefd[0]);
            child_load(&exact);
            _exit(0);
        }
        close(pipefd[1]);
        char msg[2048];
        size_t len = 0;
        ssize_t r;
        char sink[4096];
        while ((r = read(pipefd[0], sink, sizeof(sink))) > 0) /* drain: never SIGPIPE it */
            for (ssize_t i = 0; i < r && len + 1 < sizeof(msg); i++)
                msg[len++] = sink[i];
        msg[len] = 0;
        close(pipefd[0]);
        int ws;
        waitpid(pid, &ws, 0);
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0)
            harmless++;
        else if (WIFEXITED(ws) && WEXITSTATUS(ws) == ED_EXIT_USER)
            detected++;
        else {
            EXPECT(0, "byte flip at offset %zu of %zu: %s %d\n  %s", pos, n_new,
                   WIFEXITED(ws) ? "exit status" : "signal",
                   WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws), msg);
        }
    }
    printf("ok   40 random byte flips in a %zu-byte file: %d detected, %d in unused bytes "
           "(loaded exactly)\n",
           n_new, detected, harmless);

    ckpt_state_free(&st);
    free(old_img);
    free(new_img);
    free(bad);
    model_free(a);
    model_free(b);
}

/* Files that are fine but not this model's: refused with the attribute or tensor named. */
static void test_refusals(void) {
    char path[600];
    snprintf(path, sizeof(path), "%s/models/member-000.h5", dir);
    ModelSpec spec = small_spec("mlp", 16);
    Model *a = model_create(&spec);
    ModelState st = {0};
    fill_model(a, 9);
    fill_state(&st, 1);
    st.index = 0;
    ckpt_write(path, a, &st, &(CkptWriteOptions){0});

    LoadArgs la = {path, small_spec("cnn", 16), NULL, 0, st};
    expect_fail("another arch is refused", child_load, &la, ED_EXIT_USER,
                "attribute arch is 'mlp' in the file but 'cnn' in the model");
    la.spec = small_spec("mlp", 32);
    expect_fail("another shape is refused", child_load, &la, ED_EXIT_USER,
                "tensor /params/fc1.weight has shape [16, 192] in the file but "
                "[32, 192] in the model");
    la.spec = small_spec("mlp", 16);
    la.spec.num_classes = 7;
    expect_fail("another num_classes is refused", child_load, &la, ED_EXIT_USER, "num_classes");
    la.spec = small_spec("mlp", 16);
    la.want_id.seed = 999;
    expect_fail("another seed is refused", child_load, &la, ED_EXIT_USER,
                "attribute seed is 12345 in the file but 999");
    la.want_id = st;
    la.expect = a;
    la.expect_epoch = 1;
    expect_fail("the same model loads", child_load, &la, 0, NULL);

    /* a missing attribute is damage, never a default: ckpt_info and ckpt_read name it */
    char err[512], needle[900];
    size_t n_img;
    unsigned char *img = slurp(path, &n_img);
    hid_t fm = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Adelete(fm, "hidden");
    H5Fclose(fm);
    EXPECT(h5u_seal(path) == 0, "reseal");
    CkptInfo info;
    EXPECT(ckpt_info(path, &info, err, sizeof(err)) == -1 && strstr(err, "attribute hidden is missing"),
           "ckpt_info with attribute hidden deleted: %s", err);
    snprintf(needle, sizeof(needle), "checkpoint %s is damaged: attribute hidden is missing", path);
    expect_fail("a missing attribute stops, naming it", child_load, &la, ED_EXIT_USER, needle);
    spit(path, img, n_img);
    free(img);

    /* format_version 3 (sealed again, as a newer build would write it) */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t at = H5Aopen(f, "format_version", H5P_DEFAULT);
    int64_t v3 = 3;
    H5Awrite(at, H5T_NATIVE_INT64, &v3);
    H5Aclose(at);
    H5Fclose(f);
    EXPECT(h5u_seal(path) == 0, "reseal");
    expect_fail("another format_version is refused", child_load, &la, ED_EXIT_USER,
                             "attribute format_version is 3; this build reads version 2");
    /* another kind of HDF5 file (no seal: a plain HDF5 file, or one of format_version 1) */
    hid_t g = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(g);
    expect_fail("a foreign HDF5 file is refused", child_load, &la, ED_EXIT_USER,
                             "it has no whole-file checksum");
    ckpt_state_free(&st);
    model_free(a);
}

static void test_runfile(void) {
    char run[600];
    snprintf(run, sizeof(run), "%s", dir);
    const char *names[2] = {"member-003", "kd-000"};
    int K = 10, n_train = 50, n_test = 20;
    float *tt = xfloats((size_t)n_train * K), *vt = xfloats((size_t)n_test * K);
    for (int i = 0; i < n_train * K; i++)
        tt[i] = (float)i;
    for (int i = 0; i < n_test * K; i++)
        vt[i] = (float)-i;
    ResultRow rows[2] = {{"single", "member", 4, 0.9, 0.3, 0.02, NAN, NAN, 0.01},
                         {"ensemble", "member", 4, 0.92, 0.25, 0.015, NAN, NAN, NAN}};
    float sizes[4] = {0.9f, 0.91f, 0.915f, 0.92f};
    RunSummary summary = {.config_text = "name: x\n", .model_names = names, .n_models = 2,
                          .teacher_train = tt, .n_train = n_train, .teacher_test = vt,
                          .n_test = n_test, .K = K, .rows = rows, .n_rows = 2,
                          .ensemble_size_acc = sizes, .L = 4, .disagreement = 0.25};
    runfile_write(run, &summary);
    ResultRow *got = NULL;
    int n = 0;
    char err[256];
    EXPECT(runfile_read_results(run, &got, &n, err, sizeof(err)) == 0, "read results: %s", err);
    EXPECT(n == 2 && got && strcmp(got[1].name, "ensemble") == 0 && got[1].test_acc == 0.92 &&
               got[0].n_models == 4 && isnan(got[0].acc_multi) && got[0].acc_std == 0.01,
           "results table does not round-trip");
    free(got);
    float *vt2 = xfloats((size_t)n_test * K);
    char runh5_path[1100];
    snprintf(runh5_path, sizeof(runh5_path), "%s/run.h5", run);
    hid_t rf = h5u_open_read(runh5_path);
    EXPECT(rf >= 0 && h5r_read(rf, "teacher/test_logits", H5T_NATIVE_FLOAT, vt2) == 0 &&
               same_floats(vt, vt2, (size_t)n_test * K),
           "teacher test logits do not round-trip");
    if (rf >= 0) H5Fclose(rf);
    /* the external link reaches the model file written earlier, from another directory */
    char cwd[1024];
    EXPECT(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd");
    EXPECT(chdir("/") == 0, "chdir");
    char runh5[700];
    snprintf(runh5, sizeof(runh5), "%s/run.h5", run);
    hid_t f = H5Fopen(runh5, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = f >= 0 ? H5Dopen2(f, "/models/member-003/params/conv1.weight", H5P_DEFAULT) : -1;
    EXPECT(ds >= 0, "run.h5 /models/member-003/params/conv1.weight does not resolve");
    if (ds >= 0) H5Dclose(ds);
    if (f >= 0) H5Fclose(f);
    EXPECT(chdir(cwd) == 0, "chdir back");
    EXPECT(h5_verify_file(runh5, err, sizeof(err)) > 5, "run.h5 verify: %s", err);

    EpochRecord rec = {1, 0.1, 2.5, 0.4, NAN, 3.0};
    runfile_append_metrics(run, "member", 3, &rec);
    runfile_append_metrics(run, "member", 3, &rec);
    char mpath[700];
    snprintf(mpath, sizeof(mpath), "%s/metrics.jsonl", run);
    size_t len;
    unsigned char *txt = slurp(mpath, &len);
    EXPECT(txt && len > 0, "metrics.jsonl missing");
    if (txt) {
        txt[len] = 0;
        EXPECT(strstr((char *)txt, "{\"model\":\"member-003\",\"role\":\"member\",\"index\":3,"
                                   "\"epoch\":1,\"lr\":0.1,") &&
                   strstr((char *)txt, "\"test_acc\":null"),
               "metrics.jsonl line: %s", txt);
        int lines = 0;
        for (size_t i = 0; i < len; i++)
            lines += txt[i] == '\n';
        EXPECT(lines == 2, "%d lines in metrics.jsonl", lines);
    }
    free(txt);
    free(tt);
    free(vt);
    free(vt2);
    printf("ok   run.h5: results table, teacher logits, external links; metrics.jsonl\n");
}

int main(void) {
    test_tmpdir(dir, sizeof(dir), "checkpoint");
    test_round_trip();
    test_damage();
    test_refusals();
    test_runfile();
    if (failures) {
        fprintf(stderr, "%d failure(s); files kept in %s\n", failures, dir);
        return 1;
    }
    test_rmdir(dir);
    printf("checkpoint: all passed\n");
    return 0;
}
