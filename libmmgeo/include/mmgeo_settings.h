/*
 * The one parser of the settings that mm_translate (mm_generate, mm_embed, mm_batch) and the GDAL
 * driver share, as GDALTranslateOptionsNew serves gdal_translate and the API: name/value pairs in,
 * one set of rules, a settings struct out that the pipeline consumes.
 *
 * Names: a command-line long option and the driver's open option of the same setting are one name:
 * "--seed", "seed" and "SEED" are the same, "--sar-units" and "SAR_UNITS" too (case-insensitive,
 * leading dashes dropped, '-' and '_' alike). -b is BANDS and -ot is OT.
 *
 * Rules (stated for users in docs/tools.md "Settings" and man/mm_settings.7, which the tools'
 * man pages and man/gdal_mm.7 point to):
 *  - an integer is written in decimal digits only: no sign, no spaces, no exponent, no leading
 *    zero ("0" itself is fine), no 0x prefix, nothing after it; then it must be in the setting's
 *    range. So SEED=1e3, SEED=010, SEED=0x10, SEED=+5, SEED=" 5" and SEED=5x are refused;
 *  - a number (GUIDANCE, CACHE_MB) is a decimal number, [-]DIGITS[.DIGITS][e[+-]DIGITS] (a point
 *    needs a digit on at least one side), read without the locale; no hex, inf or nan; in range;
 *  - a word from a list (DEVICE, PRECISION, SAMPLER, NONFINITE, SAR_UNITS, SPREAD, PROCESSOR) is
 *    matched in any case ("CUDA" is "cuda");
 *  - the device is --device / DEVICE, else the MM_DEVICE configuration option (GDAL's: the
 *    environment variable, or --config MM_DEVICE VALUE), read with the same rule, else cpu; the
 *    model is --model / MODEL, else MM_MODEL, else the caller's default;
 *  - BANDS and PROFILE take comma-separated lists; -b and --profile given again add to them;
 *    any other setting given again replaces its value.
 * A refusal names the setting in both of its spellings ("--seed / SEED"), the rule and the value,
 * the same words whichever front end passed it (the tools print "TOOL: MESSAGE", the driver
 * "MM: MESSAGE").
 */
#ifndef MMGEO_SETTINGS_H
#define MMGEO_SETTINGS_H

#include <stdint.h>

#include "mmgeo.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mmgeo_settings {
    const char *model_path; /* --model / MODEL; NULL: not given (after mmgeo_settings_finish:
                               MM_MODEL when set, else still NULL: the caller's default) */
    int device_set;         /* --device / DEVICE, or (mmgeo_settings_finish) MM_DEVICE */
    mm_device device;       /* MM_DEVICE_CPU unless set */
    int precision_set;
    mm_precision precision; /* --precision / PRECISION */
    int threads;            /* --threads / THREADS, 0..4096; 0: all cores */
    int steps;              /* --steps / STEPS, 1..65535; 0: the model's default */
    double guidance;        /* --guidance / GUIDANCE, 0..100; < 0: the model's default */
    int seed_set;
    uint64_t seed;         /* --seed / SEED, 0..18446744073709551615 */
    int sampler;           /* --sampler / SAMPLER: an mm_sampler; < 0: the model's default */
    int overlap;           /* --overlap / OVERLAP, 0..1048576; < 0: a quarter of the window */
    int batch;             /* --batch / BATCH, batch_min..4096; < 0: not given */
    int batch_min;         /* the smallest BATCH the front end takes (0: "from the free memory") */
    int window;            /* --window / WINDOW (test hook), 1..8192; 0: the model's */
    const char *processor; /* --processor / PROCESSOR: "model", "identity", "negate" */
    mmgeo_sar_options sar; /* --sar-units / SAR_UNITS, --sar-band / SAR_BAND */
    mmgeo_samples_options samples; /* --samples / SAMPLES (1..1000), --spread / SPREAD */
    mmgeo_nonfinite nonfinite;     /* --nonfinite / NONFINITE */
    int n_bands;                   /* -b / BANDS, each 1..1048576 */
    int bands[MMGEO_MAX_BANDS];
    int n_profiles; /* --profile / PROFILE: MODALITY=SPEC items */
    const char *profiles[MMGEO_MAX_PROFILES];
    GDALDataType out_type; /* -ot / OT; GDT_Unknown: the target profile's */
    double cache_mb;       /* CACHE_MB (the driver's), 0..1048576; < 0: not given */
    /* internal: copies of the strings kept (profile items, the model path), the message */
    char store[8192];
    size_t store_used;
    char errmsg[1024];
};

/* Nothing given; batch_min as described above. */
void mmgeo_settings_init(mmgeo_settings *s, int batch_min);
/* Whether name is a setting's (in any of its spellings). */
int mmgeo_settings_known(const char *name);
/* Sets one setting from its text. 0, or MMGEO_ERROR with the message in mmgeo_settings_errmsg;
 * s keeps its earlier value then. value may be NULL (refused, as ""). */
int mmgeo_settings_set(mmgeo_settings *s, const char *name, const char *value);
/* Once all are set: the checks between settings (--spread needs --samples K >= 2) and the
 * configuration options (MM_DEVICE, MM_MODEL) for what was not given. 0 or MMGEO_ERROR. */
int mmgeo_settings_finish(mmgeo_settings *s);
/* The message of the last failure ("" if none), like sqlite3_errmsg. */
const char *mmgeo_settings_errmsg(const mmgeo_settings *s);
/* The two spellings of a setting, "--seed / SEED" (static), or NULL for an unknown name. */
const char *mmgeo_settings_display_name(const char *name);
/* The context parameters of the settings (device, precision, threads) over the defaults. */
void mmgeo_settings_context_params(const mmgeo_settings *s, mm_context_params *cp);
/* The model's default sampling parameters with the settings' steps, guidance, seed, sampler. */
void mmgeo_settings_sample_params(const mmgeo_settings *s, const mm_model *model,
                                  mm_sample_params *p);
/* Names of the choices: "cpu"/"cuda", "bf16"/"fp32". */
const char *mmgeo_settings_device_name(mm_device d);
const char *mmgeo_settings_precision_name(mm_precision p);

#ifdef __cplusplus
}
#endif
#endif
