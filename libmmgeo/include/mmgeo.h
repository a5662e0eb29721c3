/*
 * libmmgeo: the geospatial layer of the MetaEarth-MM toolchain (the only C code that links GDAL).
 *
 * It reads georeferenced rasters, converts them to model images with modality I/O profiles,
 * cuts the raster into a grid of model windows anchored to the raster origin, runs a PROCESSOR
 * on batches of windows (the model through libmm, or a test function), blends the results with
 * a separable raised-cosine weight over the overlaps, and writes the mosaic, strip by strip, onto
 * the input's grid (size, geotransform or GCPs, CRS, nodata or mask), under a temporary name
 * renamed when complete.
 *
 * Extent independence: the grid, the tile ids (noise addresses) and the accumulation order depend
 * on the full raster only, so a run on a sub-window gives bit-identical pixels to the same region
 * of a full run.
 *
 * Functions report failure by returning non-zero and writing a message into err (errlen bytes).
 */
#ifndef MMGEO_H
#define MMGEO_H

#include <stddef.h>
#include <stdint.h>

#include <gdal.h>
#include <ogr_srs_api.h>

#include "mm.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MMGEO_MAX_IO 8     /* sources or targets of one run */
#define MMGEO_MAX_BANDS 16 /* bands of one source */

/* ---- modality I/O profiles ------------------------------------------------------------------ */

typedef enum {
    MMGEO_IO_BYTE = 0,    /* 8-bit pass-through: v = x / 127.5 - 1 */
    MMGEO_IO_REFLECTANCE, /* linear: [lo, hi] -> [-1, 1], clipped (uint16 reflectance: 0..10000) */
    MMGEO_IO_SAR,         /* SAR: amplitude / intensity / complex / dB -> dB clipped to [lo, hi] */
    MMGEO_IO_PERCENTILE,  /* linear stretch between the lo and hi percentiles of each band */
    MMGEO_IO_RAW          /* target only: the processor's values as they are (Float32, no clip;
                             scene tokens) */
} mmgeo_io_kind;

/* Calibration of SAR amplitude input (digital numbers of a Sentinel-1 IW GRD product):
 * sigma0 = DN^2 / A^2 with A the sigmaNought calibration LUT value, so
 * sigma0 dB = 20 log10(DN) - 20 log10(A). A typical A is assumed (the LUT varies across the swath
 * and between processor versions): the IW GRD betaNought LUT is taken as the constant 237 and
 * sigmaNought = betaNought / sqrt(sin(incidence)), about 280 to 340 over IW's 29-46 degrees;
 * 300 is mid-swath (38.6 degrees), within about 1.1 dB of the LUT anywhere in the swath. */
#define MMGEO_SAR_CAL_A 300.0
#define MMGEO_SAR_CAL_K_DB 49.542425094393248 /* 20 log10(MMGEO_SAR_CAL_A) */

typedef enum {
    MMGEO_SAR_AUTO = 0,  /* complex -> complex, integer -> amplitude, float -> intensity */
    MMGEO_SAR_AMPLITUDE, /* dB = 20 log10(a) - MMGEO_SAR_CAL_K_DB (calibrated GRD DN) */
    MMGEO_SAR_INTENSITY, /* dB = 10 log10(i) (linear sigma0, beta0 or gamma0) */
    MMGEO_SAR_COMPLEX,   /* dB = 10 log10(re^2 + im^2) */
    MMGEO_SAR_DB         /* already dB */
} mmgeo_sar_input;

typedef struct {
    mmgeo_io_kind kind;
    mmgeo_sar_input sar_input;
    double lo, hi;         /* see mmgeo_io_kind; percentiles in percent for PERCENTILE */
    GDALDataType out_type; /* output data type when the profile is a target's (GDT_Unknown:
                              the modality's default: Float32 dB for SAR, Byte otherwise) */
} mmgeo_profile;

/* The default profile of a modality for a source of data type dt (GDT_Unknown for a target). */
void mmgeo_profile_default(const char *modality, GDALDataType dt, mmgeo_profile *p);
/* Parses "byte", "reflectance[:LO:HI]", "amplitude|intensity|complex|db[:LO:HI]" (SAR, LO/HI the
 * dB clip range), "percentile[:PLO:PHI]" over *p (unspecified numbers keep the defaults of
 * mmgeo_profile_default for that kind). */
int mmgeo_profile_parse(const char *spec, mmgeo_profile *p, char *err, size_t errlen);
/* One line describing the profile, for messages and metadata. */
void mmgeo_profile_describe(const mmgeo_profile *p, char *buf, size_t len);
/* Output value of a target pixel v in [-1, 1] for data type t (rounded and clipped for integer
 * types). */
double mmgeo_profile_output(const mmgeo_profile *p, GDALDataType t, float v);
/* The output data type of a target profile. */
GDALDataType mmgeo_profile_out_type(const mmgeo_profile *p, const char *modality);

/* ---- the model's geospatial facts (the "geo" section of its config) ---------------------- */

#define MMGEO_MAX_MODALITIES 16

typedef struct {
    double gsd_lo_m, gsd_hi_m; /* the ground sample distance range it was trained on, metres per
                                  pixel; 0, 0: not stated */
    int n_modalities;          /* the model's (at most MMGEO_MAX_MODALITIES) */
    int has_profile[MMGEO_MAX_MODALITIES]; /* by model modality index */
    mmgeo_profile profiles[MMGEO_MAX_MODALITIES];
} mmgeo_model_geo;

/* Reads the "geo" section of the model's config (mm_model_config_json); a model without one gives
 * gsd 0, 0 and no profiles. 0, or MMGEO_ERROR with a message in err (a profile string that
 * mmgeo_profile_parse rejects). */
int mmgeo_model_geo_get(const mm_model *model, mmgeo_model_geo *out, char *err, size_t errlen);
/* The model's modality names: names[0..min(n, max)) point into the model, and have (havelen
 * bytes) receives them as "rgb, sar, ..." for messages. Returns n, the number of modalities. */
int mmgeo_model_modality_names(const mm_model *model, const char **names, int max, char *have,
                               size_t havelen);
/* The profile of a source of modality index m (name modality) and data type dt when the command
 * line names none: the data type's default (mmgeo_profile_default), replaced by the model's
 * profile when that one reads such data: a percentile profile always; otherwise when it is of the
 * same kind as the default, a reflectance profile only for integer data (float reflectance is
 * 0..1); for SAR, real data (of any units: all are converted to sigma0 dB) take the dB window of
 * the model's SAR profile and keep the default input (set the units with mmgeo_sar_source),
 * complex data the model's profile only when it is complex. g may be NULL. */
void mmgeo_model_geo_source_profile(const mmgeo_model_geo *g, int m, const char *modality,
                                    GDALDataType dt, mmgeo_profile *p);
/* The profile of a target when the command line names none: the default (Float32 dB for SAR,
 * Byte otherwise), for SAR with the dB range of the model's SAR profile. g may be NULL. */
void mmgeo_model_geo_target_profile(const mmgeo_model_geo *g, int m, const char *modality,
                                    mmgeo_profile *p);

/* ---- modality detection ------------------------------------------------------------------ */

/* The modality of a raster when no -s/-t flag names it: the MM_MODALITY metadata item of the
 * dataset (ds may be NULL), else a word of the file name (split at non-alphanumerics) that is one
 * of names[0..n). Returns the index in names, -1 if none, -2 if the file name has several. */
int mmgeo_detect_modality(GDALDatasetH ds, const char *path, const char *const *names, int n);

/* ---- window grid -------------------------------------------------------------------------- */

/* Window origins along one axis of a raster of `size` pixels: 0, step, 2 step, ... (step =
 * window - overlap), the last one aligned to the raster edge (size - window); a raster smaller
 * than a window has the one origin 0 (the window is padded by edge replication). Writes at most
 * max origins into out (out may be NULL) and returns how many there are. */
int mmgeo_grid_origins(int size, int window, int overlap, int *out, int max);
/* The same grid with every origin a multiple of `align` (latent pixels, token cells): the origins
 * of mmgeo_grid_origins(ceil(size / align), window / align, overlap / align) times align (window
 * and overlap must be multiples of align). The last window may reach past the raster by less than
 * align pixels (read by edge replication). align 1 is mmgeo_grid_origins. */
int mmgeo_grid_origins_aligned(int size, int window, int overlap, int align, int *out, int max);
/* The 1-D blending weight of position i in a window (raised-cosine ramps over `overlap` pixels at
 * both ends, 1 inside; always > 0). */
float mmgeo_blend_weight(int i, int window, int overlap);
/* The tile id (noise address) of the window at grid position (kx, ky). */
static inline uint64_t mmgeo_tile_id(int kx, int ky) {
    return ((uint64_t)(uint32_t)ky << 32) | (uint32_t)kx;
}

/* ---- processors --------------------------------------------------------------------------- */

/* Processes n_tiles windows: sources[i] holds n_tiles x C_i x S x S floats in [-1, 1] (source i
 * of the run), targets[j] receives n_tiles x C_j x S x S. Returns 0, or non-zero with a message
 * in err (MMGEO_INTERRUPTED when asked to stop). */
typedef int (*mmgeo_process_fn)(void *user, int n_tiles, const uint64_t *tile_ids,
                                const float *const *sources, float *const *targets, char *err,
                                size_t errlen);

typedef struct {
    mmgeo_process_fn fn;
    void *user;
    int window; /* S */
    int n_sources, n_targets;
    int src_channels[MMGEO_MAX_IO], dst_channels[MMGEO_MAX_IO];
} mmgeo_processor;

enum { MMGEO_ERROR = 1, MMGEO_INTERRUPTED = 2 };

/* Test processors: identity (target channel c = source 0 channel c mod C0) and a known per-pixel
 * function (target channel c = -(source 0 channel c mod C0)). */
int mmgeo_process_identity(void *user, int n_tiles, const uint64_t *tile_ids,
                           const float *const *sources, float *const *targets, char *err,
                           size_t errlen);
int mmgeo_process_negate(void *user, int n_tiles, const uint64_t *tile_ids,
                         const float *const *sources, float *const *targets, char *err,
                         size_t errlen);

/* The model processor: mm_translate (or mm_generate when there is no source) with the window's
 * tile id. user points to this struct. */
typedef struct {
    mm_context *ctx;
    mm_sample_params params;
    int n_sources, n_targets;
    int source_mods[MMGEO_MAX_IO], target_mods[MMGEO_MAX_IO];
    const mm_model *model; /* needed by mmgeo_run_seamless only */
    double reserved_bytes; /* the working memory mmgeo_model_reserve allocated */
} mmgeo_model_processor;
int mmgeo_process_model(void *user, int n_tiles, const uint64_t *tile_ids,
                        const float *const *sources, float *const *targets, char *err,
                        size_t errlen);
/* The context's working memory for this processor's translations of *batch windows, in one
 * block allocated now (mm_context_reserve); *batch 0: the largest batch up to max that fits
 * into the free device memory (mm_context_reserve_auto), written back. info (may be NULL)
 * receives a line with the batch and the memory figures. MMGEO_ERROR (message with the bytes
 * needed and free) when it does not fit. */
int mmgeo_model_reserve(mmgeo_model_processor *mp, int *batch, int max, char *info, size_t infolen,
                        char *err, size_t errlen);

/* ---- samples and their spread (samples.c) ------------------------------------------------ */

/* K samples of every window with distinct seeds: their mean is the output, their spread (the
 * sample standard deviation) an extra band of it or a sidecar raster. */
#define MMGEO_MAX_SAMPLES 1000
typedef enum {
    MMGEO_SPREAD_SIDECAR = 0, /* a second target OUTPUT.spread.EXT: one Float32 band per channel */
    MMGEO_SPREAD_BAND         /* one more band of the output: the root mean square of the
                                 channels' standard deviations */
} mmgeo_spread_mode;

typedef struct {
    int samples;              /* K (0 or 1: one sample, the plain run) */
    mmgeo_spread_mode spread; /* where the spread goes */
    int spread_set;           /* spread given */
} mmgeo_samples_options;
/* --samples K / SAMPLES=K and --spread / SPREAD are read by the settings parser
 * (mmgeo_settings.h): K is an integer from 1 to MMGEO_MAX_SAMPLES. */
/* The seed of sample k (0-based) of a run with seed base: base itself for k = 0 (so one sample is
 * the plain run), else SplitMix64's output for the state base + k * 0x9E3779B97F4A7C15 (distinct
 * streams, not base + k, which the next base's run would share). */
uint64_t mmgeo_sample_seed(uint64_t base, int k);

/* A processor that runs another K times per batch of windows and gives the per-pixel mean and
 * spread: each sample's value is clipped to [-1, 1] (the range the outputs map; so mean and
 * spread are those of the K outputs) and accumulated with Welford's method (mean and M2) in the
 * batch's buffers, so memory is two batches of results whatever K; the spread is
 * sqrt(M2 / (K - 1)). Target j of the inner processor gives target j of this one: its mean, and
 * with MMGEO_SPREAD_BAND one more channel (the root mean square over its channels of the
 * standard deviations); with MMGEO_SPREAD_SIDECAR target n_targets + j holds one standard
 * deviation per channel. Sample k of the model runs with seed mmgeo_sample_seed(seed, k) (a copy
 * of its parameters: the model processor itself is not changed); any other processor is called
 * as it is (deterministic: the spread is 0). */
typedef struct {
    mmgeo_processor inner;
    mmgeo_model_processor *model; /* inner.user when the inner processor is the model, else NULL */
    int samples;
    mmgeo_spread_mode spread;
    float *buf; /* internal: one sample and the M2 of a batch */
    size_t buf_n;
} mmgeo_sampler;
/* Sets up s over inner (model: the model processor inner runs, or NULL) and out, the processor to
 * run (its user is s). MMGEO_ERROR (err) when K < 2 or the targets do not fit. */
int mmgeo_sampler_init(mmgeo_sampler *s, const mmgeo_processor *inner, mmgeo_model_processor *model,
                       const mmgeo_samples_options *o, mmgeo_processor *out, char *err,
                       size_t errlen);
void mmgeo_sampler_free(mmgeo_sampler *s);
int mmgeo_process_samples(void *user, int n_tiles, const uint64_t *tile_ids,
                          const float *const *sources, float *const *targets, char *err,
                          size_t errlen);
/* Adds the items that describe a sampled output to md (nothing when K < 2): MM_SAMPLES (K),
 * MM_SAMPLE_SEEDS (the seeds of the samples, comma-separated; seed NULL: not the model, none),
 * MM_SAMPLE_STAT (what mean and spread are), MM_SPREAD ("band N", or "sidecar FILE"). */
char **mmgeo_samples_metadata(char **md, const mmgeo_samples_options *o, const uint64_t *seed,
                              int spread_band, const char *sidecar);
/* The sidecar of an output: DST with ".spread" before its extension (out.tif: out.spread.tif);
 * 0, or MMGEO_ERROR when it does not fit into len bytes. */
int mmgeo_spread_path(const char *dst, char *out, size_t len);

/* ---- a run ------------------------------------------------------------------------------- */

typedef struct {
    const char *path;
    const char *modality;       /* for messages and metadata */
    int n_bands;                /* 0: all bands of the file */
    int bands[MMGEO_MAX_BANDS]; /* 1-based */
    mmgeo_profile profile;
} mmgeo_source;

/* ---- SAR sources as users hold them (sar.c) ------------------------------------------------ */

/* The units of a real SAR source: sigma0 (or beta0, gamma0) in dB, the same as linear power, or
 * amplitude digital numbers (GRD, calibrated with MMGEO_SAR_CAL_A). */
typedef enum {
    MMGEO_SAR_UNITS_UNSET = 0, /* from the file's metadata, else detected */
    MMGEO_SAR_UNITS_DB,
    MMGEO_SAR_UNITS_LINEAR,
    MMGEO_SAR_UNITS_AMPLITUDE
} mmgeo_sar_units;

typedef struct {
    mmgeo_sar_units units; /* --sar-units / SAR_UNITS */
    int band;              /* --sar-band / SAR_BAND: 1-based; 0: the band labelled VH */
    int open_options;      /* messages name the driver's open options (-oo SAR_UNITS=...) rather
                              than the tools' --sar-units / --sar-band */
    /* set by mmgeo_sar_options_profiles: what a --profile sar=SPEC reads */
    int profile_given;             /* 1: a SAR profile of real data, 2: another kind */
    mmgeo_sar_input profile_input; /* with 1: amplitude, intensity or db */
} mmgeo_sar_options;

/* --sar-units / SAR_UNITS and --sar-band / SAR_BAND are read by the settings parser
 * (mmgeo_settings.h). */
/* Name of units ("db", "linear", "amplitude"; "" when unset). */
const char *mmgeo_sar_units_name(mmgeo_sar_units u);
/* Takes the units the profile overrides "MODALITY=SPEC" (n of them) imply for SAR sources: a
 * "sar=amplitude|intensity|db[:LO:HI]" reads amplitude, linear or dB. MMGEO_ERROR when they
 * disagree with o->units (or with each other), or when o->units is set and the profile is of a
 * kind that reads no such units (complex, percentile, ...). Specs that do not parse are left to
 * the caller's own parsing. */
int mmgeo_sar_options_profiles(mmgeo_sar_options *o, const char *const *specs, int n, char *err,
                               size_t errlen);
/* Sets up source s (path, modality, n_bands/bands already set; ds its open dataset) of the SAR
 * modality (model index m, `channels` bands; g the model's geo settings, may be NULL):
 *  - band: for a one-channel modality and no bands chosen, a single-band source (or one band and
 *    an alpha band) as it is, else o->band, else the one band whose description or POLARISATION
 *    / POLARIZATION metadata item is "VH" (case-insensitive); none or several: an error naming
 *    --sar-band (SAR_BAND);
 *  - units of real data: o->units (or the --profile's), else the band's unit type ("dB", "db",
 *    "decibel"; "linear", "intensity", "power"; "amplitude", "DN") or a SAR_UNITS item of the
 *    band or the dataset, else detected: integer data are amplitude; float data are read on a
 *    decimated grid (at most 512 x 512, valid pixels) and are linear unless a value is negative
 *    (they look like dB: an error naming --sar-units db) or the median is above 1.5 (an error
 *    naming --sar-units with the choices). Complex data as before (o->units must be unset);
 *  - profile: the model's (mmgeo_model_geo_source_profile: for real data the dB window of the
 *    model's SAR profile) reading those units.
 * from (may be NULL) receives how the units were decided, e.g. "db (--sar-units)". 0 or
 * MMGEO_ERROR (err). */
int mmgeo_sar_source(GDALDatasetH ds, const mmgeo_sar_options *o, const mmgeo_model_geo *g, int m,
                     int channels, mmgeo_source *s, char *from, size_t fromlen, char *err,
                     size_t errlen);

typedef struct {
    const char *path;
    const char *modality;
    mmgeo_profile profile;
    int spread_channels; /* the last n channels of the processor's results are spreads
                            (mmgeo_process_samples: standard deviations in the model's units),
                            written in the output's units: times the profile's scale, without
                            its offset or the clip to [-1, 1] (rounded for an integer type);
                            their bands say so (description, MM_SPREAD); 0: none */
} mmgeo_target;

typedef void (*mmgeo_warn_fn)(void *user, const char *msg);

/* The output grid of a run without sources (joint generation). */
typedef struct {
    int width, height;
    double geotransform[6];
    const char *srs; /* anything OSRSetFromUserInput reads (WKT, EPSG:n, PROJ); NULL: none */
} mmgeo_grid;

typedef struct mmgeo_aoi mmgeo_aoi; /* an area of interest (mmgeo_aoi_open) */

/* What a run did, windows of the processed extent. */
typedef struct {
    long long windows;        /* of the grid, touching the processed extent */
    long long processed;      /* given to the processor */
    long long skipped_nodata; /* without a valid pixel */
    long long skipped_aoi;    /* not meeting the area of interest */
    long long nonfinite;      /* output pixels written as nodata because the processor gave NaN
                                 or Inf there (MMGEO_NONFINITE_NODATA) */
} mmgeo_run_stats;

/* What a run does with NaN or Inf in the processor's results (the network's, never data). */
typedef enum {
    MMGEO_NONFINITE_ERROR = 0, /* the run fails, naming the window (its pixel offsets); nothing
                                  is left under the targets' names */
    MMGEO_NONFINITE_NODATA     /* those pixels are written as nodata (the outputs get a mask
                                  when they have no nodata value), counted in stats->nonfinite,
                                  with a warning */
} mmgeo_nonfinite;

/* The largest job mmgeo_run takes without job.force: output pixels of one target (and, with
 * --gsd, of the working grid). */
#define MMGEO_DEFAULT_MAX_PIXELS 1e10

typedef struct {
    int n_sources; /* 0: generation on `grid` */
    mmgeo_source sources[MMGEO_MAX_IO];
    mmgeo_grid grid;
    int n_targets;
    mmgeo_target targets[MMGEO_MAX_IO];
    int overlap;   /* pixels, < window */
    int batch;     /* windows per processor call (>= 1) */
    int align;     /* grid origins multiples of this (0 or 1: the plain grid); the
                      window and the overlap must be multiples of it */
    int out_scale; /* > 1: the processor's target windows are window / out_scale
                      pixels a side and the outputs are written on the grid scaled
                      by out_scale (ceil(W / s) x ceil(H / s), geotransform scaled);
                      needs align == out_scale; with a srcwin, the cells it touches
                      are written. A cell is valid when every raster pixel under it
                      is. */
    int has_srcwin;
    int srcwin[4];             /* xoff yoff xsize ysize, raster pixels */
    const char *format;        /* NULL: from the output file's extension, else GTiff */
    char **create_options;     /* -co, NULL-terminated list (may be NULL) */
    char **metadata;           /* KEY=VALUE items added to every output (may be NULL) */
    GDALProgressFunc progress; /* may be NULL; returning FALSE stops the run */
    void *progress_arg;
    mmgeo_warn_fn warn; /* may be NULL */
    void *warn_user;
    const mmgeo_aoi *aoi;      /* NULL, or windows not meeting it are skipped and pixels outside
                                  it are nodata (or masked: the output gets a mask when the
                                  source has no nodata); extent independence holds (mmgeo_run
                                  only) */
    mmgeo_run_stats *stats;    /* NULL, or filled by mmgeo_run */
    mmgeo_nonfinite nonfinite; /* NaN or Inf from the processor: an error (default) or nodata */
    double max_pixels;         /* 0: MMGEO_DEFAULT_MAX_PIXELS; a larger job is refused with its
                                  figures (pixels and memory) unless force */
    double extra_bytes;        /* the processor's own working memory (the model's reserved
                                  block), for the memory figure and check */
    int force;                 /* run jobs over max_pixels or the physical memory */
} mmgeo_job;

void mmgeo_job_init(mmgeo_job *job);

/* ---- output safety (run.c) ------------------------------------------------------------------ */
/* Checks a job's targets before anything is written, by file identity (device and inode of the
 * file, or of its directory plus its name when it does not exist yet), not by spelling: a target
 * must not be one of the job's source files (symlinks and hard links included) nor another
 * target, and an existing target must be a regular file (a directory, FIFO or device is refused,
 * never replaced). Then removes the temporary files that runs on these targets left behind when
 * their process died (.NAME.mmtmp-PID..., .NAME.mmgsd-PID...: PID no longer alive). Paths that
 * are not files (/vsimem/..., subdatasets) are compared as strings. 0, or MMGEO_ERROR (err). */
int mmgeo_check_targets(const mmgeo_job *job, char *err, size_t errlen);
/* Removes the temporary files of dead processes beside path (see mmgeo_check_targets); returns
 * how many it removed. */
int mmgeo_remove_stale_temps(const char *path);
/* Checks creation options (KEY=VALUE list) against drv's creation option list
 * (GDALGetDriverCreationOptionList): a key the driver does not list, or a value outside a listed
 * choice (string-select) or not a boolean (boolean), is refused with a message naming it.
 * A driver without a list takes anything. 0, or MMGEO_ERROR (err). */
int mmgeo_check_creation_options(GDALDriverH drv, char *const *co, char *err, size_t errlen);
/* The same for the format a job's target is written in (job->format, else from the name). */
int mmgeo_check_job_creation_options(const mmgeo_job *job, char *err, size_t errlen);
/* Opens a raster read-only with GDAL's own messages held back; NULL with a message in err that
 * says why: "cannot open 'PATH': No such file or directory" (or another system error), a
 * directory, or GDAL's reason ("no GDAL driver reads it" when it gives none). */
GDALDatasetH mmgeo_open_raster(const char *path, char *err, size_t errlen);

/* Checks the job against the processor (band counts, sizes), runs it and writes every target.
 * Nothing is left under a target's name unless the whole run succeeded. Returns 0,
 * MMGEO_ERROR (message in err) or MMGEO_INTERRUPTED. */
int mmgeo_run(const mmgeo_job *job, const mmgeo_processor *proc, char *err, size_t errlen);

/* Seamless mode (MultiDiffusion): the model's sampling runs on one latent canvas over the windows;
 * at every model evaluation each window's latent velocity is computed and the overlapping latent
 * pixels' velocities averaged with the raised-cosine weights (in latent pixels), and the sampler
 * steps the canvas; the windows are then decoded and blended as by mmgeo_run. The grid is the
 * anchored grid aligned to latent pixels (mmgeo_grid_origins_aligned with the VAE's factor; the
 * overlap is rounded down to a multiple of it). Noise: the initial and SDE noise of the canvas is
 * one global field addressed by absolute latent pixel (row tile id 2^63 | row, element
 * column * C + channel), so it does not depend on the windows or the processed extent; the
 * unconditional-branch noise of guidance is per window (tile id). With -srcwin the sampling
 * covers the windows touching it plus a margin of (model evaluations x windows covering a pixel)
 * windows, which makes the result bit-identical to the same region of a full run. Memory: the
 * latent canvas of the processed windows and their encoded sources (not streamed). */
int mmgeo_run_seamless(const mmgeo_job *job, mmgeo_model_processor *mp, char *err, size_t errlen);

/* The embedding processor: libmm's mm_embed of source 0 (with the other sources as further
 * partitions), its scene tokens written as hidden_size target channels of T x T cells (planar).
 * With readout set, libmm's mm_embed_readout instead (paper V-C, Eq. 22: the tokens of the
 * branch readout_params.modality inferred from the sources, its noise addressed by the window's
 * tile id). Use with a job whose out_scale is image_size / T and whose target profile is
 * MMGEO_IO_RAW. */
typedef struct {
    mm_context *ctx;
    int n_sources;
    int source_mods[MMGEO_MAX_IO];
    int tokens, hidden; /* T, hidden size */
    float *scratch;     /* internal (NULL at first; free() after the run) */
    size_t scratch_n;
    int readout;                      /* 0: mm_embed (the sources' own tokens) */
    mm_readout_params readout_params; /* with readout */
} mmgeo_embed_processor;
int mmgeo_process_embed(void *user, int n_tiles, const uint64_t *tile_ids,
                        const float *const *sources, float *const *targets, char *err,
                        size_t errlen);

/* The source window (xoff yoff xsize ysize) of a georeferenced window ulx uly lrx lry (in the
 * raster's CRS, as gdal_translate -projwin) of the raster at path: the offsets are
 * floor(x + 0.001), the sizes rounded, as gdal_translate does. MMGEO_ERROR (err) when the raster
 * cannot be read, has no geotransform or a rotated one, or the window is empty or not inside it. */
int mmgeo_projwin_srcwin(const char *path, const double projwin[4], int srcwin[4], char *err,
                         size_t errlen);

/* An area of interest: the polygon features of a layer (layer NULL: the first) of any vector file
 * OGR reads, reprojected to the CRS of a raster of geotransform gt (axis order: x = easting or
 * longitude) and unioned. Features without a polygon are ignored (with a warning); a layer or a
 * raster without a CRS is taken to be in the other's (with a warning). MMGEO_ERROR (err) when the
 * file, the layer or any polygon is missing, or the transformation fails. */
int mmgeo_aoi_open(const char *path, const char *layer, const double gt[6],
                   OGRSpatialReferenceH raster_srs, mmgeo_warn_fn warn, void *warn_user,
                   mmgeo_aoi **out, char *err, size_t errlen);
/* The same for the grid of the raster at raster_path (which needs a geotransform). */
int mmgeo_aoi_open_raster(const char *path, const char *layer, const char *raster_path,
                          mmgeo_warn_fn warn, void *warn_user, mmgeo_aoi **out, char *err,
                          size_t errlen);
void mmgeo_aoi_close(mmgeo_aoi *aoi);
/* The window at pixel (ox, oy) of S x S pixels (clipped to the W x H raster) against the area:
 * 0 when it does not meet it; else zeroes valid (S x S) at the pixels whose centres lie outside
 * it and returns 1 (2 when the window lies wholly inside). */
int mmgeo_aoi_window(const mmgeo_aoi *aoi, int ox, int oy, int S, int W, int H, uint8_t *valid);
/* Whether the pixel rectangle (x, y, w, h) meets the area. */
int mmgeo_aoi_meets(const mmgeo_aoi *aoi, int x, int y, int w, int h);
/* The area for a job (after its sources and srcwin, or its grid, are set): on the grid of its
 * first source (or the job's grid when it has no source), and an error when it does not meet the
 * processed extent. Warnings go to the job's warn. */
int mmgeo_aoi_open_job(const char *path, const char *layer, const mmgeo_job *job, mmgeo_aoi **out,
                       char *err, size_t errlen);
/* The same area for another grid of the same CRS (geotransform gt); NULL when out of memory. */
mmgeo_aoi *mmgeo_aoi_regrid(const mmgeo_aoi *aoi, const double gt[6]);

/* ---- the region renderer (region.c, cache.c; docs/driver.md) -------------------------------- */

/* A region renderer computes any pixel rectangle of a run's (single) target: it runs only the
 * windows of the run's grid that cover the rectangle and blends them with mmgeo_run's code, so
 * the pixels are bit-identical to the same pixels of mmgeo_run's output (same job and processor),
 * whatever the rectangles, their order or the threads asking. Window results go through a cache:
 * a bounded in-memory LRU and, optionally, a persistent SQLite file shared by processes. A region
 * may be used from several threads (renders are serialised by a lock). The job's strings and the
 * processor's user data must outlive the region. */
typedef struct mmgeo_region mmgeo_region;

typedef struct {
    const char *key;           /* the processor's settings as text (model SHA-256, steps, seed ...):
                                  part of every cache key; the region adds the window, overlap,
                                  profiles, modalities, bands and the sources' identity */
    const char *cache_path;    /* SQLite file (created if missing); NULL or "": none */
    double cache_mb;           /* in-memory LRU in MiB (0: none; default 256) */
    int reduce;                /* > 1: the sources averaged over reduce x reduce pixels (an
                                  overview level); the grid is the reduced raster's */
    mmgeo_region *share;       /* NULL, or a region whose lock, cache and counters this one shares
                                  (regions that share a processor must share the lock) */
    mmgeo_nonfinite nonfinite; /* NaN or Inf from the processor in a rendered rectangle: an
                                  error naming the window (default), or invalid pixels (nodata
                                  or masked: the region then has a mask without a nodata value) */
} mmgeo_region_options;

typedef struct {
    int width, height, bands;
    GDALDataType type;
    int has_nodata;
    double nodata;
    int has_mask; /* no nodata value but a source has a mask (mmgeo_run writes a per-dataset
                     mask), or is floating-point, so may hold NaN (mmgeo_run adds the mask at the
                     first invalid pixel): the render's mask output */
    int window, overlap, reduce;
    int spread_bands; /* the last bands are spreads (mmgeo_target.spread_channels) */
} mmgeo_region_info_t;

/* Counters, summed over the regions that share them. */
typedef struct {
    long long renders;     /* mmgeo_region_render calls */
    long long mem_hits;    /* windows found in the memory cache */
    long long disk_hits;   /* windows found in the SQLite cache */
    long long computed;    /* windows the processor computed */
    long long model_calls; /* processor calls (batches) */
    long long skipped;     /* windows without a valid pixel (not processed) */
    long long disk_errors; /* SQLite failures (treated as misses / not stored) */
} mmgeo_region_stats;

void mmgeo_region_options_init(mmgeo_region_options *o);
/* job: one target (its path is not used), 1..MMGEO_MAX_IO sources, overlap, batch; no srcwin,
 * align or out_scale. */
int mmgeo_region_open(const mmgeo_job *job, const mmgeo_processor *proc,
                      const mmgeo_region_options *opt, mmgeo_region **out, char *err,
                      size_t errlen);
void mmgeo_region_info(const mmgeo_region *r, mmgeo_region_info_t *info);
/* Renders the rectangle (x, y, w, h) of the target into out: bands planes of h rows of w values,
 * the values mmgeo_run writes (already rounded and clipped to the target's data type); mask (may
 * be NULL): h rows of w bytes, 255 where the pixel is valid, else 0. Memory: the windows covering
 * the rectangle. */
int mmgeo_region_render(mmgeo_region *r, int x, int y, int w, int h, double *out, uint8_t *mask,
                        char *err, size_t errlen);
void mmgeo_region_stats_get(const mmgeo_region *r, mmgeo_region_stats *s);
void mmgeo_region_close(mmgeo_region *r);

/* ---- a virtual dataset (virtual.c): what the GDAL driver opens ----------------------------- */

#define MMGEO_MAX_PROFILES 16
/* Everything mm_translate would do for SOURCES -> TARGET with these settings, as region
 * renderers: the full resolution and the overview levels the model's GSD range allows. */
typedef struct mmgeo_settings mmgeo_settings; /* mmgeo_settings.h */
typedef struct {
    const char *target; /* modality */
    int n_sources;
    const char *source_paths[MMGEO_MAX_IO];
    const char *source_mods[MMGEO_MAX_IO]; /* NULL: MM_MODALITY item, else a word of the name */
    /* the settings (mmgeo_settings_set and mmgeo_settings_finish done): the model (NULL:
       default_model), device, precision, threads, sampling, overlap, batch (< 1: 4), cache_mb,
       processor and window, bands, profiles, output type, SAR units and band, nonfinite,
       samples (the spread is one more band: a dataset has no sidecar) */
    const mmgeo_settings *settings;
    const char *default_model;
    const char *cache_path; /* NULL or "": no persistent cache */
    const char *tool;       /* MM_TOOL of the provenance (NULL: "gdal_MM") */
} mmgeo_virtual_params;

typedef struct mmgeo_virtual mmgeo_virtual;
/* All zero. */
void mmgeo_virtual_params_init(mmgeo_virtual_params *p);
int mmgeo_virtual_open(const mmgeo_virtual_params *p, mmgeo_virtual **out, char *err,
                       size_t errlen);
void mmgeo_virtual_close(mmgeo_virtual *v);
/* Level 0 is the full resolution, 1 .. levels-1 the overviews (factor 2, 4, ...). */
int mmgeo_virtual_levels(const mmgeo_virtual *v);
mmgeo_region *mmgeo_virtual_region(mmgeo_virtual *v, int level);
/* The first source, for its georeferencing (use at open only: not thread-safe). */
GDALDatasetH mmgeo_virtual_source(const mmgeo_virtual *v);
/* KEY=VALUE items: what mm_translate writes (provenance, settings, MM_MODALITY ...) and
 * SYNTHETIC=YES; owned by v. */
char **mmgeo_virtual_metadata(const mmgeo_virtual *v);
/* The warnings mm_translate would print for the same settings (NULL-terminated; owned by v). */
char **mmgeo_virtual_warnings(const mmgeo_virtual *v);
/* Why there are no (or no more) overview levels, for messages ("" when none was expected). */
const char *mmgeo_virtual_overview_note(const mmgeo_virtual *v);

/* ---- resolution ------------------------------------------------------------------------ */

/* The ground sample distance of a raster, metres per pixel along its x and y axes: from the
 * geotransform and the CRS's linear unit, or for a geographic CRS with the ellipsoid's radii of
 * curvature at the scene centre. MMGEO_ERROR without a geotransform or a CRS. */
int mmgeo_raster_gsd(const char *path, double *gsd_x, double *gsd_y, char *err, size_t errlen);
/* Warns (job->warn) when the model states a GSD range and the job's first source (or, without
 * sources, its grid) lies outside it (working_gsd 0), or when working_gsd (> 0, --gsd) does.
 * Silent when it cannot tell. */
void mmgeo_gsd_check(const mmgeo_job *job, const mmgeo_model_geo *geo, double working_gsd);
/* mmgeo_run at a working resolution of gsd metres per pixel: the sources are warped (GDAL's
 * warper: average when coarsening, bilinear when refining; warped VRTs, nothing copied) onto the
 * grid of the same extent with pixels of about gsd metres (rounded to whole pixels), the processor
 * runs there into temporary Float32 rasters next to the targets, and each result is warped back
 * onto the first source's grid (a run without sources: the job's grid) and written as mmgeo_run
 * writes the target (size, geotransform, CRS, nodata or mask, metadata, format, temporary name;
 * several targets are renamed into place once all are written). With a srcwin, the working run
 * covers the working pixels under it plus a margin for the resampling kernels, so the result
 * equals the same region of a full --gsd run to within float rounding of the warper's
 * coordinates. Needs a geotransform and a CRS; no out_scale. */
int mmgeo_run_gsd(const mmgeo_job *job, const mmgeo_processor *proc, double gsd, char *err,
                  size_t errlen);

/* ---- utilities ---------------------------------------------------------------------------- */
/* The output format of a run's target at path: format (a GDAL driver's short name) when not
 * NULL, else the driver whose extension the file name has, else GTiff; NULL (err) for an unknown
 * format. */
GDALDriverH mmgeo_output_driver(const char *format, const char *path, char *err, size_t errlen);
/* The creation options mmgeo_run writes a target of that format with (GTiff: tiled, DEFLATE,
 * BIGTIFF=IF_SAFER, PHOTOMETRIC=RGB for 3 bands of Byte; COG: DEFLATE, BIGTIFF=IF_SAFER), with
 * the -co list co replacing those of the same name; a new list for CSLDestroy. So that a copy
 * of a run's pixels (mm_batch stitch) is written as the run writes them. */
char **mmgeo_output_options(GDALDriverH drv, char **co, int channels, GDALDataType type);

/* Adds the model's provenance to a GDAL metadata list: MM_TOOL ("<tool> <version>"), MM_MODEL
 * (file name), MM_MODEL_NAME, MM_MODEL_SHA256 (of the whole file). 0 or MMGEO_ERROR (err). */
int mmgeo_model_provenance(char ***md, const char *tool, const char *model_path,
                           const mm_model *model, char *err, size_t errlen);

/* SHA-256 of a file as 64 lower-case hex digits (hex has 65 bytes). */
int mmgeo_sha256_file(const char *path, char hex[65], char *err, size_t errlen);
void mmgeo_sha256(const void *data, size_t n, uint8_t out[32]);

#ifdef __cplusplus
}
#endif
#endif
