/* Private to src/nn, a template included once per element type: the forward kernels on blocked
 * activations (the layout of blocked.c). The includer defines
 *   ELEM      the activation's element type (float, or uint16_t for bf16),
 *   LOAD(v)   an ELEM widened to float,  STORE(f)  a float narrowed to ELEM,
 *   NAME(n)   the function name for this type (n itself for float, n##_bf16 for bf16).
 * Arithmetic is in float; outputs that are plain [B, C] (GAP, the flatten's copy) are float. */
#ifndef ELEM
#error "blocked_fwd.h: define ELEM, LOAD, STORE and NAME first"
#endif

/* One row of output pixels of one block of L channels. The output row holds the running
 * maximum, and each window offset (kh, kw) sweeps the row with the lane loop innermost and no
 * branch, so GCC vectorises it; the callers pass a constant L (8, 16) where they can. The
 * maximum is selected, not recomputed, so a value (a NaN too) comes through as it came in. */
static inline __attribute__((always_inline)) void NAME(maxpool_row)(ELEM *restrict y,
                                                                     int32_t *restrict am,
                                                                     const ELEM *restrict x,
                                                                     int W, int OW, int oh,
                                                                     int KS, int stride,
                                                                     const int L) {
    const ELEM lowest = STORE(-INFINITY);
    for (int ow = 0; ow < OW; ow++)
        for (int l = 0; l < L; l++) {
            y[(size_t)ow * L + l] = lowest;
            am[(size_t)ow * L + l] = oh * stride * W + ow * stride;
        }
    for (int kh = 0; kh < KS; kh++)
        for (int kw = 0; kw < KS; kw++)
            for (int ow = 0; ow < OW; ow++) {
                const int32_t i = (oh * stride + kh) * W + ow * stride + kw;
                const ELEM *xi = x + (size_t)i * L;
                ELEM *yo = y + (size_t)ow * L;
                int32_t *ao = am + (size_t)ow * L;
                for (int l = 0; l < L; l++) {
                    const float v = LOAD(xi[l]);
                    const int take = (v > LOAD(yo[l])) | (v != v);
                    yo[l] = take ? xi[l] : yo[l];
                    ao[l] = take ? i : ao[l];
                }
            }
}

/* out = max over KS x KS windows (no padding), argmax = the window's spatial index, chosen as
 * maxpool_forward does (first maximum; NaN propagates). */
void NAME(blocked_maxpool_forward)(ELEM *out, int32_t *argmax, const ELEM *in, int B, int C,
                                   int H, int W, int L, int KS, int stride) {
    const int OH = conv2d_out_size(H, KS, stride, 0), OW = conv2d_out_size(W, KS, stride, 0);
    const size_t images = (size_t)B * ((C + L - 1) / L);
    ED_PARALLEL_FOR(images * H * W * L >= PAR_MIN_WORK, for (size_t bc = 0; bc < images; bc++) {
        const ELEM *x = in + bc * H * W * L;
        for (int oh = 0; oh < OH; oh++) {
            const size_t o = (bc * OH + oh) * OW * L;
            if (L == 16)
                NAME(maxpool_row)(out + o, argmax + o, x, W, OW, oh, KS, stride, 16);
            else if (L == 8)
                NAME(maxpool_row)(out + o, argmax + o, x, W, OW, oh, KS, stride, 8);
            else
                NAME(maxpool_row)(out + o, argmax + o, x, W, OW, oh, KS, stride, L);
        }
    });
}

/* out[b,c] (plain) = (1 / HW) * sum_hw in[b,c,hw] */
void NAME(blocked_gap_forward)(float *out, const ELEM *in, int B, int C, int HW, int L) {
    ED_PARALLEL_FOR((size_t)B * C * HW >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++) {
            double s = 0.0;
            for (int i = 0; i < HW; i++) s += LOAD(in[blocked_at(b, c, i, C, HW, L)]);
            out[(size_t)b * C + c] = (float)(s / HW);
        }
    });
}

/* out[b, pad_front + c, oh, ow] = in[b, c, oh*stride, ow*stride]; other channels 0 */
void NAME(blocked_shortcut_forward)(ELEM *out, const ELEM *in, int B, int C, int H, int W, int OC,
                                    int stride, int pad_front, int L) {
    ED_CHECK(stride >= 1 && pad_front >= 0 && pad_front + C <= OC,
             "shortcut_pad: C=%d OC=%d pad_front=%d stride=%d", C, OC, pad_front, stride);
    const int OH = (H + stride - 1) / stride, OW = (W + stride - 1) / stride;
    const size_t ohw = (size_t)OH * OW, hw = (size_t)H * W;
    const size_t per_out = (size_t)((OC + L - 1) / L) * L * ohw;
    ED_PARALLEL_FOR((size_t)B * OC * ohw >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        memset(out + (size_t)b * per_out, 0, per_out * sizeof(ELEM));
        for (int c = 0; c < C; c++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++)
                    out[blocked_at(b, pad_front + c, (size_t)oh * OW + ow, OC, ohw, L)] =
                        in[blocked_at(b, c, (size_t)oh * stride * W + (size_t)ow * stride, C, hw,
                                      L)];
    });
}

/* out[b, c, hw] (plain, float) = in[b, c, hw] (blocked) */
void NAME(blocked_to_plain)(float *out, const ELEM *in, int B, int C, int HW, int L) {
    ED_PARALLEL_FOR((size_t)B * C * HW >= PAR_MIN_WORK, for (int b = 0; b < B; b++) {
        for (int c = 0; c < C; c++)
            for (int i = 0; i < HW; i++)
                out[((size_t)b * C + c) * HW + i] = LOAD(in[blocked_at(b, c, i, C, HW, L)]);
    });
}
