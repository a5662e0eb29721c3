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
