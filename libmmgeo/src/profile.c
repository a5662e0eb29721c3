/* Modality I/O profiles, modality detection, the window grid and blending weights. */
#define _POSIX_C_SOURCE 200809L
#include <strings.h>
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int mmgeo_fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return MMGEO_ERROR;
}

static int is_sar(const char *modality) {
    return modality && strcmp(modality, "sar") == 0;
}

static void kind_defaults(mmgeo_profile *p, GDALDataType dt) {
    const int integer = dt != GDT_Unknown && !GDALDataTypeIsFloating(dt);
    switch (p->kind) {
    case MMGEO_IO_BYTE: p->lo = 0, p->hi = 255; break;
    case MMGEO_IO_REFLECTANCE: p->lo = 0, p->hi = dt == GDT_Unknown || integer ? 10000 : 1; break;
    case MMGEO_IO_SAR:
        /* sigma0 spans about -25..5 dB (amplitude DN are calibrated to it, MMGEO_SAR_CAL_A);
           uncalibrated integer complex SLC data about 15..55 dB */
        if (integer && p->sar_input == MMGEO_SAR_COMPLEX)
            p->lo = 15, p->hi = 55;
        else
            p->lo = -25, p->hi = 5;
        break;
    case MMGEO_IO_PERCENTILE: p->lo = 2, p->hi = 98; break;
    case MMGEO_IO_RAW: p->lo = 0, p->hi = 0; break;
    }
}

void mmgeo_profile_default(const char *modality, GDALDataType dt, mmgeo_profile *p) {
    memset(p, 0, sizeof *p);
    p->out_type = GDT_Unknown;
    if (is_sar(modality)) {
        p->kind = MMGEO_IO_SAR;
        if (dt == GDT_Unknown)
            p->sar_input = MMGEO_SAR_DB;
        else if (GDALDataTypeIsComplex(dt))
            p->sar_input = MMGEO_SAR_COMPLEX;
        else if (GDALDataTypeIsFloating(dt))
            p->sar_input = MMGEO_SAR_INTENSITY;
        else
            p->sar_input = MMGEO_SAR_AMPLITUDE;
    } else if (dt == GDT_Unknown || dt == GDT_Byte) {
        p->kind = MMGEO_IO_BYTE;
    } else {
        p->kind = MMGEO_IO_REFLECTANCE;
    }
    kind_defaults(p, dt);
}

int mmgeo_profile_parse(const char *spec, mmgeo_profile *p, char *err, size_t errlen) {
    char word[32];
    size_t n = strcspn(spec, ":");
    if (n >= sizeof word) n = sizeof word - 1;
    memcpy(word, spec, n);
    word[n] = 0;
    const char *rest = spec[n] == ':' ? spec + n + 1 : NULL;
    static const struct {
        const char *name;
        mmgeo_io_kind kind;
        mmgeo_sar_input sar;
    } kinds[] = {{"byte", MMGEO_IO_BYTE, 0},
                 {"reflectance", MMGEO_IO_REFLECTANCE, 0},
                 {"percentile", MMGEO_IO_PERCENTILE, 0},
                 {"amplitude", MMGEO_IO_SAR, MMGEO_SAR_AMPLITUDE},
                 {"intensity", MMGEO_IO_SAR, MMGEO_SAR_INTENSITY},
                 {"complex", MMGEO_IO_SAR, MMGEO_SAR_COMPLEX},
                 {"db", MMGEO_IO_SAR, MMGEO_SAR_DB}};
    int k = -1;
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strcmp(word, kinds[i].name) == 0) k = (int)i;
    if (k < 0)
        return mmgeo_fail(err, errlen,
                          "unknown profile '%s' (byte, reflectance[:LO:HI], percentile[:PLO:PHI], "
                          "amplitude|intensity|complex|db[:DBLO:DBHI])",
                          spec);
    const int changed = p->kind != kinds[k].kind;
    p->kind = kinds[k].kind;
    p->sar_input = kinds[k].sar;
    if (changed) kind_defaults(p, GDT_Float32);
    if (rest) {
        char *end;
        double lo = strtod(rest, &end);
        if (end == rest || *end != ':')
            return mmgeo_fail(err, errlen, "profile '%s': expected %s:LO:HI", spec, word);
        const char *h = end + 1;
        double hi = strtod(h, &end);
        if (end == h || *end || !isfinite(lo) || !isfinite(hi) || !(lo < hi))
            return mmgeo_fail(err, errlen, "profile '%s': expected %s:LO:HI with LO < HI", spec,
                              word);
        if (p->kind == MMGEO_IO_PERCENTILE && (lo < 0 || hi > 100))
            return mmgeo_fail(err, errlen, "profile '%s': percentiles must be in 0..100", spec);
        p->lo = lo, p->hi = hi;
    }
    return 0;
}

void mmgeo_profile_describe(const mmgeo_profile *p, char *buf, size_t len) {
    static const char *sar[] = {"auto", "amplitude", "intensity", "complex", "db"};
    switch (p->kind) {
    case MMGEO_IO_BYTE: snprintf(buf, len, "byte"); break;
    case MMGEO_IO_REFLECTANCE: snprintf(buf, len, "reflectance:%g:%g", p->lo, p->hi); break;
    case MMGEO_IO_PERCENTILE: snprintf(buf, len, "percentile:%g:%g", p->lo, p->hi); break;
    case MMGEO_IO_SAR: snprintf(buf, len, "%s:%g:%g", sar[p->sar_input], p->lo, p->hi); break;
    case MMGEO_IO_RAW: snprintf(buf, len, "raw"); break;
    }
}

static float clip1(double v) {
    return (float)(v < -1 ? -1 : v > 1 ? 1 : v);
}

float mmgeo_profile_input(const mmgeo_profile *p, double re, double im, double plo, double phi) {
    switch (p->kind) {
    case MMGEO_IO_BYTE: return clip1(re / 127.5 - 1.0);
    case MMGEO_IO_REFLECTANCE: return clip1(2.0 * (re - p->lo) / (p->hi - p->lo) - 1.0);
    case MMGEO_IO_PERCENTILE: return phi > plo ? clip1(2.0 * (re - plo) / (phi - plo) - 1.0) : 0.0f;
    case MMGEO_IO_SAR: {
        double db;
        switch (p->sar_input) {
        case MMGEO_SAR_DB: db = re; break;
        case MMGEO_SAR_AMPLITUDE:
            db = 20.0 * log10(fmax(fabs(re), 1e-10)) - MMGEO_SAR_CAL_K_DB;
            break;
        case MMGEO_SAR_COMPLEX: db = 10.0 * log10(fmax(re * re + im * im, 1e-20)); break;
        default: db = 10.0 * log10(fmax(re, 1e-20)); break;
        }
        return clip1(2.0 * (db - p->lo) / (p->hi - p->lo) - 1.0);
    }
    case MMGEO_IO_RAW: return (float)re;
    }
    return 0;
}

int mmgeo_profile_valid(const mmgeo_profile *p, double re) {
    /* zero (or negative) power or amplitude has no dB value: nodata, not -inf */
    return !(p->kind == MMGEO_IO_SAR &&
             (p->sar_input == MMGEO_SAR_INTENSITY || p->sar_input == MMGEO_SAR_AMPLITUDE) &&
             !(re > 0));
}

GDALDataType mmgeo_profile_out_type(const mmgeo_profile *p, const char *modality) {
    (void)modality;
    if (p->out_type != GDT_Unknown) return p->out_type;
    switch (p->kind) {
    case MMGEO_IO_SAR: return GDT_Float32;
    case MMGEO_IO_RAW: return GDT_Float32;
    case MMGEO_IO_REFLECTANCE:
        return p->hi > 255 && p->lo >= 0 && p->hi <= 65535 ? GDT_UInt16 : GDT_Float32;
    default: return GDT_Byte;
    }
}

void mmgeo_profile_output_map(const mmgeo_profile *p, GDALDataType t, mmgeo_output_map *m) {
    /* y = a x + b for x in [-1, 1] */
    if (t == GDT_Byte || !(p->kind == MMGEO_IO_SAR || p->kind == MMGEO_IO_REFLECTANCE))
        m->a = 127.5, m->b = 127.5;
    else
        m->a = 0.5 * (p->hi - p->lo), m->b = p->lo + 0.5 * (p->hi - p->lo);
    m->integer = !GDALDataTypeIsFloating(t);
    m->raw = p->kind == MMGEO_IO_RAW;
    if (m->raw) m->a = 1, m->b = 0;
    m->lo = 0, m->hi = 255;
    switch (t) {
    case GDT_UInt16: m->hi = 65535; break;
    case GDT_Int16: m->lo = -32768, m->hi = 32767; break;
    case GDT_UInt32: m->hi = 4294967295.0; break;
    case GDT_Int32: m->lo = -2147483648.0, m->hi = 2147483647.0; break;
    default: break;
    }
}

double mmgeo_profile_output(const mmgeo_profile *p, GDALDataType t, float v) {
    mmgeo_output_map m;
    mmgeo_profile_output_map(p, t, &m);
    return mmgeo_output_apply(&m, v);
}

/* ---- modality detection ----------------------------------------------------------------- */

static int name_index(const char *s, const char *const *names, int n) {
    for (int i = 0; i < n; i++)
        if (strcasecmp(s, names[i]) == 0) return i;
    return -1;
}

int mmgeo_detect_modality(GDALDatasetH ds, const char *path, const char *const *names, int n) {
    if (ds) {
        const char *tag = GDALGetMetadataItem(ds, "MM_MODALITY", NULL);
        if (tag) {
            int i = name_index(tag, names, n);
            if (i >= 0) return i;
        }
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int found = -1;
    const char *s = base;
    const char *dot = strrchr(base, '.');
    const char *end = dot && dot != base ? dot : base + strlen(base);
    while (s < end) {
        while (s < end && !isalnum((unsigned char)*s))
            s++;
        const char *w = s;
        while (s < end && isalnum((unsigned char)*s))
            s++;
        if (s == w || s - w >= 64) continue;
        char word[64];
        memcpy(word, w, (size_t)(s - w));
        word[s - w] = 0;
        int i = name_index(word, names, n);
        if (i >= 0) {
            if (found >= 0 && found != i) return -2;
            found = i;
        }
    }
    return found;
}

/* ---- grid --------------------------------------------------------------------------------- */

int mmgeo_grid_origins(int size, int window, int overlap, int *out, int max) {
    if (size <= 0 || window <= 0 || overlap < 0 || overlap >= window) return 0;
    const int step = window - overlap;
    int n = 0;
    for (long x = 0;; x += step) {
        long o = x;
        int last = x + window >= size;
        if (last) o = size > window ? size - window : 0;
        if (out && n < max) out[n] = (int)o;
        n++;
        if (last) break;
    }
    return n;
}

int mmgeo_grid_origins_aligned(int size, int window, int overlap, int align, int *out, int max) {
    if (align <= 1) return mmgeo_grid_origins(size, window, overlap, out, max);
    if (window % align || overlap % align) return 0;
    const int n =
        mmgeo_grid_origins((size + align - 1) / align, window / align, overlap / align, out, max);
    for (int i = 0; out && i < n && i < max; i++)
        out[i] *= align;
    return n;
}

float mmgeo_blend_weight(int i, int window, int overlap) {
    if (overlap <= 0) return 1.0f;
    double d = i < window - 1 - i ? i : window - 1 - i; /* distance to the nearest end */
    if (d >= overlap) return 1.0f;
    double r = (d + 0.5) / overlap; /* (0, 1) */
    return (float)(0.5 - 0.5 * cos(3.14159265358979323846 * r));
}
