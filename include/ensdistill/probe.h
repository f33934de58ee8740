/* The views-learned probe of multi-view runs (issue 6, point 3): for every class j, how well
 * the class-j filters of an mvconv model have picked up each of the class's two views. It shows
 * the paper's mechanism (a single model learns one view of most classes; the ensemble and the
 * KD student carry both), not only its accuracies. */
#ifndef ENSDISTILL_PROBE_H
#define ENSDISTILL_PROBE_H

#include "ensdistill/model.h"

/* out[K][2]: [j][l] = max over class j's filters r (of every net, for a sum model) of
 * <w_{j,r}, v_{j,l}>, with views[K][2][D] the data's unit view vectors. Returns 0, or -1 when
 * the model is not an mvconv (nothing written). */
int probe_views(const Model *m, const float *views, int K, int D, float *out);

/* What out means, stored with it (the "meaning" attribute of a checkpoint's /probe/views). */
#define PROBE_VIEWS_MEANING                                                                        \
    "[j, l] = max over class j's filters r of <w_{j,r}, v_{j,l}>; a view counts as learned "     \
    "when this is >= threshold"

/* Classes whose two views both reach threshold. */
int probe_both_learned(const float *probe, int K, double threshold);

#endif
