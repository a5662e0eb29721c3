/* The one parser of the settings of the tools and the GDAL driver (mmgeo_settings.h): a table of
 * the settings, each with its two spellings, its kind and its range, and one rule per kind. */
#define _POSIX_C_SOURCE 200809L
#include "mmgeo_settings.h"

#include <cpl_conv.h>
#include <cpl_string.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

typedef enum {
    K_STRING,   /* any non-empty text (MODEL; "" is "not given") */
    K_INT,      /* a decimal integer in [lo, hi] */
    K_U64,      /* a decimal integer in [0, 2^64 - 1] */
    K_NUMBER,   /* a decimal number in [lo, hi] */
    K_CHOICE,   /* one of choices (any case) */
    K_INT_LIST, /* comma-separated decimal integers in [lo, hi], added to the list */
    K_PROFILES, /* comma-separated MODALITY=SPEC, added to the list */
    K_TYPE      /* a real GDAL data type name */
} kind;

typedef enum {
    S_MODEL,
    S_DEVICE,
    S_PRECISION,
    S_THREADS,
    S_STEPS,
    S_GUIDANCE,
    S_SEED,
    S_SAMPLER,
    S_OVERLAP,
    S_BATCH,
    S_WINDOW,
    S_PROCESSOR,
    S_SAR_UNITS,
    S_SAR_BAND,
    S_SAMPLES,
    S_SPREAD,
    S_NONFINITE,
    S_BANDS,
    S_PROFILE,
    S_OT,
    S_CACHE_MB
} setting_id;

typedef struct {
    setting_id id;
    const char *name;  /* canonical: the long option without dashes, '-' between words */
    const char *alias; /* another spelling (-b: BANDS), or NULL */
    const char *shown; /* both spellings, for messages */
    kind k;
    double lo, hi;
    const char *const *choices; /* K_CHOICE: NULL-terminated, the first is the value 0 ... */
    const char *choices_text;   /* "cpu or cuda" */
} setting;

static const char *const devices[] = {"cpu", "cuda", NULL};
static const char *const precisions[] = {"bf16", "fp32", NULL};
static const char *const samplers[] = {"euler", "heun", "euler_maruyama", NULL};
static const char *const processors[] = {"model", "identity", "negate", NULL};
static const char *const sar_units[] = {"db", "linear", "amplitude", NULL};
static const char *const spreads[] = {"sidecar", "band", NULL};
static const char *const nonfinites[] = {"error", "nodata", NULL};

static const setting table[] = {
    {S_MODEL, "model", NULL, "--model / MODEL", K_STRING, 0, 0, NULL, NULL},
    {S_DEVICE, "device", NULL, "--device / DEVICE", K_CHOICE, 0, 0, devices, "cpu or cuda"},
    {S_PRECISION, "precision", NULL, "--precision / PRECISION", K_CHOICE, 0, 0, precisions,
     "bf16 or fp32"},
    {S_THREADS, "threads", NULL, "--threads / THREADS", K_INT, 0, 4096, NULL, NULL},
    {S_STEPS, "steps", NULL, "--steps / STEPS", K_INT, 1, 65535, NULL, NULL},
    {S_GUIDANCE, "guidance", NULL, "--guidance / GUIDANCE", K_NUMBER, 0, 100, NULL, NULL},
    {S_SEED, "seed", NULL, "--seed / SEED", K_U64, 0, 0, NULL, NULL},
    {S_SAMPLER, "sampler", NULL, "--sampler / SAMPLER", K_CHOICE, 0, 0, samplers,
     "euler, heun or euler_maruyama"},
    {S_OVERLAP, "overlap", NULL, "--overlap / OVERLAP", K_INT, 0, 1 << 20, NULL, NULL},
    {S_BATCH, "batch", NULL, "--batch / BATCH", K_INT, 0, 4096, NULL, NULL},
    {S_WINDOW, "window", NULL, "--window / WINDOW", K_INT, 1, 8192, NULL, NULL},
    {S_PROCESSOR, "processor", NULL, "--processor / PROCESSOR", K_CHOICE, 0, 0, processors,
     "model (test hooks: identity, negate)"},
    {S_SAR_UNITS, "sar-units", NULL, "--sar-units / SAR_UNITS", K_CHOICE, 0, 0, sar_units,
     "db, linear or amplitude (sigma0 in dB; linear sigma0, beta0 or gamma0; GRD amplitude "
     "digital numbers)"},
    {S_SAR_BAND, "sar-band", NULL, "--sar-band / SAR_BAND", K_INT, 1, 1 << 20, NULL, NULL},
    {S_SAMPLES, "samples", NULL, "--samples / SAMPLES", K_INT, 1, MMGEO_MAX_SAMPLES, NULL, NULL},
    {S_SPREAD, "spread", NULL, "--spread / SPREAD", K_CHOICE, 0, 0, spreads, "band or sidecar"},
    {S_NONFINITE, "nonfinite", NULL, "--nonfinite / NONFINITE", K_CHOICE, 0, 0, nonfinites,
     "error or nodata"},
    {S_BANDS, "bands", "b", "-b / BANDS", K_INT_LIST, 1, 1 << 20, NULL, NULL},
    {S_PROFILE, "profile", NULL, "--profile / PROFILE", K_PROFILES, 0, 0, NULL, NULL},
    {S_OT, "ot", NULL, "-ot / OT", K_TYPE, 0, 0, NULL, NULL},
    {S_CACHE_MB, "cache-mb", NULL, "CACHE_MB", K_NUMBER, 0, 1 << 20, NULL, NULL},
};
#define N_SETTINGS (sizeof table / sizeof table[0])

/* name in any spelling: leading dashes dropped, case and '-'/'_' ignored */
static int same_name(const char *name, const char *canonical) {
    if (!canonical) return 0;
    while (*name == '-')
        name++;
    for (; *name && *canonical; name++, canonical++) {
        const int a = *name == '_' ? '-' : tolower((unsigned char)*name);
        if (a != *canonical) return 0;
    }
    return !*name && !*canonical;
}

static const setting *find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_SETTINGS; i++)
        if (same_name(name, table[i].name) || same_name(name, table[i].alias)) return &table[i];
    return NULL;
}

static int fail(mmgeo_settings *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(mmgeo_settings *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
    va_end(ap);
    return MMGEO_ERROR;
}

void mmgeo_settings_init(mmgeo_settings *s, int batch_min) {
    memset(s, 0, sizeof *s);
    s->device = MM_DEVICE_CPU;
    s->precision = MM_PRECISION_BF16;
    s->guidance = -1;
    s->sampler = -1;
    s->overlap = -1;
    s->batch = -1;
    s->batch_min = batch_min;
    s->processor = processors[0];
    s->out_type = GDT_Unknown;
    s->cache_mb = -1;
}

int mmgeo_settings_known(const char *name) {
    return find(name) != NULL;
}

const char *mmgeo_settings_display_name(const char *name) {
    const setting *t = find(name);
    return t ? t->shown : NULL;
}

const char *mmgeo_settings_errmsg(const mmgeo_settings *s) {
    return s->errmsg;
}

const char *mmgeo_settings_device_name(mm_device d) {
    return d == MM_DEVICE_CUDA ? devices[1] : devices[0];
}

const char *mmgeo_settings_precision_name(mm_precision p) {
    return p == MM_PRECISION_FP32 ? precisions[1] : precisions[0];
}

/* The integer rule: decimal digits only, no leading zero but "0" itself, at most 2^64 - 1. */
static int decimal_u64(const char *v, size_t n, uint64_t *out) {
    if (n == 0 || (v[0] == '0' && n > 1)) return -1;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        const unsigned d = (unsigned)(v[i] - '0');
        if (x > (UINT64_MAX - d) / 10) return -1;
        x = x * 10 + d;
    }
    *out = x;
    return 0;
}

static int bad_int(mmgeo_settings *s, const setting *t, const char *v) {
    if (t->k == K_U64)
        return fail(s,
                    "%s must be a decimal integer from 0 to 18446744073709551615 (digits only: "
                    "no sign, exponent, leading zero or other characters), got '%s'",
                    t->shown, v);
    return fail(s,
                "%s must be a decimal integer from %.0f to %.0f (digits only: no sign, "
                "exponent, leading zero or other characters), got '%s'",
                t->shown, t->id == S_BATCH ? (double)s->batch_min : t->lo, t->hi, v);
}

/* An integer of setting t within its range (BATCH: from batch_min). */
static int int_value(mmgeo_settings *s, const setting *t, const char *v, size_t n, int *out) {
    uint64_t x;
    const double lo = t->id == S_BATCH ? s->batch_min : t->lo;
    if (decimal_u64(v, n, &x) || (double)x < lo || (double)x > t->hi) return -1;
    *out = (int)x;
    return 0;
}

/* The number rule: [-]DIGITS[.DIGITS][(e|E)[+-]DIGITS], a digit on one side of the point. */
static int decimal_number(const char *v, double *out) {
    const char *p = v;
    if (*p == '-') p++;
    size_t before = strspn(p, "0123456789");
    p += before;
    size_t after = 0;
    if (*p == '.') {
        after = strspn(p + 1, "0123456789");
        p += 1 + after;
    }
    if (before + after == 0) return -1;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        const size_t e = strspn(p, "0123456789");
        if (!e) return -1;
        p += e;
    }
    if (*p) return -1;
    const double x = CPLStrtod(v, NULL); /* locale-independent */
    if (!isfinite(x)) return -1;
    *out = x;
    return 0;
}

/* A copy of n bytes of v kept in s (NUL-terminated), or NULL when the store is full. */
static const char *keep(mmgeo_settings *s, const char *v, size_t n) {
    if (n + 1 > sizeof s->store - s->store_used) return NULL;
    char *p = s->store + s->store_used;
    memcpy(p, v, n);
    p[n] = 0;
    s->store_used += n + 1;
    return p;
}

static int set_list(mmgeo_settings *s, const setting *t, const char *v) {
    /* all items checked first: a refused list changes nothing */
    int n_bands = s->n_bands, bands[MMGEO_MAX_BANDS];
    memcpy(bands, s->bands, sizeof bands);
    int n_profiles = s->n_profiles;
    const char *items[MMGEO_MAX_PROFILES];
    size_t lens[MMGEO_MAX_PROFILES];
    const size_t used = s->store_used;
    const char *p = v;
    do {
        const size_t n = strcspn(p, ",");
        if (t->k == K_INT_LIST) {
            int b;
            if (int_value(s, t, p, n, &b))
                return fail(s,
                            "%s takes band numbers, decimal integers from 1 to 1048576 "
                            "(comma-separated), got '%s'",
                            t->shown, v);
            if (n_bands == MMGEO_MAX_BANDS)
                return fail(s, "%s: at most %d bands", t->shown, MMGEO_MAX_BANDS);
            bands[n_bands++] = b;
        } else {
            const char *eq = memchr(p, '=', n);
            if (!eq || eq == p || eq + 1 == p + n)
                return fail(s, "%s takes MODALITY=SPEC items (comma-separated), got '%s'", t->shown,
                            v);
            if (n_profiles - s->n_profiles == MMGEO_MAX_PROFILES ||
                n_profiles == MMGEO_MAX_PROFILES)
                return fail(s, "%s: at most %d items", t->shown, MMGEO_MAX_PROFILES);
            items[n_profiles - s->n_profiles] = p;
            lens[n_profiles - s->n_profiles] = n;
            n_profiles++;
        }
        p += n;
    } while (*p++ == ',');
    if (t->k == K_INT_LIST) {
        s->n_bands = n_bands;
        memcpy(s->bands, bands, sizeof bands);
        return 0;
    }
    for (int i = s->n_profiles; i < n_profiles; i++) {
        const char *k = keep(s, items[i - s->n_profiles], lens[i - s->n_profiles]);
        if (!k) {
            s->store_used = used;
            return fail(s, "%s: the items are too long", t->shown);
        }
        s->profiles[i] = k;
    }
    s->n_profiles = n_profiles;
    return 0;
}

int mmgeo_settings_set(mmgeo_settings *s, const char *name, const char *value) {
    const setting *t = find(name);
    if (!t) return fail(s, "unknown setting '%s'", name ? name : "");
    const char *v = value ? value : "";
    s->errmsg[0] = 0;
    switch (t->k) {
    case K_STRING: {
        if (!*v) { /* MODEL="": not given */
            s->model_path = NULL;
            return 0;
        }
        const char *k = keep(s, v, strlen(v));
        if (!k) return fail(s, "%s: the path is too long", t->shown);
        s->model_path = k;
        return 0;
    }
    case K_INT: {
        int x;
        if (int_value(s, t, v, strlen(v), &x)) return bad_int(s, t, v);
        switch (t->id) {
        case S_THREADS: s->threads = x; break;
        case S_STEPS: s->steps = x; break;
        case S_OVERLAP: s->overlap = x; break;
        case S_BATCH: s->batch = x; break;
        case S_WINDOW: s->window = x; break;
        case S_SAR_BAND: s->sar.band = x; break;
        case S_SAMPLES: s->samples.samples = x; break;
        default: break;
        }
        return 0;
    }
    case K_U64: {
        uint64_t x;
        if (decimal_u64(v, strlen(v), &x)) return bad_int(s, t, v);
        s->seed = x;
        s->seed_set = 1;
        return 0;
    }
    case K_NUMBER: {
        double x;
        if (decimal_number(v, &x) || x < t->lo || x > t->hi)
            return fail(s, "%s must be a decimal number from %g to %g, got '%s'", t->shown, t->lo,
                        t->hi, v);
        if (t->id == S_GUIDANCE)
            s->guidance = x;
        else
            s->cache_mb = x;
        return 0;
    }
    case K_CHOICE: {
        int c = 0;
        while (t->choices[c] && strcasecmp(v, t->choices[c]))
            c++;
        if (!t->choices[c])
            return fail(s, "%s takes %s (in any case), got '%s'", t->shown, t->choices_text, v);
        switch (t->id) {
        case S_DEVICE:
            s->device = c ? MM_DEVICE_CUDA : MM_DEVICE_CPU;
            s->device_set = 1;
            break;
        case S_PRECISION:
            s->precision = c ? MM_PRECISION_FP32 : MM_PRECISION_BF16;
            s->precision_set = 1;
            break;
        case S_SAMPLER: s->sampler = mm_sampler_from_name(samplers[c]); break;
        case S_PROCESSOR: s->processor = processors[c]; break;
        case S_SAR_UNITS:
            s->sar.units = c == 0   ? MMGEO_SAR_UNITS_DB
                           : c == 1 ? MMGEO_SAR_UNITS_LINEAR
                                    : MMGEO_SAR_UNITS_AMPLITUDE;
            break;
        case S_SPREAD:
            s->samples.spread = c ? MMGEO_SPREAD_BAND : MMGEO_SPREAD_SIDECAR;
            s->samples.spread_set = 1;
            break;
        case S_NONFINITE: s->nonfinite = c ? MMGEO_NONFINITE_NODATA : MMGEO_NONFINITE_ERROR; break;
        default: break;
        }
        return 0;
    }
    case K_INT_LIST:
    case K_PROFILES: return set_list(s, t, v);
    case K_TYPE: {
        const GDALDataType d = GDALGetDataTypeByName(v);
        if (d == GDT_Unknown || GDALDataTypeIsComplex(d))
            return fail(s, "%s takes a real GDAL data type (Byte, UInt16, Float32, ...), got '%s'",
                        t->shown, v);
        s->out_type = d;
        return 0;
    }
    }
    return fail(s, "unknown setting '%s'", name);
}

int mmgeo_settings_finish(mmgeo_settings *s) {
    s->errmsg[0] = 0;
    if (!s->device_set) {
        const char *env = CPLGetConfigOption("MM_DEVICE", NULL);
        if (env && *env) {
            int c = 0;
            while (devices[c] && strcasecmp(env, devices[c]))
                c++;
            if (!devices[c])
                return fail(s, "MM_DEVICE takes cpu or cuda (in any case), got '%s'", env);
            s->device = c ? MM_DEVICE_CUDA : MM_DEVICE_CPU;
            s->device_set = 1;
        }
    }
    if (!s->model_path) {
        const char *env = CPLGetConfigOption("MM_MODEL", NULL);
        if (env && *env) {
            const char *k = keep(s, env, strlen(env));
            if (!k) return fail(s, "MM_MODEL: the path is too long");
            s->model_path = k;
        }
    }
    if (s->samples.spread_set && s->samples.samples < 2)
        return fail(s, "--spread / SPREAD needs --samples / SAMPLES K with K of 2 or more");
    return 0;
}

void mmgeo_settings_context_params(const mmgeo_settings *s, mm_context_params *cp) {
    mm_context_params_default(cp);
    cp->n_threads = s->threads;
    if (s->device_set) cp->device = s->device;
    if (s->precision_set) cp->precision = s->precision;
}

void mmgeo_settings_sample_params(const mmgeo_settings *s, const mm_model *model,
                                  mm_sample_params *p) {
    mm_sample_params_default(model, p);
    if (s->steps > 0) p->steps = s->steps;
    if (s->guidance >= 0) p->guidance = (float)s->guidance;
    if (s->seed_set) p->seed = s->seed;
    if (s->sampler >= 0) p->sampler = (mm_sampler)s->sampler;
}
