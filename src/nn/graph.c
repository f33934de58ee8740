/* Forward and backward over a model's graph: each op dispatched to its layer kernel
 * (layers.h, or oneDNN's for conv when the model has that backend), activations and gradients
 * in the planned arena slots, per-op times when profiling. A bf16 value's activation is bf16
 * (ACT16, the _bf16 kernels); every gradient is fp32. */
#include "bf16_round.h"
#include "dnnl_backend.h"
#include "nn_internal.h"

#include "ensdistill/clock.h"
#include "ensdistill/error.h"
#include "ensdistill/rng.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f

static float mv_noise_init(const void *ctx, int row, int64_t coord) {
    const MvNoiseCtx *c = ctx;
    return rng_normal_at(c->m->init_seed, c->m->init_stream,
                         nn_noise_position(c->copy, row, coord)) *
           c->std;
}

#define VAL(i) (m->priv->values[i])
#define ACT(i) (m->priv->acts + VAL(i).offset)
#define ACT16(i) ((uint16_t *)ACT(i)) /* a bf16 value's activation (VAL(i).bf16) */
#define DACT(i) (VAL(i).requires_grad ? m->priv->dacts + VAL(i).goffset : NULL)
#define PARAM(t) ((t) >= 0 ? m->params + m->tensors.items[t].offset : NULL)
#define GRAD(t) ((t) >= 0 ? m->grads + m->tensors.items[t].offset : NULL)
#define BUFFER(t) (m->buffers + m->tensors.items[t].offset)

static MvNoise op_noise(const Model *m, const Op *op, const int64_t *sample_ids) {
    MvNoise nz = {.noise_w = PARAM(op->t[1]),
                  .n_noise = m->spec.mv_noise_coords,
                  .sigma = m->spec.mv_noise_sigma,
                  .sample_ids = sample_ids,
                  .noise_init = mv_noise_init,
                  .noise_ctx = &m->priv->noise_ctx[op->copy]};
    ED_CHECK(sample_ids != NULL, "mvconv with orth noise needs sample ids");
    return nz;
}

/* A conv or BN op on oneDNN: its primitives (dnnl_backend.h), or bf16 by rounding's layer on
 * fp32 primitives (bf16_round.h) when the model was built with it. */
static void conv_forward_dnnl(Model *m, const Op *op, float *y, const float *x, int B) {
    const struct ModelPrivate *p = m->priv;
    const ptrdiff_t i = op - p->ops;
    if (p->round_conv)
        round_conv_forward(p->round_conv[i], y, x, PARAM(op->t[0]), PARAM(op->t[1]), B);
    else
        dnnl_conv_forward(p->dnnl_conv[i], y, x, PARAM(op->t[0]), PARAM(op->t[1]), B);
}

static void conv_backward_dnnl(Model *m, const Op *op, float *dx, const float *dy,
                               const float *x, int B, int dx_overwrite) {
    const struct ModelPrivate *p = m->priv;
    const ptrdiff_t i = op - p->ops;
    if (p->round_conv)
        round_conv_backward(p->round_conv[i], dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x,
                            PARAM(op->t[0]), B, dx_overwrite);
    else
        dnnl_conv_backward(p->dnnl_conv[i], dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x,
                           PARAM(op->t[0]), B, dx_overwrite);
}

static void bn_primitives_forward(Model *m, const Op *op, float *y, float *mean, float *var,
                           const float *x, int B, int training) {
    const struct ModelPrivate *p = m->priv;
    const ptrdiff_t i = op - p->ops;
    if (p->round_bn && p->round_bn[i])
        round_bn_forward(p->round_bn[i], y, mean, var, x, PARAM(op->t[0]), PARAM(op->t[1]), B,
                         training, BN_EPS);
    else
        dnnl_bn_forward(p->dnnl_bn[i], y, mean, var, x, PARAM(op->t[0]), PARAM(op->t[1]), B,
                        training, BN_EPS);
}

/* var: the batch's biased variance (saved by the forward) */
static void bn_backward_dnnl(Model *m, const Op *op, float *dx, const float *dy, const float *x,
                             const float *mean, const float *var, int B, int dx_overwrite) {
    const struct ModelPrivate *p = m->priv;
    const ptrdiff_t i = op - p->ops;
    if (p->round_bn && p->round_bn[i])
        round_bn_backward(p->round_bn[i], dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x,
                          PARAM(op->t[0]), PARAM(op->t[1]), mean, var, B, BN_EPS, dx_overwrite);
    else
        dnnl_bn_backward(p->dnnl_bn[i], dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x,
                         PARAM(op->t[0]), PARAM(op->t[1]), mean, var, B, BN_EPS, dx_overwrite,
                         p->gtemp);
}

/* oneDNN batch normalization (with the fused ReLU when op->relu); running statistics as
 * batchnorm_forward updates them: running <- (1 - momentum) running + momentum batch, the
 * variance unbiased. */
static void bn_forward_dnnl(Model *m, const Op *op, float *y, const float *x, int B,
                            int training) {
    const int C = VAL(op->in).C;
    float *rmean = BUFFER(op->t[2]), *rvar = BUFFER(op->t[3]);
    if (!training) {
        bn_primitives_forward(m, op, y, rmean, rvar, x, B, 0);
        return;
    }
    float *mean = m->priv->saved + op->saved, *var = mean + C;
    bn_primitives_forward(m, op, y, mean, var, x, B, 1);
    const double N = (double)B * VAL(op->in).H * VAL(op->in).W;
    for (int c = 0; c < C; c++) {
        const double unbiased = N > 1 ? var[c] * N / (N - 1) : var[c];
        rmean[c] = (1.0f - BN_MOMENTUM) * rmean[c] + BN_MOMENTUM * mean[c];
        rvar[c] = (1.0f - BN_MOMENTUM) * rvar[c] + BN_MOMENTUM * (float)unbiased;
    }
    BUFFER(op->t[4])[0] += 1.0f;
}

static void op_forward(Model *m, const Op *op, int B, int training, const int64_t *sample_ids) {
    const Value in = VAL(op->in), out = VAL(op->out);
    const float *x = ACT(op->in);
    float *y = ACT(op->out);
    size_t n = (size_t)B * value_size(&out);
    switch (op->kind) {
    case OP_CONV: /* y = conv2d(x, W) + b */
        if (m->priv->dnnl_conv) {
            conv_forward_dnnl(m, op, y, x, B);
            break;
        }
        conv2d_forward(y, x, PARAM(op->t[0]), PARAM(op->t[1]), B, in.C, in.H, in.W, out.C, op->KS,
                       op->stride, op->pad, m->priv->workspace);
        break;
    case OP_LINEAR: /* y = x W^T + b */
        linear_forward(y, x, PARAM(op->t[0]), PARAM(op->t[1]), B, in.C, out.C);
        break;
    case OP_BN: { /* y = (x - mean) * invstd * gamma + beta */
        if (m->priv->dnnl_bn) { /* saved: mean, then the biased variance */
            bn_forward_dnnl(m, op, y, x, B, training);
            break;
        }
        float *mean = m->priv->saved + op->saved, *invstd = mean + in.C;
        batchnorm_forward(y, mean, invstd, x, PARAM(op->t[0]), PARAM(op->t[1]), BUFFER(op->t[2]),
                          BUFFER(op->t[3]), B, in.C, in.H * in.W, BN_MOMENTUM, BN_EPS, training);
        if (training) BUFFER(op->t[4])[0] += 1.0f;
        break;
    }
    case OP_RELU: /* y = max(x, 0) */
        if (in.bf16) {
            relu_forward_bf16(ACT16(op->out), ACT16(op->in), n);
            break;
        }
        relu_forward(y, x, n);
        break;
    case OP_MAXPOOL: /* y = max over KS x KS windows */
        if (in.bf16) {
            blocked_maxpool_forward_bf16(ACT16(op->out), m->priv->int_scratch + op->iscratch,
                                         ACT16(op->in), B, in.C, in.H, in.W, in.lanes, op->KS,
                                         op->stride);
            break;
        }
        if (in.lanes > 1) {
            blocked_maxpool_forward(y, m->priv->int_scratch + op->iscratch, x, B, in.C, in.H,
                                    in.W, in.lanes, op->KS, op->stride);
            break;
        }
        maxpool_forward(y, m->priv->int_scratch + op->iscratch, x, B, in.C, in.H, in.W, op->KS,
                        op->stride, 0);
        break;
    case OP_GAP: /* y[b,c] = mean_hw x[b,c,h,w] */
        if (in.bf16) {
            blocked_gap_forward_bf16(y, ACT16(op->in), B, in.C, in.H * in.W, in.lanes);
            break;
        }
        if (in.lanes > 1) {
            blocked_gap_forward(y, x, B, in.C, in.H * in.W, in.lanes);
            break;
        }
        global_avgpool_forward(y, x, B, in.C, in.H * in.W);
        break;
    case OP_FLATTEN: /* y is x, seen as [B, C*H*W] (a copy when x is blocked) */
        if (op->reorder && in.bf16)
            blocked_to_plain_bf16(y, ACT16(op->in), B, in.C, in.H * in.W, in.lanes);
        else if (op->reorder)
            blocked_to_plain(y, x, B, in.C, in.H * in.W, in.lanes);
        break;
    case OP_SHORTCUT: /* y = zero-pad channels of x[:, :, ::s, ::s] */
        if (in.bf16) {
            blocked_shortcut_forward_bf16(ACT16(op->out), ACT16(op->in), B, in.C, in.H, in.W,
                                          out.C, op->stride, op->pad, in.lanes);
            break;
        }
        if (in.lanes > 1) {
            blocked_shortcut_forward(y, x, B, in.C, in.H, in.W, out.C, op->stride, op->pad,
                                     in.lanes);
            break;
        }
        shortcut_pad_forward(y, x, B, in.C, in.H, in.W, out.C, op->stride, op->pad);
        break;
    case OP_ADD: /* y = x + x2 */
        if (in.bf16) {
            add_forward_bf16(ACT16(op->out), ACT16(op->in), ACT16(op->in2), n);
            break;
        }
        add_forward(y, x, ACT(op->in2), n);
        break;
    case OP_MVCONV: { /* y[b,i] = sum_r sum_p sReLU(<w_{i,r}, x_p>) */
        MvNoise nz;
        if (op->t[1] >= 0) nz = op_noise(m, op, sample_ids);
        mvconv_forward(y, m->priv->saved + op->saved, x, PARAM(op->t[0]),
                       op->t[1] >= 0 ? &nz : NULL, B, in.C, in.W, out.C, op->M, m->spec.srelu_q,
                       m->spec.srelu_rho);
        break;
    }
    }
}

/* write: WRITE_IN (WRITE_IN2): the op writes d(in) (d(in2)) instead of adding to it, this
 * being the first contribution (op_writes, model_backward). */
enum { WRITE_IN = 1, WRITE_IN2 = 2 };
static void op_backward(Model *m, const Op *op, int B, const int64_t *sample_ids, int write) {
    const int dx_overwrite = write & WRITE_IN;
    const Value in = VAL(op->in), out = VAL(op->out);
    const float *x = ACT(op->in), *dy = m->priv->dacts + out.goffset;
    float *dx = DACT(op->in);
    size_t n = (size_t)B * value_size(&out);
    switch (op->kind) {
    case OP_CONV:
        if (m->priv->dnnl_conv) {
            conv_backward_dnnl(m, op, dx, dy, x, B, dx_overwrite);
            break;
        }
        conv2d_backward(dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x, PARAM(op->t[0]), B, in.C, in.H,
                        in.W, out.C, op->KS, op->stride, op->pad, m->priv->workspace);
        break;
    case OP_LINEAR:
        linear_backward(dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x, PARAM(op->t[0]), B, in.C,
                        out.C);
        break;
    case OP_BN: {
        const float *mean = m->priv->saved + op->saved, *invstd = mean + in.C;
        if (m->priv->dnnl_bn) { /* invstd is the variance here */
            bn_backward_dnnl(m, op, dx, dy, x, mean, invstd, B, dx_overwrite);
            break;
        }
        batchnorm_backward(dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x, PARAM(op->t[0]), mean,
                           invstd, B, in.C, in.H * in.W);
        break;
    }
    case OP_RELU: /* the output is > 0 exactly where the input is (the input may be gone) */
        if (out.bf16) {
            relu_backward_bf16(dx, dy, ACT16(op->out), n, dx_overwrite);
            break;
        }
        if (dx_overwrite)
            relu_backward_write(dx, dy, ACT(op->out), n);
        else
            relu_backward(dx, dy, ACT(op->out), n);
        break;
    case OP_MAXPOOL:
        if (in.lanes > 1) {
            blocked_maxpool_backward(dx, dy, m->priv->int_scratch + op->iscratch, B, in.C, in.H,
                                     in.W, in.lanes, op->KS, op->stride, dx_overwrite);
            break;
        }
        maxpool_backward(dx, dy, m->priv->int_scratch + op->iscratch, B, in.C, in.H, in.W, op->KS,
                         op->stride, 0);
        break;
    case OP_GAP:
        if (in.lanes > 1) {
            blocked_gap_backward(dx, dy, B, in.C, in.H * in.W, in.lanes);
            break;
        }
        global_avgpool_backward(dx, dy, B, in.C, in.H * in.W);
        break;
    case OP_FLATTEN: /* same memory: the gradient is already in place (unless copied) */
        if (op->reorder && dx) blocked_from_plain_add(dx, dy, B, in.C, in.H * in.W, in.lanes);
        break;
    case OP_SHORTCUT:
        if (in.lanes > 1) {
            blocked_shortcut_backward(dx, dy, B, in.C, in.H, in.W, out.C, op->stride, op->pad,
                                      in.lanes);
            break;
        }
        shortcut_pad_backward(dx, dy, B, in.C, in.H, in.W, out.C, op->stride, op->pad);
        break;
    case OP_ADD: {
        float *dx2 = DACT(op->in2);
        if (dx && dx_overwrite)
            memcpy(dx, dy, n * sizeof(float));
        else if (dx)
            add_backward(dx, dy, n);
        if (dx2 && (write & WRITE_IN2))
            memcpy(dx2, dy, n * sizeof(float));
        else if (dx2)
            add_backward(dx2, dy, n);
        break;
    }
    case OP_MVCONV: {
        MvNoise nz;
        if (op->t[1] >= 0) nz = op_noise(m, op, sample_ids);
        mvconv_backward(GRAD(op->t[0]), GRAD(op->t[1]), dy, m->priv->saved + op->saved, x,
                        op->t[1] >= 0 ? &nz : NULL, B, in.C, in.W, out.C, op->M, m->spec.srelu_q,
                        m->spec.srelu_rho);
        break;
    }
    }
}

float *model_forward(Model *m, const float *x, const int64_t *sample_ids, int B, int training) {
    ED_CHECK(B >= 1 && B <= m->spec.max_batch, "batch %d outside 1..%d", B, m->spec.max_batch);
    struct ModelPrivate *p = m->priv;
    memcpy(p->acts + VAL(0).offset, x, (size_t)B * value_act_floats(&VAL(0)) * sizeof(float));
    for (int i = 0; i < p->n_ops; i++) {
        double t0 = p->profile ? clock_now_seconds() : 0.0;
        op_forward(m, &p->ops[i], B, training, sample_ids);
        if (p->profile) p->op_fwd_seconds[i] += clock_now_seconds() - t0;
    }
    if (p->profile) p->profile_steps++;
    p->cur_batch = B;
    p->training = training;
    p->sample_ids = sample_ids;
    return ACT(p->logits_value);
}

/* WRITE_IN or WRITE_IN2 when op's backward can write value v's gradient whole (v being its
 * input or second input) instead of adding to it; 0 otherwise */
static int op_writes(const Model *m, const Op *op, int v) {
    const struct ModelPrivate *p = m->priv;
    const Value in = VAL(op->in);
    switch (op->kind) {
    case OP_CONV: /* the oneDNN conv, and BN on oneDNN */
        return p->dnnl && v == op->in ? WRITE_IN : 0;
    case OP_BN:
        return p->dnnl && p->dnnl_bn && v == op->in ? WRITE_IN : 0;
    case OP_RELU:
        return v == op->in ? WRITE_IN : 0;
    case OP_MAXPOOL:
        return v == op->in && in.lanes > 1 &&
                       blocked_maxpool_backward_writes(in.H, in.W, in.lanes, op->KS, op->stride)
                   ? WRITE_IN
                   : 0;
    case OP_ADD: /* x + x takes its gradient twice */
        if (op->in == op->in2) return 0;
        return v == op->in ? WRITE_IN : v == op->in2 ? WRITE_IN2 : 0;
    default:
        return 0;
    }
}

void model_backward(Model *m, const float *dlogits) {
    model_backward_notify(m, dlogits, NULL, NULL);
}

void model_backward_notify(Model *m, const float *dlogits, GradReadyFn ready, void *ctx) {
    int B = m->priv->cur_batch;
    struct ModelPrivate *p = m->priv;
    ED_CHECK(B > 0, "model_backward before model_forward");
    ED_CHECK(p->training || !p->has_bn,
             "model_backward after an eval-mode forward: BatchNorm backward needs batch "
             "statistics");
    double t0 = p->profile ? clock_now_seconds() : 0.0;
    memset(m->grads + m->trainable_begin, 0,
           (m->trainable_end - m->trainable_begin) * sizeof(float));
    if (p->profile) p->zero_seconds += clock_now_seconds() - t0;
    const Value *lv = &VAL(p->logits_value);
    if (!lv->requires_grad) return; /* nothing trainable */
    memcpy(p->dacts + lv->goffset, dlogits, (size_t)B * value_size(lv) * sizeof(float));
    for (int i = p->n_ops - 1; i >= 0; i--) {
        const Op *op = &p->ops[i];
        if (!VAL(op->out).requires_grad) continue;
        double t_op = p->profile ? clock_now_seconds() : 0.0;
        /* gradients whose first contribution comes from this op start at zero, or are
         * written rather than added to where the op can (op_writes) */
        int write = 0;
        for (int k = p->zero_begin[i]; k < p->zero_begin[i + 1]; k++) {
            const int w = op_writes(m, op, p->zero_list[k]);
            if (w) {
                write |= w;
                continue;
            }
            const Value *v = &VAL(p->zero_list[k]);
            memset(p->dacts + v->goffset, 0, (size_t)B * value_size(v) * sizeof(float));
        }
        op_backward(m, op, B, p->sample_ids, write);
        if (p->profile) p->op_bwd_seconds[i] += clock_now_seconds() - t_op;
        if (ready) ready(p->grad_ready[i], ctx);
    }
}
