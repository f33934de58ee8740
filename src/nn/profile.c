/* Counts (parameters, FLOPs, bytes), the kernel backend's name and the per-op profile of a
 * model. */
#include "dnnl_backend.h"
#include "nn_internal.h"

#include "ensdistill/alloc.h"

#include <stdio.h>
#include <stdlib.h>

size_t model_param_count(const Model *m) {
    return m->tensors.param_floats;
}

size_t model_trainable_count(const Model *m) {
    return m->trainable_end - m->trainable_begin;
}

static double op_flops(const Model *m, const Op *op) {
    const Value in = m->priv->values[op->in], out = m->priv->values[op->out];
    switch (op->kind) {
    case OP_CONV: /* 2 * C*KS*KS multiply-adds per output */
        return 2.0 * in.C * op->KS * op->KS * (double)out.C * out.H * out.W;
    case OP_LINEAR:
        return 2.0 * in.C * out.C;
    case OP_MVCONV: /* <w, x_p> for every row and patch */
        return 2.0 * in.C * in.W * out.C * op->M;
    default:
        return 0.0;
    }
}

double model_forward_flops(const Model *m) {
    double f = 0.0;
    for (int i = 0; i < m->priv->n_ops; i++) f += op_flops(m, &m->priv->ops[i]);
    return f;
}

size_t model_bytes(const Model *m) {
    size_t floats = 3 * m->tensors.param_floats + m->tensors.buffer_floats + m->priv->act_floats +
                    m->priv->dact_floats + m->priv->workspace_floats + m->priv->saved_floats;
    return floats * sizeof(float) + m->priv->int_scratch_count * sizeof(int32_t) +
           dnnl_context_bytes(m->priv->dnnl);
}

const char *model_backend_name(const Model *m) {
    return m->priv->dnnl ? "onednn" : "blas";
}

const char *model_backend_isa(const Model *m) {
    if (m->priv->dnnl) return dnnl_backend_isa();
#if defined(__AVX512F__)
    return "avx512f";
#elif defined(__AVX2__)
    return "avx2";
#else
    return "generic";
#endif
}

void model_set_profiling(Model *m, int on) {
    m->priv->profile = on;
}

static const char *op_kind_name(OpKind k) {
    static const char *names[] = {"conv", "linear", "batchnorm", "relu", "maxpool",
                                  "avgpool", "shortcut", "add", "mvconv", "flatten"};
    return names[k];
}

static const Model *sort_model;
static int by_time_desc(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    const struct ModelPrivate *p = sort_model->priv;
    double ti = p->op_fwd_seconds[i] + p->op_bwd_seconds[i];
    double tj = p->op_fwd_seconds[j] + p->op_bwd_seconds[j];
    return (ti < tj) - (ti > tj);
}

void model_print_profile(const Model *m, FILE *out) {
    const struct ModelPrivate *p = m->priv;
    long steps = p->profile_steps > 0 ? p->profile_steps : 1;
    double total = 0.0, kind_f[OP_FLATTEN + 1] = {0}, kind_b[OP_FLATTEN + 1] = {0};
    for (int i = 0; i < p->n_ops; i++) {
        total += p->op_fwd_seconds[i] + p->op_bwd_seconds[i];
        kind_f[p->ops[i].kind] += p->op_fwd_seconds[i];
        kind_b[p->ops[i].kind] += p->op_bwd_seconds[i];
    }
    if (total <= 0.0) total = 1e-30;
    fprintf(out, "per-op time over %ld forward(s), ms per step (forward / backward), by kind:\n",
            p->profile_steps);
    for (int k = 0; k <= OP_FLATTEN; k++)
        if (kind_f[k] + kind_b[k] > 0.0)
            fprintf(out, "  %-10s %9.2f %9.2f  %5.1f%%\n", op_kind_name((OpKind)k),
                    1e3 * kind_f[k] / steps, 1e3 * kind_b[k] / steps,
                    100.0 * (kind_f[k] + kind_b[k]) / total);
    fprintf(out, "  %-10s %9s %9.2f  (zeroing the parameter gradients)\n", "zeroing", "",
            1e3 * p->zero_seconds / steps);
    int *order = xmalloc((size_t)p->n_ops * sizeof(int));
    for (int i = 0; i < p->n_ops; i++) order[i] = i;
    sort_model = m;
    qsort(order, (size_t)p->n_ops, sizeof(int), by_time_desc);
    fprintf(out, "slowest ops:\n");
    for (int r = 0; r < p->n_ops && r < 15; r++) {
        const Op *op = &p->ops[order[r]];
        const Value in = m->priv->values[op->in], o = m->priv->values[op->out];
        fprintf(out, "  %-28s %-9s %4dx%3dx%3d -> %4dx%3dx%3d %9.2f %9.2f  %5.1f%%\n", op->label,
                op_kind_name(op->kind), in.C, in.H, in.W, o.C, o.H, o.W,
                1e3 * p->op_fwd_seconds[order[r]] / steps,
                1e3 * p->op_bwd_seconds[order[r]] / steps,
                100.0 * (p->op_fwd_seconds[order[r]] + p->op_bwd_seconds[order[r]]) / total);
    }
    free(order);
}
