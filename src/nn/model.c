/* model_create as a sequence of named steps (check the spec, build the graph with the
 * architectures and builder.c, order the tensor table, plan the arenas, allocate them, set up
 * oneDNN), model_free, and deterministic init. The memory plan is in plan.c, forward and
 * backward over the graph in graph.c, counts and the per-op profile in profile.c. */
#include "bf16_round.h"
#include "dnnl_backend.h"
#include "nn_internal.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/precision.h"
#include "ensdistill/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* model_create                                                                                 */
/* ------------------------------------------------------------------------------------------ */

uint64_t nn_noise_position(int copy, int row, int64_t coord) {
    ED_CHECK(copy >= 0 && copy < NN_MAX_COPIES && row >= 0 && row < NN_MAX_NOISE_ROWS &&
                 coord >= 0 && coord < NN_MAX_NOISE_COORDS,
             "mvconv noise position out of range (copy %d, row %d, coord %lld)", copy, row,
             (long long)coord);
    return (UINT64_C(1) << 63) |
           ((uint64_t)copy << (NN_POS_NOISE_ROW_BITS + NN_POS_NOISE_COORD_BITS)) |
           ((uint64_t)row << NN_POS_NOISE_COORD_BITS) | (uint64_t)coord;
}

uint64_t nn_tensor_position(int copy, int local_index) {
    ED_CHECK(copy >= 0 && copy < NN_MAX_COPIES && local_index >= 0 &&
                 local_index < NN_MAX_NET_TENSORS,
             "tensor position out of range (copy %d, tensor %d)", copy, local_index);
    return ((uint64_t)copy << (NN_POS_TENSOR_BITS + NN_POS_DRAW_BITS)) |
           ((uint64_t)local_index << NN_POS_DRAW_BITS);
}

static int op_has_trainable(const Model *m, const Op *op) {
    for (int i = 0; i < 5; i++) {
        int t = op->t[i];
        if (t >= 0 && m->tensors.items[t].kind == TENSOR_PARAM && m->tensors.items[t].trainable)
            return 1;
    }
    return 0;
}

/* The spec model_create builds: checked (ed_fail names what the user got wrong), sum_of at
 * least 1, the architecture parsed into s->arch_name. */
static ModelSpec spec_checked(const ModelSpec *spec) {
    ModelSpec s = *spec;
    if (s.num_classes < 1)
        ed_fail("model %s: num_classes must be >= 1 (got %d)", s.arch, s.num_classes);
    if (s.max_batch < 1)
        ed_fail("model %s: max_batch must be >= 1 (got %d)", s.arch, s.max_batch);
    if (s.C < 1 || s.H < 1 || s.W < 1)
        ed_fail("model %s: bad input shape %dx%dx%d", s.arch, s.C, s.H, s.W);
    if (s.sum_of < 1) s.sum_of = 1;
    if (s.sum_of > NN_MAX_COPIES)
        ed_fail("model %s: sum_of %d is more than %d nets", s.arch, s.sum_of, NN_MAX_COPIES);
    char err[256];
    if (model_arch_parse(s.arch, &s.arch_name, err, sizeof(err)) != 0) ed_fail("%s", err);
    if (s.random_features && s.arch_name.kind == ARCH_MVCONV)
        ed_fail("model mvconv: random_features needs an architecture with a final linear layer");
    if (s.backend == MODEL_BACKEND_ONEDNN && !dnnl_backend_available())
        ed_fail("model %s: the oneDNN backend was asked for, but this build has none (install "
                "libdnnl-dev and configure with -DENSDISTILL_ONEDNN=ON)",
                s.arch);
    if (s.precision == PRECISION_BF16) {
        char why[512];
        if (precision_check(PRECISION_BF16, s.arch, why, sizeof(why)) != 0) ed_fail("%s", why);
        if (s.backend == MODEL_BACKEND_BLAS)
            ed_fail("model %s: bf16 runs on oneDNN's kernels, not on the BLAS backend", s.arch);
    }
    return s;
}

/* The graph: sum_of copies of the net on one input, their logits added. With random_features
 * each copy's last linear layer is marked as the head (the one trained part). Returns the
 * logits value. */
static int build_graph(Builder *b, const ModelSpec *s) {
    int x = builder_input(b, s->C, s->H, s->W);
    int logits = -1;
    for (int c = 0; c < s->sum_of; c++) {
        b->copy = c;
        b->net_first_tensor = b->n_tensors;
        if (s->sum_of > 1) snprintf(b->prefix, sizeof(b->prefix), "nets.%d.", c);
        b->last_linear_op = -1;
        int net_logits = arch_build(b, x, s);
        ED_CHECK(b->n_tensors - b->net_first_tensor < NN_MAX_NET_TENSORS,
                 "too many tensors in one net");
        if (s->random_features) {
            ED_CHECK(b->last_linear_op >= 0 && b->ops[b->last_linear_op].out == net_logits,
                     "random_features: the net does not end in a linear layer");
            for (int i = 0; i < 2; i++)
                if (b->ops[b->last_linear_op].t[i] >= 0)
                    b->tensors[b->ops[b->last_linear_op].t[i]].head = 1;
        }
        b->prefix[0] = '\0';
        b->copy = 0;
        logits = logits < 0 ? net_logits : builder_add(b, logits, net_logits);
    }
    const Value *v = &b->values[logits];
    ED_CHECK(v->C == s->num_classes && v->H == 1 && v->W == 1,
             "logits are %dx%dx%d, not %d classes", v->C, v->H, v->W, s->num_classes);
    return logits;
}

/* The tensor table in its order: frozen parameters first, then the trainable ones (with
 * random_features the head), so the optimizer's range is one contiguous piece at the end;
 * buffers after. The ops' tensor indices follow; b->tensors is freed. */
static void order_tensors(Model *m, Builder *b) {
    const int rf = m->spec.random_features;
    struct ModelPrivate *p = m->priv;
    int *map = xmalloc((size_t)b->n_tensors * sizeof(int));
    p->inits = xcalloc((size_t)b->n_tensors + 1, sizeof(TensorInit));
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < b->n_tensors; i++) {
            PendingTensor *t = &b->tensors[i];
            int want_pass = t->kind == TENSOR_BUFFER ? 2 : (rf && t->head) ? 1 : 0;
            if (!rf && t->kind == TENSOR_PARAM) want_pass = 0;
            if (want_pass != pass) continue;
            int k = tensor_table_add(&m->tensors, t->name, t->kind, t->ndim, t->shape);
            TensorInfo *info = &m->tensors.items[k];
            info->trainable = t->kind == TENSOR_PARAM && (!rf || t->head);
            info->is_integer = t->is_integer;
            p->inits[k] = t->init;
            map[i] = k;
        }
    }
    for (int i = 0; i < b->n_ops; i++)
        for (int j = 0; j < 5; j++)
            if (b->ops[i].t[j] >= 0) b->ops[i].t[j] = map[b->ops[i].t[j]];
    free(map);
    free(b->tensors);
    b->tensors = NULL;
}

/* [trainable_begin, trainable_end): the optimizer's range of the parameter arena. */
static void set_trainable_range(Model *m) {
    m->trainable_begin = m->tensors.param_floats;
    m->trainable_end = m->tensors.param_floats;
    for (int i = 0; i < m->tensors.count; i++) {
        const TensorInfo *info = &m->tensors.items[i];
        if (info->kind == TENSOR_PARAM && info->trainable && info->offset < m->trainable_begin)
            m->trainable_begin = info->offset;
    }
    for (int i = 0; i < m->tensors.count; i++) {
        const TensorInfo *info = &m->tensors.items[i];
        if (info->kind == TENSOR_PARAM && info->offset >= m->trainable_begin)
            ED_CHECK(info->trainable, "frozen tensor %s inside the trainable range", info->name);
    }
}

/* The graph moves from the builder into the model; which values backward must reach: those
 * depending on a trainable parameter. */
static void take_graph(Model *m, Builder *b, int logits) {
    struct ModelPrivate *p = m->priv;
    p->ops = b->ops;
    p->n_ops = b->n_ops;
    p->values = b->values;
    p->n_values = b->n_values;
    p->logits_value = logits;
    Value *V = b->values;
    for (int i = 0; i < p->n_ops; i++) {
        Op *op = &p->ops[i];
        int rg = op_has_trainable(m, op) || V[op->in].requires_grad ||
                 (op->in2 >= 0 && V[op->in2].requires_grad);
        V[op->out].requires_grad = rg;
        if (op->kind == OP_BN) p->has_bn = 1;
    }
}

/* Every arena and scratch buffer, once (nothing is allocated after model_create); in the
 * order they always were, so that every buffer's address, and with it any alignment a kernel
 * peels, is what it was. */
static void alloc_arenas(Model *m, const Builder *b) {
    struct ModelPrivate *p = m->priv;
    m->params = xfloats(m->tensors.param_floats);
    m->grads = xfloats(m->tensors.param_floats);
    m->momentum = xfloats(m->tensors.param_floats);
    m->buffers = xfloats(m->tensors.buffer_floats);
    p->acts = xfloats(p->act_floats);
    p->dacts = xfloats(p->dact_floats);
    p->workspace_floats = b->workspace_floats;
    p->workspace = xfloats(b->workspace_floats);
    p->int_scratch_count = b->int_count;
    p->int_scratch = xcalloc(b->int_count ? b->int_count : 1, sizeof(int32_t));
    p->saved_floats = b->saved_floats;
    p->saved = xfloats(b->saved_floats);
}

/* The per-op profile counters and the mvconv noise callbacks' contexts. */
static void setup_profile_and_noise(Model *m) {
    struct ModelPrivate *p = m->priv;
    p->op_fwd_seconds = xcalloc((size_t)p->n_ops, sizeof(double));
    p->op_bwd_seconds = xcalloc((size_t)p->n_ops, sizeof(double));
    for (int c = 0; c < NN_MAX_COPIES; c++) {
        p->noise_ctx[c].m = m;
        p->noise_ctx[c].copy = c;
        p->noise_ctx[c].std = m->spec.init_std;
    }
}

/* oneDNN: every conv and BN layer's primitives (or, bf16 by rounding, its layers on fp32
 * primitives), built for max_batch, and the gradient temporary the size of the largest value. */
static void setup_dnnl(Model *m) {
    struct ModelPrivate *p = m->priv;
    const Value *V = p->values;
    const int B = m->spec.max_batch;
    const int bf16 = m->spec.precision == PRECISION_BF16, round = bf16 && bf16_round_enabled();
    p->dnnl = dnnl_context_create();
    p->dnnl_conv = xcalloc((size_t)p->n_ops, sizeof(DnnlConv *));
    p->dnnl_bn = xcalloc((size_t)p->n_ops, sizeof(DnnlBn *));
    if (round) {
        p->round_conv = xcalloc((size_t)p->n_ops, sizeof(RoundConv *));
        p->round_bn = xcalloc((size_t)p->n_ops, sizeof(RoundBn *));
    }
    for (int i = 0; i < p->n_ops; i++) {
        const Op *op = &p->ops[i];
        if (op->kind != OP_CONV) continue;
        const Value in = V[op->in], out = V[op->out];
        const DnnlAct a_in = {in.lanes, in.bf16}, a_out = {out.lanes, out.bf16};
        if (round)
            p->round_conv[i] = round_conv_create(p->dnnl, B, in.C, in.H, in.W, out.C, op->KS,
                                                 op->stride, op->pad, op->t[1] >= 0, a_in, a_out);
        else
            p->dnnl_conv[i] = dnnl_conv_create(p->dnnl, B, in.C, in.H, in.W, out.C, op->KS,
                                               op->stride, op->pad, op->t[1] >= 0, a_in, a_out,
                                               bf16);
    }
    size_t biggest = 0;
    for (int v = 0; v < p->n_values; v++)
        if (value_size(&V[v]) > biggest) biggest = value_size(&V[v]);
    p->gtemp = xfloats(biggest * B);
    for (int i = 0; i < p->n_ops; i++) {
        const Op *op = &p->ops[i];
        if (op->kind != OP_BN) continue;
        const Value in = V[op->in];
        if (round && in.bf16)
            p->round_bn[i] = round_bn_create(p->dnnl, B, in.C, in.H, in.W, in.lanes, op->relu);
        else
            p->dnnl_bn[i] =
                dnnl_bn_create(p->dnnl, B, in.C, in.H, in.W, in.lanes, op->relu, in.bf16);
    }
}

Model *model_create(const ModelSpec *spec) {
    const ModelSpec s = spec_checked(spec);
    const int use_dnnl = s.backend != MODEL_BACKEND_BLAS && dnnl_backend_available();
    Builder b = {.spec = &s, .max_batch = s.max_batch, .last_linear_op = -1,
                 .use_dnnl = use_dnnl};
    const int logits = build_graph(&b, &s);

    Model *m = xcalloc(1, sizeof(Model));
    m->spec = s;
    m->priv = xcalloc(1, sizeof(struct ModelPrivate));
    order_tensors(m, &b);
    set_trainable_range(m);
    take_graph(m, &b, logits);
    if (use_dnnl) nn_assign_layouts(m, dnnl_backend_lanes(), s.precision == PRECISION_BF16);
    nn_plan_memory(m, s.max_batch);
    nn_plan_grad_ready(m);
    alloc_arenas(m, &b);
    if (use_dnnl) setup_dnnl(m);
    setup_profile_and_noise(m);
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    tensor_table_free(&m->tensors);
    free(m->params);
    free(m->grads);
    free(m->momentum);
    free(m->buffers);
    struct ModelPrivate *p = m->priv;
    free(p->ops);
    free(p->values);
    free(p->acts);
    free(p->dacts);
    free(p->workspace);
    free(p->int_scratch);
    free(p->inits);
    free(p->saved);
    free(p->op_fwd_seconds);
    free(p->op_bwd_seconds);
    free(p->zero_begin);
    free(p->zero_list);
    free(p->grad_ready);
    if (p->dnnl_conv)
        for (int i = 0; i < p->n_ops; i++) dnnl_conv_free(p->dnnl_conv[i]);
    free(p->dnnl_conv);
    if (p->dnnl_bn)
        for (int i = 0; i < p->n_ops; i++) dnnl_bn_free(p->dnnl_bn[i]);
    free(p->dnnl_bn);
    if (p->round_conv)
        for (int i = 0; i < p->n_ops; i++) {
            round_conv_free(p->round_conv[i]);
            round_bn_free(p->round_bn[i]);
        }
    free(p->round_conv);
    free(p->round_bn);
    free(p->gtemp);
    dnnl_context_free(p->dnnl);
    free(p);
    free(m);
}

/* ------------------------------------------------------------------------------------------ */
/* Initialisation                                                                               */
/* ------------------------------------------------------------------------------------------ */

void model_init(Model *m, uint64_t seed, uint64_t stream) {
    m->init_seed = seed;
    m->init_stream = stream;
    for (int i = 0; i < m->tensors.count; i++) {
        const TensorInfo *info = &m->tensors.items[i];
        const TensorInit *in = &m->priv->inits[i];
        float *data = (info->kind == TENSOR_PARAM ? m->params : m->buffers) + info->offset;
        Rng r = rng_make(seed, stream);
        r.position = nn_tensor_position(in->copy, in->local_index);
        switch (in->kind) {
        case INIT_ZERO:
            memset(data, 0, info->numel * sizeof(float));
            break;
        case INIT_ONE:
            for (size_t j = 0; j < info->numel; j++) data[j] = 1.0f;
            break;
        case INIT_UNIFORM: /* U(-scale, scale) */
            for (size_t j = 0; j < info->numel; j++)
                data[j] = (2.0f * rng_uniform(&r) - 1.0f) * in->scale;
            break;
        case INIT_NORMAL: /* N(0, scale^2) */
            for (size_t j = 0; j < info->numel; j++) data[j] = rng_normal(&r) * in->scale;
            break;
        case INIT_MV_NOISE: { /* the same draw mv_noise_init makes for untrained coords */
            int64_t rows = info->shape[0], cols = info->shape[1];
            for (int64_t row = 0; row < rows; row++)
                for (int64_t c = 0; c < cols; c++)
                    data[row * cols + c] =
                        rng_normal_at(seed, stream, nn_noise_position(in->copy, (int)row, c)) *
                        in->scale;
            break;
        }
        }
    }
    memset(m->grads, 0, m->tensors.param_floats * sizeof(float));
    memset(m->momentum, 0, m->tensors.param_floats * sizeof(float));
}
