#include "tool_run.h"

#include <gdal.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

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
