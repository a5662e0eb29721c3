#define _GNU_SOURCE /* realpath */
#include "tool_run.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

GDALDatasetH mm_tool_open_raster(const char *tool, const char *path) {
    char err[2048];
    GDALDatasetH ds = mmgeo_open_raster(path, err, sizeof err);
    if (!ds) fprintf(stderr, "%s: %s\n", tool, err);
    return ds;
}

int mm_tool_open_aoi(const char *tool, const char *path, const char *layer, mmgeo_job *job,
                     mmgeo_aoi **aoi, char ***md) {
    char err[1024];
    if (mmgeo_aoi_open_job(path, layer, job, aoi, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", tool, err);
        return -1;
    }
    job->aoi = *aoi;
    char *abs = realpath(path, NULL);
    char *v =
        CPLStrdup(CPLSPrintf("%s%s%s", abs ? abs : path, layer ? ":" : "", layer ? layer : ""));
    free(abs);
    job->metadata = *md = CSLSetNameValue(*md, "MM_AOI", v);
    CPLFree(v);
    return 0;
}

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

void mm_tool_catch_interrupts(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int CPL_STDCALL mm_tool_progress(double f, const char *msg, void *quiet) {
    if (g_stop) return FALSE;
    if (!(quiet && *(const int *)quiet)) GDALTermProgress(f, msg, NULL);
    return TRUE;
}

int mm_tool_sampling_progress(void *user, int step, int n) {
    (void)user, (void)step, (void)n;
    return g_stop != 0;
}

void mm_tool_warn(void *tool, const char *msg) {
    fprintf(stderr, "%s: warning: %s\n", tool ? (const char *)tool : "mm", msg);
}

void mm_tool_job_output(mmgeo_job *job, const char *tool, const char *format, char **co, char **md,
                        int *quiet, mmgeo_run_stats *stats) {
    job->format = format;
    job->create_options = co;
    job->metadata = md;
    job->progress = mm_tool_progress;
    job->progress_arg = quiet;
    job->warn = mm_tool_warn;
    job->warn_user = (void *)tool;
    job->stats = stats;
}

void mm_tool_job_guards(const mm_tool_opts *o, mmgeo_job *job, const mmgeo_model_processor *mp) {
    job->nonfinite = o->nonfinite;
    job->max_pixels = o->max_pixels;
    job->force = o->force;
    job->extra_bytes = mp ? mp->reserved_bytes : 0;
}

int mm_tool_run_status(const char *tool, int r, const char *err, const char *dst, int quiet,
                       const mmgeo_run_stats *aoi_stats) {
    if (r && !quiet) fputc('\n', stderr); /* after the progress bar */
    if (r == MMGEO_INTERRUPTED) {
        if (dst)
            fprintf(stderr, "%s: interrupted; '%s' was not written\n", tool, dst);
        else
            fprintf(stderr, "%s: interrupted; nothing was written\n", tool);
        return 130;
    }
    if (r) {
        fprintf(stderr, "%s: %s\n", tool, err);
        return 1;
    }
    if (aoi_stats && !quiet)
        fprintf(stderr, "%s: %lld of %lld windows outside the AOI skipped\n", tool,
                aoi_stats->skipped_aoi, aoi_stats->windows);
    return 0;
}

int mm_tool_run_job(const mm_tool_opts *o, mmgeo_job *job, const mmgeo_model_geo *geo,
                    mmgeo_model_processor *mp, mmgeo_processor *proc, char ***md, mmgeo_aoi **aoi,
                    const char *dst) {
    const char *T = o->tool;
    if (o->aoi) { /* windows outside skipped, pixels outside nodata */
        if (o->seamless) {
            fprintf(stderr, "%s: --aoi works with the blended tiling, not --seamless\n", T);
            return 1;
        }
        if (mm_tool_open_aoi(T, o->aoi, o->aoi_layer, job, aoi, md)) return 1;
    }
    if (o->gsd > 0) {
        if (o->seamless) {
            fprintf(stderr, "%s: --gsd works with the blended tiling, not --seamless\n", T);
            return 1;
        }
        char buf[64];
        snprintf(buf, sizeof buf, "%g", o->gsd);
        job->metadata = *md = CSLSetNameValue(*md, "MM_GSD", buf);
    }
    if (!o->quiet) mmgeo_gsd_check(job, geo, o->gsd); /* a warning outside the model's range */
    char err[2048];
    const int r = o->seamless  ? mmgeo_run_seamless(job, mp, err, sizeof err)
                  : o->gsd > 0 ? mmgeo_run_gsd(job, proc, o->gsd, err, sizeof err)
                               : mmgeo_run(job, proc, err, sizeof err);
    return mm_tool_run_status(T, r, err, dst, o->quiet, *aoi ? job->stats : NULL);
}
