/* The model engine: the graph builder (values, ops, tensor declarations), model_create's arena
 * layout, deterministic init, and forward/backward dispatch to the layer kernels of layers.h.
 * Architectures live in models.c and model_resnet.c; nothing here knows one by name. */
#include "dnnl_backend.h"
#include "nn_internal.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BN_MOMENTUM 0.1f
#define BN_EPS 1e-5f
#define ARENA_ALIGN 16 /* floats: every slot starts on a 64-byte line */

static size_t round_up(size_t n) {
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

static size_t value_size(const Value *v) {
    return (size_t)v->C * v->H * v->W;
}

/* ------------------------------------------------------------------------------------------ */
/* Builder                                                                                      */
/* ------------------------------------------------------------------------------------------ */

TensorInit init_const(InitKind kind) {
    TensorInit i = {.kind = kind, .scale = 0.0f};
    return i;
}
TensorInit init_uniform(float bound) {
    TensorInit i = {.kind = INIT_UNIFORM, .scale = bound};
    return i;
}
TensorInit init_normal(float std) {
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
    v->H = H;
    v->W = W;
    v->alias_of = alias_of;
    v->requires_grad = 0;
    v->offset = v->goffset = 0; /* plan_memory */
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

int b_input(Builder *b, int C, int H, int W) {
    ED_CHECK(b->n_values == 0, "the input must be the first value");
    return new_value(b, C, H, W, -1);
}

/* out[B,OC,OH,OW] = conv2d(in[B,C,H,W], weight[OC,C,KS,KS]) + bias[OC] */
int b_conv(Builder *b, const char *name, int in, int OC, int KS, int stride, int pad, int bias,
           TensorInit weight_init, TensorInit bias_init) {
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
int b_linear(Builder *b, const char *name, int in, int OUT, TensorInit weight_init,
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
int b_bn(Builder *b, const char *name, int in) {
    Value v = b->values[in];
    int out = new_value(b, v.C, v.H, v.W, -1);
    Op *op = new_op(b, OP_BN, in, -1, name);
    op->out = out;
    int64_t cshape[1] = {v.C};
    op->t[0] = new_tensor(b, name, "weight", TENSOR_PARAM, 1, cshape, init_const(INIT_ONE));
    op->t[1] = new_tensor(b, name, "bias", TENSOR_PARAM, 1, cshape, init_const(INIT_ZERO));
    op->t[2] = new_tensor(b, name, "running_mean", TENSOR_BUFFER, 1, cshape,
                          init_const(INIT_ZERO));
    op->t[3] = new_tensor(b, name, "running_var", TENSOR_BUFFER, 1, cshape,
                          init_const(INIT_ONE));
    op->t[4] = new_tensor(b, name, "num_batches_tracked", TENSOR_BUFFER, 0, NULL,
                          init_const(INIT_ZERO));
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

int b_relu(Builder *b, int in) {
    Value v = b->values[in];
    char label[TENSOR_NAME_MAX];
    snprintf(label, sizeof(label), "%.100s/relu", label_of(b, in));
    int out = new_value(b, v.C, v.H, v.W, -1);
    Op *op = new_op(b, OP_RELU, in, -1, label);
    op->out = out;
    return out;
}

int b_maxpool(Builder *b, int in, int KS, int stride) {
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

int b_global_avgpool(Builder *b, int in) {
    Value v = b->values[in];
    int out = new_value(b, v.C, 1, 1, -1);
    Op *op = new_op(b, OP_GAP, in, -1, "avgpool");
    op->out = out;
    return out;
}

int b_flatten(Builder *b, int in) {
    Value v = b->values[in];
    int root = v.alias_of >= 0 ? v.alias_of : in;
    int out = new_value(b, v.C * v.H * v.W, 1, 1, root);
    Op *op = new_op(b, OP_FLATTEN, in, -1, "flatten");
    op->out = out;
    return out;
}

/* out = x + y */
int b_add(Builder *b, int x, int y) {
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

int b_shortcut_pad(Builder *b, int in, int OC, int stride, int pad_front) {
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
int b_mvconv(Builder *b, int in, int K, int M, float init_std, int64_t noise_coords) {
    Value v = b->values[in];
    ED_CHECK(v.H == 1, "mvconv input must be [P, 1, D]");
    int out = new_value(b, K, 1, 1, -1);
    Op *op = new_op(b, OP_MVCONV, in, -1, "mvconv");
    op->out = out;
    op->M = M;
    int64_t wshape[2] = {(int64_t)K * M, v.W};
    op->t[0] = new_tensor(b, "", "weight", TENSOR_PARAM, 2, wshape, init_normal(init_std));
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
    ED_CHECK(copy >= 0 && copy < 128 && row >= 0 && row < (1 << 20) && coord >= 0 &&
                 coord < ((int64_t)1 << 36),
             "mvconv noise position out of range (copy %d, row %d, coord %lld)", copy, row,
             (long long)coord);
    return (UINT64_C(1) << 63) | ((uint64_t)copy << 56) | ((uint64_t)row << 36) | (uint64_t)coord;
}

static float mv_noise_init(const void *ctx, int row, int64_t coord) {
    const MvNoiseCtx *c = ctx;
    return rng_normal_at(c->m->init_seed, c->m->init_stream,
                         nn_noise_position(c->copy, row, coord)) *
           c->std;
}

/* ---- memory plan ---- */

typedef struct {
    size_t offset, size;
    int start, end; /* live over [start, end] in some clock */
} Slot;

/* First fit: the lowest offset where [offset, offset+size) overlaps no slot live at the same
 * time. Slots are few (one per value), so the quadratic scan is cheap. */
static size_t place(const Slot *slots, int n, size_t size, int start, int end) {
    size_t offset = 0;
    for (;;) {
        int moved = 0;
        for (int i = 0; i < n; i++) {
            const Slot *s = &slots[i];
            if (s->end < start || s->start > end) continue; /* not live together */
            if (s->offset < offset + size && offset < s->offset + s->size) {
                offset = s->offset + s->size;
                moved = 1;
            }
        }
        if (!moved) return offset;
    }
}

static int root_of(const Value *V, int v) {
    return V[v].alias_of >= 0 ? V[v].alias_of : v;
}

/* Assigns every value its activation and gradient slots (see Value) and the zeroing lists.
 * Forward clock: op index; backward clock: op index too, a gradient being live from its
 * producer's op to its last reader's. An activation is read by backward when it is the input
 * of a conv, linear, BN or mvconv, or the output of a ReLU (relu_backward gets the output:
 * out > 0 exactly where in > 0), or the logits or the network input. */
static void plan_memory(Model *m, int max_batch) {
    Value *V = m->priv->values;
    int nv = m->priv->n_values, n_ops = m->priv->n_ops;
    int *prod = xmalloc((size_t)nv * sizeof(int)), *last = xmalloc((size_t)nv * sizeof(int));
    int *keep = xcalloc((size_t)nv, sizeof(int));
    for (int v = 0; v < nv; v++) prod[v] = last[v] = -1;
    for (int i = 0; i < n_ops; i++) {
        const Op *op = &m->priv->ops[i];
        prod[root_of(V, op->out)] = op->kind == OP_FLATTEN ? prod[root_of(V, op->out)] : i;
        int ins[2] = {op->in, op->in2};
        for (int k = 0; k < 2; k++)
            if (ins[k] >= 0 && op->kind != OP_FLATTEN) last[root_of(V, ins[k])] = i;
        if (op->kind == OP_CONV || op->kind == OP_LINEAR || op->kind == OP_BN ||
            op->kind == OP_MVCONV)
            keep[root_of(V, op->in)] = 1;
        if (op->kind == OP_RELU) keep[root_of(V, op->out)] = 1;
    }
    keep[0] = 1;
    keep[root_of(V, m->priv->logits_value)] = 1;
    last[root_of(V, m->priv->logits_value)] = n_ops; /* read by the caller, seeded by backward */

    Slot *slots = xmalloc((size_t)nv * sizeof(Slot));
    int ns = 0;
    size_t act_floats = 0;
    for (int v = 0; v < nv; v++) { /* values are created in forward order */
        if (V[v].alias_of >= 0) continue;
        size_t size = round_up((size_t)max_batch * value_size(&V[v]));
        int start = v == 0 ? -1 : prod[v], end = keep[v] ? INT32_MAX : last[v];
        if (end < start) end = start; /* produced and never read */
        V[v].offset = place(slots, ns, size, start, end);
        slots[ns++] = (Slot){V[v].offset, size, start, end};
        if (V[v].offset + size > act_floats) act_floats = V[v].offset + size;
    }
    ns = 0;
    size_t dact_floats = 0;
    for (int v = nv - 1; v >= 0; v--) { /* in the order backward meets them */
        if (V[v].alias_of >= 0 || !V[v].requires_grad) continue;
        size_t size = round_up((size_t)max_batch * value_size(&V[v]));
        int end = last[v] < prod[v] ? prod[v] : last[v];
        V[v].goffset = place(slots, ns, size, prod[v], end);
        slots[ns++] = (Slot){V[v].goffset, size, prod[v], end};
        if (V[v].goffset + size > dact_floats) dact_floats = V[v].goffset + size;
    }
    for (int v = 0; v < nv; v++)
        if (V[v].alias_of >= 0) {
            V[v].offset = V[V[v].alias_of].offset;
            V[v].goffset = V[V[v].alias_of].goffset;
        }

    /* zero lists: value v's gradient is zeroed before the backward of op last[v] */
    struct ModelPrivate *p = m->priv;
    p->zero_begin = xcalloc((size_t)n_ops + 2, sizeof(int));
    p->zero_list = xcalloc((size_t)nv + 1, sizeof(int));
    for (int v = 0; v < nv; v++)
        if (V[v].alias_of < 0 && V[v].requires_grad && last[v] >= 0 && last[v] < n_ops)
            p->zero_begin[last[v] + 1]++;
    for (int i = 0; i < n_ops; i++) p->zero_begin[i + 1] += p->zero_begin[i];
    int *fill = xcalloc((size_t)n_ops + 1, sizeof(int));
    for (int v = 0; v < nv; v++)
        if (V[v].alias_of < 0 && V[v].requires_grad && last[v] >= 0 && last[v] < n_ops)
            p->zero_list[p->zero_begin[last[v]] + fill[last[v]]++] = v;
    p->act_floats = act_floats;
    p->dact_floats = dact_floats;
    free(fill);
    free(slots);
    free(prod);
    free(last);
    free(keep);
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
    int x = b_input(&b, s.C, s.H, s.W);
    int logits = -1;
    for (int c = 0; c < s.sum_of; c++) {
        b.copy = c;
        b.net_first_tensor = b.n_tensors;
        if (s.sum_of > 1) snprintf(b.prefix, sizeof(b.prefix), "nets.%d.", c);
        b.last_linear_op = -1;
        int net_logits = arch_build(&b, x, &s);
        ED_CHECK(b.n_tensors - b.net_first_tensor < 4096, "too many tensors in one net");
        if (s.random_features) {
            ED_CHECK(b.last_linear_op >= 0 && b.ops[b.last_linear_op].out == net_logits,
                     "random_features: the net does not end in a linear layer");
            for (int i = 0; i < 2; i++)
                if (b.ops[b.last_linear_op].t[i] >= 0)
                    b.tensors[b.ops[b.last_linear_op].t[i]].head = 1;
        }
        b.prefix[0] = '\0';
        b.copy = 0;
        logits = logits < 0 ? net_logits : b_add(&b, logits, net_logits);
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

    plan_memory(m, s.max_batch);
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
                                               op->KS, op->stride, op->pad, op->t[1] >= 0);
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
    if (p->dnnl_conv)
        for (int i = 0; i < p->n_ops; i++) dnnl_conv_free(p->dnnl_conv[i]);
    free(p->dnnl_conv);
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
        r.position = ((uint64_t)in->copy << 52) | ((uint64_t)in->local_index << 40);
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

/* ------------------------------------------------------------------------------------------ */
/* Forward and backward                                                                         */
/* ------------------------------------------------------------------------------------------ */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

#define VAL(i) (m->priv->values[i])
#define ACT(i) (m->priv->acts + VAL(i).offset)
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

static void op_forward(Model *m, const Op *op, int B, int training, const int64_t *sample_ids) {
    const Value in = VAL(op->in), out = VAL(op->out);
    const float *x = ACT(op->in);
    float *y = ACT(op->out);
    size_t n = (size_t)B * value_size(&out);
    switch (op->kind) {
    case OP_CONV: /* y = conv2d(x, W) + b */
        if (m->priv->dnnl_conv) {
            dnnl_conv_forward(m->priv->dnnl_conv[op - m->priv->ops], y, x, PARAM(op->t[0]),
                              PARAM(op->t[1]), B);
            break;
        }
        conv2d_forward(y, x, PARAM(op->t[0]), PARAM(op->t[1]), B, in.C, in.H, in.W, out.C, op->KS,
                       op->stride, op->pad, m->priv->workspace);
        break;
    case OP_LINEAR: /* y = x W^T + b */
        linear_forward(y, x, PARAM(op->t[0]), PARAM(op->t[1]), B, in.C, out.C);
        break;
    case OP_BN: { /* y = (x - mean) * invstd * gamma + beta */
        float *mean = m->priv->saved + op->saved, *invstd = mean + in.C;
        batchnorm_forward(y, mean, invstd, x, PARAM(op->t[0]), PARAM(op->t[1]), BUFFER(op->t[2]),
                          BUFFER(op->t[3]), B, in.C, in.H * in.W, BN_MOMENTUM, BN_EPS, training);
        if (training) BUFFER(op->t[4])[0] += 1.0f;
        break;
    }
    case OP_RELU: /* y = max(x, 0) */
        relu_forward(y, x, n);
        break;
    case OP_MAXPOOL: /* y = max over KS x KS windows */
        maxpool_forward(y, m->priv->int_scratch + op->iscratch, x, B, in.C, in.H, in.W, op->KS,
                        op->stride, 0);
        break;
    case OP_GAP: /* y[b,c] = mean_hw x[b,c,h,w] */
        global_avgpool_forward(y, x, B, in.C, in.H * in.W);
        break;
    case OP_FLATTEN: /* y is x, seen as [B, C*H*W] */
        break;
    case OP_SHORTCUT: /* y = zero-pad channels of x[:, :, ::s, ::s] */
        shortcut_pad_forward(y, x, B, in.C, in.H, in.W, out.C, op->stride, op->pad);
        break;
    case OP_ADD: /* y = x + x2 */
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

static void op_backward(Model *m, const Op *op, int B, const int64_t *sample_ids) {
    const Value in = VAL(op->in), out = VAL(op->out);
    const float *x = ACT(op->in), *dy = m->priv->dacts + out.goffset;
    float *dx = DACT(op->in);
    size_t n = (size_t)B * value_size(&out);
    switch (op->kind) {
    case OP_CONV:
        if (m->priv->dnnl_conv) {
            dnnl_conv_backward(m->priv->dnnl_conv[op - m->priv->ops], dx, GRAD(op->t[0]),
                               GRAD(op->t[1]), dy, x, PARAM(op->t[0]), B);
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
        batchnorm_backward(dx, GRAD(op->t[0]), GRAD(op->t[1]), dy, x, PARAM(op->t[0]), mean,
                           invstd, B, in.C, in.H * in.W);
        break;
    }
    case OP_RELU: /* the output is > 0 exactly where the input is (the input may be gone) */
        relu_backward(dx, dy, ACT(op->out), n);
        break;
    case OP_MAXPOOL:
        maxpool_backward(dx, dy, m->priv->int_scratch + op->iscratch, B, in.C, in.H, in.W, op->KS,
                         op->stride, 0);
        break;
    case OP_GAP:
        global_avgpool_backward(dx, dy, B, in.C, in.H * in.W);
        break;
    case OP_FLATTEN: /* same memory: the gradient is already in place */
        break;
    case OP_SHORTCUT:
        shortcut_pad_backward(dx, dy, B, in.C, in.H, in.W, out.C, op->stride, op->pad);
        break;
    case OP_ADD:
        if (dx) accumulate(dx, dy, n);
        if (VAL(op->in2).requires_grad) accumulate(DACT(op->in2), dy, n);
        break;
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
    memcpy(p->acts + VAL(0).offset, x, (size_t)B * value_size(&VAL(0)) * sizeof(float));
    for (int i = 0; i < p->n_ops; i++) {
        double t0 = p->profile ? now_seconds() : 0.0;
        op_forward(m, &p->ops[i], B, training, sample_ids);
        if (p->profile) p->op_fwd_seconds[i] += now_seconds() - t0;
    }
    if (p->profile) p->profile_steps++;
    p->cur_batch = B;
    p->training = training;
    p->sample_ids = sample_ids;
    return ACT(p->logits_value);
}

void model_backward(Model *m, const float *dlogits) {
    int B = m->priv->cur_batch;
    struct ModelPrivate *p = m->priv;
    ED_CHECK(B > 0, "model_backward before model_forward");
    ED_CHECK(p->training || !p->has_bn,
             "model_backward after an eval-mode forward: BatchNorm backward needs batch "
             "statistics");
    double t0 = p->profile ? now_seconds() : 0.0;
    memset(m->grads + m->trainable_begin, 0,
           (m->trainable_end - m->trainable_begin) * sizeof(float));
    if (p->profile) p->zero_seconds += now_seconds() - t0;
    const Value *lv = &VAL(p->logits_value);
    if (!lv->requires_grad) return; /* nothing trainable */
    memcpy(p->dacts + lv->goffset, dlogits, (size_t)B * value_size(lv) * sizeof(float));
    for (int i = p->n_ops - 1; i >= 0; i--) {
        const Op *op = &p->ops[i];
        if (!VAL(op->out).requires_grad) continue;
        double t_op = p->profile ? now_seconds() : 0.0;
        /* gradients whose first contribution comes from this op start at zero */
        for (int k = p->zero_begin[i]; k < p->zero_begin[i + 1]; k++) {
            const Value *v = &VAL(p->zero_list[k]);
            memset(p->dacts + v->goffset, 0, (size_t)B * value_size(v) * sizeof(float));
        }
        op_backward(m, op, B, p->sample_ids);
        if (p->profile) p->op_bwd_seconds[i] += now_seconds() - t_op;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Counts and profiles                                                                          */
/* ------------------------------------------------------------------------------------------ */

size_t model_param_count(const Model *m) {
    return m->tensors.param_floats;
}

size_t model_trainable_count(const Model *m) {
    return m->trainable_end - m->trainable_begin;
}

static double op_flops(const Model *m, const Op *op) {
    const Value in = VAL(op->in), out = VAL(op->out);
    switch (op->kind) {
    case OP_CONV: /* 2 * C*KS*KS multiply-adds per output */
        return 2.0 * in.C * op->KS * op->KS * (double)value_size(&out);
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
        const Value in = VAL(op->in), o = VAL(op->out);
        fprintf(out, "  %-28s %-9s %4dx%3dx%3d -> %4dx%3dx%3d %9.2f %9.2f  %5.1f%%\n", op->label,
                op_kind_name(op->kind), in.C, in.H, in.W, o.C, o.H, o.W,
                1e3 * p->op_fwd_seconds[order[r]] / steps,
                1e3 * p->op_bwd_seconds[order[r]] / steps,
                100.0 * (p->op_fwd_seconds[order[r]] + p->op_bwd_seconds[order[r]]) / total);
    }
    free(order);
}
