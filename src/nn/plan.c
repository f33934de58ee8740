/* The memory plan of a model's activation arenas: which values share slots because their
 * lifetimes do not overlap (first fit over the op clock), when backward zeroes each
 * activation gradient, and from which op on each parameter gradient is final. */
#include "nn_internal.h"

#include "ensdistill/alloc.h"
#include "ensdistill/error.h"

#include <stdint.h>
#include <stdlib.h>

typedef struct {
    size_t offset, size;
    int start, end; /* live over [start, end] in some clock */
} Slot;

/* First fit: the lowest offset where [offset, offset+size) overlaps no slot live at the same
 * time. Slots are few (one per value), so the quadratic scan is cheap. */
static size_t place(const Slot *slots, int n, size_t size, int start, int end) {
    size_t offset = 0;
    for (;;) {
        int moved = 0;
        for (int i = 0; i < n; i++) {
            const Slot *s = &slots[i];
            if (s->end < start || s->start > end) continue; /* not live together */
            if (s->offset < offset + size && offset < s->offset + s->size) {
                offset = s->offset + s->size;
                moved = 1;
            }
        }
        if (!moved) return offset;
    }
}

static int root_of(const Value *V, int v) {
    return V[v].alias_of >= 0 ? V[v].alias_of : v;
}

/* Assigns every value its activation and gradient slots (see Value) and the zeroing lists.
 * Forward clock: op index; backward clock: op index too, a gradient being live from its
 * producer's op to its last reader's. An activation is read by backward when it is the input
 * of a conv, linear, BN or mvconv, or the output of a ReLU (relu_backward gets the output:
 * out > 0 exactly where in > 0), or the logits or the network input. */
void nn_plan_memory(Model *m, int max_batch) {
    Value *V = m->priv->values;
    int nv = m->priv->n_values, n_ops = m->priv->n_ops;
    int *prod = xmalloc((size_t)nv * sizeof(int)), *last = xmalloc((size_t)nv * sizeof(int));
    int *keep = xcalloc((size_t)nv, sizeof(int));
    for (int v = 0; v < nv; v++) prod[v] = last[v] = -1;
    for (int i = 0; i < n_ops; i++) {
        const Op *op = &m->priv->ops[i];
        const int alias = op->kind == OP_FLATTEN && !op->reorder;
        prod[root_of(V, op->out)] = alias ? prod[root_of(V, op->out)] : i;
        int ins[2] = {op->in, op->in2};
        for (int k = 0; k < 2; k++)
            if (ins[k] >= 0 && !alias) last[root_of(V, ins[k])] = i;
        if (op->kind == OP_CONV || op->kind == OP_LINEAR || op->kind == OP_BN ||
            op->kind == OP_MVCONV)
            keep[root_of(V, op->in)] = 1;
        if (op->kind == OP_RELU) keep[root_of(V, op->out)] = 1;
    }
    keep[0] = 1;
    keep[root_of(V, m->priv->logits_value)] = 1;
    last[root_of(V, m->priv->logits_value)] = n_ops; /* read by the caller, seeded by backward */

    Slot *slots = xmalloc((size_t)nv * sizeof(Slot));
    int ns = 0;
    size_t act_floats = 0;
    for (int v = 0; v < nv; v++) { /* values are created in forward order */
        if (V[v].alias_of >= 0) continue;
        if (v != 0 && prod[v] < 0) { /* no op writes it (a BN output fused with its ReLU) */
            V[v].offset = 0;
            continue;
        }
        size_t size = round_up((size_t)max_batch * value_act_floats(&V[v]));
        int start = v == 0 ? -1 : prod[v], end = keep[v] ? INT32_MAX : last[v];
        if (end < start) end = start; /* produced and never read */
        V[v].offset = place(slots, ns, size, start, end);
        slots[ns++] = (Slot){V[v].offset, size, start, end};
        if (V[v].offset + size > act_floats) act_floats = V[v].offset + size;
    }
    ns = 0;
    size_t dact_floats = 0;
    for (int v = nv - 1; v >= 0; v--) { /* in the order backward meets them */
        if (V[v].alias_of >= 0 || !V[v].requires_grad) continue;
        size_t size = round_up((size_t)max_batch * value_size(&V[v]));
        int end = last[v] < prod[v] ? prod[v] : last[v];
        V[v].goffset = place(slots, ns, size, prod[v], end);
        slots[ns++] = (Slot){V[v].goffset, size, prod[v], end};
        if (V[v].goffset + size > dact_floats) dact_floats = V[v].goffset + size;
    }
    for (int v = 0; v < nv; v++)
        if (V[v].alias_of >= 0) {
            V[v].offset = V[V[v].alias_of].offset;
            V[v].goffset = V[V[v].alias_of].goffset;
        }

    /* zero lists: value v's gradient is zeroed before the backward of op last[v] */
    struct ModelPrivate *p = m->priv;
    p->zero_begin = xcalloc((size_t)n_ops + 2, sizeof(int));
    p->zero_list = xcalloc((size_t)nv + 1, sizeof(int));
    for (int v = 0; v < nv; v++)
        if (V[v].alias_of < 0 && V[v].requires_grad && last[v] >= 0 && last[v] < n_ops)
            p->zero_begin[last[v] + 1]++;
    for (int i = 0; i < n_ops; i++) p->zero_begin[i + 1] += p->zero_begin[i];
    int *fill = xcalloc((size_t)n_ops + 1, sizeof(int));
    for (int v = 0; v < nv; v++)
        if (V[v].alias_of < 0 && V[v].requires_grad && last[v] >= 0 && last[v] < n_ops)
            p->zero_list[p->zero_begin[last[v]] + fill[last[v]]++] = v;
    p->act_floats = act_floats;
    p->dact_floats = dact_floats;
    free(fill);
    free(slots);
    free(prod);
    free(last);
    free(keep);
}

void nn_assign_layouts(Model *m, int lanes, int bf16) {
    struct ModelPrivate *p = m->priv;
    Value *V = p->values;
    /* BN + ReLU: fused where the ReLU is the BN output's only reader */
    int *readers = xcalloc((size_t)p->n_values, sizeof(int));
    for (int i = 0; i < p->n_ops; i++) {
        readers[p->ops[i].in]++;
        if (p->ops[i].in2 >= 0) readers[p->ops[i].in2]++;
    }
    int n = 0;
    for (int i = 0; i < p->n_ops; i++) {
        Op *op = &p->ops[i];
        if (op->kind == OP_RELU && n > 0 && p->ops[n - 1].kind == OP_BN &&
            p->ops[n - 1].out == op->in && readers[op->in] == 1 && op->in != p->logits_value) {
            Op *bn = &p->ops[n - 1];
            V[bn->out].requires_grad = 0; /* never written again */
            bn->relu = 1;
            bn->out = op->out;
            continue;
        }
        p->ops[n++] = *op;
    }
    p->n_ops = n;
    free(readers);

    for (int i = 0; i < p->n_ops; i++) {
        Op *op = &p->ops[i];
        Value *in = &V[op->in], *out = &V[op->out];
        int L = 1;
        switch (op->kind) {
        case OP_CONV:
            L = lanes;
            break;
        case OP_BN:
        case OP_RELU:
        case OP_MAXPOOL:
        case OP_SHORTCUT:
            L = in->lanes;
            break;
        case OP_ADD:
            ED_CHECK(in->lanes == V[op->in2].lanes, "add of layouts %d and %d", in->lanes,
                     V[op->in2].lanes);
            L = in->lanes;
            break;
        case OP_FLATTEN:
            if (in->lanes > 1) { /* a copy to plain, not an alias */
                op->reorder = 1;
                out->alias_of = -1;
            }
            break;
        case OP_GAP:
            break;
        case OP_LINEAR:
        case OP_MVCONV:
            ED_CHECK(in->lanes == 1, "op %s reads a blocked value", op->label);
            break;
        }
        out->lanes = L;
        out->Cp = (out->C + L - 1) / L * L;
        out->bf16 = bf16 && L > 1;
    }
}

void nn_plan_grad_ready(Model *m) {
    struct ModelPrivate *p = m->priv;
    p->grad_ready = xcalloc((size_t)p->n_ops + 1, sizeof(size_t));
    /* Backward runs ops n_ops-1 .. 0; op j writes only its own tensors' gradients. After op
     * i, the gradients still to be written are those of ops j < i: everything above the
     * highest end of their trainable tensors is final. A running maximum over j. */
    size_t high = m->trainable_begin;
    for (int i = 0; i < p->n_ops; i++) {
        p->grad_ready[i] = high;
        const Op *op = &p->ops[i];
        for (int k = 0; k < 5; k++) {
            if (op->t[k] < 0) continue;
            const TensorInfo *t = &m->tensors.items[op->t[k]];
            if (t->kind == TENSOR_PARAM && t->trainable && t->offset + t->numel > high)
                high = t->offset + t->numel;
        }
    }
}
