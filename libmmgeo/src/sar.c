/* SAR sources as users hold them: sigma0 in dB, linear power, or GRD amplitude digital numbers.
 * The setup of a SAR source (settings.c reads the options): which band (VH), which units (option
 * > metadata > detection), which profile (the model's dB window). See mmgeo.h and docs/tools.md. */
#define _POSIX_C_SOURCE 200809L
#include <cpl_conv.h>
#include <cpl_string.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

const char *mmgeo_sar_units_name(mmgeo_sar_units u) {
    switch (u) {
    case MMGEO_SAR_UNITS_DB: return "db";
    case MMGEO_SAR_UNITS_LINEAR: return "linear";
    case MMGEO_SAR_UNITS_AMPLITUDE: return "amplitude";
    default: return "";
    }
}

static mmgeo_sar_units units_of_input(mmgeo_sar_input in) {
    switch (in) {
    case MMGEO_SAR_DB: return MMGEO_SAR_UNITS_DB;
    case MMGEO_SAR_INTENSITY: return MMGEO_SAR_UNITS_LINEAR;
    case MMGEO_SAR_AMPLITUDE: return MMGEO_SAR_UNITS_AMPLITUDE;
    default: return MMGEO_SAR_UNITS_UNSET;
    }
}

static mmgeo_sar_input input_of_units(mmgeo_sar_units u) {
    switch (u) {
    case MMGEO_SAR_UNITS_DB: return MMGEO_SAR_DB;
    case MMGEO_SAR_UNITS_AMPLITUDE: return MMGEO_SAR_AMPLITUDE;
    default: return MMGEO_SAR_INTENSITY;
    }
}

int mmgeo_sar_options_profiles(mmgeo_sar_options *o, const char *const *specs, int n, char *err,
                               size_t errlen) {
    const char *units_opt = o->open_options ? "SAR_UNITS" : "--sar-units";
    const char *profile_opt = o->open_options ? "PROFILE" : "--profile";
    for (int k = 0; k < n; k++) {
        const char *s = specs[k];
        if (!s || strncmp(s, "sar=", 4)) continue;
        mmgeo_profile p;
        mmgeo_profile_default("sar", GDT_Float32, &p);
        if (mmgeo_profile_parse(s + 4, &p, NULL, 0)) continue; /* reported by the caller */
        const mmgeo_sar_units u =
            p.kind == MMGEO_IO_SAR ? units_of_input(p.sar_input) : MMGEO_SAR_UNITS_UNSET;
        if (o->units && u != o->units)
            return mmgeo_fail(err, errlen,
                              "%s %s reads %s%s but %s is %s; give one of them, or make them "
                              "agree",
                              profile_opt, s, u ? mmgeo_sar_units_name(u) : "no SAR units",
                              u ? " data" : "", units_opt, mmgeo_sar_units_name(o->units));
        if (o->profile_given && (u ? (int)o->profile_given != 1 || o->profile_input != p.sar_input
                                   : o->profile_given != 2))
            return mmgeo_fail(err, errlen, "%s: two SAR profiles that read different data",
                              profile_opt);
        o->profile_given = u ? 1 : 2;
        o->profile_input = u ? p.sar_input : MMGEO_SAR_AUTO;
    }
    return 0;
}

/* The units a unit type or SAR_UNITS item names; UNSET when none is recognised. */
static mmgeo_sar_units units_word(const char *w) {
    if (!w || !*w) return MMGEO_SAR_UNITS_UNSET;
    static const struct {
        const char *word;
        mmgeo_sar_units u;
    } words[] = {{"db", MMGEO_SAR_UNITS_DB},
                 {"decibel", MMGEO_SAR_UNITS_DB},
                 {"decibels", MMGEO_SAR_UNITS_DB},
                 {"linear", MMGEO_SAR_UNITS_LINEAR},
                 {"intensity", MMGEO_SAR_UNITS_LINEAR},
                 {"power", MMGEO_SAR_UNITS_LINEAR},
                 {"amplitude", MMGEO_SAR_UNITS_AMPLITUDE},
                 {"dn", MMGEO_SAR_UNITS_AMPLITUDE}};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcasecmp(w, words[i].word)) return words[i].u;
    return MMGEO_SAR_UNITS_UNSET;
}

static int is_vh(const char *s) {
    if (!s) return 0;
    while (*s == ' ')
        s++;
    size_t n = strlen(s);
    while (n && s[n - 1] == ' ')
        n--;
    return n == 2 && !strncasecmp(s, "VH", 2);
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The minimum and median of the valid pixels of band on a decimated grid (at most 512 x 512,
 * nearest neighbour); *n the number of valid samples. */
static int band_sample(GDALRasterBandH band, double *min, double *median, size_t *n, char *err,
                       size_t errlen) {
    const int W = GDALGetRasterBandXSize(band), H = GDALGetRasterBandYSize(band);
    const int bw = W < 512 ? W : 512, bh = H < 512 ? H : 512;
    const size_t np = (size_t)bw * bh;
    double *v = malloc(sizeof(double) * np);
    uint8_t *m = malloc(np);
    if (!v || !m) {
        free(v), free(m);
        return mmgeo_fail(err, errlen, "out of memory");
    }
    int rc = 0;
    if (GDALRasterIO(band, GF_Read, 0, 0, W, H, v, bw, bh, GDT_Float64, 0, 0) != CE_None) {
        rc = mmgeo_fail(err, errlen, "cannot read a sample of %s: %s",
                        GDALGetDescription(GDALGetBandDataset(band)), CPLGetLastErrorMsg());
        goto done;
    }
    const int all_valid = (GDALGetMaskFlags(band) & GMF_ALL_VALID) != 0;
    if (!all_valid && GDALRasterIO(GDALGetMaskBand(band), GF_Read, 0, 0, W, H, m, bw, bh, GDT_Byte,
                                   0, 0) != CE_None) {
        rc = mmgeo_fail(err, errlen, "cannot read the mask of %s: %s",
                        GDALGetDescription(GDALGetBandDataset(band)), CPLGetLastErrorMsg());
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < np; i++)
        if (v[i] == v[i] && (all_valid || m[i])) v[k++] = v[i];
    *n = k;
    *min = *median = 0;
    if (k) {
        qsort(v, k, sizeof *v, cmp_double);
        *min = v[0];
        *median = k % 2 ? v[k / 2] : 0.5 * (v[k / 2 - 1] + v[k / 2]);
    }
done:
    free(v), free(m);
    return rc;
}

int mmgeo_sar_source(GDALDatasetH ds, const mmgeo_sar_options *o, const mmgeo_model_geo *g, int m,
                     int channels, mmgeo_source *s, char *from, size_t fromlen, char *err,
                     size_t errlen) {
    const int oo = o->open_options;
    const char *units_opt = oo ? "-oo SAR_UNITS=" : "--sar-units ";
    const char *units_any =
        oo ? "-oo SAR_UNITS=db|linear|amplitude" : "--sar-units db|linear|amplitude";
    const char *band_opt = oo ? "-oo SAR_BAND=N" : "--sar-band N";
    const char *bands_opt = oo ? "BANDS" : "-b";
    if (from && fromlen) from[0] = 0;
    const int nfile = GDALGetRasterCount(ds);
    /* the band */
    if (o->band && s->n_bands)
        return mmgeo_fail(err, errlen, "give the SAR band with %s or the bands with %s, not both",
                          band_opt, bands_opt);
    if (o->band) {
        if (o->band > nfile)
            return mmgeo_fail(err, errlen, "'%s' has %d band%s; the SAR band %d does not exist",
                              s->path, nfile, nfile == 1 ? "" : "s", o->band);
        s->n_bands = 1;
        s->bands[0] = o->band;
    } else if (!s->n_bands && channels == 1 && nfile > 1 &&
               !(nfile == 2 &&
                 GDALGetRasterColorInterpretation(GDALGetRasterBand(ds, 2)) == GCI_AlphaBand)) {
        int vh = 0, n_vh = 0;
        for (int b = 1; b <= nfile; b++) {
            GDALRasterBandH h = GDALGetRasterBand(ds, b);
            if (is_vh(GDALGetDescription(h)) ||
                is_vh(GDALGetMetadataItem(h, "POLARISATION", NULL)) ||
                is_vh(GDALGetMetadataItem(h, "POLARIZATION", NULL)))
                vh = vh ? vh : b, n_vh++;
        }
        if (n_vh != 1)
            return mmgeo_fail(err, errlen,
                              "'%s' has %d bands and %s labelled VH (the model's SAR modality is "
                              "one band, VH; labels: the band description or a POLARISATION "
                              "metadata item); choose the SAR band with %s",
                              s->path, nfile, n_vh ? "several are" : "none is", band_opt);
        s->n_bands = 1;
        s->bands[0] = vh;
    }
    const int b1 = s->n_bands ? s->bands[0] : 1;
    if (b1 < 1 || b1 > nfile) { /* reported when the run opens the source */
        mmgeo_model_geo_source_profile(g, m, s->modality, GDT_Float32, &s->profile);
        return 0;
    }
    GDALRasterBandH band = GDALGetRasterBand(ds, b1);
    const GDALDataType dt = GDALGetRasterDataType(band);
    mmgeo_model_geo_source_profile(g, m, s->modality, dt, &s->profile);
    if (o->profile_given == 2) return 0; /* the --profile (complex, percentile ...) decides */
    if (s->profile.kind != MMGEO_IO_SAR) return 0; /* the model's percentile profile reads any */
    if (GDALDataTypeIsComplex(dt)) {
        if (o->units)
            return mmgeo_fail(err, errlen,
                              "'%s' holds complex data (read as re^2 + im^2); %s%s is for real "
                              "data",
                              s->path, units_opt, mmgeo_sar_units_name(o->units));
        if (from) snprintf(from, fromlen, "complex");
        return 0;
    }
    /* the units: the option (or the --profile), else the file's metadata, else detection */
    mmgeo_sar_units u = o->units;
    const char *how = oo ? "SAR_UNITS" : "--sar-units";
    char buf[256];
    if (!u && o->profile_given == 1) u = units_of_input(o->profile_input), how = "--profile";
    if (!u) {
        const char *ut = GDALGetRasterUnitType(band);
        if ((u = units_word(ut))) {
            snprintf(buf, sizeof buf, "the band's unit type '%s'", ut);
            how = buf;
        } else if ((u = units_word(GDALGetMetadataItem(band, "SAR_UNITS", NULL)))) {
            how = "the band's SAR_UNITS item";
        } else if ((u = units_word(GDALGetMetadataItem(ds, "SAR_UNITS", NULL)))) {
            how = "the SAR_UNITS item";
        }
    }
    if (!u && !GDALDataTypeIsFloating(dt)) {
        u = MMGEO_SAR_UNITS_AMPLITUDE;
        snprintf(buf, sizeof buf, "detected: %s data, taken as GRD amplitude digital numbers",
                 GDALGetDataTypeName(dt));
        how = buf;
    }
    if (!u) {
        double min = 0, median = 0;
        size_t n = 0;
        if (band_sample(band, &min, &median, &n, err, errlen)) return MMGEO_ERROR;
        if (n && min < 0)
            return mmgeo_fail(err, errlen,
                              "'%s' has negative values (down to %g), which linear intensity "
                              "cannot have: they look like sigma0 in dB; give %sdb (or tag the "
                              "band with the unit type dB or a SAR_UNITS=db item)",
                              s->path, min, units_opt);
        if (n && median > 1.5)
            return mmgeo_fail(err, errlen,
                              "'%s': the median value %g is too large for linear sigma0 "
                              "(almost always below 1); the data look like dB or amplitude "
                              "digital numbers: say which with %s",
                              s->path, median, units_any);
        u = MMGEO_SAR_UNITS_LINEAR;
        snprintf(buf, sizeof buf, "detected: no negative value, median %g", median);
        how = buf;
    }
    s->profile.kind = MMGEO_IO_SAR;
    s->profile.sar_input = input_of_units(u);
    if (from) snprintf(from, fromlen, "%s (%s)", mmgeo_sar_units_name(u), how);
    return 0;
}
