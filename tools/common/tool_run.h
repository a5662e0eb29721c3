/* The run-time plumbing of the tools that run a job through libmmgeo (mm_translate, mm_generate,
 * mm_embed, mm_baseline), in one place: interrupts, the progress bar, warnings. */
#ifndef MM_TOOLS_TOOL_RUN_H
#define MM_TOOLS_TOOL_RUN_H
#include <cpl_port.h>

/* From here on Ctrl-C and SIGTERM stop the run at its next window or sampling step. The handler
 * only sets a flag that the callbacks below read: libmmgeo then discards its temporary output and
 * returns MMGEO_INTERRUPTED, so nothing half-written is left under the final name. */
void mm_tool_catch_interrupts(void);
/* The progress callback of a job (job.progress); quiet: an int, non-zero for no terminal bar.
 * FALSE once interrupted. */
int CPL_STDCALL mm_tool_progress(double f, const char *msg, void *quiet);
/* libmm's sampling progress callback (mm_sample_params.progress): non-zero once interrupted. */
int mm_tool_sampling_progress(void *user, int step, int n);
/* The warning callback of a job (job.warn); tool: the tool's name (job.warn_user). */
void mm_tool_warn(void *tool, const char *msg);

#endif
