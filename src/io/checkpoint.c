/* Model checkpoints (see checkpoint.h): the HDF5 layout, the attribute table (what each root
 * attribute holds, and what loading compares with the model), the write (tmp file, read-back
 * byte comparison, then core's fs_commit_keep_prev) and the checked load with its fall-back to
 * NAME.prev.h5. Knows the tensor table, not layers. */
#include "ensdistill/checkpoint.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"
#include "ensdistill/fsutil.h"
#include "ensdistill/h5file.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define DSET_NAME_MAX (TENSOR_NAME_MAX + 32)

const char *const ckpt_history_names[CKPT_HISTORY_COLUMNS] = {
    [HISTORY_EPOCH] = "epoch",         [HISTORY_LR] = "lr",
    [HISTORY_TRAIN_LOSS] = "train_loss", [HISTORY_TRAIN_ACC] = "train_acc",
    [HISTORY_TEST_ACC] = "test_acc",   [HISTORY_SECONDS] = "seconds"};

double ckpt_history_get(const EpochRecord *r, int k) {
    switch (k) {
    case HISTORY_EPOCH: return r->epoch;
    case HISTORY_LR: return r->lr;
    case HISTORY_TRAIN_LOSS: return r->train_loss;
    case HISTORY_TRAIN_ACC: return r->train_acc;
    case HISTORY_TEST_ACC: return r->test_acc;
    case HISTORY_SECONDS: return r->seconds;
    }
    ED_DIE("history column %d", k);
}

void ckpt_history_set(EpochRecord *r, int k, double v) {
    switch (k) {
    case HISTORY_EPOCH: r->epoch = (int)v; return;
    case HISTORY_LR: r->lr = v; return;
    case HISTORY_TRAIN_LOSS: r->train_loss = v; return;
    case HISTORY_TRAIN_ACC: r->train_acc = v; return;
    case HISTORY_TEST_ACC: r->test_acc = v; return;
    case HISTORY_SECONDS: r->seconds = v; return;
    }
    ED_DIE("history column %d", k);
}

/* ================================================================ the attributes */

/* Everything the root attributes hold, as the program uses it. The writer fills it from the
 * model and its state, the reader from the file; ckpt_attrs below is the one list of which
 * attribute holds which field. */
typedef struct {
    CkptInfo info; /* role, index, seed, spec, epochs_total, epoch, step, complete, ... */
    char format[32];
    uint64_t init_seed, init_stream;
    const char *config; /* writer only: the reader checks that it reads, and leaves it NULL */
    char compiler[64];
} Header;

/* How a field is stored: C type in the Header -> attribute type in the file. */
typedef enum {
    F_CHARS, /* char[size] -> UTF-8 string */
    F_TEXT,  /* const char * -> UTF-8 string */
    F_INT,   /* int -> int64 */
    F_INT3,  /* int[3] (three consecutive int fields) -> int64[3] */
    F_I64,   /* int64_t -> int64 */
    F_U64,   /* uint64_t -> int64 (the bit pattern) */
    F_FLOAT, /* float -> float64 */
} FieldType;

/* What loading compares with the model it loads into: nothing, the model's build (a file of
 * another arch, sum_of, random_features or num_classes is refused), or, when the caller names
 * the model it resumes (ModelState.role set), its identity in the run. */
typedef enum { MATCH_NONE, MATCH_MODEL, MATCH_RUN } AttrMatch;

typedef struct {
    const char *name;
    FieldType type;
    size_t offset, size; /* of the field in Header */
    AttrMatch match;
} CkptAttr;

#define ATTR(name, type, field, match)                                                        \
    {name, type, offsetof(Header, field), sizeof(((Header *)0)->field), match}
/* In the order they are written. A new attribute is one more row here (and, for files that
 * lack it, a new format_version).
 * "strings_crc32", written after the table: the crc32 of every string attribute, in this
 * order. Variable-length strings live in the file's global heap, which HDF5 does not checksum;
 * the whole-file seal (h5file.h) covers them on disk, but it is computed from the bytes HDF5
 * wrote. What the crc still catches: a string that HDF5 wrote to the heap other than it was
 * given (ckpt_write's read-back goes through ckpt_info, which compares it with the crc taken
 * from memory), and a string attribute edited in a file that was then sealed again (h5u_seal:
 * tests and tools). Dropping it would change the file: that is a format_version 3. */
static const CkptAttr ckpt_attrs[] = {
    ATTR("format", F_CHARS, format, MATCH_NONE),
    ATTR("format_version", F_INT, info.format_version, MATCH_NONE),
    ATTR("role", F_CHARS, info.role, MATCH_RUN),
    ATTR("index", F_INT, info.index, MATCH_RUN),
    ATTR("seed", F_I64, info.seed, MATCH_RUN),
    /* The initialisation key: mvconv derives its fixed test-noise weights from it. */
    ATTR("init_seed", F_U64, init_seed, MATCH_NONE),
    ATTR("init_stream", F_U64, init_stream, MATCH_NONE),
    ATTR("arch", F_CHARS, info.spec.arch, MATCH_MODEL),
    ATTR("sum_of", F_INT, info.spec.sum_of, MATCH_MODEL),
    ATTR("random_features", F_INT, info.spec.random_features, MATCH_MODEL),
    ATTR("hidden", F_INT, info.spec.hidden, MATCH_NONE),
    ATTR("num_classes", F_INT, info.spec.num_classes, MATCH_MODEL),
    ATTR("input_shape", F_INT3, info.spec.C, MATCH_NONE),
    ATTR("mv_filters", F_INT, info.spec.mv_filters, MATCH_NONE),
    ATTR("srelu_q", F_FLOAT, info.spec.srelu_q, MATCH_NONE),
    ATTR("srelu_rho", F_FLOAT, info.spec.srelu_rho, MATCH_NONE),
    ATTR("init_std", F_FLOAT, info.spec.init_std, MATCH_NONE),
    ATTR("mv_noise_coords", F_I64, info.spec.mv_noise_coords, MATCH_NONE),
    ATTR("mv_noise_sigma", F_FLOAT, info.spec.mv_noise_sigma, MATCH_NONE),
    ATTR("epochs_total", F_INT, info.epochs_total, MATCH_NONE),
    ATTR("epoch", F_INT, info.epoch, MATCH_NONE),
    ATTR("step", F_I64, info.step, MATCH_NONE),
    ATTR("complete", F_INT, info.complete, MATCH_NONE),
    ATTR("config", F_TEXT, config, MATCH_NONE),
    ATTR("code_revision", F_CHARS, info.code_revision, MATCH_NONE),
    ATTR("compiler", F_CHARS, compiler, MATCH_NONE),
    ATTR("written_at", F_CHARS, info.written_at, MATCH_NONE),
};
#undef ATTR
#define N_CKPT_ATTRS ((int)(sizeof(ckpt_attrs) / sizeof(ckpt_attrs[0])))
_Static_assert(offsetof(ModelSpec, H) == offsetof(ModelSpec, C) + sizeof(int) &&
                  offsetof(ModelSpec, W) == offsetof(ModelSpec, H) + sizeof(int),
              "input_shape reads ModelSpec C, H, W as int[3]");

/* crc32 over the string values (each with its terminating 0), in table order. */
static int64_t strings_crc(const char *const *values, int n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (int i = 0; i < n; i++)
        crc = crc32(crc, (const Bytef *)values[i], (uInt)strlen(values[i]) + 1);
    return (int64_t)crc;
}

static void write_attrs(H5Writer *w, const Header *h) {
    const char *strings[N_CKPT_ATTRS];
    int n_strings = 0;
    for (int i = 0; i < N_CKPT_ATTRS; i++) {
        const CkptAttr *a = &ckpt_attrs[i];
        const void *p = (const char *)h + a->offset;
        switch (a->type) {
        case F_CHARS:
        case F_TEXT: {
            const char *v = a->type == F_CHARS ? (const char *)p : *(const char *const *)p;
            strings[n_strings] = v ? v : "";
            h5w_attr_str(w, w->file, a->name, strings[n_strings++]);
            break;
        }
        case F_INT: h5w_attr_i64(w, w->file, a->name, *(const int *)p); break;
        case F_INT3: {
            const int *v = p;
            int64_t v64[3] = {v[0], v[1], v[2]};
            h5w_attr_i64_array(w, w->file, a->name, v64, 3);
            break;
        }
        case F_I64: h5w_attr_i64(w, w->file, a->name, *(const int64_t *)p); break;
        case F_U64: h5w_attr_i64(w, w->file, a->name, (int64_t)*(const uint64_t *)p); break;
        case F_FLOAT: h5w_attr_f64(w, w->file, a->name, *(const float *)p); break;
        }
    }
    h5w_attr_i64(w, w->file, "strings_crc32", strings_crc(strings, n_strings));
}

/* Reads every attribute of the table into h and checks strings_crc32. 0, or -1 with the
 * attribute named in err: a missing or unreadable attribute is damage, never a default. */
static int read_attrs(hid_t f, Header *h, char *err, size_t err_size) {
    memset(h, 0, sizeof(*h));
    char *strings[N_CKPT_ATTRS];
    int n_strings = 0, rc = 0;
    for (int i = 0; i < N_CKPT_ATTRS && rc == 0; i++) {
        const CkptAttr *a = &ckpt_attrs[i];
        void *p = (char *)h + a->offset;
        int64_t v[3];
        double d;
        switch (a->type) {
        case F_CHARS:
        case F_TEXT:
            strings[n_strings] = h5r_attr_str_alloc(f, a->name);
            if (!strings[n_strings]) {
                rc = -1;
                break;
            }
            if (a->type == F_CHARS) snprintf(p, a->size, "%s", strings[n_strings]);
            n_strings++;
            break;
        case F_INT3:
            rc = h5r_attr_i64_array(f, a->name, v, 3);
            for (int k = 0; k < 3 && rc == 0; k++)
                ((int *)p)[k] = (int)v[k];
            break;
        case F_FLOAT:
            rc = h5r_attr_f64(f, a->name, &d);
            if (rc == 0) *(float *)p = (float)d;
            break;
        case F_INT:
        case F_I64:
        case F_U64:
            rc = h5r_attr_i64(f, a->name, v);
            if (rc == 0 && a->type == F_INT) *(int *)p = (int)v[0];
            if (rc == 0 && a->type == F_I64) *(int64_t *)p = v[0];
            if (rc == 0 && a->type == F_U64) *(uint64_t *)p = (uint64_t)v[0];
            break;
        }
        if (rc < 0)
            snprintf(err, err_size, "attribute %s is %s", a->name,
                     H5Aexists(f, a->name) == 0 ? "missing" : "unreadable or of the wrong type");
    }
    int64_t stored;
    if (rc == 0 && h5r_attr_i64(f, "strings_crc32", &stored) < 0) {
        snprintf(err, err_size, "attribute strings_crc32 is %s",
                 H5Aexists(f, "strings_crc32") == 0 ? "missing" : "unreadable");
        rc = -1;
    }
    if (rc == 0 && strings_crc((const char *const *)strings, n_strings) != stored) {
        snprintf(err, err_size, "the string attributes (role, arch, config, ...) fail their crc32");
        rc = -1;
    }
    for (int i = 0; i < n_strings; i++)
        free(strings[i]);
    /* the kind beside the name (ModelSpec.arch_name); an arch this build does not know stays
     * unparsed: model_create refuses it with the parser's message */
    if (rc == 0) model_arch_parse(h->info.spec.arch, &h->info.spec.arch_name, NULL, 0);
    return rc;
}

const char *ckpt_model_name(char *buf, size_t size, const char *role, int index) {
    snprintf(buf, size, "%s-%03d", role, index);
    return buf;
}

void ckpt_state_free(ModelState *st) {
    free(st->history);
    st->history = NULL;
    st->n_history = st->cap_history = 0;
}

void ckpt_state_push_epoch(ModelState *st, const EpochRecord *rec) {
    if (st->n_history == st->cap_history) {
        st->cap_history = st->cap_history ? 2 * st->cap_history : 16;
        st->history = xrealloc(st->history, (size_t)st->cap_history * sizeof(EpochRecord));
    }
    st->history[st->n_history++] = *rec;
}

/* ================================================================ writing */

/* What was written, kept to compare the file with memory after it is closed. */
typedef struct {
    char name[DSET_NAME_MAX];
    hid_t mem_type;
    const void *data;
    size_t nbytes;
} Written;

typedef struct {
    H5Writer w;
    Written *items;
    int n, cap;
    void **owned; /* converted copies (int64 buffers, history columns) */
    int n_owned, cap_owned;
} WriteCtx;

static void *ctx_own(WriteCtx *c, size_t bytes) {
    if (c->n_owned == c->cap_owned) {
        c->cap_owned = c->cap_owned ? 2 * c->cap_owned : 16;
        c->owned = xrealloc(c->owned, (size_t)c->cap_owned * sizeof(void *));
    }
    void *p = xmalloc(bytes ? bytes : 1);
    c->owned[c->n_owned++] = p;
    return p;
}

/* Writes one dataset and records it for the read-back comparison. */
static void put(WriteCtx *c, const char *name, hid_t file_type, hid_t mem_type, int ndim,
                const hsize_t *dims, const void *data) {
    h5w_dataset(&c->w, c->w.file, name, file_type, mem_type, ndim, dims, data);
    size_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= (size_t)dims[d];
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->items = xrealloc(c->items, (size_t)c->cap * sizeof(Written));
    }
    Written *it = &c->items[c->n++];
    snprintf(it->name, sizeof(it->name), "%s", name);
    it->mem_type = mem_type;
    it->data = data;
    it->nbytes = n * H5Tget_size(mem_type);
}

static void put_tensor(WriteCtx *c, const char *group, const TensorInfo *t, const float *arena) {
    char name[DSET_NAME_MAX];
    snprintf(name, sizeof(name), "%s/%s", group, t->name);
    hsize_t dims[TENSOR_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++)
        dims[d] = (hsize_t)t->shape[d];
    const float *src = arena + t->offset;
    if (t->is_integer) {
        /* PyTorch keeps num_batches_tracked as int64. */
        int64_t *v = ctx_own(c, t->numel * sizeof(int64_t));
        for (size_t i = 0; i < t->numel; i++)
            v[i] = (int64_t)llrintf(src[i]);
        put(c, name, H5T_STD_I64LE, H5T_NATIVE_INT64, t->ndim, dims, v);
    } else {
        put(c, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, t->ndim, dims, src);
    }
}

/* Reads every recorded dataset of path back and compares its bytes with memory. Returns 0, or
 * -1 with the first difference in err. */
static int verify_written(const char *path, const WriteCtx *c, char *err, size_t err_size) {
    hid_t f = h5u_open_sealed(path, err, err_size);
    if (f < 0) return -1;
    size_t max_bytes = 1;
    for (int i = 0; i < c->n; i++)
        if (c->items[i].nbytes > max_bytes) max_bytes = c->items[i].nbytes;
    unsigned char *buf = xmalloc(max_bytes);
    int rc = 0;
    for (int i = 0; i < c->n && rc == 0; i++) {
        const Written *it = &c->items[i];
        int ndim;
        hsize_t dims[8];
        size_t n = 1;
        if (h5r_dims(f, it->name, &ndim, dims, 8) < 0) {
            snprintf(err, err_size, "dataset %s is missing", it->name);
            rc = -1;
            break;
        }
        for (int d = 0; d < ndim; d++)
            n *= (size_t)dims[d];
        if (n * H5Tget_size(it->mem_type) != it->nbytes) {
            snprintf(err, err_size, "dataset %s has the wrong size", it->name);
            rc = -1;
        } else if (h5r_read(f, it->name, it->mem_type, buf) < 0) {
            snprintf(err, err_size, "dataset %s does not read back (checksum)", it->name);
            rc = -1;
        } else if (it->nbytes && memcmp(buf, it->data, it->nbytes) != 0) {
            snprintf(err, err_size, "dataset %s reads back different bytes", it->name);
            rc = -1;
        }
    }
    free(buf);
    H5Fclose(f);
    return rc;
}

/* The root attributes of a checkpoint of m in state st: what the file is, what model, how
 * far, what produced it (config_text may be NULL; the time and build are left empty). Also
 * what loading compares a file with (check_attrs). */
static void header_of_model(Header *h, const Model *m, const ModelState *st,
                            const char *config_text) {
    memset(h, 0, sizeof(*h));
    snprintf(h->format, sizeof(h->format), "%s", CKPT_FORMAT);
    h->info.format_version = CKPT_FORMAT_VERSION;
    snprintf(h->info.role, sizeof(h->info.role), "%s", st->role);
    h->info.index = st->index;
    h->info.seed = st->seed;
    h->init_seed = m->init_seed;
    h->init_stream = m->init_stream;
    h->info.spec = m->spec;
    h->info.spec.sum_of = m->spec.sum_of > 1 ? m->spec.sum_of : 1;
    h->info.epochs_total = st->epochs_total;
    h->info.epoch = st->epoch;
    h->info.step = st->step;
    h->info.complete = st->complete ? 1 : 0;
    h->config = config_text;
}

/* Parameters, buffers and momentum, all under their state_dict names, in the model's order. */
static void write_tensors(WriteCtx *c, const Model *m) {
    const TensorTable *tt = &m->tensors;
    static const char *const groups[3] = {"params", "buffers", "optimizer/momentum"};
    for (int i = 0; i < 3; i++)
        H5Gclose(h5w_group(&c->w, c->w.file, groups[i]));
    for (int i = 0; i < tt->count; i++) {
        const TensorInfo *t = &tt->items[i];
        if (t->kind == TENSOR_PARAM)
            put_tensor(c, "params", t, m->params);
        else
            put_tensor(c, "buffers", t, m->buffers);
    }
    for (int i = 0; i < tt->count; i++) {
        const TensorInfo *t = &tt->items[i];
        if (t->kind == TENSOR_PARAM) put_tensor(c, "optimizer/momentum", t, m->momentum);
    }
}

/* /state: where in training the model is (the generator is counter-based: no state), and
 * /history: one column per metric. */
static void write_state(WriteCtx *c, const ModelState *st) {
    int64_t *cursor = ctx_own(c, 4 * sizeof(int64_t));
    cursor[0] = st->epoch;
    cursor[1] = st->step_in_epoch;
    cursor[2] = st->step;
    cursor[3] = st->complete ? 1 : 0;
    hsize_t four = 4;
    put(c, "state/cursor", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &four, cursor);
    double *partial = ctx_own(c, 4 * sizeof(double));
    partial[0] = st->partial_loss;
    partial[1] = st->partial_correct;
    partial[2] = st->partial_seen;
    partial[3] = st->partial_seconds;
    put(c, "state/partial", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &four, partial);
    hid_t state = H5Gopen2(c->w.file, "state", H5P_DEFAULT);
    if (state < 0) ed_fail("cannot write %s: group state", c->w.path);
    h5w_attr_str(&c->w, state, "cursor_fields", "epoch, step_in_epoch, step, complete");
    h5w_attr_str(&c->w, state, "partial_fields", "loss_sum, correct_sum, seen, seconds");
    H5Gclose(state);

    hsize_t nh = (hsize_t)st->n_history;
    int64_t *h_epoch = ctx_own(c, nh * sizeof(int64_t));
    for (int e = 0; e < st->n_history; e++)
        h_epoch[e] = st->history[e].epoch;
    char name[64];
    snprintf(name, sizeof(name), "history/%s", ckpt_history_names[HISTORY_EPOCH]);
    put(c, name, H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &nh, h_epoch);
    for (int k = 1; k < CKPT_HISTORY_COLUMNS; k++) {
        double *col = ctx_own(c, nh * sizeof(double));
        for (int e = 0; e < st->n_history; e++)
            col[e] = ckpt_history_get(&st->history[e], k);
        snprintf(name, sizeof(name), "history/%s", ckpt_history_names[k]);
        put(c, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 1, &nh, col);
    }
}

/* The caller's datasets: logits, a probe, ... with their attributes. */
static void write_extra(WriteCtx *c, const CkptDataset *extra, int n_extra) {
    H5Writer *w = &c->w;
    for (int i = 0; i < n_extra; i++) {
        const CkptDataset *x = &extra[i];
        ED_CHECK(x->name && x->data && x->ndim >= 1 && x->ndim <= CKPT_DATASET_MAX_DIMS &&
                     x->n_attrs >= 0 && x->n_attrs <= CKPT_DATASET_MAX_ATTRS,
                 "extra dataset %d (%s) is malformed", i, x->name ? x->name : "?");
        hsize_t dims[CKPT_DATASET_MAX_DIMS];
        for (int d = 0; d < x->ndim; d++)
            dims[d] = (hsize_t)x->dims[d];
        put(c, x->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, x->ndim, dims, x->data);
        if (!x->n_attrs) continue;
        hid_t d = H5Dopen2(w->file, x->name, H5P_DEFAULT);
        if (d < 0) h5w_fail(w, "reopening dataset", x->name);
        for (int k = 0; k < x->n_attrs; k++) {
            const CkptAttrValue *a = &x->attrs[k];
            if (a->type == CKPT_ATTR_STR)
                h5w_attr_str(w, d, a->name, a->str);
            else if (a->type == CKPT_ATTR_I64)
                h5w_attr_i64(w, d, a->name, a->i64);
            else
                h5w_attr_f64(w, d, a->name, a->f64);
        }
        H5Dclose(d);
    }
}

static void write_ctx_free(WriteCtx *c) {
    for (int i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->items);
}

int ckpt_write(const char *path, const Model *m, const ModelState *st,
               const CkptWriteOptions *opt) {
    ED_CHECK(path && m && st && opt, "null argument");
    ED_CHECK(opt->n_extra >= 0 && (opt->n_extra == 0 || opt->extra), "bad extra datasets");
    const int deflate = opt->deflate;
    ED_CHECK(st->role[0], "ModelState.role is empty");
    ED_CHECK(st->n_history >= 0 && (st->n_history == 0 || st->history), "bad history");
    if (deflate < 0 || deflate > 9) ed_fail("checkpoint.deflate must be 0..9, not %d", deflate);
    char tmp[ED_PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        ed_fail("checkpoint path too long: %s", path);
    fs_mkdirs_parent(path);

    WriteCtx c;
    memset(&c, 0, sizeof(c));
    h5w_create(&c.w, tmp, deflate);
    Header h;
    header_of_model(&h, m, st, opt->config_text);
    snprintf(h.info.code_revision, sizeof(h.info.code_revision), "%s", ED_GIT_REV);
    snprintf(h.compiler, sizeof(h.compiler), "%s", ED_COMPILER);
    fs_utc_now(h.info.written_at, sizeof(h.info.written_at));
    write_attrs(&c.w, &h);
    write_tensors(&c, m);
    write_state(&c, st);
    write_extra(&c, opt->extra, opt->n_extra);
    h5w_close(&c.w);

    /* read back: every dataset, checksums and bytes; the attributes through ckpt_info */
    char err[512];
    if (verify_written(tmp, &c, err, sizeof(err)) < 0)
        ed_fail("checkpoint %s did not verify after writing: %s (the previous checkpoint %s is "
                "untouched)",
                tmp, err, path);
    CkptInfo info;
    if (ckpt_info(tmp, &info, err, sizeof(err)) != 0 || info.epoch != st->epoch ||
        info.complete != (st->complete ? 1 : 0) || strcmp(info.spec.arch, m->spec.arch) != 0)
        ed_fail("checkpoint %s did not verify after writing: attributes differ (%s)", tmp, err);
    write_ctx_free(&c);
    fs_commit_keep_prev(tmp, path);
    return 0;
}

/* ================================================================ reading */

enum { LOAD_OK = 0, LOAD_DAMAGED = -1, LOAD_REFUSED = -2 };

/* The format attributes, then the whole table (read_attrs) into h: LOAD_OK, or LOAD_REFUSED
 * (not this format or version) / LOAD_DAMAGED (an attribute missing or unreadable), with the
 * reason in err. */
static int check_format(hid_t f, Header *h, char *err, size_t err_size) {
    char format[64];
    if (h5r_attr_str(f, "format", format, sizeof(format)) < 0) {
        if (H5Aexists(f, "format") == 0) {
            snprintf(err, err_size, "no 'format' attribute: not an ensdistill checkpoint");
            return LOAD_REFUSED;
        }
        snprintf(err, err_size, "the 'format' attribute is unreadable (damaged metadata)");
        return LOAD_DAMAGED;
    }
    if (strcmp(format, CKPT_FORMAT) != 0) {
        snprintf(err, err_size, "attribute format is '%s', expected '%s'", format, CKPT_FORMAT);
        return LOAD_REFUSED;
    }
    int64_t version;
    if (h5r_attr_i64(f, "format_version", &version) < 0) {
        snprintf(err, err_size, "attribute format_version is missing or unreadable");
        return LOAD_DAMAGED;
    }
    if (version != CKPT_FORMAT_VERSION) {
        snprintf(err, err_size, "attribute format_version is %lld; this build reads version %d",
                 (long long)version, CKPT_FORMAT_VERSION);
        return LOAD_REFUSED;
    }
    return read_attrs(f, h, err, err_size) == 0 ? LOAD_OK : LOAD_DAMAGED;
}

int ckpt_info(const char *path, CkptInfo *info, char *err, size_t err_size) {
    char dummy[8];
    if (!err) {
        err = dummy;
        err_size = sizeof(dummy);
    }
    err[0] = 0;
    memset(info, 0, sizeof(*info));
    info->last_test_acc = info->last_train_acc = NAN;
    if (!fs_exists(path)) {
        snprintf(err, err_size, "no such file");
        return 1;
    }
    hid_t f = h5u_open_sealed(path, err, err_size);
    if (f < 0) return -1;
    Header h;
    int rc = check_format(f, &h, err, err_size) == LOAD_OK ? 0 : -1;
    if (rc == 0) {
        *info = h.info;
        info->last_test_acc = info->last_train_acc = NAN;
        int ndim;
        hsize_t dims[8];
        char test_acc[64], train_acc[64];
        snprintf(test_acc, sizeof(test_acc), "history/%s", ckpt_history_names[HISTORY_TEST_ACC]);
        snprintf(train_acc, sizeof(train_acc), "history/%s", ckpt_history_names[HISTORY_TRAIN_ACC]);
        if (h5r_dims(f, test_acc, &ndim, dims, 8) == 0 && ndim == 1 && dims[0] > 0) {
            int n = (int)dims[0];
            double *acc = xmalloc((size_t)n * sizeof(double));
            info->n_history = n;
            if (h5r_read(f, test_acc, H5T_NATIVE_DOUBLE, acc) == 0)
                for (int e = n - 1; e >= 0; e--)
                    if (isfinite(acc[e])) {
                        info->last_test_acc = acc[e];
                        break;
                    }
            if (h5r_read(f, train_acc, H5T_NATIVE_DOUBLE, acc) == 0)
                info->last_train_acc = acc[n - 1];
            free(acc);
        }
        if (h5r_dims(f, "logits/train", &ndim, dims, 8) == 0 && ndim == 2)
            info->n_train_logits = (int)dims[0];
        if (h5r_dims(f, "logits/test", &ndim, dims, 8) == 0 && ndim == 2)
            info->n_test_logits = (int)dims[0];
    }
    H5Fclose(f);
    return rc;
}

/* Checks that every link of group `group` names a tensor of the table with this kind. */
static int check_no_extra(hid_t f, const char *group, const TensorTable *tt, TensorKind kind,
                          char *err, size_t err_size) {
    if (!h5r_has(f, group)) return LOAD_OK;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    H5G_info_t gi;
    if (g < 0 || H5Gget_info(g, &gi) < 0) {
        if (g >= 0) H5Gclose(g);
        snprintf(err, err_size, "group /%s is unreadable", group);
        return LOAD_DAMAGED;
    }
    int rc = LOAD_OK;
    for (hsize_t i = 0; i < gi.nlinks && rc == LOAD_OK; i++) {
        char name[TENSOR_NAME_MAX + 1];
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof(name),
                                         H5P_DEFAULT);
        if (len < 0) {
            snprintf(err, err_size, "group /%s is unreadable", group);
            rc = LOAD_DAMAGED;
        } else {
            int k = (size_t)len < sizeof(name) ? tensor_table_find(tt, name) : -1;
            if (k < 0 || tt->items[k].kind != kind) {
                snprintf(err, err_size,
                         "the file has tensor /%s/%s, which this model does not have", group, name);
                rc = LOAD_REFUSED;
            }
        }
    }
    H5Gclose(g);
    return rc;
}

/* Reads one tensor of the table from group into arena (shape checked). */
static int load_tensor(hid_t f, const char *group, const TensorInfo *t, float *arena, char *err,
                       size_t err_size) {
    char name[DSET_NAME_MAX];
    snprintf(name, sizeof(name), "%s/%s", group, t->name);
    int ndim;
    hsize_t dims[8];
    if (!h5r_has(f, name)) {
        snprintf(err, err_size, "tensor /%s is missing", name);
        return LOAD_DAMAGED;
    }
    if (h5r_dims(f, name, &ndim, dims, 8) < 0) {
        snprintf(err, err_size, "tensor /%s is unreadable", name);
        return LOAD_DAMAGED;
    }
    int same = ndim == t->ndim;
    for (int d = 0; same && d < ndim; d++)
        same = (int64_t)dims[d] == t->shape[d];
    if (!same) {
        char want[64], have[160];
        size_t used = (size_t)snprintf(have, sizeof(have), "[");
        for (int d = 0; d < ndim && used < sizeof(have); d++)
            used += (size_t)snprintf(have + used, sizeof(have) - used, "%s%llu", d ? ", " : "",
                                     (unsigned long long)dims[d]);
        if (used < sizeof(have)) snprintf(have + used, sizeof(have) - used, "]");
        snprintf(err, err_size, "tensor /%s has shape %s in the file but %s in the model", name,
                 have, tensor_shape_str(t, want, sizeof(want)));
        return LOAD_REFUSED;
    }
    if (h5r_read(f, name, H5T_NATIVE_FLOAT, arena + t->offset) < 0) {
        snprintf(err, err_size, "tensor /%s does not read (checksum mismatch or truncated file)",
                 name);
        return LOAD_DAMAGED;
    }
    return LOAD_OK;
}

/* One attribute's value in h as text for a message: 'cnn', 12, [1, 28, 28]. */
static const char *attr_text(const CkptAttr *a, const Header *h, char *buf, size_t size) {
    const void *p = (const char *)h + a->offset;
    switch (a->type) {
    case F_CHARS: snprintf(buf, size, "'%s'", (const char *)p); break;
    case F_TEXT: snprintf(buf, size, "(text)"); break;
    case F_INT: snprintf(buf, size, "%d", *(const int *)p); break;
    case F_INT3: {
        const int *v = p;
        snprintf(buf, size, "[%d, %d, %d]", v[0], v[1], v[2]);
        break;
    }
    case F_I64: snprintf(buf, size, "%lld", (long long)*(const int64_t *)p); break;
    case F_U64: snprintf(buf, size, "%llu", (unsigned long long)*(const uint64_t *)p); break;
    case F_FLOAT: snprintf(buf, size, "%g", *(const float *)p); break;
    }
    return buf;
}

/* Compares the attributes of the table marked `match` in the file's header with want's.
 * LOAD_OK, or LOAD_REFUSED naming the first that differs and both values. */
static int check_attrs(const Header *file, const Header *want, AttrMatch match, char *err,
                       size_t err_size) {
    for (int i = 0; i < N_CKPT_ATTRS; i++) {
        const CkptAttr *a = &ckpt_attrs[i];
        if (a->match != match) continue;
        const char *x = (const char *)file + a->offset, *y = (const char *)want + a->offset;
        int same = a->type == F_CHARS ? strcmp(x, y) == 0 : memcmp(x, y, a->size) == 0;
        ED_CHECK(a->type != F_TEXT && a->type != F_FLOAT, "attribute %s: no comparison",
                 a->name);
        if (same) continue;
        char have[300], expected[300];
        snprintf(err, err_size, "attribute %s is %s in the file but %s %s", a->name,
                 attr_text(a, file, have, sizeof(have)), attr_text(a, want, expected,
                                                                   sizeof(expected)),
                 match == MATCH_MODEL ? "in the model"
                                      : "in this run (a run directory holds one run's models: "
                                        "another seed needs another checkpoint.dir)");
        return LOAD_REFUSED;
    }
    return LOAD_OK;
}

/* Parameters, buffers and momentum of the table into m's arenas, with no tensor in the file
 * that the model lacks. */
static int load_tensors(hid_t f, Model *m, char *err, size_t err_size) {
    const TensorTable *tt = &m->tensors;
    int rc = check_no_extra(f, "params", tt, TENSOR_PARAM, err, err_size);
    if (rc == LOAD_OK) rc = check_no_extra(f, "buffers", tt, TENSOR_BUFFER, err, err_size);
    for (int i = 0; i < tt->count && rc == LOAD_OK; i++) {
        const TensorInfo *t = &tt->items[i];
        if (t->kind == TENSOR_PARAM)
            rc = load_tensor(f, "params", t, m->params, err, err_size);
        else
            rc = load_tensor(f, "buffers", t, m->buffers, err, err_size);
    }
    for (int i = 0; i < tt->count && rc == LOAD_OK; i++) {
        const TensorInfo *t = &tt->items[i];
        if (t->kind == TENSOR_PARAM)
            rc = load_tensor(f, "optimizer/momentum", t, m->momentum, err, err_size);
    }
    return rc;
}

/* /state/cursor and /state/partial into ns. */
static int load_cursor(hid_t f, ModelState *ns, char *err, size_t err_size) {
    int64_t cursor[4];
    double partial[4];
    int ndim;
    hsize_t dims[8];
    if (h5r_dims(f, "state/cursor", &ndim, dims, 8) < 0 || ndim != 1 || dims[0] != 4 ||
        h5r_read(f, "state/cursor", H5T_NATIVE_INT64, cursor) < 0 ||
        h5r_dims(f, "state/partial", &ndim, dims, 8) < 0 || ndim != 1 || dims[0] != 4 ||
        h5r_read(f, "state/partial", H5T_NATIVE_DOUBLE, partial) < 0) {
        snprintf(err, err_size, "/state/cursor or /state/partial is missing or unreadable");
        return LOAD_DAMAGED;
    }
    ns->epoch = (int)cursor[0];
    ns->step_in_epoch = (int)cursor[1];
    ns->step = cursor[2];
    ns->complete = (int)cursor[3];
    ns->partial_loss = partial[0];
    ns->partial_correct = partial[1];
    ns->partial_seen = partial[2];
    ns->partial_seconds = partial[3];
    return LOAD_OK;
}

/* /history/<column> into ns's history (every column of the same length). */
static int load_history(hid_t f, ModelState *ns, char *err, size_t err_size) {
    int ndim;
    hsize_t dims[8];
    char epoch[64];
    snprintf(epoch, sizeof(epoch), "history/%s", ckpt_history_names[HISTORY_EPOCH]);
    if (h5r_dims(f, epoch, &ndim, dims, 8) < 0 || ndim != 1) {
        snprintf(err, err_size, "/%s is missing or unreadable", epoch);
        return LOAD_DAMAGED;
    }
    int n = (int)dims[0], rc = LOAD_OK;
    double *cols = xmalloc((size_t)(CKPT_HISTORY_COLUMNS * n + 1) * sizeof(double));
    for (int k = 0; k < CKPT_HISTORY_COLUMNS && rc == LOAD_OK; k++) {
        char name[64];
        snprintf(name, sizeof(name), "history/%s", ckpt_history_names[k]);
        if (h5r_dims(f, name, &ndim, dims, 8) < 0 || ndim != 1 || (int)dims[0] != n ||
            h5r_read(f, name, H5T_NATIVE_DOUBLE, cols + (size_t)k * n) < 0) {
            snprintf(err, err_size, "/%s is missing, unreadable or of the wrong length", name);
            rc = LOAD_DAMAGED;
        }
    }
    for (int e = 0; e < n && rc == LOAD_OK; e++) {
        EpochRecord r;
        for (int k = 0; k < CKPT_HISTORY_COLUMNS; k++)
            ckpt_history_set(&r, k, cols[(size_t)k * n + e]);
        ckpt_state_push_epoch(ns, &r);
    }
    free(cols);
    return rc;
}

/* Loads one file into m and st. LOAD_OK, LOAD_DAMAGED or LOAD_REFUSED with the reason. */
static int load_file(const char *path, Model *m, ModelState *st, char *err, size_t err_size) {
    hid_t f = h5u_open_sealed(path, err, err_size);
    if (f < 0) return LOAD_DAMAGED;
    Header h, want;
    int rc = check_format(f, &h, err, err_size);
    header_of_model(&want, m, st, NULL);
    if (rc == LOAD_OK) rc = check_attrs(&h, &want, MATCH_MODEL, err, err_size);
    if (rc == LOAD_OK && st->role[0]) rc = check_attrs(&h, &want, MATCH_RUN, err, err_size);
    ModelState ns;
    memset(&ns, 0, sizeof(ns));
    if (rc == LOAD_OK) {
        snprintf(ns.role, sizeof(ns.role), "%s", h.info.role);
        ns.index = h.info.index;
        ns.seed = h.info.seed;
        snprintf(ns.arch, sizeof(ns.arch), "%s", h.info.spec.arch);
        ns.epochs_total = h.info.epochs_total;
        rc = load_tensors(f, m, err, err_size);
    }
    if (rc == LOAD_OK) rc = load_cursor(f, &ns, err, err_size);
    if (rc == LOAD_OK) rc = load_history(f, &ns, err, err_size);
    if (H5Fclose(f) < 0 && rc == LOAD_OK) {
        snprintf(err, err_size, "the file does not close cleanly");
        rc = LOAD_DAMAGED;
    }
    if (rc != LOAD_OK) {
        ckpt_state_free(&ns);
        return rc;
    }
    ckpt_state_free(st);
    *st = ns;
    return LOAD_OK;
}

int ckpt_read(const char *path, Model *m, ModelState *st) {
    ED_CHECK(path && m && st, "null argument");
    h5u_quiet();
    char prev[ED_PATH_MAX];
    fs_prev_path(prev, sizeof(prev), path);
    int have_main = fs_exists(path), have_prev = fs_exists(prev);
    if (!have_main && !have_prev) return 1;
    char err[768] = "", err_prev[768] = "";
    if (have_main) {
        int rc = load_file(path, m, st, err, sizeof(err));
        if (rc == LOAD_OK) return 0;
        if (rc == LOAD_REFUSED) ed_fail("checkpoint %s is refused: %s", path, err);
        if (!have_prev)
            ed_fail("checkpoint %s is damaged: %s; there is no previous checkpoint %s to fall "
                    "back to (move the file away to train this model from the start)",
                    path, err, prev);
    } else {
        snprintf(err, sizeof(err), "it is missing (an interrupted rename)");
    }
    int rc = load_file(prev, m, st, err_prev, sizeof(err_prev));
    if (rc == LOAD_REFUSED) ed_fail("checkpoint %s is refused: %s", prev, err_prev);
    if (rc != LOAD_OK)
        ed_fail("checkpoint %s is damaged (%s) and so is the previous one %s (%s)", path, err, prev,
                err_prev);
    /* The good file becomes the model of record, atomically: the damaged one is kept aside as
     * NAME.h5.damaged, then the rename of prev over NAME.h5 (a crash between the two leaves only
     * prev: the case above). Readers that name a file (eval: st->role empty) change nothing. */
    if (st->role[0]) fs_restore_prev(path);
    ed_warn("checkpoint %s: %s; resuming from the previous checkpoint %s (epoch %d, step %lld)%s",
            path, err, prev, st->epoch, (long long)st->step,
            st->role[0] ? ", which now takes its name" : "");
    return 0;
}

int ckpt_read_other_run(const char *path, Model *m, ModelState *st) {
    ED_CHECK(path && m && st, "null argument");
    h5u_quiet();
    if (!fs_exists(path)) return 1;
    char err[768] = "";
    int rc = load_file(path, m, st, err, sizeof(err));
    if (rc != LOAD_OK)
        ed_fail("checkpoint %s of another run is %s: %s (a file of another run is only read: "
                "nothing of it is renamed, repaired or replaced by its .prev here; that run's own "
                "command falls back to its previous checkpoint)",
                path, rc == LOAD_REFUSED ? "refused" : "damaged", err);
    return 0;
}

/* The float dataset /name of a sealed file into out, when its shape is want[0 .. ndim): 0;
 * -1 when the file has no such dataset. An unreadable file, another shape or a bad checksum:
 * ed_fail naming the file and the dataset. */
static int read_float_dataset(const char *path, const char *name, float *out, int ndim,
                              const hsize_t *want) {
    char err[512];
    hid_t f = h5u_open_sealed(path, err, sizeof err);
    if (f < 0) ed_fail("cannot read /%s from %s: %s", name, path, err);
    if (!h5r_has(f, name)) {
        H5Fclose(f);
        return -1;
    }
    int have_ndim;
    hsize_t dims[8];
    if (h5r_dims(f, name, &have_ndim, dims, 8) < 0) ed_fail("%s: /%s is unreadable", path, name);
    int same = have_ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = dims[d] == want[d];
    if (!same) {
        char have_s[96] = "", want_s[96] = "";
        for (int d = 0; d < have_ndim && d < 4; d++)
            snprintf(have_s + strlen(have_s), sizeof(have_s) - strlen(have_s), "%s%llu",
                     d ? ", " : "", (unsigned long long)dims[d]);
        for (int d = 0; d < ndim; d++)
            snprintf(want_s + strlen(want_s), sizeof(want_s) - strlen(want_s), "%s%llu",
                     d ? ", " : "", (unsigned long long)want[d]);
        ed_fail("%s: /%s has shape [%s], expected [%s]", path, name, have_s, want_s);
    }
    if (h5r_read(f, name, H5T_NATIVE_FLOAT, out) < 0)
        ed_fail("%s: /%s does not read (checksum mismatch or truncated file)", path, name);
    H5Fclose(f);
    return 0;
}

int ckpt_read_logits(const char *path, const char *which, float *out, int n, int K) {
    ED_CHECK(strcmp(which, "train") == 0 || strcmp(which, "test") == 0, "which = %s", which);
    char name[32];
    snprintf(name, sizeof(name), "logits/%s", which);
    const hsize_t want[2] = {(hsize_t)n, (hsize_t)K};
    return read_float_dataset(path, name, out, 2, want);
}

int ckpt_read_floats(const char *path, const char *name, float *out, size_t count) {
    const hsize_t want[1] = {(hsize_t)count};
    return read_float_dataset(path, name, out, 1, want);
}

char *ckpt_read_config(const char *path) {
    char err[512];
    hid_t f = h5u_open_sealed(path, err, sizeof err);
    if (f < 0) return NULL;
    char *text = h5r_attr_str_alloc(f, "config");
    H5Fclose(f);
    return text;
}
