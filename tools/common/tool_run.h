/* The run-time plumbing of the tools that run a job through libmmgeo (mm_translate, mm_generate,
 * mm_embed, mm_baseline), in one place: opening their rasters and areas of interest, interrupts,
 * the progress bar, warnings, the choice of run and its exit status. */
#ifndef MM_TOOLS_TOOL_RUN_H
#define MM_TOOLS_TOOL_RUN_H
#include <cpl_port.h>

#include <gdal.h>

#include "mmgeo.h"
#include "tool_opts.h"

/* Opens the raster at path read-only (mmgeo_open_raster), or prints why not ("cannot open 'PATH':
 * No such file or directory", or GDAL's reason) and returns NULL: GDAL's own error output is held
 * back so that the tool's one line is all the user sees. */
GDALDatasetH mm_tool_open_raster(const char *tool, const char *path);
/* --aoi: opens the area of interest for job (mmgeo_aoi_open_job), sets job->aoi and records it in
 * the output metadata *md (MM_AOI = absolute path[:layer]; job->metadata follows *md). Returns 0,
 * or -1 after a message on stderr. */
int mm_tool_open_aoi(const char *tool, const char *path, const char *layer, mmgeo_job *job,
                     mmgeo_aoi **aoi, char ***md);

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

/* The job's output and reporting settings: format and -co (NULL: the defaults), metadata, the
 * progress bar (quiet: the tool's -q), warnings under the tool's name, run statistics (NULL:
 * none). */
void mm_tool_job_output(mmgeo_job *job, const char *tool, const char *format, char **co, char **md,
                        int *quiet, mmgeo_run_stats *stats);
/* The job's guards from the options of o: --nonfinite, --max-pixels, --force; the model's reserved
 * working memory (mp may be NULL) counts in the memory figure. */
void mm_tool_job_guards(const mm_tool_opts *o, mmgeo_job *job, const mmgeo_model_processor *mp);
/* The exit status of a run that returned r with message err: 0; 130 after "interrupted; 'DST'
 * was not written" (dst NULL: "nothing was written"); 1 after the message. After a successful
 * run with an area of interest (aoi_stats not NULL) and not quiet, how many windows it skipped. */
int mm_tool_run_status(const char *tool, int r, const char *err, const char *dst, int quiet,
                       const mmgeo_run_stats *aoi_stats);
/* Runs the job of mm_translate or mm_generate (its output set with mm_tool_job_output, its
 * metadata *md) with the tiling options of o: --aoi opened into *aoi (mm_tool_open_aoi), --gsd
 * recorded as MM_GSD, neither with --seamless (which fuses whole latent windows); unless -q a
 * warning when the working resolution is outside the model's GSD range geo; then
 * mmgeo_run_seamless over mp, mmgeo_run_gsd or mmgeo_run over proc. Returns the tool's exit
 * status: 1 after a message, else mm_tool_run_status's for dst (NULL: several outputs). */
int mm_tool_run_job(const mm_tool_opts *o, mmgeo_job *job, const mmgeo_model_geo *geo,
                    mmgeo_model_processor *mp, mmgeo_processor *proc, char ***md, mmgeo_aoi **aoi,
                    const char *dst);

#endif
