/* oneDNN kernels for the layers (dnnl_backend.h): primitive descriptors and primitives built
 * once per layer and batch size, tensors handed over by pointer (dnnl_memory_set_data_handle),
 * reorders between our plain NCHW / OIHW tensors and the layouts the primitives chose, and one
 * scratch arena per context for those layouts and the primitives' scratchpads. */
#include "dnnl_backend.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <stdlib.h>
#include <string.h>

#ifndef ED_HAVE_DNNL

int dnnl_backend_available(void) {
    return 0;
}
DnnlContext *dnnl_context_create(void) {
    return NULL;
}
void dnnl_context_free(DnnlContext *ctx) {
    (void)ctx;
}
size_t dnnl_context_bytes(const DnnlContext *ctx) {
    (void)ctx;
    return 0;
}
const char *dnnl_backend_isa(void) {
    return "none";
}
DnnlConv *dnnl_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                           int stride, int pad, int has_bias) {
    ED_DIE("dnnl_conv_create: this build has no oneDNN");
}
void dnnl_conv_free(DnnlConv *conv) {
    (void)conv;
}
void dnnl_conv_forward(DnnlConv *conv, float *out, const float *in, const float *weight,
                       const float *bias, int B) {
    ED_DIE("dnnl_conv_forward: this build has no oneDNN");
}
void dnnl_conv_backward(DnnlConv *conv, float *din, float *dweight, float *dbias,
                        const float *dout, const float *in, const float *weight, int B) {
    ED_DIE("dnnl_conv_backward: this build has no oneDNN");
}

#else

#include <oneapi/dnnl/dnnl.h>

#define DNNL_CHECK(call)                                                                           \
    do {                                                                                           \
        dnnl_status_t dnnl_st_ = (call);                                                           \
        if (dnnl_st_ != dnnl_success)                                                              \
            ed_die_at(__FILE__, __LINE__, __func__, "%s failed (oneDNN status %d)", #call,         \
                      (int)dnnl_st_);                                                              \
    } while (0)

enum { ARENA_ALIGN = 64, MAX_PLANS = 4 };

struct DnnlContext {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    char *arena; /* 64-byte aligned */
    size_t arena_bytes;
};

static size_t align_up(size_t n) {
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

int dnnl_backend_available(void) {
    return 1;
}

DnnlContext *dnnl_context_create(void) {
    DnnlContext *ctx = xcalloc(1, sizeof(*ctx));
    DNNL_CHECK(dnnl_engine_create(&ctx->engine, dnnl_cpu, 0));
    DNNL_CHECK(dnnl_stream_create(&ctx->stream, ctx->engine, dnnl_stream_default_flags));
    return ctx;
}

void dnnl_context_free(DnnlContext *ctx) {
    if (!ctx) return;
    dnnl_stream_destroy(ctx->stream);
    dnnl_engine_destroy(ctx->engine);
    free(ctx->arena);
    free(ctx);
}

size_t dnnl_context_bytes(const DnnlContext *ctx) {
    return ctx ? ctx->arena_bytes : 0;
}

/* Grows the arena to at least `bytes` (only while preparing a layer, never in a step). */
static void context_reserve(DnnlContext *ctx, size_t bytes) {
    if (bytes <= ctx->arena_bytes) return;
    free(ctx->arena);
    ctx->arena = (char *)xfloats(bytes / sizeof(float) + 1);
    ctx->arena_bytes = bytes;
}

const char *dnnl_backend_isa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "generic";
    }
}

/* ---- one tensor argument of a primitive ----
 * The engine's tensor (plain, `user`) and the primitive's view of it (`prim`). When their
 * layouts differ, or an output must be added to the user's tensor, the primitive reads or
 * writes a slot of the arena and a reorder moves the data (with a sum post-op: dst += src). */
typedef enum { ARG_IN, ARG_OUT, ARG_OUT_ADD } ArgRole;

typedef struct {
    int used;
    int direct;               /* the primitive works on the user's tensor itself */
    size_t offset;            /* of the slot in the arena (when !direct) */
    dnnl_memory_t user, prim; /* data handles set before each execution */
    dnnl_primitive_t reorder; /* user -> slot (ARG_IN) or slot -> user (ARG_OUT*), or NULL */
    size_t reorder_scratch;
} Arg;

/* An execution's arena layout: slots in order, then one scratchpad shared by everything that
 * runs in it (one primitive at a time). */
typedef struct {
    size_t next;
    size_t scratch_bytes;
} Layout;

/* dims: a full dnnl_dims_t (the prototypes declare DNNL_MAX_NDIMS entries) */
static dnnl_memory_desc_t plain_md(int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    dnnl_memory_desc_t md;
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&md, ndims, dims, dnnl_f32, tag));
    return md;
}

static dnnl_memory_desc_t any_md(int ndims, const dnnl_dims_t dims) {
    return plain_md(ndims, dims, dnnl_format_tag_any);
}

static size_t scratchpad_bytes(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

static dnnl_primitive_attr_t user_scratchpad_attr(int sum) {
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (sum) {
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

static void arg_init(Arg *a, DnnlContext *ctx, const dnnl_memory_desc_t *user_md,
                     const dnnl_memory_desc_t *prim_md, ArgRole role, Layout *lay) {
    memset(a, 0, sizeof(*a));
    a->used = 1;
    a->direct = role != ARG_OUT_ADD && dnnl_memory_desc_equal(user_md, prim_md);
    DNNL_CHECK(dnnl_memory_create(&a->user, user_md, ctx->engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&a->prim, prim_md, ctx->engine, DNNL_MEMORY_NONE));
    if (a->direct) return;
    a->offset = lay->next;
    lay->next += align_up(dnnl_memory_desc_get_size(prim_md));
    dnnl_primitive_attr_t attr = user_scratchpad_attr(role == ARG_OUT_ADD);
    dnnl_primitive_desc_t pd;
    if (role == ARG_IN)
        DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, user_md, ctx->engine, prim_md,
                                                      ctx->engine, attr));
    else
        DNNL_CHECK(dnnl_reorder_primitive_desc_create(&pd, prim_md, ctx->engine, user_md,
                                                      ctx->engine, attr));
    size_t s = scratchpad_bytes(pd);
    if (s > lay->scratch_bytes) lay->scratch_bytes = s;
    DNNL_CHECK(dnnl_primitive_create(&a->reorder, pd));
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
}

static void arg_free(Arg *a) {
    if (!a->used) return;
    dnnl_memory_destroy(a->user);
    dnnl_memory_destroy(a->prim);
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    memset(a, 0, sizeof(*a));
}

static void execute(DnnlContext *ctx, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args) {
    DNNL_CHECK(dnnl_primitive_execute(p, ctx->stream, nargs, args));
    DNNL_CHECK(dnnl_stream_wait(ctx->stream));
}

/* Points the argument at the user's tensor; an input is reordered into its slot now. */
static void arg_bind(DnnlContext *ctx, Arg *a, const void *user_ptr, dnnl_memory_t scratch) {
    DNNL_CHECK(dnnl_memory_set_data_handle(a->user, (void *)user_ptr));
    if (a->direct) {
        DNNL_CHECK(dnnl_memory_set_data_handle(a->prim, (void *)user_ptr));
        return;
    }
    DNNL_CHECK(dnnl_memory_set_data_handle(a->prim, ctx->arena + a->offset));
}

static void arg_pull(DnnlContext *ctx, Arg *a, dnnl_memory_t scratch) {
    if (a->direct) return;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->prim},
                               {DNNL_ARG_SCRATCHPAD, scratch}};
    execute(ctx, a->reorder, 3, args);
}

static void arg_push(DnnlContext *ctx, Arg *a, dnnl_memory_t scratch) {
    if (a->direct) return;
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, a->prim}, {DNNL_ARG_TO, a->user},
                               {DNNL_ARG_SCRATCHPAD, scratch}};
    execute(ctx, a->reorder, 3, args);
}

/* ---- convolution ---- */

typedef struct {
    int B;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    Arg f_src, f_wei, f_bias, f_dst;
    Arg d_diff_dst, d_wei, d_diff_src;
    Arg w_src, w_diff_dst, w_diff_wei, w_diff_bias;
    size_t fwd_scratch, bwd_scratch; /* offsets of the scratchpads */
    int share_diff_dst; /* both backward primitives read diff_dst in the same (reordered) layout */
    dnnl_memory_t scratch;           /* the scratchpad memory (handle set per execution) */
    size_t bytes;                    /* arena bytes this plan needs */
} ConvPlan;

struct DnnlConv {
    DnnlContext *ctx;
    int C, H, W, OC, KS, stride, pad, has_bias;
    ConvPlan plans[MAX_PLANS];
    int n_plans, next_evict;
};

static void conv_plan_build(DnnlConv *c, ConvPlan *p, int B) {
    DnnlContext *ctx = c->ctx;
    memset(p, 0, sizeof(*p));
    p->B = B;
    const int OH = (c->H + 2 * c->pad - c->KS) / c->stride + 1;
    const int OW = (c->W + 2 * c->pad - c->KS) / c->stride + 1;
    dnnl_dims_t src_dims = {B, c->C, c->H, c->W}, dst_dims = {B, c->OC, OH, OW};
    dnnl_dims_t wei_dims = {c->OC, c->C, c->KS, c->KS}, bias_dims = {c->OC};
    dnnl_dims_t strides = {c->stride, c->stride}, pads = {c->pad, c->pad};
    dnnl_memory_desc_t src_u = plain_md(4, src_dims, dnnl_nchw);
    dnnl_memory_desc_t dst_u = plain_md(4, dst_dims, dnnl_nchw);
    dnnl_memory_desc_t wei_u = plain_md(4, wei_dims, dnnl_oihw);
    dnnl_memory_desc_t bias_u = plain_md(1, bias_dims, dnnl_x);
    dnnl_memory_desc_t src_a = any_md(4, src_dims), dst_a = any_md(4, dst_dims);
    dnnl_memory_desc_t wei_a = any_md(4, wei_dims);
    dnnl_primitive_attr_t attr = user_scratchpad_attr(0);

    /* forward (training: the backward primitives are built against it) */
    dnnl_convolution_desc_t fd;
    DNNL_CHECK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                                  dnnl_convolution_direct, &src_a, &wei_a,
                                                  c->has_bias ? &bias_u : NULL, &dst_a, strides,
                                                  pads, pads));
    dnnl_primitive_desc_t fpd;
    DNNL_CHECK(dnnl_primitive_desc_create(&fpd, &fd, attr, ctx->engine, NULL));
    Layout fl = {0, scratchpad_bytes(fpd)};
    arg_init(&p->f_src, ctx, &src_u, dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0),
             ARG_IN, &fl);
    arg_init(&p->f_wei, ctx, &wei_u,
             dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 0), ARG_IN, &fl);
    if (c->has_bias)
        arg_init(&p->f_bias, ctx, &bias_u,
                 dnnl_primitive_desc_query_md(fpd, dnnl_query_weights_md, 1), ARG_IN, &fl);
    arg_init(&p->f_dst, ctx, &dst_u, dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0),
             ARG_OUT, &fl);
    p->fwd_scratch = fl.next;
    size_t fwd_bytes = fl.next + align_up(fl.scratch_bytes);
    DNNL_CHECK(dnnl_primitive_create(&p->fwd, fpd));

    /* backward data: diff_src = conv^T(diff_dst, weight), added to din */
    dnnl_convolution_desc_t dd;
    DNNL_CHECK(dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, &src_a,
                                                        &wei_a, &dst_a, strides, pads, pads));
    dnnl_primitive_desc_t dpd;
    DNNL_CHECK(dnnl_primitive_desc_create(&dpd, &dd, attr, ctx->engine, fpd));
    /* backward weights: diff_weight (and diff_bias) from src and diff_dst, added to the grads */
    dnnl_convolution_desc_t wd;
    DNNL_CHECK(dnnl_convolution_backward_weights_desc_init(
        &wd, dnnl_convolution_direct, &src_a, &wei_a, c->has_bias ? &bias_u : NULL, &dst_a,
        strides, pads, pads));
    dnnl_primitive_desc_t wpd;
    DNNL_CHECK(dnnl_primitive_desc_create(&wpd, &wd, attr, ctx->engine, fpd));
    size_t ds = scratchpad_bytes(dpd), ws = scratchpad_bytes(wpd);
    Layout bl = {0, ds > ws ? ds : ws};
    arg_init(&p->w_src, ctx, &src_u, dnnl_primitive_desc_query_md(wpd, dnnl_query_src_md, 0),
             ARG_IN, &bl);
    arg_init(&p->w_diff_dst, ctx, &dst_u,
             dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0), ARG_IN, &bl);
    arg_init(&p->w_diff_wei, ctx, &wei_u,
             dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 0), ARG_OUT_ADD, &bl);
    if (c->has_bias)
        arg_init(&p->w_diff_bias, ctx, &bias_u,
                 dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_weights_md, 1), ARG_OUT_ADD,
                 &bl);
    arg_init(&p->d_diff_dst, ctx, &dst_u,
             dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_dst_md, 0), ARG_IN, &bl);
    arg_init(&p->d_wei, ctx, &wei_u, dnnl_primitive_desc_query_md(dpd, dnnl_query_weights_md, 0),
             ARG_IN, &bl);
    arg_init(&p->d_diff_src, ctx, &src_u,
             dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_src_md, 0), ARG_OUT_ADD, &bl);
    p->share_diff_dst = !p->w_diff_dst.direct && !p->d_diff_dst.direct &&
                        dnnl_memory_desc_equal(
                            dnnl_primitive_desc_query_md(wpd, dnnl_query_diff_dst_md, 0),
                            dnnl_primitive_desc_query_md(dpd, dnnl_query_diff_dst_md, 0));
    p->bwd_scratch = bl.next;
    size_t bwd_bytes = bl.next + align_up(bl.scratch_bytes);
    DNNL_CHECK(dnnl_primitive_create(&p->bwd_data, dpd));
    DNNL_CHECK(dnnl_primitive_create(&p->bwd_weights, wpd));

    dnnl_memory_desc_t byte_md;
    dnnl_dims_t scratch_dims = {1};
    DNNL_CHECK(dnnl_memory_desc_init_by_tag(&byte_md, 1, scratch_dims, dnnl_u8, dnnl_x));
    DNNL_CHECK(dnnl_memory_create(&p->scratch, &byte_md, ctx->engine, DNNL_MEMORY_NONE));
    p->bytes = fwd_bytes > bwd_bytes ? fwd_bytes : bwd_bytes;
    context_reserve(ctx, p->bytes);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_attr_destroy(attr);
}

static void conv_plan_free(ConvPlan *p) {
    dnnl_primitive_destroy(p->fwd);
    dnnl_primitive_destroy(p->bwd_data);
    dnnl_primitive_destroy(p->bwd_weights);
    Arg *args[] = {&p->f_src,      &p->f_wei,      &p->f_bias,      &p->f_dst,
                   &p->d_diff_dst, &p->d_wei,      &p->d_diff_src,  &p->w_src,
                   &p->w_diff_dst, &p->w_diff_wei, &p->w_diff_bias};
    for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) arg_free(args[i]);
    dnnl_memory_destroy(p->scratch);
}

static ConvPlan *conv_plan(DnnlConv *c, int B) {
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].B == B) return &c->plans[i];
    ConvPlan *p;
    if (c->n_plans < MAX_PLANS) {
        p = &c->plans[c->n_plans++];
    } else { /* keep plans[0], the max_batch one; replace the others in turn */
        p = &c->plans[1 + c->next_evict];
        c->next_evict = (c->next_evict + 1) % (MAX_PLANS - 1);
        conv_plan_free(p);
    }
    conv_plan_build(c, p, B);
    return p;
}

DnnlConv *dnnl_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                           int stride, int pad, int has_bias) {
    DnnlConv *c = xcalloc(1, sizeof(*c));
    *c = (DnnlConv){.ctx = ctx,
                    .C = C,
                    .H = H,
                    .W = W,
                    .OC = OC,
                    .KS = KS,
                    .stride = stride,
                    .pad = pad,
                    .has_bias = has_bias};
    conv_plan(c, max_batch);
    return c;
}

void dnnl_conv_free(DnnlConv *c) {
    if (!c) return;
    for (int i = 0; i < c->n_plans; i++) conv_plan_free(&c->plans[i]);
    free(c);
}

void dnnl_conv_forward(DnnlConv *c, float *out, const float *in, const float *weight,
                       const float *bias, int B) {
    DnnlContext *ctx = c->ctx;
    ConvPlan *p = conv_plan(c, B);
    DNNL_CHECK(dnnl_memory_set_data_handle(p->scratch, ctx->arena + p->fwd_scratch));
    arg_bind(ctx, &p->f_src, in, p->scratch);
    arg_bind(ctx, &p->f_wei, weight, p->scratch);
    arg_bind(ctx, &p->f_dst, out, p->scratch);
    arg_pull(ctx, &p->f_src, p->scratch);
    arg_pull(ctx, &p->f_wei, p->scratch);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->f_src.prim},
                               {DNNL_ARG_WEIGHTS, p->f_wei.prim},
                               {DNNL_ARG_DST, p->f_dst.prim},
                               {DNNL_ARG_SCRATCHPAD, p->scratch},
                               {DNNL_ARG_BIAS, NULL}};
    int nargs = 4;
    if (c->has_bias) {
        ED_CHECK(bias, "conv built with a bias, called without");
        arg_bind(ctx, &p->f_bias, bias, p->scratch);
        arg_pull(ctx, &p->f_bias, p->scratch);
        args[nargs++].memory = p->f_bias.prim;
    }
    execute(ctx, p->fwd, nargs, args);
    arg_push(ctx, &p->f_dst, p->scratch);
}

void dnnl_conv_backward(DnnlConv *c, float *din, float *dweight, float *dbias,
                        const float *dout, const float *in, const float *weight, int B) {
    DnnlContext *ctx = c->ctx;
    ConvPlan *p = conv_plan(c, B);
    DNNL_CHECK(dnnl_memory_set_data_handle(p->scratch, ctx->arena + p->bwd_scratch));
    if (dweight || dbias) {
        ED_CHECK(dweight && (dbias || !c->has_bias),
                 "conv backward: the bias gradient comes with the weight's");
        arg_bind(ctx, &p->w_src, in, p->scratch);
        arg_bind(ctx, &p->w_diff_dst, dout, p->scratch);
        arg_bind(ctx, &p->w_diff_wei, dweight, p->scratch);
        arg_pull(ctx, &p->w_src, p->scratch);
        arg_pull(ctx, &p->w_diff_dst, p->scratch);
        dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->w_src.prim},
                                   {DNNL_ARG_DIFF_DST, p->w_diff_dst.prim},
                                   {DNNL_ARG_DIFF_WEIGHTS, p->w_diff_wei.prim},
                                   {DNNL_ARG_SCRATCHPAD, p->scratch},
                                   {DNNL_ARG_DIFF_BIAS, NULL}};
        int nargs = 4;
        if (c->has_bias) {
            arg_bind(ctx, &p->w_diff_bias, dbias, p->scratch);
            args[nargs++].memory = p->w_diff_bias.prim;
        }
        execute(ctx, p->bwd_weights, nargs, args);
        arg_push(ctx, &p->w_diff_wei, p->scratch);
        if (c->has_bias) arg_push(ctx, &p->w_diff_bias, p->scratch);
    }
    if (din) {
        if (dweight && p->share_diff_dst) { /* reordered above already */
            DNNL_CHECK(dnnl_memory_set_data_handle(p->d_diff_dst.prim,
                                                   ctx->arena + p->w_diff_dst.offset));
        } else {
            arg_bind(ctx, &p->d_diff_dst, dout, p->scratch);
            arg_pull(ctx, &p->d_diff_dst, p->scratch);
        }
        arg_bind(ctx, &p->d_wei, weight, p->scratch);
        arg_bind(ctx, &p->d_diff_src, din, p->scratch);
        arg_pull(ctx, &p->d_wei, p->scratch);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->d_diff_dst.prim},
                                   {DNNL_ARG_WEIGHTS, p->d_wei.prim},
                                   {DNNL_ARG_DIFF_SRC, p->d_diff_src.prim},
                                   {DNNL_ARG_SCRATCHPAD, p->scratch}};
        execute(ctx, p->bwd_data, 4, args);
        arg_push(ctx, &p->d_diff_src, p->scratch);
    }
}

#endif /* ED_HAVE_DNNL */
