/* The graph builder the architectures call (nn_internal.h): values, ops and the tensor
 * declarations each op needs, with their init recipes and the scratch sizes the kernels will
 * want. model_create (model.c) turns what it declared into a Model. */
#include "nn_internal.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    v->bf16 = 0; /* nn_assign_layouts */
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
