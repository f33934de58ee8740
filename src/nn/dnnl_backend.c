/* oneDNN kernels for the layers (dnnl_backend.h): primitive descriptors and primitives built
 * once per layer and batch size, tensors handed over by pointer (dnnl_memory_set_data_handle),
 * reorders between our plain NCHW / OIHW tensors and the layouts the primitives chose, and one
 * scratch arena per context for those layouts and the primitives' scratchpads. */
#include "dnnl_backend.h"

#include "conv_wgrad.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/threads.h"

#include <stdio.h>
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
float *dnnl_context_floats(DnnlContext *ctx, int slot, size_t n) {
    ED_DIE("dnnl_context_floats: this build has no oneDNN");
}
const char *dnnl_backend_isa(void) {
    return "none";
}
int dnnl_backend_lanes(void) {
    return 1;
}
int dnnl_backend_bf16_conv(char *impl, size_t impl_size) {
    if (impl_size) impl[0] = '\0';
    return 0;
}
DnnlConv *dnnl_conv_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int OC, int KS,
                           int stride, int pad, int has_bias, DnnlAct in_act, DnnlAct out_act,
                           int bf16) {
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
                        const float *dout, const float *in, const float *weight, int B,
                        int din_overwrite) {
    ED_DIE("dnnl_conv_backward: this build has no oneDNN");
}
DnnlBn *dnnl_bn_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int lanes, int relu,
                       int bf16) {
    ED_DIE("dnnl_bn_create: this build has no oneDNN");
}
void dnnl_bn_free(DnnlBn *bn) {
    (void)bn;
}
void dnnl_bn_forward(DnnlBn *bn, float *out, float *mean, float *var, const float *in,
                     const float *gamma, const float *beta, int B, int training, float eps) {
    ED_DIE("dnnl_bn_forward: this build has no oneDNN");
}
void dnnl_bn_backward(DnnlBn *bn, float *din, float *dgamma, float *dbeta, const float *dout,
                      const float *in, const float *gamma, const float *beta, const float *mean,
                      const float *var, int B, float eps, int din_overwrite, float *tmp) {
    ED_DIE("dnnl_bn_backward: this build has no oneDNN");
}

#else

#include "dnnl_api.h"

#define DNNL_CHECK(call)                                                                           \
    do {                                                                                           \
        dnnl_status_t dnnl_st_ = (call);                                                           \
        if (dnnl_st_ != dnnl_success)                                                              \
            ed_die_at(__FILE__, __LINE__, __func__, "%s failed (oneDNN status %d)", #call,         \
                      (int)dnnl_st_);                                                              \
    } while (0)

/* MAX_PLANS: primitives kept per layer, one per batch size seen. A job sees up to five (the
 * global batch or its shard, the last training batch or its shard, the last evaluation chunk);
 * eight keep every one built after its first use, so no plan is rebuilt (allocating) each
 * epoch. */
enum { ARENA_ALIGN = 64, MAX_PLANS = 8, FLOAT_SLOTS = 4 };

struct DnnlContext {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    char *arena; /* 64-byte aligned */
    size_t arena_bytes;
    float *floats[FLOAT_SLOTS]; /* dnnl_context_floats */
    size_t floats_n[FLOAT_SLOTS];
};

static size_t align_up(size_t n) {
    return (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
}

int dnnl_backend_available(void) {
    return 1;
}

int dnnl_backend_lanes(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core) return 16;
    if ((isa & dnnl_cpu_isa_avx) == dnnl_cpu_isa_avx) return 8;
    return 1;
}

static dnnl_format_tag_t lanes_tag(int lanes) {
    switch (lanes) {
    case 1: return dnnl_nchw;
    case 8: return dnnl_nChw8c;
    case 16: return dnnl_nChw16c;
    }
    ED_DIE("no oneDNN layout with %d channel lanes", lanes);
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
    for (int i = 0; i < FLOAT_SLOTS; i++) free(ctx->floats[i]);
    free(ctx);
}

size_t dnnl_context_bytes(const DnnlContext *ctx) {
    if (!ctx) return 0;
    size_t bytes = ctx->arena_bytes;
    for (int i = 0; i < FLOAT_SLOTS; i++) bytes += ctx->floats_n[i] * sizeof(float);
    return bytes;
}

float *dnnl_context_floats(DnnlContext *ctx, int slot, size_t n) {
    ED_CHECK(slot >= 0 && slot < FLOAT_SLOTS, "no float slot %d in a oneDNN context", slot);
    if (n > ctx->floats_n[slot]) {
        free(ctx->floats[slot]);
        ctx->floats[slot] = xfloats(n);
        ctx->floats_n[slot] = n;
    }
    return ctx->floats[slot];
}

/* Grows the arena to at least `bytes` (only while preparing a layer, never in a step). */
static void context_reserve(DnnlContext *ctx, size_t bytes) {
    if (bytes <= ctx->arena_bytes) return;
    free(ctx->arena);
    ctx->arena = (char *)xfloats(bytes / sizeof(float) + 1);
    ctx->arena_bytes = bytes;
}

const char *dnnl_backend_isa(void) {
    return isa_name(dnnl_get_effective_cpu_isa());
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

/* dims: a full dnnl_dims_t (the prototypes declare DNNL_MAX_NDIMS entries). Free with md_free. */
static EdMd plain_md(int ndims, const dnnl_dims_t dims, dnnl_format_tag_t tag) {
    EdMd md;
    DNNL_CHECK(md_init(&md, ndims, dims, dnnl_f32, tag));
    return md;
}

/* An activation as the engine stores it (layout and element type). */
static EdMd act_md(const dnnl_dims_t dims, DnnlAct act) {
    EdMd md;
    DNNL_CHECK(md_init(&md, 4, dims, act.bf16 ? dnnl_bf16 : dnnl_f32, lanes_tag(act.lanes)));
    return md;
}

/* A tensor of type dt in whatever layout the primitive picks. */
static EdMd any_md(int ndims, const dnnl_dims_t dims, dnnl_data_type_t dt) {
    EdMd md;
    DNNL_CHECK(md_init(&md, ndims, dims, dt, dnnl_format_tag_any));
    return md;
}

static MdRef query_md(const_dnnl_primitive_desc_t pd, dnnl_query_t what, int index) {
    return dnnl_primitive_desc_query_md(pd, what, index);
}

static size_t scratchpad_bytes(const_dnnl_primitive_desc_t pd) {
    MdRef md = query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

/* A 1-byte u8 memory whose handle is pointed at a scratchpad before each execution. */
static dnnl_memory_t scratch_memory(DnnlContext *ctx) {
    dnnl_dims_t one = {1};
    EdMd md;
    DNNL_CHECK(md_init(&md, 1, one, dnnl_u8, dnnl_x));
    dnnl_memory_t mem;
    DNNL_CHECK(dnnl_memory_create(&mem, md_ref(&md), ctx->engine, DNNL_MEMORY_NONE));
    md_free(&md);
    return mem;
}

static dnnl_primitive_attr_t user_scratchpad_attr(int sum) {
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (sum) {
        dnnl_post_ops_t po;
        DNNL_CHECK(dnnl_post_ops_create(&po));
        DNNL_CHECK(post_ops_sum(po));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_post_ops_destroy(po);
    }
    return attr;
}

static void arg_init(Arg *a, DnnlContext *ctx, MdRef user_md, MdRef prim_md, ArgRole role,
                     Layout *lay) {
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

/* A backward's diff_src, both ways it reaches our din: added to it (add) or written over it
 * (over); the backward picks one per call (din_overwrite). */
static void din_args_init(Arg *add, Arg *over, DnnlContext *ctx, MdRef user_md, MdRef prim_md,
                          Layout *lay) {
    arg_init(add, ctx, user_md, prim_md, ARG_OUT_ADD, lay);
    arg_init(over, ctx, user_md, prim_md, ARG_OUT, lay);
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

/* 1 when oneDNN creates a small bf16 convolution here, with its implementation's name. */
static int bf16_conv_probe(char *impl, size_t impl_size) {
    if (impl_size) impl[0] = '\0';
    dnnl_engine_t eng;
    DNNL_CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    dnnl_dims_t src_dims = {2, 32, 8, 8}, wei_dims = {32, 32, 3, 3};
    dnnl_dims_t strides = {1, 1}, pads = {1, 1};
    EdMd src = any_md(4, src_dims, dnnl_bf16), wei = any_md(4, wei_dims, dnnl_bf16);
    dnnl_primitive_desc_t pd = NULL;
    int ok = pd_conv_forward(&pd, eng, md_ref(&src), md_ref(&wei), NULL, md_ref(&src), strides,
                             pads, NULL) == dnnl_success;
    if (ok) {
        const char *name = NULL;
        if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
            name && impl_size)
            snprintf(impl, impl_size, "%s", name);
        dnnl_primitive_desc_destroy(pd);
    }
    md_free(&src);
    md_free(&wei);
    dnnl_engine_destroy(eng);
    return ok;
}

/* Asks oneDNN once per process (every model_create with bf16 checks it). */
int dnnl_backend_bf16_conv(char *impl, size_t impl_size) {
    static int known = -1;
    static char known_impl[128];
    if (known < 0) known = bf16_conv_probe(known_impl, sizeof(known_impl));
    if (impl_size) snprintf(impl, impl_size, "%s", known_impl);
    return known;
}

typedef struct {
    int B;
    dnnl_primitive_t fwd, bwd_data, bwd_weights;
    Arg f_src, f_wei, f_bias, f_dst;
    Arg d_diff_dst, d_wei, d_diff_src, d_diff_src_over;
    Arg w_src, w_diff_dst, w_diff_wei, w_diff_bias;
    size_t fwd_scratch, bwd_scratch; /* offsets of the scratchpads */
    size_t wgrad_scratch; /* offset of conv_wgrad_1ch's or conv_wgrad3's partial sums */
    int share_diff_dst; /* both backward primitives read diff_dst in the same (reordered) layout */
    dnnl_memory_t scratch;           /* the scratchpad memory (handle set per execution) */
    size_t bytes;                    /* arena bytes this plan needs */
} ConvPlan;

struct DnnlConv {
    DnnlContext *ctx;
    int C, H, W, OC, KS, stride, pad, has_bias;
    DnnlAct in_act, out_act; /* how the engine stores in and out (their gradients: fp32) */
    int bf16;                /* the primitives compute in bf16 (dnnl_conv_create) */
    /* the weight gradient comes from conv_wgrad_1ch (WGRAD_1CH) or conv_wgrad3 (WGRAD_3X3), not
     * a primitive (WGRAD_DNNL) */
    enum { WGRAD_DNNL, WGRAD_1CH, WGRAD_3X3 } own_wgrad;
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
    /* src_v, dst_v: the activations; src_u, dst_u: their gradients (fp32, same layouts) */
    EdMd src_v = act_md(src_dims, c->in_act), dst_v = act_md(dst_dims, c->out_act);
    EdMd src_u = plain_md(4, src_dims, lanes_tag(c->in_act.lanes));
    EdMd dst_u = plain_md(4, dst_dims, lanes_tag(c->out_act.lanes));
    EdMd wei_u = plain_md(4, wei_dims, dnnl_oihw);
    EdMd bias_u = plain_md(1, bias_dims, dnnl_x);
    /* bf16: the convolutions read and write bf16 (our fp32 tensors reordered into arena slots
     * on the way in and out), with fp32 bias and fp32 weight gradients (wei_g) */
    const dnnl_data_type_t dt = c->bf16 ? dnnl_bf16 : dnnl_f32;
    EdMd src_a = any_md(4, src_dims, dt), dst_a = any_md(4, dst_dims, dt);
    EdMd wei_a = any_md(4, wei_dims, dt), wei_g = any_md(4, wei_dims, dnnl_f32);
    MdRef bias = c->has_bias ? md_ref(&bias_u) : NULL;
    dnnl_primitive_attr_t attr = user_scratchpad_attr(0);

    /* forward (training: the backward primitives are built against it) */
    dnnl_primitive_desc_t fpd;
    DNNL_CHECK(pd_conv_forward(&fpd, ctx->engine, md_ref(&src_a), md_ref(&wei_a), bias,
                               md_ref(&dst_a), strides, pads, attr));
    Layout fl = {0, scratchpad_bytes(fpd)};
    arg_init(&p->f_src, ctx, md_ref(&src_v), query_md(fpd, dnnl_query_src_md, 0), ARG_IN, &fl);
    arg_init(&p->f_wei, ctx, md_ref(&wei_u), query_md(fpd, dnnl_query_weights_md, 0), ARG_IN,
             &fl);
    if (c->has_bias)
        arg_init(&p->f_bias, ctx, bias, query_md(fpd, dnnl_query_weights_md, 1), ARG_IN, &fl);
    arg_init(&p->f_dst, ctx, md_ref(&dst_v), query_md(fpd, dnnl_query_dst_md, 0), ARG_OUT, &fl);
    p->fwd_scratch = fl.next;
    size_t fwd_bytes = fl.next + align_up(fl.scratch_bytes);
    DNNL_CHECK(dnnl_primitive_create(&p->fwd, fpd));

    /* backward data: diff_src = conv^T(diff_dst, weight), added to din */
    dnnl_primitive_desc_t dpd;
    DNNL_CHECK(pd_conv_backward_data(&dpd, ctx->engine, md_ref(&src_a), md_ref(&wei_a),
                                     md_ref(&dst_a), strides, pads, fpd, attr));
    /* backward weights: diff_weight (and diff_bias) from src and diff_dst, added to the grads;
     * or conv_wgrad_1ch's partial sums */
    dnnl_primitive_desc_t wpd = NULL;
    if (!c->own_wgrad)
        DNNL_CHECK(pd_conv_backward_weights(&wpd, ctx->engine, md_ref(&src_a), md_ref(&wei_g),
                                            bias, md_ref(&dst_a), strides, pads, fpd, attr));
    size_t ds = scratchpad_bytes(dpd), ws = wpd ? scratchpad_bytes(wpd) : 0;
    Layout bl = {0, ds > ws ? ds : ws};
    if (wpd) {
        arg_init(&p->w_src, ctx, md_ref(&src_v), query_md(wpd, dnnl_query_src_md, 0), ARG_IN,
                 &bl);
        arg_init(&p->w_diff_dst, ctx, md_ref(&dst_u), query_md(wpd, dnnl_query_diff_dst_md, 0),
                 ARG_IN, &bl);
        arg_init(&p->w_diff_wei, ctx, md_ref(&wei_u),
                 query_md(wpd, dnnl_query_diff_weights_md, 0), ARG_OUT_ADD, &bl);
        if (c->has_bias)
            arg_init(&p->w_diff_bias, ctx, bias, query_md(wpd, dnnl_query_diff_weights_md, 1),
                     ARG_OUT_ADD, &bl);
    } else {
        p->wgrad_scratch = bl.next;
        const size_t floats = c->own_wgrad == WGRAD_1CH ? conv_wgrad_1ch_scratch(B, c->OC, c->KS)
                                                        : conv_wgrad3_scratch(B, c->C, c->OC);
        bl.next += align_up(floats * sizeof(float));
    }
    arg_init(&p->d_diff_dst, ctx, md_ref(&dst_u), query_md(dpd, dnnl_query_diff_dst_md, 0),
             ARG_IN, &bl);
    arg_init(&p->d_wei, ctx, md_ref(&wei_u), query_md(dpd, dnnl_query_weights_md, 0), ARG_IN,
             &bl);
    din_args_init(&p->d_diff_src, &p->d_diff_src_over, ctx, md_ref(&src_u),
                  query_md(dpd, dnnl_query_diff_src_md, 0), &bl);
    p->share_diff_dst = wpd && !p->w_diff_dst.direct && !p->d_diff_dst.direct &&
                        dnnl_memory_desc_equal(query_md(wpd, dnnl_query_diff_dst_md, 0),
                                               query_md(dpd, dnnl_query_diff_dst_md, 0));
    p->bwd_scratch = bl.next;
    size_t bwd_bytes = bl.next + align_up(bl.scratch_bytes);
    DNNL_CHECK(dnnl_primitive_create(&p->bwd_data, dpd));
    if (wpd) DNNL_CHECK(dnnl_primitive_create(&p->bwd_weights, wpd));
    p->scratch = scratch_memory(ctx);
    EdMd *mds[] = {&src_v, &dst_v, &src_u, &dst_u, &wei_u,
                   &bias_u, &src_a, &dst_a, &wei_a, &wei_g};
    for (size_t i = 0; i < sizeof(mds) / sizeof(mds[0]); i++) md_free(mds[i]);
    p->bytes = fwd_bytes > bwd_bytes ? fwd_bytes : bwd_bytes;
    context_reserve(ctx, p->bytes);
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_attr_destroy(attr);
}

static void conv_plan_free(ConvPlan *p) {
    dnnl_primitive_destroy(p->fwd);
    dnnl_primitive_destroy(p->bwd_data);
    if (p->bwd_weights) dnnl_primitive_destroy(p->bwd_weights);
    Arg *args[] = {&p->f_src,      &p->f_wei,      &p->f_bias,      &p->f_dst,
                   &p->d_diff_dst, &p->d_wei,      &p->d_diff_src,  &p->w_src,
                   &p->w_diff_dst, &p->w_diff_wei, &p->w_diff_bias, &p->d_diff_src_over};
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
                           int stride, int pad, int has_bias, DnnlAct in_act, DnnlAct out_act,
                           int bf16) {
    ED_CHECK(bf16 || (!in_act.bf16 && !out_act.bf16), "bf16 activations need a bf16 conv");
    DnnlConv *c = xcalloc(1, sizeof(*c));
    *c = (DnnlConv){.ctx = ctx,
                    .C = C,
                    .H = H,
                    .W = W,
                    .OC = OC,
                    .KS = KS,
                    .stride = stride,
                    .pad = pad,
                    .has_bias = has_bias,
                    .in_act = in_act,
                    .out_act = out_act,
                    .bf16 = bf16};
    /* fp32 with one plain input channel (an image), or 3x3 between 8-lane blocks: conv_wgrad.h */
    if (!bf16 && C == 1 && in_act.lanes == 1 && conv_wgrad_1ch_fits(W, KS, pad, out_act.lanes))
        c->own_wgrad = WGRAD_1CH;
    else if (!bf16 && in_act.lanes == out_act.lanes &&
             conv_wgrad3_fits(C, OC, KS, pad, in_act.lanes))
        c->own_wgrad = WGRAD_3X3;
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

/* dweight, dbias += the adjoints: from conv_wgrad_1ch, or the backward-weights primitive */
static void conv_weights_grad(DnnlConv *c, ConvPlan *p, float *dweight, float *dbias,
                              const float *dout, const float *in, int B) {
    DnnlContext *ctx = c->ctx;
    ED_CHECK(dweight && (dbias || !c->has_bias),
             "conv backward: the bias gradient comes with the weight's");
    float *scratch = (float *)(ctx->arena + p->wgrad_scratch);
    if (c->own_wgrad == WGRAD_1CH) {
        conv_wgrad_1ch(dweight, c->has_bias ? dbias : NULL, dout, in, B, c->H, c->W, c->OC, c->KS,
                       c->stride, c->pad, c->out_act.lanes, scratch);
        return;
    }
    if (c->own_wgrad == WGRAD_3X3) {
        conv_wgrad3(dweight, c->has_bias ? dbias : NULL, dout, in, B, c->C, c->H, c->W, c->OC,
                    c->stride, c->pad, scratch);
        return;
    }
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

void dnnl_conv_backward(DnnlConv *c, float *din, float *dweight, float *dbias,
                        const float *dout, const float *in, const float *weight, int B,
                        int din_overwrite) {
    DnnlContext *ctx = c->ctx;
    ConvPlan *p = conv_plan(c, B);
    DNNL_CHECK(dnnl_memory_set_data_handle(p->scratch, ctx->arena + p->bwd_scratch));
    if (dweight || dbias) conv_weights_grad(c, p, dweight, dbias, dout, in, B);
    if (din) {
        if (dweight && p->share_diff_dst) { /* reordered above already */
            DNNL_CHECK(dnnl_memory_set_data_handle(p->d_diff_dst.prim,
                                                   ctx->arena + p->w_diff_dst.offset));
        } else {
            arg_bind(ctx, &p->d_diff_dst, dout, p->scratch);
            arg_pull(ctx, &p->d_diff_dst, p->scratch);
        }
        Arg *dsrc = din_overwrite ? &p->d_diff_src_over : &p->d_diff_src;
        arg_bind(ctx, &p->d_wei, weight, p->scratch);
        arg_bind(ctx, dsrc, din, p->scratch);
        arg_pull(ctx, &p->d_wei, p->scratch);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_DST, p->d_diff_dst.prim},
                                   {DNNL_ARG_WEIGHTS, p->d_wei.prim},
                                   {DNNL_ARG_DIFF_SRC, dsrc->prim},
                                   {DNNL_ARG_SCRATCHPAD, p->scratch}};
        execute(ctx, p->bwd_data, 4, args);
        arg_push(ctx, dsrc, p->scratch);
    }
}

/* ---- batch normalization ---- */

typedef struct {
    int B;
    dnnl_primitive_t fwd_train, fwd_eval, bwd;
    dnnl_memory_t src, dst, scale, shift, mean, var, ws, dsrc, ddst, dscale, dshift, scratch;
    /* bf16: our fp32 gradients reordered to the primitive's bf16 ones and back (added to din,
     * or written over it); the backward scratchpad after their slots */
    Arg g_ddst, g_dsrc_add, g_dsrc_over;
    size_t bwd_scratch;
} BnPlan;

struct DnnlBn {
    DnnlContext *ctx;
    int C, H, W, lanes, relu, bf16;
    unsigned flags;
    float *dscale_tmp;   /* [2C]: diff scale, diff shift (the primitive overwrites them) */
    char *workspace;     /* the fused ReLU's mask, for max_batch */
    size_t ws_bytes;
    BnPlan plans[MAX_PLANS];
    int n_plans, next_evict;
};

static dnnl_memory_t bn_mem(DnnlContext *ctx, const_dnnl_primitive_desc_t pd, dnnl_query_t q) {
    dnnl_memory_t mem;
    DNNL_CHECK(dnnl_memory_create(&mem, query_md(pd, q, 0), ctx->engine, DNNL_MEMORY_NONE));
    return mem;
}

static void bn_plan_build(DnnlBn *bn, BnPlan *p, int B, float eps) {
    DnnlContext *ctx = bn->ctx;
    memset(p, 0, sizeof(*p));
    p->B = B;
    dnnl_dims_t dims = {B, bn->C, bn->H, bn->W};
    EdMd data = act_md(dims, (DnnlAct){bn->lanes, bn->bf16});
    dnnl_primitive_attr_t attr = user_scratchpad_attr(0);
    dnnl_primitive_desc_t fpd, epd, bpd;
    DNNL_CHECK(pd_bn_forward(&fpd, ctx->engine, dnnl_forward_training, md_ref(&data), eps,
                             bn->flags, attr));
    DNNL_CHECK(pd_bn_forward(&epd, ctx->engine, dnnl_forward_inference, md_ref(&data), eps,
                             bn->flags | dnnl_use_global_stats, attr));
    DNNL_CHECK(pd_bn_backward(&bpd, ctx->engine, md_ref(&data), md_ref(&data), eps, bn->flags,
                              fpd, attr));
    md_free(&data);
    size_t need = scratchpad_bytes(fpd);
    if (scratchpad_bytes(epd) > need) need = scratchpad_bytes(epd);
    if (scratchpad_bytes(bpd) > need) need = scratchpad_bytes(bpd);
    if (bn->bf16) {
        EdMd grad = plain_md(4, dims, lanes_tag(bn->lanes));
        Layout bl = {0, scratchpad_bytes(bpd)};
        arg_init(&p->g_ddst, ctx, md_ref(&grad), query_md(bpd, dnnl_query_diff_dst_md, 0), ARG_IN,
                 &bl);
        din_args_init(&p->g_dsrc_add, &p->g_dsrc_over, ctx, md_ref(&grad),
                      query_md(bpd, dnnl_query_diff_src_md, 0), &bl);
        md_free(&grad);
        p->bwd_scratch = bl.next;
        const size_t bwd_bytes = bl.next + align_up(bl.scratch_bytes);
        if (bwd_bytes > need) need = bwd_bytes;
    }
    context_reserve(ctx, need);
    p->src = bn_mem(ctx, fpd, dnnl_query_src_md);
    p->dst = bn_mem(ctx, fpd, dnnl_query_dst_md);
    dnnl_dims_t cdims = {bn->C};
    EdMd cmd = plain_md(1, cdims, dnnl_x);
    dnnl_memory_t *cm[] = {&p->scale, &p->shift, &p->mean, &p->var, &p->dscale, &p->dshift};
    for (int i = 0; i < 6; i++)
        DNNL_CHECK(dnnl_memory_create(cm[i], md_ref(&cmd), ctx->engine, DNNL_MEMORY_NONE));
    md_free(&cmd);
    p->dsrc = bn_mem(ctx, bpd, dnnl_query_diff_src_md);
    p->ddst = bn_mem(ctx, bpd, dnnl_query_diff_dst_md);
    if (bn->relu) {
        MdRef wmd = query_md(fpd, dnnl_query_workspace_md, 0);
        size_t wb = dnnl_memory_desc_get_size(wmd);
        if (!bn->workspace) {
            bn->workspace = (char *)xfloats(wb / sizeof(float) + 1);
            bn->ws_bytes = wb;
        }
        ED_CHECK(wb <= bn->ws_bytes, "BN workspace grows with the batch");
        DNNL_CHECK(dnnl_memory_create(&p->ws, wmd, ctx->engine, bn->workspace));
    }
    p->scratch = scratch_memory(ctx);
    DNNL_CHECK(dnnl_primitive_create(&p->fwd_train, fpd));
    DNNL_CHECK(dnnl_primitive_create(&p->fwd_eval, epd));
    DNNL_CHECK(dnnl_primitive_create(&p->bwd, bpd));
    dnnl_primitive_desc_destroy(fpd);
    dnnl_primitive_desc_destroy(epd);
    dnnl_primitive_desc_destroy(bpd);
    dnnl_primitive_attr_destroy(attr);
}

static void bn_plan_free(BnPlan *p) {
    dnnl_primitive_destroy(p->fwd_train);
    dnnl_primitive_destroy(p->fwd_eval);
    dnnl_primitive_destroy(p->bwd);
    dnnl_memory_t mems[] = {p->src,  p->dst,  p->scale, p->shift,  p->mean,   p->var,
                            p->ws,   p->dsrc, p->ddst,  p->dscale, p->dshift, p->scratch};
    for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++)
        if (mems[i]) dnnl_memory_destroy(mems[i]);
    arg_free(&p->g_ddst);
    arg_free(&p->g_dsrc_add);
    arg_free(&p->g_dsrc_over);
}

static BnPlan *bn_plan(DnnlBn *bn, int B, float eps) {
    for (int i = 0; i < bn->n_plans; i++)
        if (bn->plans[i].B == B) return &bn->plans[i];
    BnPlan *p;
    if (bn->n_plans < MAX_PLANS) {
        p = &bn->plans[bn->n_plans++];
    } else {
        p = &bn->plans[1 + bn->next_evict];
        bn->next_evict = (bn->next_evict + 1) % (MAX_PLANS - 1);
        bn_plan_free(p);
    }
    bn_plan_build(bn, p, B, eps);
    return p;
}

DnnlBn *dnnl_bn_create(DnnlContext *ctx, int max_batch, int C, int H, int W, int lanes, int relu,
                       int bf16) {
    DnnlBn *bn = xcalloc(1, sizeof(*bn));
    bn->ctx = ctx;
    bn->C = C, bn->H = H, bn->W = W, bn->lanes = lanes, bn->relu = relu, bn->bf16 = bf16;
    bn->flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);
    bn->dscale_tmp = xfloats(2 * (size_t)C);
    bn_plan(bn, max_batch, 1e-5f);
    return bn;
}

void dnnl_bn_free(DnnlBn *bn) {
    if (!bn) return;
    for (int i = 0; i < bn->n_plans; i++) bn_plan_free(&bn->plans[i]);
    free(bn->dscale_tmp);
    free(bn->workspace);
    free(bn);
}

static void set(dnnl_memory_t mem, const void *ptr) {
    DNNL_CHECK(dnnl_memory_set_data_handle(mem, (void *)ptr));
}

void dnnl_bn_forward(DnnlBn *bn, float *out, float *mean, float *var, const float *in,
                     const float *gamma, const float *beta, int B, int training, float eps) {
    DnnlContext *ctx = bn->ctx;
    BnPlan *p = bn_plan(bn, B, eps);
    set(p->src, in), set(p->dst, out), set(p->scale, gamma), set(p->shift, beta);
    set(p->mean, mean), set(p->var, var), set(p->scratch, ctx->arena);
    dnnl_exec_arg_t args[8] = {{DNNL_ARG_SRC, p->src},   {DNNL_ARG_DST, p->dst},
                               {DNNL_ARG_SCALE, p->scale}, {DNNL_ARG_SHIFT, p->shift},
                               {DNNL_ARG_MEAN, p->mean}, {DNNL_ARG_VARIANCE, p->var},
                               {DNNL_ARG_SCRATCHPAD, p->scratch}, {DNNL_ARG_WORKSPACE, p->ws}};
    execute(ctx, training ? p->fwd_train : p->fwd_eval, training && bn->relu ? 8 : 7, args);
}

/* bf16: points the backward's diff_dst and diff_src at bf16 slots, dout reordered into the
 * first; returns the Arg that carries diff_src back to din (written or added to), or NULL when
 * there is no din. */
static Arg *bn_bind_grads_bf16(DnnlBn *bn, BnPlan *p, float *din, const float *dout,
                               int din_overwrite, dnnl_memory_t *ddst, dnnl_memory_t *dsrc) {
    DnnlContext *ctx = bn->ctx;
    arg_bind(ctx, &p->g_ddst, dout, p->scratch);
    arg_pull(ctx, &p->g_ddst, p->scratch);
    Arg *out = din_overwrite ? &p->g_dsrc_over : &p->g_dsrc_add;
    arg_bind(ctx, out, din, p->scratch); /* never direct: bf16 against our fp32 */
    *ddst = p->g_ddst.prim;
    *dsrc = out->prim;
    return din ? out : NULL;
}

void dnnl_bn_backward(DnnlBn *bn, float *din, float *dgamma, float *dbeta, const float *dout,
                      const float *in, const float *gamma, const float *beta, const float *mean,
                      const float *var, int B, float eps, int din_overwrite, float *tmp) {
    DnnlContext *ctx = bn->ctx;
    BnPlan *p = bn_plan(bn, B, eps);
    dnnl_memory_t ddst = p->ddst, dsrc = p->dsrc;
    Arg *push = NULL;
    if (bn->bf16) {
        set(p->scratch, ctx->arena + p->bwd_scratch);
        push = bn_bind_grads_bf16(bn, p, din, dout, din_overwrite, &ddst, &dsrc);
    } else {
        set(p->ddst, dout), set(p->dsrc, din && din_overwrite ? din : tmp);
        set(p->scratch, ctx->arena);
    }
    set(p->src, in), set(p->scale, gamma);
    set(p->shift, beta); /* unused, but oneDNN 2.6 counts it (BN_BACKWARD_TAKES_SHIFT) */
    set(p->mean, mean), set(p->var, var);
    set(p->dscale, bn->dscale_tmp), set(p->dshift, bn->dscale_tmp + bn->C);
    dnnl_exec_arg_t args[11] = {{DNNL_ARG_SHIFT, p->shift},
                                {DNNL_ARG_SRC, p->src},           {DNNL_ARG_DIFF_DST, ddst},
                                {DNNL_ARG_DIFF_SRC, dsrc},        {DNNL_ARG_SCALE, p->scale},
                                {DNNL_ARG_MEAN, p->mean},         {DNNL_ARG_VARIANCE, p->var},
                                {DNNL_ARG_DIFF_SCALE, p->dscale}, {DNNL_ARG_DIFF_SHIFT, p->dshift},
                                {DNNL_ARG_SCRATCHPAD, p->scratch}, {DNNL_ARG_WORKSPACE, p->ws}};
    const int skip = BN_BACKWARD_TAKES_SHIFT ? 0 : 1; /* the shift is args[0] */
    execute(ctx, p->bwd, (bn->relu ? 11 : 10) - skip, args + skip);
    if (push) arg_push(ctx, push, p->scratch);
    if (!bn->bf16 && din && !din_overwrite) {
        size_t n = (size_t)B * ((bn->C + bn->lanes - 1) / bn->lanes * bn->lanes) * bn->H * bn->W;
        ED_PARALLEL_FOR_SIMD(1, for (size_t i = 0; i < n; i++) {
            din[i] += tmp[i];
        });
    }
    for (int c = 0; c < bn->C; c++) {
        if (dgamma) dgamma[c] += bn->dscale_tmp[c];
        if (dbeta) dbeta[c] += bn->dscale_tmp[bn->C + c];
    }
}

#endif /* ED_HAVE_DNNL */
