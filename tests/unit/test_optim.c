/* sgd_step against two steps of torch.optim.SGD (values printed by PyTorch 1.13, checked by
 * hand below), and the learning-rate schedules at their key points, warm-up included. */
#include "ensdistill/optim.h"

#include "check.h"

#include <math.h>
#include <stdio.h>

static void expect_close(const char *what, double got, double want, double rtol) {
    double err = fabs(got - want);
    EXPECT(err <= rtol * fmax(fabs(want), 1e-12), "%s: got %.9g want %.9g (rel err %.2e)", what,
           got, want, err / fmax(fabs(want), 1e-12));
}

/* p = [1, -2, 0.5], grads [0.1, 0.2, -0.3] then [-0.05, 0.4, 0.1], lr 0.1, weight decay 0.01.
 * Nesterov, momentum 0.9, first coordinate by hand:
 *   step 1: g = 0.1 + 0.01*1 = 0.11; buf = 0.11; p = 1 - 0.1*(0.11 + 0.9*0.11) = 0.9791
 *   step 2: g = -0.05 + 0.01*0.9791 = -0.040209; buf = 0.9*0.11 - 0.040209 = 0.058791;
 *           p = 0.9791 - 0.1*(-0.040209 + 0.9*0.058791) = 0.97782971
 * torch.optim.SGD([p], lr=0.1, momentum=m, weight_decay=0.01, nesterov=n) gives: */
static void test_sgd(void) {
    const float grads[2][3] = {{0.1f, 0.2f, -0.3f}, {-0.05f, 0.4f, 0.1f}};
    struct {
        const char *name;
        float momentum;
        int nesterov;
        float want[2][3];
        float want_buf[3]; /* after step 2 */
    } cases[] = {
        {"nesterov",
         0.9f,
         1,
         {{0.97909999f, -2.03419995f, 0.556050003f}, {0.977829695f, -2.12091494f, 0.559888482f}},
         {0.058791f, 0.541659f, -0.159950f}},
        {"momentum",
         0.9f,
         0,
         {{0.989000022f, -2.01799989f, 0.529500008f}, {0.983111024f, -2.07218194f, 0.545520484f}},
         {0.05889f, 0.54182f, -0.160205f}},
        {"plain", 0.0f, 0, {{0.989000022f, -2.01799989f, 0.529500008f},
                            {0.993010998f, -2.05598187f, 0.518970490f}}, {0, 0, 0}},
    };
    for (int c = 0; c < 3; c++) {
        float p[3] = {1.0f, -2.0f, 0.5f}, buf[3] = {0, 0, 0};
        char what[64];
        for (int step = 0; step < 2; step++) {
            sgd_step(p, grads[step], buf, 3, 0.1f, cases[c].momentum, 0.01f, cases[c].nesterov);
            for (int i = 0; i < 3; i++) {
                snprintf(what, sizeof(what), "sgd %s step %d p[%d]", cases[c].name, step + 1, i);
                expect_close(what, p[i], cases[c].want[step][i], 2e-7);
            }
        }
        if (cases[c].momentum > 0.0f)
            for (int i = 0; i < 3; i++) {
                snprintf(what, sizeof(what), "sgd %s momentum buffer[%d]", cases[c].name, i);
                expect_close(what, buf[i], cases[c].want_buf[i], 1e-4);
            }
        printf("sgd %-9s two steps: p = [%.9g, %.9g, %.9g]\n", cases[c].name, p[0], p[1], p[2]);
    }
    /* n = 0 touches nothing; a zero-length range is allowed */
    float q = 3.0f, g = 1.0f, b = 0.0f;
    sgd_step(&q, &g, &b, 0, 0.1f, 0.9f, 0.0f, 1);
    expect_close("sgd with n = 0", q, 3.0, 0.0);
}

static void test_schedules(void) {
    Schedule s = {.kind = SCHEDULE_CONSTANT, .base_lr = 0.1, .epochs = 10};
    expect_close("constant at 0", schedule_lr(&s, 0, 0, 100), 0.1, 1e-15);
    expect_close("constant at end", schedule_lr(&s, 9, 99, 100), 0.1, 1e-15);

    /* multistep: lr *= gamma at each milestone epoch (MultiStepLR) */
    Schedule ms = {.kind = SCHEDULE_MULTISTEP, .base_lr = 0.1, .epochs = 10,
                   .milestones = {3, 6}, .n_milestones = 2, .gamma = 0.1};
    expect_close("multistep epoch 2 last step", schedule_lr(&ms, 2, 99, 100), 0.1, 1e-15);
    expect_close("multistep epoch 3", schedule_lr(&ms, 3, 0, 100), 0.01, 1e-12);
    expect_close("multistep epoch 5", schedule_lr(&ms, 5, 50, 100), 0.01, 1e-12);
    expect_close("multistep epoch 6", schedule_lr(&ms, 6, 0, 100), 0.001, 1e-12);
    expect_close("multistep epoch 9", schedule_lr(&ms, 9, 99, 100), 0.001, 1e-12);

    /* cosine over T = 10 * 100 steps: base at t=0, (base+min)/2 at T/2,
     * min + (base-min)(1+cos(pi/4))/2 = 0.0853553390593 at T/4 (min 0) */
    Schedule cs = {.kind = SCHEDULE_COSINE, .base_lr = 0.1, .epochs = 10, .min_lr = 0.0};
    expect_close("cosine t=0", schedule_lr(&cs, 0, 0, 100), 0.1, 1e-15);
    expect_close("cosine t=T/4", schedule_lr(&cs, 2, 50, 100), 0.0853553390593, 1e-11);
    expect_close("cosine t=T/2", schedule_lr(&cs, 5, 0, 100), 0.05, 1e-12);
    expect_close("cosine t=3T/4", schedule_lr(&cs, 7, 50, 100), 0.0146446609407, 1e-10);
    /* last step: 0.05 * (1 + cos(pi * 999/1000)) = 2.4674e-7 */
    expect_close("cosine last step", schedule_lr(&cs, 9, 99, 100), 2.46740110e-7, 1e-6);
    cs.min_lr = 0.001;
    expect_close("cosine with floor t=T/2", schedule_lr(&cs, 5, 0, 100), 0.0505, 1e-12);
    expect_close("cosine with floor past the end", schedule_lr(&cs, 10, 0, 100), 0.001, 1e-15);
    /* per step, not per epoch: two steps of one epoch differ */
    EXPECT(schedule_lr(&cs, 1, 0, 100) > schedule_lr(&cs, 1, 1, 100),
           "cosine is not updated per step");

    /* warm-up over 2 epochs = 200 steps: base * (t+1) / 200, then the main schedule */
    Schedule w = cs;
    w.min_lr = 0.0;
    w.warmup_epochs = 2.0;
    expect_close("warm-up t=0", schedule_lr(&w, 0, 0, 100), 0.1 / 200, 1e-12);
    expect_close("warm-up t=99", schedule_lr(&w, 0, 99, 100), 0.05, 1e-12);
    expect_close("warm-up t=199", schedule_lr(&w, 1, 99, 100), 0.1, 1e-12);
    /* t = 200 of 1000: 0.05 * (1 + cos(pi/5)) = 0.0904508497187 */
    expect_close("after warm-up t=200", schedule_lr(&w, 2, 0, 100), 0.0904508497187, 1e-11);
    Schedule wc = {.kind = SCHEDULE_CONSTANT, .base_lr = 0.4, .epochs = 5, .warmup_epochs = 0.5};
    expect_close("half-epoch warm-up t=0", schedule_lr(&wc, 0, 0, 10), 0.08, 1e-12);
    expect_close("half-epoch warm-up t=4", schedule_lr(&wc, 0, 4, 10), 0.4, 1e-12);
    expect_close("half-epoch warm-up t=5", schedule_lr(&wc, 0, 5, 10), 0.4, 1e-12);
    Schedule wm = ms;
    wm.warmup_epochs = 1.0;
    expect_close("multistep warm-up t=49", schedule_lr(&wm, 0, 49, 100), 0.05, 1e-12);
    expect_close("multistep after warm-up", schedule_lr(&wm, 4, 0, 100), 0.01, 1e-12);
    printf("schedules: constant, multistep, cosine, warm-up checked at their key points\n");
}

/* torch.nn.utils.clip_grad_norm_(max_norm=1) on [3, 4] gives [0.5999999, 0.79999983]
 * (coef 1 / (5 + 1e-6), printed by PyTorch 1.13); a norm under the bound and max_norm 0 leave
 * the gradient alone. */
static void test_clip(void) {
    float g[2] = {3.0f, 4.0f};
    expect_close("clip returns the norm", optim_clip_grad_norm(g, 2, 1.0), 5.0, 1e-12);
    expect_close("clipped g[0]", g[0], 0.5999999, 1e-7);
    expect_close("clipped g[1]", g[1], 0.79999983, 1e-7);
    float h[2] = {3.0f, 4.0f};
    optim_clip_grad_norm(h, 2, 10.0);
    expect_close("under the bound g[0]", h[0], 3.0, 0.0);
    optim_clip_grad_norm(h, 2, 0.0);
    expect_close("max_norm 0 g[1]", h[1], 4.0, 0.0);
    printf("clip: [3, 4] to norm 1 as clip_grad_norm_\n");
}

int main(void) {
    test_sgd();
    test_clip();
    test_schedules();
    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all optimizer checks passed\n");
    return 0;
}
