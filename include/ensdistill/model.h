/* Models: an ordered list of operations over one parameter arena, one gradient arena, one
 * momentum arena, one buffer arena (BatchNorm statistics) and one activation arena sized for
 * max_batch samples at build time. Nothing is allocated after model_create. Activations that
 * backward does not read, and activation gradients, share slots when their lifetimes do not
 * overlap (WRN-28-10 at batch 128: 3.0 GiB of arenas instead of 8.6).
 *
 * Architectures by name (model_create):
 *   mlp               flatten -> linear(hidden) -> relu -> linear(hidden) -> relu -> linear(K)
 *   cnn               conv5x5(32)-relu-maxpool2 -> conv5x5(64)-relu-maxpool2 -> linear(hidden) -> relu -> linear(K)
 *   resnet-<6n+2>     CIFAR ResNet (He et al. 2016), option A zero-padding shortcuts
 *   resnet-<6n+2>-proj  the same with 1x1 conv + BN projection shortcuts (option B)
 *   wrn-<d>-<k>       pre-activation WideResNet (Zagoruyko & Komodakis), (d-4)/6 blocks per stage
 *   mvconv            the paper's patch network (layers.h), input [P, 1, D]
 * sum_of > 1 builds the train-the-sum control: sum_of copies of the net under the names
 * "nets.<i>.<name>", whose logits are added.
 * Parameter names and shapes are those of the equivalent PyTorch module
 * (analysis/load_torch.py builds it). */
#ifndef ENSDISTILL_MODEL_H
#define ENSDISTILL_MODEL_H

#include "ensdistill/tensor.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* An architecture name, parsed (model_arch_parse). Depth and width are bounded: ResNet-1202 is
 * the deepest in the literature, WRN-k beyond 16 is rare; far beyond these a typo would only
 * stop the run out of memory. */
#define MODEL_ARCH_MAX_DEPTH 2000
#define MODEL_ARCH_MAX_WIDTH 64
typedef enum { ARCH_MLP, ARCH_CNN, ARCH_MVCONV, ARCH_RESNET, ARCH_WRN } ArchKind;
typedef struct {
    ArchKind kind;
    int depth;      /* resnet: 6n+2 >= 8; wrn: 6n+4 >= 10 */
    int widen;      /* wrn: k >= 1 */
    int projection; /* resnet-<d>-proj */
} ArchName;

/* The one parser of the grammar above (the config's validation and model_create both call
 * it): returns 0 and fills out, or -1 with what is wrong in err (may be NULL): "a CIFAR ResNet
 * has depth 6n+2 ...", or "unknown model architecture 'x' (known: ...)". A name must fit
 * ModelSpec.arch. */
int model_arch_parse(const char *arch, ArchName *out, char *err, size_t err_size);

typedef struct {
    char arch[64];
    ArchName arch_name; /* arch, parsed: model_create fills it (and checkpoint readers, from
                         * the file's arch), so code asks arch_name.kind, never the string */
    int C, H, W;     /* input shape; mvconv: C = patches P, H = 1, W = D */
    int num_classes; /* K */
    int max_batch;   /* activations hold this many samples */
    int sum_of;      /* > 1: the train-the-sum control; 0 or 1: one net */
    int random_features; /* 1: every parameter but the last layer's is frozen */
    int hidden;          /* mlp and cnn hidden width (default 256 for mlp, 128 for cnn) */
    /* mvconv */
    int mv_filters;       /* M, filters per class */
    float srelu_q, srelu_rho;
    float init_std;       /* initial weight std */
    int64_t mv_noise_coords; /* > 0: sparse orth-noise input, this many trained noise coords */
    float mv_noise_sigma;
    int backend; /* ModelBackend: which kernels run the conv layers */
    int precision; /* Precision (precision.h): PRECISION_BF16 runs the convolutions and batch
                    * norm in bf16 on oneDNN and keeps the activations between them in bf16;
                    * the parameters, gradients and logits stay fp32 */
} ModelSpec;

typedef enum {
    MODEL_BACKEND_AUTO = 0, /* oneDNN when the build has it, else im2col + BLAS */
    MODEL_BACKEND_ONEDNN,   /* oneDNN (ed_fail when the build has none) */
    MODEL_BACKEND_BLAS      /* im2col + BLAS, the build without oneDNN and the tests' reference */
} ModelBackend;

typedef struct {
    ModelSpec spec;
    TensorTable tensors;
    float *params, *grads, *momentum; /* tensors.param_floats each */
    float *buffers;                   /* tensors.buffer_floats */
    size_t trainable_begin, trainable_end; /* the optimizer's range in the param arena */
    uint64_t init_seed, init_stream;       /* set by model_init (mvconv draws test-noise weights) */
    struct ModelPrivate *priv; /* the graph engine: ops, values, activation arenas, scratch,
                                  init recipes, profile (src/nn/nn_internal.h) */
} Model;

/* Builds the graph and tensor table and allocates every arena. Dies with a clear message on an
 * unknown arch or an input shape it cannot take (ed_fail: user error). */
Model *model_create(const ModelSpec *spec);
void model_free(Model *m);
/* Fills parameters and buffers deterministically from (seed, stream), as the torch reference
 * modules initialise themselves:
 *   mlp, cnn   PyTorch's default: weight and bias uniform +-1/sqrt(fan_in);
 *   resnet     (akamaster) conv and linear weights Kaiming-normal, fan_in, gain sqrt(2);
 *              linear bias PyTorch's default uniform +-1/sqrt(fan_in);
 *   wrn        (xternalz) conv weights Kaiming-normal, fan_out, gain sqrt(2); linear weight
 *              PyTorch's default, linear bias 0;
 *   BN         gamma 1, beta 0, running mean 0, var 1, num_batches_tracked 0;
 *   mvconv     weight and noise_weight N(0, init_std^2).
 * Tensor t of copy c (sum_of) draws from its own counter range of the stream: position
 * (c << 52) | (t << 40), so copy 0 of a sum_of model equals the single model with the same
 * seed and stream. mvconv noise weight [row, coord] is rng_normal_at(seed, stream,
 * 1<<63 | c<<56 | row<<36 | coord) * init_std, trained or not (both layouts are named once,
 * NN_POS_* in src/nn/nn_internal.h). Zeroes grads and momentum. */
void model_init(Model *m, uint64_t seed, uint64_t stream);
/* logits[B,K] for x[B, C*H*W]; sample_ids[B] are needed only by mvconv with orth noise (may be
 * NULL otherwise). training=1 uses batch statistics and updates BN running statistics.
 * The returned pointer is inside the activation arena: valid until the next forward. */
float *model_forward(Model *m, const float *x, const int64_t *sample_ids, int B, int training);
/* grads = d/dparams of sum(dlogits * logits) for the last forward (the trainable range of grads
 * is zeroed first; frozen parameters' gradients stay zero). dlogits[B,K], B of the last
 * forward. mvconv with orth noise reads the forward's sample_ids again: keep them valid. After
 * an eval-mode forward of a net with BatchNorm it stops (ED_CHECK): backward needs batch
 * statistics. */
void model_backward(Model *m, const float *dlogits);
/* Called by model_backward_notify after each op's backward: grads[from .. trainable_end) are
 * final for this step (no op still to run writes there). from never grows within a step; when
 * model_backward_notify returns, every gradient is final. It must not touch the model. */
typedef void (*GradReadyFn)(size_t from, void *ctx);
/* model_backward that reports, as it goes, which gradients are final (to start summing them
 * with other ranks while the rest of backward runs). ready may be NULL. */
void model_backward_notify(Model *m, const float *dlogits, GradReadyFn ready, void *ctx);
/* Number of parameters (all, trainable or not; buffers excluded). */
size_t model_param_count(const Model *m);
/* Number of trainable parameters (trainable_end - trainable_begin). */
size_t model_trainable_count(const Model *m);
/* Forward floating-point operations per sample (2 per multiply-add). */
double model_forward_flops(const Model *m);
/* Bytes held by the model's arenas (oneDNN's scratch arena included). */
size_t model_bytes(const Model *m);
/* "onednn" or "blas": the kernels this model's conv layers run on. */
const char *model_backend_name(const Model *m);
/* The instruction set the conv kernels use: oneDNN's ("avx512_core", "avx2", ...), or for the
 * BLAS kernels what this build's loops were compiled for ("avx512f", "avx2", "generic"). */
const char *model_backend_isa(const Model *m);
/* Per-op timing: when on, forward and backward accumulate wall time per op (clock_gettime,
 * no allocation). model_print_profile prints the table, sorted by time, and resets nothing. */
void model_set_profiling(Model *m, int on);
void model_print_profile(const Model *m, FILE *out);

#endif
