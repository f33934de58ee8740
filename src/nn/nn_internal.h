/* Private to src/nn: the graph a Model runs (values, ops), the builder the architectures use
 * to declare it, and the per-tensor initialisation recipes. builder.c declares the graph
 * (builder_* functions, the only ones arch_basic.c and arch_resnet.c call), model.c turns it
 * into a Model (model_create, model_init), plan.c plans the arenas, graph.c runs forward and
 * backward, profile.c counts and profiles. */
#ifndef ENSDISTILL_NN_INTERNAL_H
#define ENSDISTILL_NN_INTERNAL_H

#include "ensdistill/layers.h"
#include "ensdistill/model.h"
#include "ensdistill/tensor.h"

#include <stddef.h>
#include <stdint.h>

/* A value: one activation tensor [B, C, H, W] of the graph. Its slot in the activation arena,
 * and its gradient's slot in dacts, hold max_batch samples; a batch of B uses the first
 * B * C*H*W floats. An alias (flatten) shares its source's slots. Slots are shared between
 * values whose lifetimes do not overlap (nn_plan_memory in plan.c): an activation that backward
 * reads lives to the end of the step, one read only by forward until its last forward reader
 * has run; a gradient from the backward of its last reader to the backward of its producer. */
typedef struct {
    int C, H, W;
    int lanes;         /* layout: 1 plain NCHW, 8 or 16 oneDNN's nChw8c / nChw16c (blocked.c) */
    int Cp;            /* C rounded up to a multiple of lanes: the channels stored */
    int bf16;          /* stored as bf16 in acts (train.precision bf16, blocked values only);
                        * its gradient in dacts stays fp32 */
    size_t offset;     /* floats into acts */
    size_t goffset;    /* floats into dacts (meaningful when requires_grad) */
    int alias_of;      /* -1, or the value whose memory this one reuses */
    int requires_grad; /* depends on a trainable parameter: backward must reach it */
} Value;

typedef enum {
    OP_CONV,   /* t: weight, bias (-1) */
    OP_LINEAR, /* t: weight, bias */
    OP_BN,     /* t: gamma, beta, running_mean, running_var, num_batches_tracked */
    OP_RELU,
    OP_MAXPOOL,  /* KS, stride; argmax in int scratch */
    OP_GAP,      /* global average pool [B,C,H,W] -> [B,C,1,1] */
    OP_SHORTCUT, /* option-A shortcut: stride, pad (= pad_front) */
    OP_ADD,      /* out = in + in2 */
    OP_MVCONV,   /* t: weight, noise_weight (-1); pre-activations in saved */
    OP_FLATTEN   /* an alias: no work, no memory */
} OpKind;

typedef struct Op Op;
struct Op {
    OpKind kind;
    int in, in2, out; /* value indices (in2 = -1 unless ADD) */
    int t[5];         /* tensor table indices (pending indices while building), -1 = none */
    int KS, stride, pad; /* conv and maxpool: kernel size, stride, padding */
    int M;               /* mvconv: filters per class */
    int relu;            /* BN (oneDNN backend): the ReLU that followed is fused into it */
    int reorder;         /* FLATTEN of a blocked value: a copy to plain, not an alias */
    size_t saved;     /* floats into priv->saved (BN mean then invstd; mvconv pre) */
    size_t iscratch;  /* int32s into int_scratch (maxpool argmax) */
    int copy;         /* which net of a sum_of model */
    char label[TENSOR_NAME_MAX]; /* module name for profiles, e.g. "layer1.0.conv1" */
};

typedef enum {
    INIT_ZERO,
    INIT_ONE,
    INIT_UNIFORM,  /* U(-scale, scale) */
    INIT_NORMAL,   /* N(0, scale^2) from the tensor's own counter range */
    INIT_MV_NOISE  /* N(0, scale^2) at the mvconv noise positions (nn_noise_position) */
} InitKind;

typedef struct {
    InitKind kind;
    float scale;
    int copy;        /* net of a sum_of model */
    int local_index; /* index of the tensor within its net */
} TensorInit;

/* Context of the mvconv noise_init callback (untrained noise coordinates). */
typedef struct {
    const Model *m;
    int copy;
    float std;
} MvNoiseCtx;

#define NN_MAX_COPIES 64

/* What a Model's users never see: the graph, its arenas and the per-op state (a kernel
 * backend's too, indexed like ops). */
struct ModelPrivate {
    Op *ops;
    int n_ops;
    Value *values;
    int n_values;
    int logits_value;
    float *acts, *dacts;  /* activation arena and the (smaller) activation-gradient arena */
    size_t act_floats;
    size_t dact_floats;   /* gradient slots are shared: nn_plan_memory */
    float *workspace;     /* shared scratch (im2col) */
    size_t workspace_floats;
    int32_t *int_scratch; /* maxpool argmax */
    size_t int_scratch_count;
    float *saved;         /* per-op saved state for max_batch */
    size_t saved_floats;
    int cur_batch;        /* batch size of the last forward */
    int training;         /* mode of the last forward */
    const int64_t *sample_ids; /* of the last forward, for mvconv backward */
    /* before op i's backward, zero the gradients of values zero_list[zero_begin[i] ..
     * zero_begin[i+1]) (their first contribution comes from op i) */
    int *zero_begin, *zero_list;
    /* after op i's backward, grads[grad_ready[i] .. trainable_end) are final for the step: no
     * op that backward has still to run writes there (nn_plan_grad_ready) */
    size_t *grad_ready;
    int has_bn;
    TensorInit *inits; /* [tensors.count] */
    MvNoiseCtx noise_ctx[NN_MAX_COPIES];
    /* profile */
    int profile;
    double *op_fwd_seconds, *op_bwd_seconds; /* [n_ops] */
    long profile_steps;
    double zero_seconds; /* model_backward's zeroing of grads and dacts */
    /* oneDNN (dnnl_backend.h): the context and each conv op's primitives; NULL when the
     * model runs the im2col + BLAS kernels. bf16 by rounding (bf16_round.h) builds its layers
     * instead of the bf16 ones: round_conv and round_bn are NULL without it. */
    struct DnnlContext *dnnl;
    struct DnnlConv **dnnl_conv; /* [n_ops] */
    struct DnnlBn **dnnl_bn;     /* [n_ops] */
    struct RoundConv **round_conv; /* [n_ops] */
    struct RoundBn **round_bn;     /* [n_ops] */
    float *gtemp;                /* one activation of scratch (a gradient added, not written) */
};

#define ARENA_ALIGN 16 /* floats: every arena slot starts on a 64-byte line */

static inline size_t round_up(size_t n) {
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

/* Elements of one sample of a value (padding channels included): the floats of its gradient. */
static inline size_t value_size(const Value *v) {
    return (size_t)v->Cp * v->H * v->W;
}

/* Floats its activation takes in acts per sample: half of value_size for a bf16 value (Cp is a
 * multiple of 8 there, so the count is whole). */
static inline size_t value_act_floats(const Value *v) {
    return v->bf16 ? value_size(v) / 2 : value_size(v);
}

/* Element (b, c, hw) of a [B, C, HW] value in layout `L` (lanes): channels in blocks of L, the
 * block innermost. */
static inline size_t blocked_at(int b, int c, size_t hw, int C, size_t HW, int L) {
    const int Cb = (C + L - 1) / L;
    return (((size_t)b * Cb + c / L) * HW + hw) * L + c % L;
}

/* Kernels on blocked activations (blocked.c; `L` = the value's lanes): the same arithmetic as
 * maxpool_*, global_avgpool_* and shortcut_pad_* of layers.h; blocked_gap_forward writes a
 * plain [B, C]; blocked_to_plain / blocked_from_plain_add are a flatten's copy and its
 * adjoint. Backward ADDS. */
void blocked_maxpool_forward(float *out, int32_t *argmax, const float *in, int B, int C, int H,
                             int W, int L, int KS, int stride);
void blocked_maxpool_backward(float *din, const float *dout, const int32_t *argmax, int B, int C,
                              int H, int W, int L, int KS, int stride, int write);
/* 1 when blocked_maxpool_backward can write din (`write`) instead of adding to it: windows that
 * tile the input exactly, in blocks of a multiple of 8 lanes (its gather path) */
int blocked_maxpool_backward_writes(int H, int W, int L, int KS, int stride);
void blocked_gap_forward(float *out, const float *in, int B, int C, int HW, int L);
void blocked_gap_backward(float *din, const float *dout, int B, int C, int HW, int L);
void blocked_shortcut_forward(float *out, const float *in, int B, int C, int H, int W, int OC,
                              int stride, int pad_front, int L);
void blocked_shortcut_backward(float *din, const float *dout, int B, int C, int H, int W, int OC,
                               int stride, int pad_front, int L);
void blocked_to_plain(float *out, const float *in, int B, int C, int HW, int L);
void blocked_from_plain_add(float *din, const float *dout, int B, int C, int HW, int L);

/* The forward kernels above and relu/add (layers.h) on bf16 activations (blocked_bf16.c): the
 * same arithmetic on the widened values, results rounded to bf16 (only the add rounds; GAP and
 * the flatten's copy write fp32). Backward needs a bf16 variant only where it reads an
 * activation: relu_backward_bf16 (din += dout where out > 0, or din = that where `write`;
 * gradients fp32). */
void blocked_maxpool_forward_bf16(uint16_t *out, int32_t *argmax, const uint16_t *in, int B,
                                  int C, int H, int W, int L, int KS, int stride);
void blocked_gap_forward_bf16(float *out, const uint16_t *in, int B, int C, int HW, int L);
void blocked_shortcut_forward_bf16(uint16_t *out, const uint16_t *in, int B, int C, int H, int W,
                                   int OC, int stride, int pad_front, int L);
void blocked_to_plain_bf16(float *out, const uint16_t *in, int B, int C, int HW, int L);
void relu_forward_bf16(uint16_t *out, const uint16_t *in, size_t n);
void relu_backward_bf16(float *din, const float *dout, const uint16_t *out, size_t n, int write);
void add_forward_bf16(uint16_t *out, const uint16_t *a, const uint16_t *b, size_t n);

/* oneDNN backend: gives every value its layout (conv outputs blocked, layout-preserving ops
 * inherit, global pooling and flatten go plain), fuses BN + ReLU where the BN's output has no
 * other reader (model.c). bf16: every blocked value is stored as bf16. Before
 * nn_plan_memory. */
void nn_assign_layouts(Model *m, int lanes, int bf16);

/* Assigns every value its activation and gradient slots, sizes m->priv's arenas
 * (act_floats, dact_floats) and builds the zeroing lists (plan.c). */
void nn_plan_memory(Model *m, int max_batch);
/* Fills priv->grad_ready from the ops' trainable tensors (after the tensor table is final). */
void nn_plan_grad_ready(Model *m);

/* ---- builder: what an architecture function declares ---- */
typedef struct {
    char name[TENSOR_NAME_MAX];
    TensorKind kind;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int is_integer;
    int head;   /* belongs to the final linear layer (stays trainable with random_features) */
    TensorInit init;
} PendingTensor;

typedef struct {
    const ModelSpec *spec;
    Value *values;
    int n_values, cap_values;
    Op *ops;
    int n_ops, cap_ops;
    PendingTensor *tensors;
    int n_tensors, cap_tensors;
    int net_first_tensor; /* first pending tensor of the current net (local indices) */
    char prefix[TENSOR_NAME_MAX]; /* "" or "nets.<i>." */
    int copy;
    int max_batch;
    size_t act_floats, saved_floats, int_count, workspace_floats;
    int last_linear_op; /* the most recent linear op: the head of the net just built */
    int use_dnnl;       /* conv layers run on oneDNN: no im2col workspace */
} Builder;

int builder_input(Builder *b, int C, int H, int W);
/* module(prefix + name) = Conv2d(C, OC, KS, stride, pad, bias); weight init as given. */
int builder_conv(Builder *b, const char *name, int in, int OC, int KS, int stride, int pad,
                 int bias, TensorInit weight_init, TensorInit bias_init);
int builder_linear(Builder *b, const char *name, int in, int OUT, TensorInit weight_init,
                   TensorInit bias_init);
int builder_bn(Builder *b, const char *name, int in);
int builder_relu(Builder *b, int in);
int builder_maxpool(Builder *b, int in, int KS, int stride);
int builder_global_avgpool(Builder *b, int in);
int builder_flatten(Builder *b, int in);
int builder_add(Builder *b, int x, int y);
int builder_shortcut_pad(Builder *b, int in, int OC, int stride, int pad_front);
int builder_mvconv(Builder *b, int in, int K, int M, float init_std, int64_t noise_coords);

/* Init recipes. */
TensorInit nn_init_const(InitKind kind);
TensorInit nn_init_uniform(float bound);
TensorInit nn_init_normal(float std);

/* Architectures (arch_basic.c / arch_resnet.c): each builds one net on value `in` under the
 * builder's prefix and returns its logits value. Unknown shapes: ed_fail. */
int arch_mlp(Builder *b, int in, const ModelSpec *s);
int arch_cnn(Builder *b, int in, const ModelSpec *s);
int arch_mvconv(Builder *b, int in, const ModelSpec *s);
int arch_resnet(Builder *b, int in, const ModelSpec *s, int depth, int projection);
int arch_wrn(Builder *b, int in, const ModelSpec *s, int depth, int widen);
/* Builds one net of spec->arch_name (model_create has parsed spec->arch); returns the logits
 * value. */
int arch_build(Builder *b, int in, const ModelSpec *s);

/* Counter positions in a model's init stream, high bit to low, so that no two tensors, nets or
 * noise weights share one:
 *   a tensor's draws     0 | copy (11) | tensor index in its net (12) | draw (40)
 *   mvconv noise weight  1 | copy (7)  | row (20)                     | coord (36) */
#define NN_POS_DRAW_BITS 40
#define NN_POS_TENSOR_BITS 12
#define NN_POS_COPY_BITS 11
#define NN_POS_NOISE_COORD_BITS 36
#define NN_POS_NOISE_ROW_BITS 20
#define NN_POS_NOISE_COPY_BITS 7
#define NN_MAX_NET_TENSORS (1 << NN_POS_TENSOR_BITS)
#define NN_MAX_NOISE_ROWS (1 << NN_POS_NOISE_ROW_BITS)
#define NN_MAX_NOISE_COORDS ((int64_t)1 << NN_POS_NOISE_COORD_BITS)
_Static_assert(1 + NN_POS_COPY_BITS + NN_POS_TENSOR_BITS + NN_POS_DRAW_BITS == 64,
               "tensor positions fill 64 bits");
_Static_assert(1 + NN_POS_NOISE_COPY_BITS + NN_POS_NOISE_ROW_BITS + NN_POS_NOISE_COORD_BITS == 64,
               "noise positions fill 64 bits");
_Static_assert(NN_MAX_COPIES <= (1 << NN_POS_NOISE_COPY_BITS) &&
                   NN_MAX_COPIES <= (1 << NN_POS_COPY_BITS),
               "every net of a sum_of model has its own positions");

/* The first counter position of tensor `local_index` of net `copy`. */
uint64_t nn_tensor_position(int copy, int local_index);
/* The counter position of mvconv noise weight [row, coord] of net `copy`. */
uint64_t nn_noise_position(int copy, int row, int64_t coord);

#endif
