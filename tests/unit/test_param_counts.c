/* Parameter counts, state_dict names and the trainable range of every architecture, against
 * the numbers of the reference PyTorch modules (akamaster resnet, xternalz WRN, torch.nn).
 * With arguments `ARCH C H W K [sum_of] [random_features]` it instead prints the tensor table
 * (name, kind, shape), which analysis can diff against a torch state_dict. */
#include "ensdistill/model.h"

#include "check.h"
#include "tiny_models.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* tiny_spec with the architectures' own default width (hidden 0), 4 mvconv filters per class
 * and a small init, for batches of 2. */
static ModelSpec spec_of(const char *arch, int C, int H, int W, int K) {
    ModelSpec s = tiny_spec(arch, C, H, W, K, 2);
    s.hidden = 0;
    s.mv_filters = 4;
    s.init_std = 0.01f;
    return s;
}

static Model *check_count(const ModelSpec *s, size_t want, size_t want_trainable) {
    Model *m = model_create(s);
    size_t got = model_param_count(m), got_t = model_trainable_count(m);
    int ok = got == want && got_t == want_trainable;
    printf("%-16s %dx%dx%d K=%-3d sum_of=%d rf=%d: %10zu params (want %zu), %10zu trainable "
           "(want %zu) %s\n",
           s->arch, s->C, s->H, s->W, s->num_classes, s->sum_of, s->random_features, got, want,
           got_t, want_trainable, ok ? "ok" : "FAIL");
    EXPECT(ok, "%s: parameter counts", s->arch);
    return m;
}

static void expect_tensor(const Model *m, const char *name, int ndim, const int64_t *shape,
                          int kind, int trainable) {
    int i = tensor_table_find(&m->tensors, name);
    if (i < 0) {
        EXPECT(0, "%s: missing tensor %s", m->spec.arch, name);
        return;
    }
    const TensorInfo *t = &m->tensors.items[i];
    int ok = t->ndim == ndim && (int)t->kind == kind && t->trainable == trainable;
    for (int d = 0; ok && d < ndim; d++) ok = t->shape[d] == shape[d];
    char buf[64];
    EXPECT(ok, "%s: %s has shape %s kind %d trainable %d", m->spec.arch, name,
           tensor_shape_str(t, buf, sizeof(buf)), t->kind, t->trainable);
}

static int64_t *dims(int64_t a, int64_t b, int64_t c, int64_t d) {
    static int64_t s[4];
    s[0] = a;
    s[1] = b;
    s[2] = c;
    s[3] = d;
    return s;
}

static int dump(int argc, char **argv) {
    ModelSpec s = spec_of(argv[1], atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc > 6) s.sum_of = atoi(argv[6]);
    if (argc > 7) s.random_features = atoi(argv[7]);
    Model *m = model_create(&s);
    for (int i = 0; i < m->tensors.count; i++) {
        const TensorInfo *t = &m->tensors.items[i];
        char buf[64];
        printf("%s %s %s %d\n", t->name, t->kind == TENSOR_PARAM ? "param" : "buffer",
               tensor_shape_str(t, buf, sizeof(buf)), t->trainable);
    }
    model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 6) return dump(argc, argv);

    /* He et al. / akamaster: resnet-20 269,722; option B 272,474; 32, 56, 110 from torch. */
    ModelSpec s = spec_of("resnet-20", 3, 32, 32, 10);
    Model *m = check_count(&s, 269722, 269722);
    expect_tensor(m, "conv1.weight", 4, dims(16, 3, 3, 3), TENSOR_PARAM, 1);
    expect_tensor(m, "bn1.running_var", 1, dims(16, 0, 0, 0), TENSOR_BUFFER, 0);
    expect_tensor(m, "bn1.num_batches_tracked", 0, NULL, TENSOR_BUFFER, 0);
    expect_tensor(m, "layer2.0.conv1.weight", 4, dims(32, 16, 3, 3), TENSOR_PARAM, 1);
    expect_tensor(m, "layer3.2.bn2.bias", 1, dims(64, 0, 0, 0), TENSOR_PARAM, 1);
    expect_tensor(m, "linear.weight", 2, dims(10, 64, 0, 0), TENSOR_PARAM, 1);
    expect_tensor(m, "linear.bias", 1, dims(10, 0, 0, 0), TENSOR_PARAM, 1);
    EXPECT(tensor_table_find(&m->tensors, "layer2.0.shortcut.0.weight") < 0,
           "resnet-20 (option A) has a shortcut weight");
    int nbt = tensor_table_find(&m->tensors, "layer1.0.bn1.num_batches_tracked");
    EXPECT(nbt >= 0 && m->tensors.items[nbt].is_integer,
           "num_batches_tracked is not marked integer");
    /* 19 BN layers x (mean, var, count) buffers */
    EXPECT(m->tensors.buffer_floats == 2 * (16 * 7 + 32 * 6 + 64 * 6) + 19,
           "resnet-20 buffer floats %zu", m->tensors.buffer_floats);
    model_free(m);

    s = spec_of("resnet-20-proj", 3, 32, 32, 10);
    m = check_count(&s, 272474, 272474);
    expect_tensor(m, "layer2.0.shortcut.0.weight", 4, dims(32, 16, 1, 1), TENSOR_PARAM, 1);
    expect_tensor(m, "layer3.0.shortcut.1.running_mean", 1, dims(64, 0, 0, 0), TENSOR_BUFFER, 0);
    model_free(m);
    s = spec_of("resnet-32", 3, 32, 32, 10);
    model_free(check_count(&s, 464154, 464154));
    s = spec_of("resnet-56", 3, 32, 32, 10);
    model_free(check_count(&s, 853018, 853018));
    s = spec_of("resnet-110", 3, 32, 32, 10);
    model_free(check_count(&s, 1727962, 1727962));
    s = spec_of("resnet-20", 1, 28, 28, 10); /* a 1-channel conv1 */
    model_free(check_count(&s, 269434, 269434));

    /* WideResNet (xternalz): WRN-16-4 2,748,890; WRN-28-10 36,479,194 (K=10), 36,536,884 (100) */
    s = spec_of("wrn-16-4", 3, 32, 32, 10);
    m = check_count(&s, 2748890, 2748890);
    expect_tensor(m, "block1.layer.0.bn1.weight", 1, dims(16, 0, 0, 0), TENSOR_PARAM, 1);
    expect_tensor(m, "block1.layer.0.convShortcut.weight", 4, dims(64, 16, 1, 1), TENSOR_PARAM, 1);
    expect_tensor(m, "block2.layer.1.conv2.weight", 4, dims(128, 128, 3, 3), TENSOR_PARAM, 1);
    expect_tensor(m, "bn1.running_mean", 1, dims(256, 0, 0, 0), TENSOR_BUFFER, 0);
    expect_tensor(m, "fc.weight", 2, dims(10, 256, 0, 0), TENSOR_PARAM, 1);
    EXPECT(tensor_table_find(&m->tensors, "block1.layer.1.convShortcut.weight") < 0,
           "wrn-16-4: block1.layer.1 has a convShortcut");
    model_free(m);
    s = spec_of("wrn-28-10", 3, 32, 32, 10);
    model_free(check_count(&s, 36479194, 36479194));
    s = spec_of("wrn-28-10", 3, 32, 32, 100);
    model_free(check_count(&s, 36536884, 36536884));

    /* cnn: 32*25+32 + 64*32*25+64 + 3136*128+128 + 128*10+10 = 454,922 */
    s = spec_of("cnn", 1, 28, 28, 10);
    m = check_count(&s, 454922, 454922);
    expect_tensor(m, "conv2.weight", 4, dims(64, 32, 5, 5), TENSOR_PARAM, 1);
    expect_tensor(m, "fc1.weight", 2, dims(128, 3136, 0, 0), TENSOR_PARAM, 1);
    expect_tensor(m, "fc2.bias", 1, dims(10, 0, 0, 0), TENSOR_PARAM, 1);
    model_free(m);
    s.hidden = 256;
    model_free(check_count(&s, 454922 + 3136 * 128 + 128 + 1280, 454922 + 3136 * 128 + 128 + 1280));

    /* mlp: 784*256+256 + 256*256+256 + 256*10+10 = 269,322 */
    s = spec_of("mlp", 1, 28, 28, 10);
    m = check_count(&s, 269322, 269322);
    expect_tensor(m, "fc3.weight", 2, dims(10, 256, 0, 0), TENSOR_PARAM, 1);
    model_free(m);

    /* mvconv: weight [K*M, D]; noise_weight [K*M, n_noise] */
    s = spec_of("mvconv", 9, 1, 50, 10);
    s.mv_filters = 4;
    m = check_count(&s, 40 * 50, 40 * 50);
    expect_tensor(m, "weight", 2, dims(40, 50, 0, 0), TENSOR_PARAM, 1);
    model_free(m);
    s.mv_noise_coords = 1000;
    s.mv_noise_sigma = 0.5f;
    m = check_count(&s, 40 * 50 + 40 * 1000, 40 * 50 + 40 * 1000);
    expect_tensor(m, "noise_weight", 2, dims(40, 1000, 0, 0), TENSOR_PARAM, 1);
    model_free(m);

    /* sum_of = 3: three copies, names nets.<i>. */
    s = spec_of("resnet-20", 3, 32, 32, 10);
    s.sum_of = 3;
    m = check_count(&s, 3 * 269722, 3 * 269722);
    expect_tensor(m, "nets.2.layer3.2.conv2.weight", 4, dims(64, 64, 3, 3), TENSOR_PARAM, 1);
    expect_tensor(m, "nets.0.bn1.num_batches_tracked", 0, NULL, TENSOR_BUFFER, 0);
    model_free(m);
    s = spec_of("cnn", 1, 28, 28, 10);
    s.sum_of = 3;
    model_free(check_count(&s, 3 * 454922, 3 * 454922));

    /* random_features: only the last linear layer trains, at the end of the arena */
    s = spec_of("resnet-20", 3, 32, 32, 10);
    s.random_features = 1;
    m = check_count(&s, 269722, 650);
    expect_tensor(m, "linear.weight", 2, dims(10, 64, 0, 0), TENSOR_PARAM, 1);
    expect_tensor(m, "layer1.0.conv1.weight", 4, dims(16, 16, 3, 3), TENSOR_PARAM, 0);
    expect_tensor(m, "bn1.weight", 1, dims(16, 0, 0, 0), TENSOR_PARAM, 0);
    EXPECT(m->trainable_end == m->tensors.param_floats &&
               m->params + m->trainable_begin ==
                   m->params +
                       m->tensors.items[tensor_table_find(&m->tensors, "linear.weight")].offset,
           "resnet-20 random features: trainable range [%zu, %zu) of %zu", m->trainable_begin,
           m->trainable_end, m->tensors.param_floats);
    model_free(m);
    s = spec_of("cnn", 1, 28, 28, 10);
    s.random_features = 1;
    model_free(check_count(&s, 454922, 1290));
    s = spec_of("wrn-16-4", 3, 32, 32, 10);
    s.random_features = 1;
    model_free(check_count(&s, 2748890, 2570));
    s = spec_of("mlp", 1, 28, 28, 10);
    s.random_features = 1;
    s.sum_of = 2; /* each copy's head, gathered at the end */
    m = check_count(&s, 2 * 269322, 2 * 2570);
    expect_tensor(m, "nets.1.fc3.bias", 1, dims(10, 0, 0, 0), TENSOR_PARAM, 1);
    expect_tensor(m, "nets.1.fc2.bias", 1, dims(256, 0, 0, 0), TENSOR_PARAM, 0);
    model_free(m);

    if (failures) {
        printf("%d check(s) failed\n", failures);
        return 1;
    }
    printf("all parameter counts match\n");
    return 0;
}
