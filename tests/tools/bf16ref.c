/* bf16ref: an LD_PRELOAD library that lets the bf16 path be tested on a CPU where oneDNN has no
 * bf16 kernels (AVX2 only). It answers oneDNN's internal questions "does this CPU support bf16
 * data?" and (3.x) "can it train in bf16?" with yes (the library calls them through its PLT, so
 * the preloaded definitions win), so oneDNN offers its reference (plain C++) bf16 convolutions,
 * batch normalization and reorders. Under oneDNN 2.x it also skips the gemm-based bf16
 * convolutions, whose bf16 gemm is AVX-512 code, by walking oneDNN's implementation list past
 * them (3.x does not offer them on such a CPU). Slow, and for tests only: the results are
 * oneDNN's reference arithmetic (bf16 inputs, fp32 sums), which the native kernels match up to
 * summation order. */
#include <oneapi/dnnl/dnnl.h>

#include <stdbool.h>
#include <string.h>

bool bf16ref_has_data_type_support(int dt) __asm__(
    "_ZN4dnnl4impl3cpu8platform21has_data_type_supportE16dnnl_data_type_t");
bool bf16ref_has_data_type_support(int dt) {
    return dt != dnnl_f16;
}
/* oneDNN 3.x asks a second question before it trains in a data type */
bool bf16ref_has_training_support(int dt) __asm__(
    "_ZN4dnnl4impl3cpu8platform20has_training_supportE16dnnl_data_type_t");
bool bf16ref_has_training_support(int dt) {
    return dt != dnnl_f16;
}

#if DNNL_VERSION_MAJOR < 3

static int involves_bf16(const_dnnl_primitive_desc_t pd) {
    static const dnnl_query_t qs[] = {dnnl_query_src_md, dnnl_query_diff_dst_md,
                                      dnnl_query_weights_md};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, qs[i], 0);
        if (md && md->data_type == dnnl_bf16) return 1;
    }
    return 0;
}

/* dnnl_primitive_desc_create as oneDNN defines it (the first implementation that takes the
 * descriptor), except that a bf16 implementation named "gemm" is passed over. */
dnnl_status_t dnnl_primitive_desc_create(dnnl_primitive_desc_t *pd, const_dnnl_op_desc_t desc,
                                         const_dnnl_primitive_attr_t attr, dnnl_engine_t engine,
                                         const_dnnl_primitive_desc_t hint) {
    dnnl_primitive_desc_iterator_t it;
    dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, desc, attr, engine, hint);
    if (st != dnnl_success) return st;
    for (;;) {
        dnnl_primitive_desc_t cur = dnnl_primitive_desc_iterator_fetch(it);
        if (!cur) {
            st = dnnl_unimplemented;
            break;
        }
        const char *name = "";
        dnnl_primitive_desc_query(cur, dnnl_query_impl_info_str, 0, &name);
        if (!(involves_bf16(cur) && strstr(name, "gemm"))) {
            *pd = cur;
            break;
        }
        dnnl_primitive_desc_destroy(cur);
        if (dnnl_primitive_desc_iterator_next(it) != dnnl_success) {
            st = dnnl_unimplemented;
            break;
        }
    }
    dnnl_primitive_desc_iterator_destroy(it);
    return st;
}
#endif
