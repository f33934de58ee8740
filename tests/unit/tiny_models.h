/* Shared by the unit tests that build whole models: the spec of a tiny one (16 hidden units,
 * 3 mvconv filters per class, init_std 0.3). Header-only (static), include once per test. */
#ifndef ENSDISTILL_TEST_TINY_MODELS_H
#define ENSDISTILL_TEST_TINY_MODELS_H

#include "ensdistill/model.h"

#include <stdio.h>
#include <string.h>

static ModelSpec tiny_spec(const char *arch, int C, int H, int W, int K, int max_batch) {
    ModelSpec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.arch, sizeof(s.arch), "%s", arch);
    s.C = C;
    s.H = H;
    s.W = W;
    s.num_classes = K;
    s.max_batch = max_batch;
    s.hidden = 16;
    s.mv_filters = 3;
    s.srelu_q = 3.0f;
    s.srelu_rho = 0.5f;
    s.init_std = 0.3f;
    return s;
}

#endif
