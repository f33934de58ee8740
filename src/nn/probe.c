/* The views-learned probe (see probe.h): reads mvconv weights by their state_dict names. */
#include "ensdistill/probe.h"
#include "ensdistill/error.h"

#include <float.h>
#include <stdio.h>
#include <string.h>

int probe_views(const Model *m, const float *views, int K, int D, float *out) {
    if (m->spec.arch_name.kind != ARCH_MVCONV || !views) return -1;
    const int M = m->spec.mv_filters, copies = m->spec.sum_of > 1 ? m->spec.sum_of : 1;
    for (int i = 0; i < 2 * K; i++) out[i] = -FLT_MAX;
    for (int c = 0; c < copies; c++) {
        char name[64];
        if (copies > 1)
            snprintf(name, sizeof(name), "nets.%d.weight", c);
        else
            snprintf(name, sizeof(name), "weight");
        int t = tensor_table_find(&m->tensors, name);
        ED_CHECK(t >= 0, "mvconv model without tensor %s", name);
        const TensorInfo *info = &m->tensors.items[t];
        ED_CHECK(info->shape[0] == (int64_t)K * M && info->shape[1] == D,
                 "%s has shape [%lld, %lld], expected [%d, %d]", name, (long long)info->shape[0],
                 (long long)info->shape[1], K * M, D);
        const float *W = m->params + info->offset;
        for (int j = 0; j < K; j++)
            for (int l = 0; l < 2; l++) {
                const float *v = views + ((size_t)j * 2 + l) * D;
                for (int r = 0; r < M; r++) {
                    const float *w = W + ((size_t)j * M + r) * D;
                    double dot = 0;
                    for (int d = 0; d < D; d++) dot += (double)w[d] * v[d];
                    if (dot > out[2 * j + l]) out[2 * j + l] = (float)dot;
                }
            }
    }
    return 0;
}

int probe_both_learned(const float *probe, int K, double threshold) {
    int both = 0;
    for (int j = 0; j < K; j++) both += probe[2 * j] >= threshold && probe[2 * j + 1] >= threshold;
    return both;
}
