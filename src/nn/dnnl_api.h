/* Private to dnnl_backend.c: the one place where oneDNN 2.x and 3.x differ for us. 2.x builds
 * an operation descriptor and then its primitive descriptor, and keeps memory descriptors by
 * value; 3.x creates primitive descriptors in one call and memory descriptors as handles. Here:
 * memory-desc creation (EdMd, md_ref), the primitive descriptors we use, the sum post-op and
 * the ISA names. CMake checked DNNL_VERSION_MAJOR at configure time (2.6+ or 3.x). */
#ifndef ENSDISTILL_DNNL_API_H
#define ENSDISTILL_DNNL_API_H

#include <oneapi/dnnl/dnnl.h>

#if DNNL_VERSION_MAJOR >= 3

/* A memory descriptor we created (free with md_free) and a borrowed one (from a query). */
typedef struct {
    dnnl_memory_desc_t h;
} EdMd;
typedef const_dnnl_memory_desc_t MdRef;
static inline MdRef md_ref(const EdMd *md) {
    return md->h;
}
static inline dnnl_status_t md_init(EdMd *md, int ndims, const dnnl_dims_t dims,
                                    dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_create_with_tag(&md->h, ndims, dims, dt, tag);
}
static inline void md_free(EdMd *md) {
    dnnl_memory_desc_destroy(md->h);
}

/* out += the reordered source (a reorder's post-op) */
static inline dnnl_status_t post_ops_sum(dnnl_post_ops_t po) {
    return dnnl_post_ops_append_sum(po, 1.0f, 0, dnnl_data_type_undef);
}

static inline dnnl_status_t pd_conv_forward(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                            MdRef src, MdRef wei, MdRef bias, MdRef dst,
                                            const dnnl_dims_t strides, const dnnl_dims_t pads,
                                            const_dnnl_primitive_attr_t attr) {
    return dnnl_convolution_forward_primitive_desc_create(
        pd, eng, dnnl_forward_training, dnnl_convolution_direct, src, wei, bias, dst, strides,
        NULL, pads, pads, attr);
}
static inline dnnl_status_t pd_conv_backward_data(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                                  MdRef diff_src, MdRef wei, MdRef diff_dst,
                                                  const dnnl_dims_t strides,
                                                  const dnnl_dims_t pads,
                                                  const_dnnl_primitive_desc_t hint,
                                                  const_dnnl_primitive_attr_t attr) {
    return dnnl_convolution_backward_data_primitive_desc_create(
        pd, eng, dnnl_convolution_direct, diff_src, wei, diff_dst, strides, NULL, pads, pads, hint,
        attr);
}
static inline dnnl_status_t pd_conv_backward_weights(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                                     MdRef src, MdRef diff_wei, MdRef diff_bias,
                                                     MdRef diff_dst, const dnnl_dims_t strides,
                                                     const dnnl_dims_t pads,
                                                     const_dnnl_primitive_desc_t hint,
                                                     const_dnnl_primitive_attr_t attr) {
    return dnnl_convolution_backward_weights_primitive_desc_create(
        pd, eng, dnnl_convolution_direct, src, diff_wei, diff_bias, diff_dst, strides, NULL, pads,
        pads, hint, attr);
}
/* prop: dnnl_forward_training or dnnl_forward_inference */
static inline dnnl_status_t pd_bn_forward(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                          dnnl_prop_kind_t prop, MdRef data, float eps,
                                          unsigned flags, const_dnnl_primitive_attr_t attr) {
    return dnnl_batch_normalization_forward_primitive_desc_create(pd, eng, prop, data, data, eps,
                                                                  flags, attr);
}
/* Batch-norm backward with dnnl_use_shift counts its inputs without the shift in 3.x (passing it
 * fails with "bad number of inputs"), with it in 2.6 (leaving it out fails). */
enum { BN_BACKWARD_TAKES_SHIFT = 0 };
static inline dnnl_status_t pd_bn_backward(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                           MdRef diff, MdRef data, float eps, unsigned flags,
                                           const_dnnl_primitive_desc_t hint,
                                           const_dnnl_primitive_attr_t attr) {
    return dnnl_batch_normalization_backward_primitive_desc_create(
        pd, eng, dnnl_backward, diff, diff, data, eps, flags, hint, attr);
}

#else /* oneDNN 2.x */

typedef struct {
    dnnl_memory_desc_t v;
} EdMd;
typedef const dnnl_memory_desc_t *MdRef;
static inline MdRef md_ref(const EdMd *md) {
    return &md->v;
}
static inline dnnl_status_t md_init(EdMd *md, int ndims, const dnnl_dims_t dims,
                                    dnnl_data_type_t dt, dnnl_format_tag_t tag) {
    return dnnl_memory_desc_init_by_tag(&md->v, ndims, dims, dt, tag);
}
static inline void md_free(EdMd *md) {
    (void)md;
}

static inline dnnl_status_t post_ops_sum(dnnl_post_ops_t po) {
    return dnnl_post_ops_append_sum(po, 1.0f);
}

static inline dnnl_status_t pd_conv_forward(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                            MdRef src, MdRef wei, MdRef bias, MdRef dst,
                                            const dnnl_dims_t strides, const dnnl_dims_t pads,
                                            const_dnnl_primitive_attr_t attr) {
    dnnl_convolution_desc_t d;
    dnnl_status_t st = dnnl_convolution_forward_desc_init(&d, dnnl_forward_training,
                                                          dnnl_convolution_direct, src, wei, bias,
                                                          dst, strides, pads, pads);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &d, attr, eng, NULL);
}
static inline dnnl_status_t pd_conv_backward_data(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                                  MdRef diff_src, MdRef wei, MdRef diff_dst,
                                                  const dnnl_dims_t strides,
                                                  const dnnl_dims_t pads,
                                                  const_dnnl_primitive_desc_t hint,
                                                  const_dnnl_primitive_attr_t attr) {
    dnnl_convolution_desc_t d;
    dnnl_status_t st = dnnl_convolution_backward_data_desc_init(
        &d, dnnl_convolution_direct, diff_src, wei, diff_dst, strides, pads, pads);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &d, attr, eng, hint);
}
static inline dnnl_status_t pd_conv_backward_weights(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                                     MdRef src, MdRef diff_wei, MdRef diff_bias,
                                                     MdRef diff_dst, const dnnl_dims_t strides,
                                                     const dnnl_dims_t pads,
                                                     const_dnnl_primitive_desc_t hint,
                                                     const_dnnl_primitive_attr_t attr) {
    dnnl_convolution_desc_t d;
    dnnl_status_t st = dnnl_convolution_backward_weights_desc_init(
        &d, dnnl_convolution_direct, src, diff_wei, diff_bias, diff_dst, strides, pads, pads);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &d, attr, eng, hint);
}
static inline dnnl_status_t pd_bn_forward(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                          dnnl_prop_kind_t prop, MdRef data, float eps,
                                          unsigned flags, const_dnnl_primitive_attr_t attr) {
    dnnl_batch_normalization_desc_t d;
    dnnl_status_t st = dnnl_batch_normalization_forward_desc_init(&d, prop, data, eps, flags);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &d, attr, eng, NULL);
}
enum { BN_BACKWARD_TAKES_SHIFT = 1 };
static inline dnnl_status_t pd_bn_backward(dnnl_primitive_desc_t *pd, dnnl_engine_t eng,
                                           MdRef diff, MdRef data, float eps, unsigned flags,
                                           const_dnnl_primitive_desc_t hint,
                                           const_dnnl_primitive_attr_t attr) {
    dnnl_batch_normalization_desc_t d;
    dnnl_status_t st =
        dnnl_batch_normalization_backward_desc_init(&d, dnnl_backward, diff, data, eps, flags);
    return st != dnnl_success ? st : dnnl_primitive_desc_create(pd, &d, attr, eng, hint);
}

#endif

/* The name of the instruction set oneDNN dispatches to (dnnl_get_effective_cpu_isa). The values
 * are supersets of one another in both versions; 2.x also had the Xeon Phi ISAs (gone in 3.x). */
static inline const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
#if DNNL_VERSION_MAJOR >= 3
    case dnnl_cpu_isa_avx2_vnni_2: return "avx2_vnni_2";
    case dnnl_cpu_isa_avx512_core_fp16: return "avx512_core_fp16";
    case dnnl_cpu_isa_avx512_core_amx_fp16: return "avx512_core_amx_fp16";
#else
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
#endif
    default: return "generic";
    }
}

#endif
