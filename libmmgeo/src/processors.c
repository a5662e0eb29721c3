/* Processors: the model (libmm) and the test functions. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static int test_fn(void *user, int n_tiles, const float *const *sources, float *const *targets,
                   float sign, char *err, size_t errlen) {
    const mmgeo_processor *p = user;
    if (!p || p->n_sources < 1) return mmgeo_fail(err, errlen, "the test processors need a source");
    const size_t plane = (size_t)p->window * p->window;
    const int c0 = p->src_channels[0];
    for (int j = 0; j < p->n_targets; j++)
        for (int t = 0; t < n_tiles; t++)
            for (int c = 0; c < p->dst_channels[j]; c++) {
                const float *s = sources[0] + ((size_t)t * c0 + c % c0) * plane;
                float *d = targets[j] + ((size_t)t * p->dst_channels[j] + c) * plane;
                for (size_t i = 0; i < plane; i++)
                    d[i] = sign * s[i];
            }
    return 0;
}

int mmgeo_process_identity(void *user, int n_tiles, const uint64_t *tile_ids,
                           const float *const *sources, float *const *targets, char *err,
                           size_t errlen) {
    (void)tile_ids;
    return test_fn(user, n_tiles, sources, targets, 1.0f, err, errlen);
}

int mmgeo_process_negate(void *user, int n_tiles, const uint64_t *tile_ids,
                         const float *const *sources, float *const *targets, char *err,
                         size_t errlen) {
    (void)tile_ids;
    return test_fn(user, n_tiles, sources, targets, -1.0f, err, errlen);
}

int mmgeo_process_model(void *user, int n_tiles, const uint64_t *tile_ids,
                        const float *const *sources, float *const *targets, char *err,
                        size_t errlen) {
    mmgeo_model_processor *m = user;
    mm_status s = mm_translate(m->ctx, &m->params, n_tiles, tile_ids, m->n_sources, m->source_mods,
                               sources, m->n_targets, m->target_mods, targets);
    if (s == MM_ERROR_INTERRUPTED) {
        mmgeo_fail(err, errlen, "interrupted");
        return MMGEO_INTERRUPTED;
    }
    if (s != MM_OK) return mmgeo_fail(err, errlen, "%s", mm_context_errmsg(m->ctx));
    return 0;
}

int mmgeo_model_reserve(mmgeo_model_processor *mp, int *batch, int max, char *info, size_t infolen,
                        char *err, size_t errlen) {
    const int automatic = *batch <= 0;
    const mm_workload w = {.n_tiles = automatic ? 1 : *batch,
                           .n_sources = mp->n_sources,
                           .source_mods = mp->source_mods,
                           .n_targets = mp->n_targets,
                           .target_mods = mp->target_mods,
                           .guidance = mp->params.guidance,
                           .joint_guidance = mp->params.joint_guidance};
    mm_memory_plan plan;
    const mm_status s = automatic ? mm_context_reserve_auto(mp->ctx, &w, max, 0, &plan)
                                  : mm_context_reserve(mp->ctx, &w, 0, &plan);
    if (s != MM_OK) return mmgeo_fail(err, errlen, "%s", mm_context_errmsg(mp->ctx));
    *batch = plan.n_tiles;
    mp->reserved_bytes = (double)plan.arena;
    if (info)
        snprintf(info, infolen,
                 "batch %d%s: working memory %.1f MiB in one block (workspace %.1f MiB, backend "
                 "scratch %.1f MiB), %.0f MiB of %.0f MiB free",
                 plan.n_tiles, automatic ? " (chosen from the free memory)" : "",
                 plan.arena / 1048576.0, plan.workspace / 1048576.0, plan.scratch / 1048576.0,
                 plan.free_bytes / 1048576.0, plan.device_bytes / 1048576.0);
    return 0;
}

int mmgeo_process_embed(void *user, int n_tiles, const uint64_t *tile_ids,
                        const float *const *sources, float *const *targets, char *err,
                        size_t errlen) {
    mmgeo_embed_processor *e = user;
    const int T = e->tokens, Hd = e->hidden, ns = e->n_sources;
    const size_t per = (size_t)T * T * Hd;
    const size_t need = per * (size_t)n_tiles * (size_t)(e->readout ? 1 : ns);
    if (e->scratch_n < need) {
        float *p = realloc(e->scratch, need * sizeof(float));
        if (!p) return mmgeo_fail(err, errlen, "out of memory");
        e->scratch = p, e->scratch_n = need;
    }
    float *out[MMGEO_MAX_IO];
    for (int i = 0; i < (e->readout ? 1 : ns); i++)
        out[i] = e->scratch + (size_t)i * n_tiles * per;
    if (e->readout) {
        if (mm_embed_readout(e->ctx, &e->readout_params, n_tiles, tile_ids, ns, e->source_mods,
                             sources, out[0]) != MM_OK)
            return mmgeo_fail(err, errlen, "%s", mm_context_errmsg(e->ctx));
    } else if (mm_embed(e->ctx, n_tiles, ns, e->source_mods, sources, out) != MM_OK)
        return mmgeo_fail(err, errlen, "%s", mm_context_errmsg(e->ctx));
    /* tokens of source 0 (or of the readout branch): T x T x hidden (row-major cells) -> hidden
     * planes of T x T */
    for (int t = 0; t < n_tiles; t++) {
        const float *s = out[0] + (size_t)t * per;
        float *d = targets[0] + (size_t)t * per;
        for (int c = 0; c < T * T; c++)
            for (int h = 0; h < Hd; h++)
                d[(size_t)h * T * T + c] = s[(size_t)c * Hd + h];
    }
    return 0;
}
