/* Building a model: the graph builder the architectures call (values, ops, tensor
 * declarations), model_create's tensor table, arenas and kernel backend, and deterministic
 * init. The memory plan is in plan.c, forward and backward over the graph in graph.c, counts
 * and the per-op profile in profile.c; the architectures in arch_basic.c and arch_resnet.c. */
#include "dnnl_backend.h"
#include "nn_internal.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Builder                                                                                      */
/* ------------------------------------------------------------------------------------------ */

TensorInit nn_init_const(InitKind kind) {
    TensorInit i = {.kind = kind, .scale = 0.0f};
    return i;
}
TensorInit nn_init_uniform(float bound) {
    TensorInit i = {.kind = INIT_UNIFORM, .scale = bound};
    return i;
}
TensorInit nn_init_normal(float std) {
    TensorInit i = {.kind = INIT_NORMAL, .scale = std};
    return i;
}

static int new_value(Builder *b, int C, int H, int W, int alias_of) {
    if (C < 1 || H < 1 || W < 1)
        ed_fail("model %s: the input %dx%dx%d is too small for this architecture (a layer's "
                "output would be %dx%dx%d)",
                b->spec->arch, b->spec->C, b->spec->H, b->spec->W, C, H, W);
    if (b->n_values == b->cap_values) {
        b->cap_values = b->cap_values ? 2 * b->cap_values : 64;
        b->values = xrealloc(b->values, (size_t)b->cap_values * sizeof(Value));
    }
    Value *v = &b->values[b->n_values];
    v->C = C;
    v->Cp = C;
    v->lanes = 1;
    v->H = H;
    v->W = W;
    v->alias_of = alias_of;
    v->requires_grad = 0;
    v->offset = v->goffset = 0; /* nn_plan_memory */
    return b->n_values++;
}

static Op *new_op(Builder *b, OpKind kind, int in, int in2, const char *label) {
    if (b->n_ops == b->cap_ops) {
        b->cap_ops = b->cap_ops ? 2 * b->cap_ops : 64;
        b->ops = xrealloc(b->ops, (size_t)b->cap_ops * sizeof(Op));
    }
    Op *op = &b->ops[b->n_ops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    op->in = in;
    op->in2 = in2;
    op->out = -1;
    for (int i = 0; i < 5; i++) op->t[i] = -1;
    op->copy = b->copy;
    size_t lp = strlen(b->prefix), ll = strlen(label);
    ED_CHECK(lp + ll < sizeof(op->label), "op label too long: %s%s", b->prefix, label);
    memcpy(op->label, b->prefix, lp);
    memcpy(op->label + lp, label, ll + 1);
    return op;
}

/* Declares tensor prefix + module + "." + suffix; returns its pending index. */
static int new_tensor(Builder *b, const char *module, const char *suffix, TensorKind kind,
                      int ndim, const int64_t *shape, TensorInit init) {
    if (b->n_tensors == b->cap_tensors) {
        b->cap_tensors = b->cap_tensors ? 2 * b->cap_tensors : 64;
        b->tensors = xrealloc(b->tensors, (size_t)b->cap_tensors * sizeof(PendingTensor));
    }
    PendingTensor *t = &b->tensors[b->n_tensors];
    memset(t, 0, sizeof(*t));
    int len = snprintf(t->name, sizeof(t->name), "%s%s%s%s", b->prefix, module,
                       module[0] ? "." : "", suffix);
    ED_CHECK(len > 0 && len < TENSOR_NAME_MAX, "tensor name too long: %s%s.%s", b->prefix,
             module, suffix);
    t->kind = kind;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d];
    t->init = init;
    t->init.copy = b->copy;
    t->init.local_index = b->n_tensors - b->net_first_tensor;
    return b->n_tensors++;
}

int builder_input(Builder *b, int C, int H, int W) {
    ED_CHECK(b->n_values == 0, "the input must be the first value");
    return new_value(b, C, H, W, -1);
}

/* out[B,OC,OH,OW] = conv2d(in[B,C,H,W], weight[OC,C,KS,KS]) + bias[OC] */
int builder_conv(Builder *b, const char *name, int in, int OC, int KS, int stride, int pad,
                 int bias, TensorInit weight_init, TensorInit bias_init) {
    Value v = b->values[in];
    int OH = conv2d_out_size(v.H, KS, stride, pad), OW = conv2d_out_size(v.W, KS, stride, pad);
    int out = new_value(b, OC, OH, OW, -1);
    Op *op = new_op(b, OP_CONV, in, -1, name);
    op->out = out;
    op->KS = KS;
    op->stride = stride;
    op->pad = pad;
    int64_t wshape[4] = {OC, v.C, KS, KS}, bshape[1] = {OC};
    op->t[0] = new_tensor(b, name, "weight", TENSOR_PARAM, 4, wshape, weight_init);
    if (bias) op->t[1] = new_tensor(b, name, "bias", TENSOR_PARAM, 1, bshape, bias_init);
    if (!b->use_dnnl) { /* im2col scratch */
        size_t ws = conv2d_workspace_floats(b->max_batch, v.C, v.H, v.W, OC, KS, stride, pad);
        if (ws > b->workspace_floats) b->workspace_floats = ws;
    }
    return out;
}

/* out[B,OUT] = in[B,IN] * weight[OUT,IN]^T + bias[OUT]; in must be flat ([IN,1,1]). */
int builder_linear(Builder *b, const char *name, int in, int OUT, TensorInit weight_init,
                   TensorInit bias_init) {
    Value v = b->values[in];
    ED_CHECK(v.H == 1 && v.W == 1, "linear %s: input is not flat (%dx%dx%d)", name, v.C, v.H,
             v.W);
    int out = new_value(b, OUT, 1, 1, -1);
    Op *op = new_op(b, OP_LINEAR, in, -1, name);
    op->out = out;
    int64_t wshape[2] = {OUT, v.C}, bshape[1] = {OUT};
    op->t[0] = new_tensor(b, name, "weight", TENSOR_PARAM, 2, wshape, weight_init);
    op->t[1] = new_tensor(b, name, "bias", TENSOR_PARAM, 1, bshape, bias_init);
    b->last_linear_op = b->n_ops - 1;
    return out;
}

/* BatchNorm2d(C): weight, bias (params); running_mean, running_var, num_batches_tracked. */
int builder_bn(Builder *b, const char *name, int in) {
    Value v = b->values[in];
    int out = new_value(b, v.C, v.H, v.W, -1);
    Op *op = new_op(b, OP_BN, in, -1, name);
    op->out = out;
    int64_t cshape[1] = {v.C};
    op->t[0] = new_tensor(b, name, "weight", TENSOR_PARAM, 1, cshape, nn_init_const(INIT_ONE));
    op->t[1] = new_tensor(b, name, "bias", TENSOR_PARAM, 1, cshape, nn_init_const(INIT_ZERO));
    op->t[2] =
        new_tensor(b, name, "running_mean", TENSOR_BUFFER, 1, cshape, nn_init_const(INIT_ZERO));
    op->t[3] =
        new_tensor(b, name, "running_var", TENSOR_BUFFER, 1, cshape, nn_init_const(INIT_ONE));
    op->t[4] = new_tensor(b, name, "num_batches_tracked", TENSOR_BUFFER, 0, NULL,
                          nn_init_const(INIT_ZERO));
    b->tensors[op->t[4]].is_integer = 1;
    op->saved = b->saved_floats;
    b->saved_floats += round_up(2 * (size_t)v.C);
    return out;
}

static const char *label_of(const Builder *b, int value) {
    /* The module that produced `value`, for profiles: the last op writing it. */
    for (int i = b->n_ops - 1; i >= 0; i--)
        if (b->ops[i].out == value) return b->ops[i].label + strlen(b->prefix);
    return "input";
}

int builder_relu(Builder *b, int in) {
    Value v = b->values[in];
    char label[TENSOR_NAME_MAX];
    snprintf(label, sizeof(label), "%.100s/relu", label_of(b, in));
    int out = new_value(b, v.C, v.H, v.W, -1);
    Op *op = new_op(b, OP_RELU, in, -1, label);
    op->out = out;
    return out;
}

int builder_maxpool(Builder *b, int in, int KS, int stride) {
    Value v = b->values[in];
    char label[TENSOR_NAME_MAX];
    snprintf(label, sizeof(label), "%.100s/maxpool", label_of(b, in));
    int out = new_value(b, v.C, conv2d_out_size(v.H, KS, stride, 0),
                        conv2d_out_size(v.W, KS, stride, 0), -1);
    Op *op = new_op(b, OP_MAXPOOL, in, -1, label);
    op->out = out;
    op->KS = KS;
    op->stride = stride;
    op->iscratch = b->int_count;
    b->int_count += round_up((size_t)b->max_batch * value_size(&b->values[out]));
    return out;
}

int builder_global_avgpool(Builder *b, int in) {
    Value v = b->values[in];
    int out = new_value(b, v.C, 1, 1, -1);
    Op *op = new_op(b, OP_GAP, in, -1, "avgpool");
    op->out = out;
    return out;
}

int builder_flatten(Builder *b, int in) {
    Value v = b->values[in];
    int root = v.alias_of >= 0 ? v.alias_of : in;
    int out = new_value(b, v.C * v.H * v.W, 1, 1, root);
    Op *op = new_op(b, OP_FLATTEN, in, -1, "flatten");
    op->out = out;
    return out;
}

/* out = x + y */
int builder_add(Builder *b, int x, int y) {
    Value vx = b->values[x], vy = b->values[y];
    ED_CHECK(vx.C == vy.C && vx.H == vy.H && vx.W == vy.W, "add of %dx%dx%d and %dx%dx%d", vx.C,
             vx.H, vx.W, vy.C, vy.H, vy.W);
    char label[TENSOR_NAME_MAX];
    snprintf(label, sizeof(label), "%.100s/add", label_of(b, y));
    int out = new_value(b, vx.C, vx.H, vx.W, -1);
    Op *op = new_op(b, OP_ADD, x, y, label);
    op->out = out;
    return out;
}

int builder_shortcut_pad(Builder *b, int in, int OC, int stride, int pad_front) {
    Value v = b->values[in];
    int out = new_value(b, OC, (v.H + stride - 1) / stride, (v.W + stride - 1) / stride, -1);
    Op *op = new_op(b, OP_SHORTCUT, in, -1, "shortcut");
    op->out = out;
    op->stride = stride;
    op->pad = pad_front;
    return out;
}

/* out[B,K] = sum_r sum_p sReLU(<w_{i,r}, x_p>) over in[B,P,1,D]; weight[K*M, D] and, with
 * orth noise, noise_weight[K*M, noise_coords]. */
int builder_mvconv(Builder *b, int in, int K, int M, float init_std, int64_t noise_coords) {
    Value v = b->values[in];
    ED_CHECK(v.H == 1, "mvconv input must be [P, 1, D]");
    int out = new_value(b, K, 1, 1, -1);
    Op *op = new_op(b, OP_MVCONV, in, -1, "mvconv");
    op->out = out;
    op->M = M;
    int64_t wshape[2] = {(int64_t)K * M, v.W};
    op->t[0] = new_tensor(b, "", "weight", TENSOR_PARAM, 2, wshape, nn_init_normal(init_std));
    if (noise_coords > 0) {
        int64_t nshape[2] = {(int64_t)K * M, noise_coords};
        TensorInit ni = {.kind = INIT_MV_NOISE, .scale = init_std};
        op->t[1] = new_tensor(b, "", "noise_weight", TENSOR_PARAM, 2, nshape, ni);
    }
    op->saved = b->saved_floats;
    b->saved_floats += round_up((size_t)b->max_batch * v.C * K * M);
    return out;
}

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

Model *model_create(const ModelSpec *spec) {
    ModelSpec s = *spec;
    if (s.num_classes < 1) ed_fail("model %s: num_classes must be >= 1 (got %d)", s.arch, s.num_classes);
    if (s.max_batch < 1) ed_fail("model %s: max_batch must be >= 1 (got %d)", s.arch, s.max_batch);
    if (s.C < 1 || s.H < 1 || s.W < 1)
        ed_fail("model %s: bad input shape %dx%dx%d", s.arch, s.C, s.H, s.W);
    if (s.sum_of < 1) s.sum_of = 1;
    if (s.sum_of > NN_MAX_COPIES)
        ed_fail("model %s: sum_of %d is more than %d nets", s.arch, s.sum_of, NN_MAX_COPIES);
    if (s.random_features && strcmp(s.arch, "mvconv") == 0)
        ed_fail("model mvconv: random_features needs an architecture with a final linear layer");

    if (s.backend == MODEL_BACKEND_ONEDNN && !dnnl_backend_available())
        ed_fail("model %s: the oneDNN backend was asked for, but this build has none (install "
                "libdnnl-dev and configure with -DENSDISTILL_ONEDNN=ON)",
                s.arch);
    const int use_dnnl = s.backend != MODEL_BACKEND_BLAS && dnnl_backend_available();
    Builder b = {.spec = &s, .max_batch = s.max_batch, .last_linear_op = -1,
                 .use_dnnl = use_dnnl};
    int x = builder_input(&b, s.C, s.H, s.W);
    int logits = -1;
    for (int c = 0; c < s.sum_of; c++) {
        b.copy = c;
        b.net_first_tensor = b.n_tensors;
        if (s.sum_of > 1) snprintf(b.prefix, sizeof(b.prefix), "nets.%d.", c);
        b.last_linear_op = -1;
        int net_logits = arch_build(&b, x, &s);
        ED_CHECK(b.n_tensors - b.net_first_tensor < NN_MAX_NET_TENSORS, "too many tensors in one net");
        if (s.random_features) {
            ED_CHECK(b.last_linear_op >= 0 && b.ops[b.last_linear_op].out == net_logits,
                     "random_features: the net does not end in a linear layer");
            for (int i = 0; i < 2; i++)
                if (b.ops[b.last_linear_op].t[i] >= 0)
                    b.tensors[b.ops[b.last_linear_op].t[i]].head = 1;
        }
        b.prefix[0] = '\0';
        b.copy = 0;
        logits = logits < 0 ? net_logits : builder_add(&b, logits, net_logits);
    }
    ED_CHECK(b.values[logits].C == s.num_classes && b.values[logits].H == 1 &&
                 b.values[logits].W == 1,
             "logits are %dx%dx%d, not %d classes", b.values[logits].C, b.values[logits].H,
             b.values[logits].W, s.num_classes);

    Model *m = xcalloc(1, sizeof(Model));
    m->spec = s;
    m->priv = xcalloc(1, sizeof(struct ModelPrivate));
    struct ModelPrivate *p = m->priv;

    /* Tensor table: frozen parameters first, then the trainable ones (with random_features the
     * head), so the optimizer's range is one contiguous piece at the end; buffers after. */
    int *map = xmalloc((size_t)b.n_tensors * sizeof(int));
    p->inits = xcalloc((size_t)b.n_tensors + 1, sizeof(TensorInit));
    for (int pass = 0; pass < 3; pass++) {
        for (int i = 0; i < b.n_tensors; i++) {
            PendingTensor *t = &b.tensors[i];
            int want_pass = t->kind == TENSOR_BUFFER ? 2 : (s.random_features && t->head) ? 1 : 0;
            if (!s.random_features && t->kind == TENSOR_PARAM) want_pass = 0;
            if (want_pass != pass) continue;
            int k = tensor_table_add(&m->tensors, t->name, t->kind, t->ndim, t->shape);
            TensorInfo *info = &m->tensors.items[k];
            info->trainable = t->kind == TENSOR_PARAM && (!s.random_features || t->head);
            info->is_integer = t->is_integer;
            p->inits[k] = t->init;
            map[i] = k;
        }
    }
    for (int i = 0; i < b.n_ops; i++)
        for (int j = 0; j < 5; j++)
            if (b.ops[i].t[j] >= 0) b.ops[i].t[j] = map[b.ops[i].t[j]];
    free(map);
    free(b.tensors);

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

    p->ops = b.ops;
    p->n_ops = b.n_ops;
    p->values = b.values;
    p->n_values = b.n_values;
    p->logits_value = logits;

    /* Which values backward must reach: those depending on a trainable parameter. */
    Value *V = b.values;
    for (int i = 0; i < p->n_ops; i++) {
        Op *op = &p->ops[i];
        int rg = op_has_trainable(m, op) || V[op->in].requires_grad ||
                 (op->in2 >= 0 && V[op->in2].requires_grad);
        V[op->out].requires_grad = rg;
        if (op->kind == OP_BN) p->has_bn = 1;
    }

    if (use_dnnl) nn_assign_layouts(m, dnnl_backend_lanes());
    nn_plan_memory(m, s.max_batch);
    nn_plan_grad_ready(m);
    m->params = xfloats(m->tensors.param_floats);
    m->grads = xfloats(m->tensors.param_floats);
    m->momentum = xfloats(m->tensors.param_floats);
    m->buffers = xfloats(m->tensors.buffer_floats);
    p->acts = xfloats(p->act_floats);
    p->dacts = xfloats(p->dact_floats);
    p->workspace_floats = b.workspace_floats;
    p->workspace = xfloats(b.workspace_floats);
    p->int_scratch_count = b.int_count;
    p->int_scratch = xcalloc(b.int_count ? b.int_count : 1, sizeof(int32_t));
    p->saved_floats = b.saved_floats;
    p->saved = xfloats(b.saved_floats);
    if (use_dnnl) { /* every conv layer's primitives, built for max_batch */
        p->dnnl = dnnl_context_create();
        p->dnnl_conv = xcalloc((size_t)p->n_ops, sizeof(DnnlConv *));
        for (int i = 0; i < p->n_ops; i++) {
            const Op *op = &p->ops[i];
            if (op->kind != OP_CONV) continue;
            const Value in = V[op->in], out = V[op->out];
            p->dnnl_conv[i] = dnnl_conv_create(p->dnnl, s.max_batch, in.C, in.H, in.W, out.C,
                                               op->KS, op->stride, op->pad, op->t[1] >= 0,
                                               in.lanes, out.lanes);
        }
        p->dnnl_bn = xcalloc((size_t)p->n_ops, sizeof(DnnlBn *));
        size_t biggest = 0;
        for (int v = 0; v < p->n_values; v++)
            if (value_size(&V[v]) > biggest) biggest = value_size(&V[v]);
        p->gtemp = xfloats(biggest * s.max_batch);
        for (int i = 0; i < p->n_ops; i++) {
            const Op *op = &p->ops[i];
            if (op->kind != OP_BN) continue;
            const Value in = V[op->in];
            p->dnnl_bn[i] = dnnl_bn_create(p->dnnl, s.max_batch, in.C, in.H, in.W, in.lanes,
                                           op->relu);
        }
    }
    p->op_fwd_seconds = xcalloc((size_t)p->n_ops, sizeof(double));
    p->op_bwd_seconds = xcalloc((size_t)p->n_ops, sizeof(double));
    for (int c = 0; c < NN_MAX_COPIES; c++) {
        p->noise_ctx[c].m = m;
        p->noise_ctx[c].copy = c;
        p->noise_ctx[c].std = s.init_std;
    }
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
