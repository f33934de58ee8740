/* Compares our layer kernels (fast and naive), losses, generator, the mvconv model and three SGD
 * steps of resnet-8 with PyTorch's answers in tests/reference/reference.h5 (written by
 * tests/reference/make_reference.py), tensor by tensor. One line per tensor; exits 1 on any
 * difference beyond tolerance, naming the worst element. */
#include "../../src/nn/srelu_inline.h"
#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/layers.h"
#include "ensdistill/loss.h"
#include "ensdistill/model.h"
#include "ensdistill/optim.h"
#include "ensdistill/rng.h"

#include "check.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An element passes when |got - ref| <= atol + rtol * |ref|. The reference is computed in
 * float64 from float32 inputs, so the kernels' tolerance only has to cover float32 rounding
 * over sums of at most a few hundred terms; the model's covers three training steps. */
typedef struct {
    double atol, rtol;
} Tol;
static const Tol TOL_KERNEL = {1e-5, 1e-4};
static const Tol TOL_MODEL = {2e-5, 2e-4};
/* Backward kernels ADD into their outputs (layers.h): they start from this value, which is
 * subtracted again before the comparison. */
#define ADD_BASE 0.5f

static hid_t g_file = -1;
static const char *g_path;
static int g_checks;

/* ------------------------------------------------------------------------------------------ */
/* Reading the fixture                                                                          */
/* ------------------------------------------------------------------------------------------ */

#define REF_MAX_DIMS 8
#define PATH_LEN 400 /* any path or label in the fixture */
typedef struct {
    char path[PATH_LEN];
    int ndim;
    hsize_t dims[REF_MAX_DIMS];
    size_t n;
    size_t elem; /* bytes per string (read_ref_string) */
    void *data;  /* float, double, int32_t, int64_t or strings as read */
} Ref;

static int exists(const char *path) {
    /* H5Lexists on each component: it fails on a missing intermediate group */
    char buf[PATH_LEN];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            htri_t e = H5Lexists(g_file, buf, H5P_DEFAULT);
            *p = saved;
            if (e <= 0) return 0;
            if (saved == '\0') return 1;
        }
    }
}

/* Reads dataset `path` converted to mem_type (elem bytes each). Dies when it is missing or
 * when expect_n > 0 and its size differs. */
static Ref read_ref(const char *path, hid_t mem_type, size_t elem, size_t expect_n) {
    Ref r;
    memset(&r, 0, sizeof(r));
    snprintf(r.path, sizeof(r.path), "%s", path);
    if (!exists(path)) ed_fail("%s: dataset %s is missing (regenerate the fixture?)", g_path, path);
    hid_t ds = H5_CHECK(H5Dopen2(g_file, path, H5P_DEFAULT));
    hid_t sp = H5_CHECK(H5Dget_space(ds));
    r.ndim = H5_CHECK(H5Sget_simple_extent_ndims(sp));
    ED_CHECK(r.ndim <= REF_MAX_DIMS, "%s: %d dimensions", path, r.ndim);
    H5_CHECK(H5Sget_simple_extent_dims(sp, r.dims, NULL));
    r.n = 1;
    for (int d = 0; d < r.ndim; d++) r.n *= (size_t)r.dims[d];
    if (expect_n > 0 && r.n != expect_n)
        ed_fail("%s: %s has %zu elements, the test expects %zu", g_path, path, r.n, expect_n);
    r.data = xmalloc((r.n ? r.n : 1) * elem);
    H5_CHECK(H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, r.data));
    H5Sclose(sp);
    H5Dclose(ds);
    return r;
}

/* A dataset of fixed-length strings: data holds n strings of elem bytes, NUL-terminated. */
static Ref read_ref_string(const char *group, const char *name) {
    Ref r;
    memset(&r, 0, sizeof(r));
    snprintf(r.path, sizeof(r.path), "/%s/%s", group, name);
    if (!exists(r.path)) ed_fail("%s: dataset %s is missing", g_path, r.path);
    hid_t ds = H5_CHECK(H5Dopen2(g_file, r.path, H5P_DEFAULT));
    hid_t sp = H5_CHECK(H5Dget_space(ds));
    r.ndim = H5_CHECK(H5Sget_simple_extent_ndims(sp));
    ED_CHECK(r.ndim == 1, "%s: want one dimension", r.path);
    H5_CHECK(H5Sget_simple_extent_dims(sp, r.dims, NULL));
    r.n = (size_t)r.dims[0];
    hid_t ftype = H5_CHECK(H5Dget_type(ds));
    r.elem = H5Tget_size(ftype) + 1;
    hid_t mtype = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(mtype, r.elem));
    H5_CHECK(H5Tset_strpad(mtype, H5T_STR_NULLTERM));
    r.data = xcalloc(r.n ? r.n : 1, r.elem);
    H5_CHECK(H5Dread(ds, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, r.data));
    H5Tclose(mtype), H5Tclose(ftype), H5Sclose(sp), H5Dclose(ds);
    return r;
}

static Ref ref_f(const char *group, const char *name, size_t expect_n) {
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "/%s/%s", group, name);
    return read_ref(path, H5T_NATIVE_FLOAT, sizeof(float), expect_n);
}
static float *rf(const char *group, const char *name, size_t expect_n) {
    return ref_f(group, name, expect_n).data;
}
static void *read_typed(const char *group, const char *name, hid_t type, size_t elem,
                        size_t expect_n) {
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "/%s/%s", group, name);
    return read_ref(path, type, elem, expect_n).data;
}

static double attr_double(const char *group, const char *name) {
    double v;
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "/%s", group);
    if (H5Aexists_by_name(g_file, path, name, H5P_DEFAULT) <= 0)
        ed_fail("%s: attribute %s of %s is missing", g_path, name, path);
    hid_t a = H5_CHECK(H5Aopen_by_name(g_file, path, name, H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(H5Aread(a, H5T_NATIVE_DOUBLE, &v));
    H5Aclose(a);
    return v;
}
static int attr_int(const char *group, const char *name) {
    return (int)attr_double(group, name);
}
static double attr_double_or(const char *group, const char *name, double fallback) {
    char path[PATH_LEN];
    snprintf(path, sizeof(path), "/%s", group);
    return H5Aexists_by_name(g_file, path, name, H5P_DEFAULT) > 0 ? attr_double(group, name)
                                                                   : fallback;
}
/* A string attribute (h5py writes variable-length strings) into buf. */
static void attr_string(const char *group, const char *name, char *buf, size_t size) {
    char path[PATH_LEN], *value = NULL;
    snprintf(path, sizeof(path), "/%s", group);
    hid_t a = H5_CHECK(H5Aopen_by_name(g_file, path, name, H5P_DEFAULT, H5P_DEFAULT));
    hid_t ftype = H5_CHECK(H5Aget_type(a));
    if (H5Tget_class(ftype) != H5T_STRING || H5Tis_variable_str(ftype) <= 0)
        ed_fail("%s: attribute %s of %s is not a variable-length string", g_path, name, path);
    hid_t type = H5_CHECK(H5Tcopy(H5T_C_S1));
    H5_CHECK(H5Tset_size(type, H5T_VARIABLE));
    H5_CHECK(H5Tset_cset(type, H5Tget_cset(ftype))); /* h5py writes UTF-8 */
    H5_CHECK(H5Aread(a, type, &value));
    snprintf(buf, size, "%s", value ? value : "");
    H5free_memory(value);
    H5Tclose(type), H5Tclose(ftype), H5Aclose(a);
}

/* ------------------------------------------------------------------------------------------ */
/* Comparing                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void index_str(char *buf, size_t size, size_t flat, const Ref *ref) {
    size_t idx[REF_MAX_DIMS];
    for (int d = ref->ndim - 1; d >= 0; d--) {
        idx[d] = flat % ref->dims[d];
        flat /= ref->dims[d];
    }
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ref->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%zu", d ? "," : "", idx[d]);
    if (used < size) snprintf(buf + used, size - used, "]");
}

/* got[n] against the float reference; prints name, max abs err, max rel err (over elements
 * with |ref| > atol), OK/FAIL and, on failure, the worst element and how many fail. */
static int compare_as(const char *label, const float *got, const Ref *ref, Tol tol) {
    const float *want = ref->data;
    double max_abs = 0, max_rel = 0, worst_ratio = -1;
    size_t worst = 0, bad = 0;
    for (size_t i = 0; i < ref->n; i++) {
        double r = want[i], g = got[i], err = fabs(g - r);
        if (isnan(g) != isnan(r) || isinf(g) != isinf(r)) err = INFINITY;
        else if (isnan(g) || (isinf(g) && g == r)) err = 0;
        double ratio = err / (tol.atol + tol.rtol * fabs(r));
        if (err > max_abs) max_abs = err;
        if (fabs(r) > tol.atol && err / fabs(r) > max_rel) max_rel = err / fabs(r);
        if (ratio > 1) bad++;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    int ok = bad == 0;
    g_checks++;
    printf("  %-58s %7zu  abs %.2e  rel %.2e  %s", label, ref->n, max_abs, max_rel,
           ok ? "OK" : "FAIL");
    if (!ok) {
        char idx[96];
        index_str(idx, sizeof(idx), worst, ref);
        printf("  %zu elements off; worst %s got %.8g want %.8g (tol %.1e + %.1e|want|)", bad,
               idx, (double)got[worst], (double)want[worst], tol.atol, tol.rtol);
    }
    printf("\n");
    EXPECT(ok, "%s", label);
    return ok;
}

/* got against dataset group/name (label "group/name suffix") */
static int check(const char *group, const char *name, const char *suffix, const float *got,
                 size_t n, Tol tol) {
    Ref ref = ref_f(group, name, n);
    char label[PATH_LEN];
    snprintf(label, sizeof(label), "%s/%s%s", group, name, suffix);
    int ok = compare_as(label, got, &ref, tol);
    free(ref.data);
    return ok;
}

/* a backward output that started from ADD_BASE */
static int check_added(const char *group, const char *name, const char *suffix, float *got,
                       size_t n, Tol tol) {
    for (size_t i = 0; i < n; i++) got[i] -= ADD_BASE;
    return check(group, name, suffix, got, n, tol);
}

static int check_scalar(const char *label, double got, double want, Tol tol) {
    float g = (float)got, w = (float)want;
    Ref ref = {.ndim = 1, .dims = {1}, .n = 1, .data = &w};
    return compare_as(label, &g, &ref, tol);
}

static void check_exact_int(const char *label, long long got, long long want) {
    g_checks++;
    int ok = got == want;
    printf("  %-58s %7d  %lld vs %lld  %s\n", label, 1, got, want, ok ? "OK" : "FAIL");
    EXPECT(ok, "%s", label);
}

static float *filled(size_t n, float v) {
    float *p = xfloats(n ? n : 1);
    for (size_t i = 0; i < n; i++) p[i] = v;
    return p;
}

/* ------------------------------------------------------------------------------------------ */
/* Kernels                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void test_linear(void) {
    const char *g = "linear";
    int B = attr_int(g, "B"), IN = attr_int(g, "IN"), OUT = attr_int(g, "OUT");
    float *in = rf(g, "in", (size_t)B * IN), *w = rf(g, "weight", (size_t)OUT * IN);
    float *bias = rf(g, "bias", OUT), *dout = rf(g, "dout", (size_t)B * OUT);
    for (int naive = 0; naive < 2; naive++) {
        const char *sfx = naive ? " (naive)" : "";
        float *out = filled((size_t)B * OUT, NAN);
        float *din = filled((size_t)B * IN, ADD_BASE), *dw = filled((size_t)OUT * IN, ADD_BASE);
        float *db = filled(OUT, ADD_BASE);
        (naive ? linear_forward_naive : linear_forward)(out, in, w, bias, B, IN, OUT);
        (naive ? linear_backward_naive : linear_backward)(din, dw, db, dout, in, w, B, IN, OUT);
        check(g, "out", sfx, out, (size_t)B * OUT, TOL_KERNEL);
        check_added(g, "din", sfx, din, (size_t)B * IN, TOL_KERNEL);
        check_added(g, "dweight", sfx, dw, (size_t)OUT * IN, TOL_KERNEL);
        check_added(g, "dbias", sfx, db, OUT, TOL_KERNEL);
        free(out), free(din), free(dw), free(db);
    }
    free(in), free(w), free(bias), free(dout);
}

static void test_conv(const char *g) {
    int B = attr_int(g, "B"), C = attr_int(g, "C"), H = attr_int(g, "H"), W = attr_int(g, "W");
    int OC = attr_int(g, "OC"), KS = attr_int(g, "K"), S = attr_int(g, "stride"),
        P = attr_int(g, "pad"), has_bias = attr_int(g, "has_bias");
    int OH = conv2d_out_size(H, KS, S, P), OW = conv2d_out_size(W, KS, S, P);
    size_t nin = (size_t)B * C * H * W, nw = (size_t)OC * C * KS * KS,
           nout = (size_t)B * OC * OH * OW;
    float *in = rf(g, "in", nin), *w = rf(g, "weight", nw), *dout = rf(g, "dout", nout);
    float *bias = has_bias ? rf(g, "bias", OC) : NULL;
    size_t ws_n = conv2d_workspace_floats(B, C, H, W, OC, KS, S, P);
    float *ws = filled(ws_n, NAN);
    for (int naive = 0; naive < 2; naive++) {
        const char *sfx = naive ? " (naive)" : "";
        float *out = filled(nout, NAN), *din = filled(nin, ADD_BASE), *dw = filled(nw, ADD_BASE);
        float *db = has_bias ? filled(OC, ADD_BASE) : NULL;
        if (naive) {
            conv2d_forward_naive(out, in, w, bias, B, C, H, W, OC, KS, S, P);
            conv2d_backward_naive(din, dw, db, dout, in, w, B, C, H, W, OC, KS, S, P);
        } else {
            conv2d_forward(out, in, w, bias, B, C, H, W, OC, KS, S, P, ws);
            conv2d_backward(din, dw, db, dout, in, w, B, C, H, W, OC, KS, S, P, ws);
        }
        check(g, "out", sfx, out, nout, TOL_KERNEL);
        check_added(g, "din", sfx, din, nin, TOL_KERNEL);
        check_added(g, "dweight", sfx, dw, nw, TOL_KERNEL);
        if (has_bias) check_added(g, "dbias", sfx, db, OC, TOL_KERNEL);
        free(out), free(din), free(dw), free(db);
    }
    free(in), free(w), free(dout), free(bias), free(ws);
}

static void test_batchnorm(const char *g) {
    int B = attr_int(g, "B"), C = attr_int(g, "C"), HW = attr_int(g, "HW");
    int training = attr_int(g, "training");
    float momentum = (float)attr_double(g, "momentum"), eps = (float)attr_double(g, "eps");
    size_t n = (size_t)B * C * HW;
    float *in = rf(g, "in", n), *gamma = rf(g, "gamma", C), *beta = rf(g, "beta", C);
    float *rm = rf(g, "running_mean_in", C), *rv = rf(g, "running_var_in", C);
    float *out = filled(n, NAN), *mean = filled(C, NAN), *invstd = filled(C, NAN);
    batchnorm_forward(out, training ? mean : NULL, training ? invstd : NULL, in, gamma, beta, rm,
                      rv, B, C, HW, momentum, eps, training);
    check(g, "out", "", out, n, TOL_KERNEL);
    check(g, "running_mean", "", rm, C, TOL_KERNEL);
    check(g, "running_var", "", rv, C, TOL_KERNEL);
    if (training) {
        float *dout = rf(g, "dout", n);
        float *din = filled(n, ADD_BASE), *dgamma = filled(C, ADD_BASE), *dbeta = filled(C, ADD_BASE);
        batchnorm_backward(din, dgamma, dbeta, dout, in, gamma, mean, invstd, B, C, HW);
        check_added(g, "din", "", din, n, TOL_KERNEL);
        check_added(g, "dgamma", "", dgamma, C, TOL_KERNEL);
        check_added(g, "dbeta", "", dbeta, C, TOL_KERNEL);
        free(dout), free(din), free(dgamma), free(dbeta);
    }
    free(in), free(gamma), free(beta), free(rm), free(rv), free(out), free(mean), free(invstd);
}

static void test_relu(void) {
    const char *g = "relu";
    size_t n = (size_t)attr_int(g, "n");
    float *in = rf(g, "in", n), *dout = rf(g, "dout", n);
    float *out = filled(n, NAN), *din = filled(n, ADD_BASE);
    relu_forward(out, in, n);
    relu_backward(din, dout, in, n);
    check(g, "out", "", out, n, TOL_KERNEL);
    check_added(g, "din", "", din, n, TOL_KERNEL);
    free(in), free(dout), free(out), free(din);
}

static void test_srelu(const char *g) {
    size_t n = (size_t)attr_int(g, "n");
    float q = (float)attr_double(g, "q"), rho = (float)attr_double(g, "rho");
    float *in = rf(g, "in", n), *dout = rf(g, "dout", n);
    float *out = filled(n, NAN), *din = filled(n, ADD_BASE), *grad = filled(n, NAN);
    for (size_t i = 0; i < n; i++) {
        out[i] = srelu_value(in[i], q, rho);
        grad[i] = srelu_derivative(in[i], q, rho);
        din[i] += dout[i] * grad[i];
    }
    check(g, "out", "", out, n, TOL_KERNEL);
    check_added(g, "din", "", din, n, TOL_KERNEL);
    check(g, "grad", "", grad, n, TOL_KERNEL);
    free(in), free(dout), free(out), free(din), free(grad);
}

static void test_maxpool(const char *g) {
    int B = attr_int(g, "B"), C = attr_int(g, "C"), H = attr_int(g, "H"), W = attr_int(g, "W");
    int KS = attr_int(g, "K"), S = attr_int(g, "stride"), P = attr_int(g, "pad");
    int OH = conv2d_out_size(H, KS, S, P), OW = conv2d_out_size(W, KS, S, P);
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * C * OH * OW;
    float *in = rf(g, "in", nin), *dout = rf(g, "dout", nout);
    float *out = filled(nout, NAN), *din = filled(nin, ADD_BASE);
    int32_t *argmax = xcalloc(nout, sizeof(int32_t));
    maxpool_forward(out, argmax, in, B, C, H, W, KS, S, P);
    maxpool_backward(din, dout, argmax, B, C, H, W, KS, S, P);
    int32_t *want = read_typed(g, "argmax", H5T_NATIVE_INT32, sizeof(int32_t), nout);
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < nout; i++)
        if (argmax[i] != want[i] && bad++ == 0) first = i;
    g_checks++;
    printf("  %-58s %7zu  %zu differ  %s", "argmax", nout, bad, bad ? "FAIL" : "OK");
    if (bad) {
        printf("  first at flat index %zu: got %d want %d", first, argmax[first], want[first]);
    }
    printf("\n");
    EXPECT(bad == 0, "argmax");
    free(argmax), free(want);
    check(g, "out", "", out, nout, TOL_KERNEL);
    check_added(g, "din", "", din, nin, TOL_KERNEL);
    free(in), free(dout), free(out), free(din);
}

static void test_global_avgpool(void) {
    const char *g = "global_avgpool";
    int B = attr_int(g, "B"), C = attr_int(g, "C"), HW = attr_int(g, "HW");
    size_t nin = (size_t)B * C * HW, nout = (size_t)B * C;
    float *in = rf(g, "in", nin), *dout = rf(g, "dout", nout);
    float *out = filled(nout, NAN), *din = filled(nin, ADD_BASE);
    global_avgpool_forward(out, in, B, C, HW);
    global_avgpool_backward(din, dout, B, C, HW);
    check(g, "out", "", out, nout, TOL_KERNEL);
    check_added(g, "din", "", din, nin, TOL_KERNEL);
    free(in), free(dout), free(out), free(din);
}

static void test_shortcut(const char *g) {
    int B = attr_int(g, "B"), C = attr_int(g, "C"), H = attr_int(g, "H"), W = attr_int(g, "W");
    int OC = attr_int(g, "OC"), S = attr_int(g, "stride"), front = attr_int(g, "pad_front");
    int OH = (H + S - 1) / S, OW = (W + S - 1) / S;
    size_t nin = (size_t)B * C * H * W, nout = (size_t)B * OC * OH * OW;
    float *in = rf(g, "in", nin), *dout = rf(g, "dout", nout);
    float *out = filled(nout, NAN), *din = filled(nin, ADD_BASE);
    shortcut_pad_forward(out, in, B, C, H, W, OC, S, front);
    shortcut_pad_backward(din, dout, B, C, H, W, OC, S, front);
    check(g, "out", "", out, nout, TOL_KERNEL);
    check_added(g, "din", "", din, nin, TOL_KERNEL);
    free(in), free(dout), free(out), free(din);
}

static void test_loss(const char *g, int distill) {
    int B = attr_int(g, "B"), K = attr_int(g, "K");
    size_t n = (size_t)B * K;
    float *logits = rf(g, "logits", n);
    int32_t *labels = read_typed(g, "labels", H5T_NATIVE_INT32, sizeof(int32_t), (size_t)B);
    double *want = read_typed(g, "loss", H5T_NATIVE_DOUBLE, sizeof(double), 1);
    float *teacher = distill ? rf(g, "teacher", n) : NULL;
    float T = distill ? (float)attr_double(g, "temperature") : 1.0f;
    float alpha = distill ? (float)attr_double(g, "alpha") : 0.0f;
    float *dlogits = filled(n, NAN);
    int correct = 0, correct2 = 0; /* the losses add their count into it */
    double sum, sum_nograd;
    if (distill) {
        sum = loss_distill(dlogits, logits, teacher, labels, B, K, T, alpha, 1.0f / B, &correct);
        sum_nograd = loss_distill(NULL, logits, teacher, labels, B, K, T, alpha, 1.0f, &correct2);
    } else {
        sum = loss_cross_entropy(dlogits, logits, labels, B, K, 1.0f / B, &correct);
        sum_nograd = loss_cross_entropy(NULL, logits, labels, B, K, 1.0f, &correct2);
    }
    char label[PATH_LEN];
    snprintf(label, sizeof(label), "%s/loss (sum / B)", g);
    check_scalar(label, sum / B, want[0], TOL_KERNEL);
    snprintf(label, sizeof(label), "%s/loss (dlogits NULL)", g);
    check_scalar(label, sum_nograd / B, want[0], TOL_KERNEL);
    check(g, "dlogits", " (scale 1/B)", dlogits, n, TOL_KERNEL);
    snprintf(label, sizeof(label), "%s/correct", g);
    check_exact_int(label, correct, attr_int(g, "correct"));
    snprintf(label, sizeof(label), "%s/correct (dlogits NULL)", g);
    check_exact_int(label, correct2, attr_int(g, "correct"));
    free(logits), free(labels), free(want), free(teacher), free(dlogits);
}

/* The fixture's table of fixed noise weights [K*M, n_coords] */
typedef struct {
    const float *table;
    int64_t n_coords;
} NoiseTable;
static float table_noise(const void *ctx, int row, int64_t coord) {
    const NoiseTable *t = ctx;
    ED_CHECK(coord >= 0 && coord < t->n_coords, "noise coordinate %lld outside the fixture's table",
             (long long)coord);
    return t->table[(size_t)row * t->n_coords + coord];
}

static void test_mvconv(const char *g, int noisy) {
    int B = attr_int(g, "B"), P = attr_int(g, "P"), D = attr_int(g, "D"), K = attr_int(g, "K");
    int M = attr_int(g, "M");
    float q = (float)attr_double(g, "q"), rho = (float)attr_double(g, "rho");
    int R = K * M;
    float *in = rf(g, "in", (size_t)B * P * D), *w = rf(g, "weight", (size_t)R * D);
    float *dout = rf(g, "dout", (size_t)B * K);
    MvNoise noise = {0}, *np = NULL;
    NoiseTable table = {0};
    Ref table_ref = {0};
    int64_t *ids = NULL;
    float *nw = NULL;
    if (noisy) {
        noise.n_noise = attr_int(g, "n_noise");
        noise.sigma = (float)attr_double(g, "sigma");
        nw = rf(g, "noise_weight", (size_t)R * noise.n_noise);
        ids = read_typed(g, "sample_ids", H5T_NATIVE_INT64, sizeof(int64_t), (size_t)B);
        table_ref = ref_f(g, "noise_init_table", 0);
        table.table = table_ref.data;
        table.n_coords = (int64_t)table_ref.dims[1];
        noise.noise_w = nw;
        noise.sample_ids = ids;
        noise.noise_init = table_noise;
        noise.noise_ctx = &table;
        np = &noise;
    }
    size_t npre = (size_t)B * P * R, nnw = noisy ? (size_t)R * noise.n_noise : 0;
    for (int naive = 0; naive < 2; naive++) {
        const char *sfx = naive ? " (naive)" : "";
        float *out = filled((size_t)B * K, NAN), *pre = filled(npre, NAN);
        float *dw = filled((size_t)R * D, ADD_BASE), *dnw = noisy ? filled(nnw, ADD_BASE) : NULL;
        (naive ? mvconv_forward_naive : mvconv_forward)(out, pre, in, w, np, B, P, D, K, M, q, rho);
        (naive ? mvconv_backward_naive : mvconv_backward)(dw, dnw, dout, pre, in, np, B, P, D, K, M,
                                                         q, rho);
        check(g, "out", sfx, out, (size_t)B * K, TOL_KERNEL);
        check(g, "pre", sfx, pre, npre, TOL_KERNEL);
        check_added(g, "dweight", sfx, dw, (size_t)R * D, TOL_KERNEL);
        if (noisy) check_added(g, "dnoise_weight", sfx, dnw, nnw, TOL_KERNEL);
        free(out), free(pre), free(dw), free(dnw);
    }
    free(in), free(w), free(dout), free(nw), free(ids), free(table_ref.data);
}

/* analysis/torch_models.py's copy of our generator draws what the library draws. */
static void test_philox(void) {
    const char *g = "philox";
    Ref pos = read_ref("/philox/positions", H5T_NATIVE_UINT64, sizeof(uint64_t), 0);
    size_t n = pos.n;
    uint32_t *blocks = read_typed(g, "blocks", H5T_NATIVE_UINT32, sizeof(uint32_t), 4 * n);
    uint64_t seed, stream;
    hid_t a = H5_CHECK(H5Aopen_by_name(g_file, "/philox", "seed", H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(H5Aread(a, H5T_NATIVE_UINT64, &seed));
    H5Aclose(a);
    a = H5_CHECK(H5Aopen_by_name(g_file, "/philox", "stream", H5P_DEFAULT, H5P_DEFAULT));
    H5_CHECK(H5Aread(a, H5T_NATIVE_UINT64, &stream));
    H5Aclose(a);
    const uint64_t *p = pos.data;
    size_t bad = 0;
    float *normal = filled(n, NAN);
    for (size_t i = 0; i < n; i++) {
        uint32_t ctr[4] = {(uint32_t)p[i], (uint32_t)(p[i] >> 32), (uint32_t)stream,
                           (uint32_t)(stream >> 32)};
        uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
        rng_philox4x32_10(ctr, key, out);
        for (int j = 0; j < 4; j++) bad += out[j] != blocks[4 * i + j];
        normal[i] = rng_normal_at(seed, stream, p[i]);
    }
    g_checks++;
    printf("  %-58s %7zu  %zu words differ  %s\n", "philox/blocks", 4 * n, bad, bad ? "FAIL" : "OK");
    EXPECT(bad == 0, "philox/blocks");
    /* Box-Muller through libm: allow the last bit of a float */
    check(g, "normal", " (rng_normal_at)", normal, n, (Tol){1e-6, 1e-6});
    /* mvconv's fixed noise weights: rng_normal_at(seed, stream, 1<<63 | copy<<56 | row<<36 |
     * coord) * init_std (model.h) */
    int copy = attr_int(g, "noise_copy");
    float std = (float)attr_double(g, "noise_std");
    Ref rows_ref = read_ref("/philox/noise_rows", H5T_NATIVE_INT32, sizeof(int32_t), 0);
    Ref coords = read_ref("/philox/noise_coords", H5T_NATIVE_INT64, sizeof(int64_t), 0);
    const int32_t *rows = rows_ref.data;
    size_t nr = rows_ref.n, nc = coords.n;
    float *nwgt = filled(nr * nc, NAN);
    for (size_t c = 0; c < nc; c++)
        for (size_t r = 0; r < nr; r++) {
            uint64_t position = (UINT64_C(1) << 63) | ((uint64_t)copy << 56) |
                                ((uint64_t)rows[r] << 36) | (uint64_t)((int64_t *)coords.data)[c];
            nwgt[c * nr + r] = rng_normal_at(seed, stream, position) * std;
        }
    check(g, "noise_weight", " (model.h's formula)", nwgt, nr * nc, (Tol){1e-6, 1e-6});
    free(pos.data), free(blocks), free(normal), free(coords.data), free(rows_ref.data);
    free(nwgt);
}

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Every tensor of m from group/<name> (same name, same shape, and no extra ones in the file).
 * Returns 0 if the tables disagree. */
static int load_state(Model *m, const char *group) {
    int ok = 1;
    for (int i = 0; i < m->tensors.count; i++) {
        const TensorInfo *t = &m->tensors.items[i];
        char path[PATH_LEN], shape[64];
        snprintf(path, sizeof(path), "/%s/%s", group, t->name);
        if (!exists(path)) {
            printf("  %-58s ours %s, not in torch's state_dict  FAIL\n", t->name,
                   tensor_shape_str(t, shape, sizeof(shape)));
            EXPECT(0, "%s: not in torch's state_dict", t->name);
            ok = 0;
            continue;
        }
        float *dst = (t->kind == TENSOR_PARAM ? m->params : m->buffers) + t->offset;
        Ref r = t->is_integer ? read_ref(path, H5T_NATIVE_INT64, sizeof(int64_t), 0)
                              : read_ref(path, H5T_NATIVE_FLOAT, sizeof(float), 0);
        int same = r.ndim == t->ndim && r.n == t->numel;
        for (int d = 0; same && d < r.ndim; d++) same = (int64_t)r.dims[d] == t->shape[d];
        if (!same) {
            printf("  %-58s ours %s, torch's has %zu elements in %d dims  FAIL\n", t->name,
                   tensor_shape_str(t, shape, sizeof(shape)), r.n, r.ndim);
            EXPECT(0, "%s: shape differs from torch's", t->name);
            ok = 0;
        } else if (t->is_integer) {
            for (size_t j = 0; j < r.n; j++) dst[j] = (float)((int64_t *)r.data)[j];
        } else {
            memcpy(dst, r.data, r.n * sizeof(float));
        }
        free(r.data);
    }
    char gpath[PATH_LEN];
    snprintf(gpath, sizeof(gpath), "/%s", group);
    hid_t grp = H5_CHECK(H5Gopen2(g_file, gpath, H5P_DEFAULT));
    H5G_info_t info;
    H5_CHECK(H5Gget_info(grp, &info));
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[TENSOR_NAME_MAX];
        H5_CHECK(H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name),
                                    H5P_DEFAULT));
        if (tensor_table_find(&m->tensors, name) < 0) {
            printf("  %-58s torch has it, our model does not  FAIL\n", name);
            EXPECT(0, "%s: in torch's state_dict, not in our model", name);
            ok = 0;
        }
    }
    H5Gclose(grp);
    return ok;
}

/* Every tensor of kind `kind` against group/<name>; integer buffers exactly. */
static void check_state(const Model *m, const char *group, TensorKind kind, const float *arena,
                        Tol tol) {
    for (int i = 0; i < m->tensors.count; i++) {
        const TensorInfo *t = &m->tensors.items[i];
        if (t->kind != kind) continue;
        char label[PATH_LEN];
        snprintf(label, sizeof(label), "%s/%s", group, t->name);
        if (t->is_integer) {
            char path[PATH_LEN + 2];
            snprintf(path, sizeof(path), "/%s", label);
            Ref r = read_ref(path, H5T_NATIVE_INT64, sizeof(int64_t), t->numel);
            check_exact_int(label, (long long)arena[t->offset], ((int64_t *)r.data)[0]);
            free(r.data);
        } else {
            check(group, t->name, "", arena + t->offset, t->numel, tol);
        }
    }
}

/* Each architecture's tensor table against the torch module's state_dict (analysis/
 * torch_models.py): the same names, kinds, shapes and trainable flags, the trainable tensors
 * exactly those inside [trainable_begin, trainable_end), and the same parameter counts. */
static void test_arch(const char *label) {
    char g[TENSOR_NAME_MAX + 8];
    snprintf(g, sizeof(g), "archs/%s", label);
    ModelSpec spec;
    memset(&spec, 0, sizeof(spec));
    attr_string(g, "arch", spec.arch, sizeof(spec.arch));
    spec.C = attr_int(g, "C"), spec.H = attr_int(g, "H"), spec.W = attr_int(g, "W");
    spec.num_classes = attr_int(g, "K");
    spec.max_batch = 1;
    spec.sum_of = (int)attr_double_or(g, "sum_of", 1);
    spec.random_features = (int)attr_double_or(g, "random_features", 0);
    spec.hidden = (int)attr_double_or(g, "hidden", 0);
    spec.mv_filters = (int)attr_double_or(g, "mv_filters", 1);
    spec.srelu_q = 3.0f, spec.srelu_rho = 1.0f, spec.init_std = 0.01f;
    spec.mv_noise_coords = (int64_t)attr_double_or(g, "mv_noise_coords", 0);
    Model *m = model_create(&spec);

    Ref names = read_ref_string(g, "names");
    size_t n = names.n;
    int32_t *ndim = read_typed(g, "ndim", H5T_NATIVE_INT32, sizeof(int32_t), n);
    int64_t *shape = read_typed(g, "shape", H5T_NATIVE_INT64, sizeof(int64_t), 4 * n);
    int32_t *trainable = read_typed(g, "trainable", H5T_NATIVE_INT32, sizeof(int32_t), n);
    int32_t *is_param = read_typed(g, "is_param", H5T_NATIVE_INT32, sizeof(int32_t), n);
    int bad = 0;
    char *seen = xcalloc((size_t)m->tensors.count + 1, 1);
    for (size_t i = 0; i < n; i++) {
        const char *name = (const char *)names.data + i * names.elem;
        int k = tensor_table_find(&m->tensors, name);
        if (k < 0) {
            printf("    %s: torch has %s, our model does not\n", label, name);
            bad++;
            continue;
        }
        seen[k] = 1;
        const TensorInfo *t = &m->tensors.items[k];
        int same = t->ndim == ndim[i];
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == shape[4 * i + d];
        char ours[64];
        tensor_shape_str(t, ours, sizeof(ours));
        if (!same) {
            printf("    %s: %s is %s in ours, [%lld, %lld, %lld, %lld] (ndim %d) in torch\n", label,
                   name, ours, (long long)shape[4 * i], (long long)shape[4 * i + 1],
                   (long long)shape[4 * i + 2], (long long)shape[4 * i + 3], ndim[i]);
            bad++;
        }
        if ((t->kind == TENSOR_PARAM) != (is_param[i] != 0)) {
            printf("    %s: %s is a %s in ours, a %s in torch\n", label, name,
                   t->kind == TENSOR_PARAM ? "parameter" : "buffer",
                   is_param[i] ? "parameter" : "buffer");
            bad++;
        }
        if (t->trainable != trainable[i]) {
            printf("    %s: %s trainable %d in ours, requires_grad %d in torch\n", label, name,
                   t->trainable, trainable[i]);
            bad++;
        }
        if (t->kind == TENSOR_PARAM) {
            int inside = t->offset >= m->trainable_begin && t->offset + t->numel <= m->trainable_end;
            if (inside != (t->trainable != 0)) {
                printf("    %s: %s (trainable %d) is %s the optimizer's range [%zu, %zu)\n", label,
                       name, t->trainable, inside ? "inside" : "outside", m->trainable_begin,
                       m->trainable_end);
                bad++;
            }
        }
    }
    for (int k = 0; k < m->tensors.count; k++)
        if (!seen[k]) {
            printf("    %s: ours has %s, torch does not\n", label, m->tensors.items[k].name);
            bad++;
        }
    long long want_params = (long long)attr_double(g, "param_count");
    long long want_trainable = (long long)attr_double(g, "trainable_count");
    long long got_params = (long long)model_param_count(m);
    long long got_trainable = (long long)(m->trainable_end - m->trainable_begin);
    if (got_params != want_params || got_trainable != want_trainable) {
        printf("    %s: %lld parameters (%lld trainable), torch %lld (%lld)\n", label, got_params,
               got_trainable, want_params, want_trainable);
        bad++;
    }
    g_checks++;
    char line[PATH_LEN];
    snprintf(line, sizeof(line), "%s (%s %dx%dx%d)", g, spec.arch, spec.C, spec.H, spec.W);
    printf("  %-58s %7zu  %lld params, %lld trainable  %s\n", line, n, got_params, got_trainable,
           bad ? "FAIL" : "OK");
    EXPECT(bad == 0, "%s", line);
    free(names.data), free(ndim), free(shape), free(trainable), free(is_param), free(seen);
    model_free(m);
}

static void test_archs(void) {
    hid_t grp = H5_CHECK(H5Gopen2(g_file, "/archs", H5P_DEFAULT));
    H5G_info_t info;
    H5_CHECK(H5Gget_info(grp, &info));
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char label[TENSOR_NAME_MAX];
        H5_CHECK(H5Lget_name_by_idx(grp, ".", H5_INDEX_NAME, H5_ITER_INC, i, label,
                                    sizeof(label), H5P_DEFAULT));
        test_arch(label);
    }
    H5Gclose(grp);
}

/* The mvconv model (sum_of 2, orth noise; two samples use the fixed Philox noise weights) */
static void test_mvconv_model(void) {
    const char *g = "mvconv_model";
    ModelSpec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.arch, sizeof(spec.arch), "mvconv");
    spec.C = attr_int(g, "C"), spec.H = attr_int(g, "H"), spec.W = attr_int(g, "W");
    spec.num_classes = attr_int(g, "K");
    int B = attr_int(g, "B"), K = spec.num_classes;
    spec.max_batch = B;
    spec.sum_of = attr_int(g, "sum_of");
    spec.mv_filters = attr_int(g, "mv_filters");
    spec.srelu_q = (float)attr_double(g, "srelu_q");
    spec.srelu_rho = (float)attr_double(g, "srelu_rho");
    spec.init_std = (float)attr_double(g, "init_std");
    spec.mv_noise_coords = attr_int(g, "mv_noise_coords");
    spec.mv_noise_sigma = (float)attr_double(g, "mv_noise_sigma");
    Model *m = model_create(&spec);
    model_init(m, (uint64_t)attr_int(g, "init_seed"), (uint64_t)attr_int(g, "init_stream"));
    if (load_state(m, "mvconv_model/params")) {
        float *x = rf(g, "x", (size_t)B * spec.C * spec.H * spec.W);
        int64_t *ids = read_typed(g, "sample_ids", H5T_NATIVE_INT64, sizeof(int64_t), (size_t)B);
        float *dlogits = rf(g, "dlogits", (size_t)B * K);
        float *logits = model_forward(m, x, ids, B, 1);
        check(g, "logits", "", logits, (size_t)B * K, TOL_KERNEL);
        model_backward(m, dlogits);
        check_state(m, "mvconv_model/grads", TENSOR_PARAM, m->grads, TOL_KERNEL);
        free(x), free(ids), free(dlogits);
    }
    model_free(m);
}

/* Three SGD steps of resnet-8 in training mode from torch's initial state. */
static void test_resnet(void) {
    const char *g = "resnet8";
    ModelSpec spec;
    memset(&spec, 0, sizeof(spec));
    snprintf(spec.arch, sizeof(spec.arch), "resnet-8");
    spec.C = attr_int(g, "C"), spec.H = attr_int(g, "H"), spec.W = attr_int(g, "W");
    spec.num_classes = attr_int(g, "K");
    int B = attr_int(g, "B"), K = spec.num_classes;
    spec.max_batch = B;
    float lr = (float)attr_double(g, "lr"), momentum = (float)attr_double(g, "momentum");
    float wd = (float)attr_double(g, "weight_decay");
    int nesterov = attr_int(g, "nesterov");
    Model *m = model_create(&spec);
    model_init(m, 1, 1);
    if (!load_state(m, "resnet8/init")) {
        printf("  resnet-8: our tensor table differs from torch's state_dict; steps skipped\n");
        model_free(m);
        return;
    }
    size_t tb = m->trainable_begin, te = m->trainable_end, np = m->tensors.param_floats;
    float *p0 = xfloats(np);
    memcpy(p0, m->params, np * sizeof(float));
    float *dlogits = xfloats((size_t)B * K);
    for (int step = 0; step < 3; step++) {
        char grp[64], name[PATH_LEN];
        snprintf(grp, sizeof(grp), "resnet8/batch%d", step);
        size_t nx = (size_t)B * spec.C * spec.H * spec.W;
        float *x = rf(grp, "x", nx);
        int32_t *y = read_typed(grp, "y", H5T_NATIVE_INT32, sizeof(int32_t), (size_t)B);
        snprintf(grp, sizeof(grp), "resnet8/step%d", step);
        float *logits = model_forward(m, x, NULL, B, 1);
        double loss = loss_cross_entropy(dlogits, logits, y, B, K, 1.0f / B, NULL) / B;
        double *want = read_typed(grp, "loss", H5T_NATIVE_DOUBLE, sizeof(double), 1);
        snprintf(name, sizeof(name), "%s/loss", grp);
        check_scalar(name, loss, want[0], TOL_MODEL);
        check(grp, "logits", "", logits, (size_t)B * K, TOL_MODEL);
        model_backward(m, dlogits);
        if (step == 0) {
            /* torch's first gradient, from its first update (momentum starts at zero):
             * g = (p0 - p1) / (lr (1 + momentum)) - wd p0 for Nesterov, (p0 - p1) / lr - wd p0
             * without */
            double denom = lr * (nesterov ? 1.0 + momentum : 1.0);
            for (int i = 0; i < m->tensors.count; i++) {
                const TensorInfo *t = &m->tensors.items[i];
                if (t->kind != TENSOR_PARAM) continue;
                Ref p1 = ref_f("resnet8/step0/params", t->name, t->numel);
                float *want_g = p1.data;
                for (size_t j = 0; j < t->numel; j++) {
                    double a = p0[t->offset + j];
                    want_g[j] = (float)((a - want_g[j]) / denom - wd * a);
                }
                snprintf(p1.path, sizeof(p1.path), "resnet8/step0/grad(%s)", t->name);
                compare_as(p1.path, m->grads + t->offset, &p1, TOL_MODEL);
                free(p1.data);
            }
        }
        sgd_step(m->params + tb, m->grads + tb, m->momentum + tb, te - tb, lr, momentum, wd,
                 nesterov);
        snprintf(grp, sizeof(grp), "resnet8/step%d/params", step);
        check_state(m, grp, TENSOR_PARAM, m->params, TOL_MODEL);
        snprintf(grp, sizeof(grp), "resnet8/step%d/buffers", step);
        check_state(m, grp, TENSOR_BUFFER, m->buffers, TOL_MODEL);
        free(x), free(y), free(want);
    }
    float *x0 = rf("resnet8/batch0", "x", (size_t)B * spec.C * spec.H * spec.W);
    float *logits = model_forward(m, x0, NULL, B, 0);
    check(g, "eval_logits", " (training=0)", logits, (size_t)B * K, TOL_MODEL);
    free(x0), free(p0), free(dlogits);
    model_free(m);
}

/* ------------------------------------------------------------------------------------------ */

static void section(const char *name) {
    printf("%s\n", name);
}

int main(void) {
    const char *src = getenv("ED_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof(path), "%s/tests/reference/reference.h5", src ? src : ".");
    g_path = path;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our checks report failures */
    g_file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (g_file < 0) {
        fprintf(stderr, "test_reference: cannot open %s (set ED_SOURCE_DIR to the source tree)\n",
                path);
        return 1;
    }
    printf("reference: %s\n", path);
    printf("  %-58s %7s  %-13s %-14s\n", "tensor", "n", "max abs err", "max rel err");

    section("linear");
    test_linear();
    section("conv2d");
    const char *convs[] = {"conv2d_3x3_s1_p1", "conv2d_3x3_s2_p1", "conv2d_5x5_s1_p2",
                           "conv2d_1x1_s1_p0", "conv2d_1x1_s2_p0", "conv2d_3x3_s1_p1_wide"};
    for (size_t i = 0; i < sizeof(convs) / sizeof(convs[0]); i++) test_conv(convs[i]);
    section("batchnorm");
    test_batchnorm("batchnorm2d_train");
    test_batchnorm("batchnorm1d_train");
    test_batchnorm("batchnorm2d_eval");
    section("activations");
    test_relu();
    test_srelu("srelu_q3");
    test_srelu("srelu_q2.5");
    section("pooling and shortcut");
    test_maxpool("maxpool_2x2_s2_p0");
    test_maxpool("maxpool_3x3_s2_p1");
    test_global_avgpool();
    test_shortcut("shortcut_a_s2");
    test_shortcut("shortcut_a_s1_asym");
    section("losses");
    test_loss("cross_entropy", 0);
    test_loss("distill_T4_a0.9", 1);
    test_loss("distill_T1_a0.5", 1);
    test_loss("distill_T2_a1", 1);
    section("mvconv");
    test_mvconv("mvconv_dense", 0);
    test_mvconv("mvconv_noise", 1);
    section("generator");
    test_philox();
    section("architectures: tensor tables against torch state_dicts");
    test_archs();
    section("mvconv model (sum_of 2, orth noise)");
    test_mvconv_model();
    section("resnet-8: three SGD steps (momentum 0.9, Nesterov, weight decay 5e-4, lr 0.1)");
    test_resnet();

    H5Fclose(g_file);
    printf("%d of %d comparisons failed\n", failures, g_checks);
    return failures ? 1 : 0;
}
