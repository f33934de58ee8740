/* Threads: our own OpenMP loops (BatchNorm, ReLU, add, pooling, shortcut, SGD, clipping,
 * mvconv) give bitwise the same results at 1, 2 and 3 threads; a whole training step (forward,
 * backward, clip, SGD) of a resnet gives bitwise the same weights when repeated at the same
 * thread count, on each backend the build has. */
#include "ensdistill/alloc.h"
#include "ensdistill/layers.h"
#include "ensdistill/model.h"
#include "ensdistill/optim.h"
#include "ensdistill/rng.h"
#include "ensdistill/threads.h"

#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static void fill(float *x, size_t n, uint64_t stream) {
    Rng r = rng_make(99, stream);
    for (size_t i = 0; i < n; i++) x[i] = rng_normal(&r);
}

enum { B = 16, C = 32, H = 24, W = 24, N = B * C * H * W };

/* Runs every threaded kernel once into out (a fixed layout of results). */
static void run_kernels(float *out) {
    float *x = xfloats(N), *y = xfloats(N), *g = xfloats(N), *gamma = xfloats(C);
    fill(x, N, 1);
    fill(y, N, 2);
    fill(g, N, 3);
    fill(gamma, C, 4);
    float *o = out;
    float mean[C], invstd[C], rm[C], rv[C], dgamma[C] = {0}, dbeta[C] = {0};
    for (int c = 0; c < C; c++) rm[c] = 0.0f, rv[c] = 1.0f;
    batchnorm_forward(o, mean, invstd, x, gamma, NULL, rm, rv, B, C, H * W, 0.1f, 1e-5f, 1);
    o += N;
    memcpy(o, y, sizeof(float) * N);
    batchnorm_backward(o, dgamma, dbeta, g, x, gamma, mean, invstd, B, C, H * W);
    o += N;
    memcpy(o, dgamma, sizeof dgamma), o += C;
    memcpy(o, dbeta, sizeof dbeta), o += C;
    memcpy(o, rv, sizeof rv), o += C;
    relu_forward(o, x, N), o += N;
    memcpy(o, y, sizeof(float) * N);
    relu_backward(o, g, x, N), o += N;
    add_forward(o, x, y, N), o += N;
    int32_t *am = xmalloc(sizeof(int32_t) * N / 4);
    maxpool_forward(o, am, x, B, C, H, W, 2, 2, 0), o += N / 4;
    memcpy(o, y, sizeof(float) * N);
    maxpool_backward(o, g, am, B, C, H, W, 2, 2, 0), o += N;
    maxpool_forward(o, am, x, B, C, H, W, 3, 2, 1), o += N / 4;
    global_avgpool_forward(o, x, B, C, H * W), o += B * C;
    shortcut_pad_forward(o, x, B / 2, C, H, W, 2 * C, 2, C / 2), o += N / 4;
    memcpy(o, y, sizeof(float) * N / 2);
    shortcut_pad_backward(o, g, B / 2, C, H, W, 2 * C, 2, C / 2), o += N / 2;
    float *p = o, *mom = o + N;
    memcpy(p, x, sizeof(float) * N);
    memset(mom, 0, sizeof(float) * N);
    float *gr = xfloats(N);
    memcpy(gr, g, sizeof(float) * N);
    double norm = optim_clip_grad_norm(gr, N, 1.0);
    sgd_step(p, gr, mom, N, 0.1f, 0.9f, 5e-4f, 1);
    o += 2 * N;
    memcpy(o, &norm, sizeof norm);
    free(x), free(y), free(g), free(gamma), free(am), free(gr);
}

#define OUT_FLOATS (size_t)(14 * N)

static void kernels_any_thread_count(void) {
    float *ref = xfloats(OUT_FLOATS), *got = xfloats(OUT_FLOATS);
    threads_set(1);
    run_kernels(ref);
    for (int t = 2; t <= 3; t++) {
        memset(got, 0, sizeof(float) * OUT_FLOATS);
        threads_set(t);
        run_kernels(got);
        if (memcmp(ref, got, sizeof(float) * OUT_FLOATS) != 0) {
            size_t i = 0;
            while (ref[i] == got[i]) i++;
            EXPECT(0, "our kernels differ at %d threads from 1 thread (first at float %zu)", t, i);
        } else {
            printf("kernels at %d threads: bitwise the same as at 1\n", t);
        }
    }
    free(ref);
    free(got);
}

/* Two training steps of resnet-8 from the same init; returns the parameters. */
static float *train_steps(int backend, int threads) {
    threads_set(threads);
    ModelSpec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.arch, sizeof(s.arch), "resnet-8");
    s.C = 3, s.H = 16, s.W = 16, s.num_classes = 4, s.max_batch = 8, s.backend = backend;
    Model *m = model_create(&s);
    model_init(m, 3, 4);
    float *x = xfloats(8 * 3 * 16 * 16), *d = xfloats(8 * 4);
    fill(x, 8 * 3 * 16 * 16, 5);
    fill(d, 8 * 4, 6);
    size_t tb = m->trainable_begin, tn = m->trainable_end - tb;
    for (int step = 0; step < 2; step++) {
        model_forward(m, x, NULL, 8, 1);
        model_backward(m, d);
        optim_clip_grad_norm(m->grads + tb, tn, 0.5);
        sgd_step(m->params + tb, m->grads + tb, m->momentum + tb, tn, 0.1f, 0.9f, 5e-4f, 1);
    }
    float *p = xfloats(m->tensors.param_floats);
    memcpy(p, m->params, sizeof(float) * m->tensors.param_floats);
    model_free(m);
    free(x);
    free(d);
    return p;
}

static void steps_repeat(int backend, const char *name) {
    for (int t = 1; t <= 2; t++) {
        float *a = train_steps(backend, t), *b = train_steps(backend, t);
        threads_set(1);
        ModelSpec s;
        memset(&s, 0, sizeof(s));
        snprintf(s.arch, sizeof(s.arch), "resnet-8");
        s.C = 3, s.H = 16, s.W = 16, s.num_classes = 4, s.max_batch = 8;
        Model *m = model_create(&s);
        size_t n = m->tensors.param_floats;
        model_free(m);
        if (memcmp(a, b, sizeof(float) * n) != 0) {
            EXPECT(0, "%s: two runs at %d thread(s) give different weights", name, t);
        } else {
            printf("%s at %d thread(s): two runs give bitwise the same weights\n", name, t);
        }
        free(a);
        free(b);
    }
}

int main(void) {
    kernels_any_thread_count();
    steps_repeat(MODEL_BACKEND_BLAS, "blas");
    ModelSpec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.arch, sizeof(s.arch), "cnn");
    s.C = 1, s.H = 28, s.W = 28, s.num_classes = 4, s.max_batch = 2;
    Model *m = model_create(&s);
    int have_dnnl = strcmp(model_backend_name(m), "onednn") == 0;
    model_free(m);
    if (have_dnnl) steps_repeat(MODEL_BACKEND_ONEDNN, "onednn");
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    return 0;
}
