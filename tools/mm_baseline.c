/*
 * mm_baseline: the simple baseline of docs/quality.md, a per-pixel lookup table from source values
 * to target values, fitted on simulator scenes and applied to a georeferenced raster exactly as
 * mm_translate would write the model's output (same profiles, data types, grid, nodata).
 *
 *   mm_baseline --fit -s SRC -t TGT --out LUT [--scenes N]
 *       fits the table on N simulator scenes (256 x 256, seeds 800000 + i, GSD, sun elevation and
 *       world position drawn as for training: docs/training.md) and writes it (a text file).
 *   mm_baseline --fit -s SRC -t TGT --out LUT --pairs LIST
 *       fits it instead on real image pairs: LIST is a text file of lines "SRC.tif TGT.tif" (e.g.
 *       the training split's Sentinel-1 VH dB and Sentinel-2 RGB of docs/quality.md, "Real data").
 *   mm_baseline --lut LUT [-q] [-of F] [-co K=V]... [-ot TYPE] [--profile M=SPEC]... SRC DST
 *       applies it to SRC (the LUT's source modality) and writes DST in its target modality.
 *
 * The table works on the model's values in [-1, 1] (the I/O profiles of docs/tools.md; the same
 * normalisation as training, docs/simulator.md). Source value of a pixel: its band values, except
 * for SAR the 5 x 5 box mean of the dB values (speckle averaged out). One-band sources are
 * quantised to 256 bins, three-band sources jointly to 16 x 16 x 16 bins; each bin stores the mean
 * target over the fitting pixels that fall in it. A bin no fitting pixel fell in takes the mean of
 * the smallest coarser bin (halving the bins per axis) that has pixels. It is a regression: it
 * predicts the conditional mean, with no texture of its own.
 */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "part_file.h"
#include "mmgeo.h"
#include "mmsim.h"
#include "tool_metadata.h"
#include "tool_profiles.h"
#include "tool_run.h"

#define TOOL_NAME "mm_baseline"
static const char *TOOL = TOOL_NAME;

#define SAR_BOX 2    /* radius of the SAR box mean: 5 x 5 */
#define FIT_SIZE 256 /* pixels a side of a fitting scene */
#define WINDOW 256   /* processor window when applying (the box mean is clamped at its edges) */

static const char *const MODS[] = {"rgb", "nir", "pan", "sar", "osm"};
static const int CHANNELS[] = {3, 1, 1, 1, 3};

static int modality_index(const char *m) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(MODS[i], m)) return i;
    return -1;
}

typedef struct {
    int src, tgt; /* modality indices */
    int cs, ct;   /* channels */
    int q;        /* bins per source channel */
    int box;      /* SAR box radius (0: the pixel value) */
    size_t nbins; /* q^cs */
    float *table; /* nbins x ct, values in [-1, 1] */
} lut;

static void lut_free(lut *l) {
    free(l->table);
}

static int lut_init(lut *l, int src, int tgt) {
    memset(l, 0, sizeof *l);
    l->src = src, l->tgt = tgt;
    l->cs = CHANNELS[src], l->ct = CHANNELS[tgt];
    l->q = l->cs == 1 ? 256 : 16;
    l->box = !strcmp(MODS[src], "sar") ? SAR_BOX : 0;
    l->nbins = 1;
    for (int c = 0; c < l->cs; c++)
        l->nbins *= (size_t)l->q;
    l->table = calloc(l->nbins * l->ct, sizeof(float));
    return l->table ? 0 : -1;
}

static int quantise(float v, int q) {
    const int b = (int)floorf((v + 1.0f) * 0.5f * (float)q);
    return b < 0 ? 0 : b >= q ? q - 1 : b;
}

/* The source value of every pixel of one C x h x w image: the box mean for SAR (clamped at the
 * image edges), else the value itself; written into out (same layout). */
static void source_values(const lut *l, const float *img, int w, int h, float *out) {
    const size_t n = (size_t)w * h;
    if (!l->box) {
        memcpy(out, img, n * l->cs * sizeof(float));
        return;
    }
    const int r = l->box;
    for (int c = 0; c < l->cs; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double s = 0;
                int k = 0;
                for (int dy = -r; dy <= r; dy++) {
                    const int yy = y + dy;
                    if (yy < 0 || yy >= h) continue;
                    for (int dx = -r; dx <= r; dx++) {
                        const int xx = x + dx;
                        if (xx < 0 || xx >= w) continue;
                        s += img[c * n + (size_t)yy * w + xx];
                        k++;
                    }
                }
                out[c * n + (size_t)y * w + x] = (float)(s / k);
            }
}

static size_t bin_of(const lut *l, const float *v, size_t i, size_t n) {
    size_t b = 0;
    for (int c = 0; c < l->cs; c++)
        b = b * (size_t)l->q + (size_t)quantise(v[c * n + i], l->q);
    return b;
}

/* ---- fitting --------------------------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static double uniform(uint64_t *s) {
    return (double)(splitmix(s) >> 11) * 0x1.0p-53;
}

/* A simulator modality in [-1, 1] (docs/simulator.md, normalisation). */
static void normalise(int m, const float *rgb, const float *one, const uint8_t *osm, size_t n,
                      float *out) {
    const char *name = MODS[m];
    for (size_t i = 0; i < (size_t)CHANNELS[m] * n; i++) {
        float v;
        if (!strcmp(name, "rgb"))
            v = 2 * rgb[i] - 1;
        else if (!strcmp(name, "osm"))
            v = osm[i] / 127.5f - 1;
        else if (!strcmp(name, "sar"))
            v = (fminf(fmaxf(one[i], -25.0f), 5.0f) + 10.0f) / 15.0f;
        else
            v = 2 * one[i] - 1;
        out[i] = fminf(fmaxf(v, -1.0f), 1.0f);
    }
}

static int render_modality(uint64_t seed, const mm_sim_params *p, int m, float *rgb, float *one,
                           uint8_t *osm, float *out) {
    const char *name = MODS[m];
    if (mm_sim_render(seed, p, NULL, !strcmp(name, "rgb") ? rgb : NULL,
                      !strcmp(name, "nir") ? one : NULL, !strcmp(name, "pan") ? one : NULL,
                      !strcmp(name, "sar") ? one : NULL, !strcmp(name, "osm") ? osm : NULL))
        return -1;
    normalise(m, rgb, one, osm, (size_t)p->width * p->height, out);
    return 0;
}

/* Empty bins: the mean of the first coarser bin (bins per axis halved each level) with pixels. */
static void fill_empty(lut *l, const double *sum, const double *cnt) {
    double global[3] = {0}, gc = 0;
    for (size_t b = 0; b < l->nbins; b++) {
        gc += cnt[b];
        for (int c = 0; c < l->ct; c++)
            global[c] += sum[b * l->ct + c];
    }
    for (size_t b = 0; b < l->nbins; b++) {
        if (cnt[b] > 0) {
            for (int c = 0; c < l->ct; c++)
                l->table[b * l->ct + c] = (float)(sum[b * l->ct + c] / cnt[b]);
            continue;
        }
        int idx[3], done = 0;
        size_t rest = b;
        for (int c = l->cs - 1; c >= 0; c--)
            idx[c] = (int)(rest % (size_t)l->q), rest /= (size_t)l->q;
        for (int shift = 1; (l->q >> shift) >= 1 && !done; shift++) {
            double s[3] = {0}, k = 0;
            /* every fine bin that falls in the same coarse bin */
            const int span = 1 << shift;
            int lo[3] = {0, 0, 0}, cntv[3] = {1, 1, 1};
            for (int c = 0; c < l->cs; c++)
                lo[c] = idx[c] >> shift << shift, cntv[c] = span;
            for (int a = 0; a < cntv[0]; a++)
                for (int bb = 0; bb < (l->cs > 1 ? cntv[1] : 1); bb++)
                    for (int cc = 0; cc < (l->cs > 2 ? cntv[2] : 1); cc++) {
                        size_t f = (size_t)(lo[0] + a);
                        if (l->cs > 1) f = f * l->q + (size_t)(lo[1] + bb);
                        if (l->cs > 2) f = f * l->q + (size_t)(lo[2] + cc);
                        k += cnt[f];
                        for (int c = 0; c < l->ct; c++)
                            s[c] += sum[f * l->ct + c];
                    }
            if (k > 0) {
                for (int c = 0; c < l->ct; c++)
                    l->table[b * l->ct + c] = (float)(s[c] / k);
                done = 1;
            }
        }
        if (!done)
            for (int c = 0; c < l->ct; c++)
                l->table[b * l->ct + c] = gc > 0 ? (float)(global[c] / gc) : 0;
    }
}

static int write_lut(const lut *l, const char *path, int scenes) {
    FILE *o = mm_part_open(path, "w");
    if (!o) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, path);
        return 1;
    }
    fprintf(o, "mm_baseline-lut 1 %s %s %d %d %d %d %d\n", MODS[l->src], MODS[l->tgt], l->cs, l->ct,
            l->q, l->box, scenes);
    for (size_t b = 0; b < l->nbins; b++) {
        for (int c = 0; c < l->ct; c++)
            fprintf(o, "%s%.6g", c ? " " : "", l->table[b * l->ct + c]);
        fputc('\n', o);
    }
    if (mm_part_commit(o, path)) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, path);
        return 1;
    }
    return 0;
}

static int fit(const char *src, const char *tgt, const char *out, int scenes, int quiet) {
    const int si = modality_index(src), ti = modality_index(tgt);
    if (si < 0 || ti < 0) {
        fprintf(stderr, "%s: unknown modality '%s' (rgb, nir, pan, sar, osm)\n", TOOL,
                si < 0 ? src : tgt);
        return 2;
    }
    lut l;
    const int S = FIT_SIZE;
    const size_t n = (size_t)S * S;
    float *rgb = malloc(3 * n * sizeof(float)), *one = malloc(n * sizeof(float));
    float *sv = malloc(3 * n * sizeof(float)), *tv = malloc(3 * n * sizeof(float));
    float *feat = malloc(3 * n * sizeof(float));
    uint8_t *osm = malloc(3 * n);
    double *sum = NULL, *cnt = NULL;
    int rc = 1;
    if (lut_init(&l, si, ti) || !rgb || !one || !sv || !tv || !feat || !osm ||
        !(sum = calloc(l.nbins * l.ct, sizeof(double))) ||
        !(cnt = calloc(l.nbins, sizeof(double)))) {
        fprintf(stderr, "%s: out of memory\n", TOOL);
        goto out;
    }
    for (int s = 0; s < scenes; s++) {
        /* fitting scenes: seeds 800000+ (disjoint from evaluation, 700001+, and from the
         * classifiers', 900000+), parameters drawn from the training ranges */
        uint64_t st = 800000 + (uint64_t)s;
        mm_sim_params p;
        mm_sim_params_default(&p);
        p.width = p.height = S;
        p.gsd = 1.5 + 2.5 * uniform(&st);
        p.sun_elevation_deg = 30 + 35 * uniform(&st);
        p.origin_x = -3000 + 6000 * uniform(&st);
        p.origin_y = -3000 + 6000 * uniform(&st);
        if (render_modality(800000 + (uint64_t)s, &p, si, rgb, one, osm, sv) ||
            render_modality(800000 + (uint64_t)s, &p, ti, rgb, one, osm, tv)) {
            fprintf(stderr, "%s: the simulator failed\n", TOOL);
            goto out;
        }
        source_values(&l, sv, S, S, feat);
        for (size_t i = 0; i < n; i++) {
            const size_t b = bin_of(&l, feat, i, n);
            cnt[b]++;
            for (int c = 0; c < l.ct; c++)
                sum[b * l.ct + c] += tv[c * n + i];
        }
    }
    fill_empty(&l, sum, cnt);
    if (write_lut(&l, out, scenes)) goto out;
    if (!quiet)
        printf("%s: fitted the %s -> %s lookup table on %d simulator scenes -> %s\n", TOOL, src,
               tgt, scenes, out);
    rc = 0;
out:
    lut_free(&l);
    free(rgb), free(one), free(sv), free(tv), free(feat), free(osm), free(sum), free(cnt);
    return rc;
}

static int load_lut(const char *path, lut *l) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open the lookup table '%s'\n", TOOL, path);
        return 1;
    }
    char s[16], t[16];
    int ver, cs, ct, q, box, scenes, si = -1, ti = -1;
    int ok = fscanf(f, "mm_baseline-lut %d %15s %15s %d %d %d %d %d", &ver, s, t, &cs, &ct, &q,
                    &box, &scenes) == 8 &&
             ver == 1 && (si = modality_index(s)) >= 0 && (ti = modality_index(t)) >= 0;
    if (ok) ok = !lut_init(l, si, ti) && l->cs == cs && l->ct == ct && l->q == q && l->box == box;
    for (size_t i = 0; ok && i < l->nbins * l->ct; i++)
        ok = fscanf(f, "%f", &l->table[i]) == 1 && l->table[i] >= -1.0f && l->table[i] <= 1.0f;
    if (ok) ok = fscanf(f, "%15s", s) == EOF; /* nothing after the table */
    fclose(f);
    if (!ok) {
        if (si >= 0 && ti >= 0) lut_free(l);
        fprintf(stderr, "%s: '%s' is not a lookup table written by mm_baseline --fit\n", TOOL,
                path);
    }
    return !ok;
}

/* Fitting on real pairs: one raster in [-1, 1] as the profiles of docs/quality.md read it (SAR:
 * dB, or linear intensity when no valid value is negative, in the window [-25, 5] dB; OSM: bytes;
 * optical: reflectance x 10000 over 0..10000), its nodata pixels marked in valid. */
static int read_normalised(const char *path, int m, int *w, int *h, float **out, uint8_t **valid) {
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", TOOL, path, CPLGetLastErrorMsg());
        return 1;
    }
    const int c = CHANNELS[m], nb = GDALGetRasterCount(ds);
    if (nb != c) {
        fprintf(stderr, "%s: '%s' has %d band%s; %s has %d\n", TOOL, path, nb, nb == 1 ? "" : "s",
                MODS[m], c);
        GDALClose(ds);
        return 1;
    }
    *w = GDALGetRasterXSize(ds), *h = GDALGetRasterYSize(ds);
    const size_t n = (size_t)*w * *h;
    float *d = malloc(n * c * sizeof(float));
    uint8_t *v = malloc(n);
    if (!d || !v) {
        fprintf(stderr, "%s: out of memory reading '%s'\n", TOOL, path);
        free(d), free(v);
        GDALClose(ds);
        return 1;
    }
    memset(v, 1, n);
    for (int b = 0; b < c; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (GDALRasterIO(band, GF_Read, 0, 0, *w, *h, d + b * n, *w, *h, GDT_Float32, 0, 0) !=
            CE_None) {
            fprintf(stderr, "%s: cannot read '%s'\n", TOOL, path);
            free(d), free(v);
            GDALClose(ds);
            return 1;
        }
        int has;
        const double nd = GDALGetRasterNoDataValue(band, &has);
        for (size_t i = 0; i < n; i++)
            if ((has && d[b * n + i] == (float)nd) || !isfinite(d[b * n + i])) v[i] = 0;
    }
    GDALClose(ds);
    const char *name = MODS[m];
    int linear = !strcmp(name, "sar");
    for (size_t i = 0; i < n * c && linear; i++)
        if (v[i % n] && d[i] < 0) linear = 0;
    for (size_t i = 0; i < n * c; i++) {
        float x = d[i];
        if (!strcmp(name, "sar")) {
            if (linear) x = 10.0f * log10f(fmaxf(x, 1e-12f));
            x = (fminf(fmaxf(x, -25.0f), 5.0f) + 10.0f) / 15.0f;
        } else if (!strcmp(name, "osm"))
            x = x / 127.5f - 1;
        else
            x = 2 * (x / 10000.0f) - 1;
        d[i] = fminf(fmaxf(x, -1.0f), 1.0f);
    }
    *out = d, *valid = v;
    return 0;
}

static int fit_pairs(const char *src, const char *tgt, const char *out, const char *list,
                     int quiet) {
    const int si = modality_index(src), ti = modality_index(tgt);
    if (si < 0 || ti < 0) {
        fprintf(stderr, "%s: unknown modality '%s' (rgb, nir, pan, sar, osm)\n", TOOL,
                si < 0 ? src : tgt);
        return 2;
    }
    FILE *f = fopen(list, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open the list of pairs '%s'\n", TOOL, list);
        return 1;
    }
    lut l;
    double *sum = NULL, *cnt = NULL, pixels = 0;
    int rc = 1, pairs = 0;
    char line[8192];
    if (lut_init(&l, si, ti) || !(sum = calloc(l.nbins * l.ct, sizeof(double))) ||
        !(cnt = calloc(l.nbins, sizeof(double)))) {
        fprintf(stderr, "%s: out of memory\n", TOOL);
        goto out;
    }
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *sp = strtok_r(line, " \t\r\n", &save);
        char *tp = sp ? strtok_r(NULL, " \t\r\n", &save) : NULL;
        if (!sp || *sp == '#') continue;
        if (!tp || strtok_r(NULL, " \t\r\n", &save)) {
            fprintf(stderr, "%s: '%s': a line is not \"SRC.tif TGT.tif\"\n", TOOL, list);
            goto out;
        }
        int sw, sh, tw, th;
        float *sv = NULL, *tv = NULL, *feat = NULL;
        uint8_t *svalid = NULL, *tvalid = NULL;
        if (read_normalised(sp, si, &sw, &sh, &sv, &svalid)) goto out;
        if (read_normalised(tp, ti, &tw, &th, &tv, &tvalid)) {
            free(sv), free(svalid);
            goto out;
        }
        const size_t n = (size_t)sw * sh;
        if (sw != tw || sh != th || !(feat = malloc(n * l.cs * sizeof(float)))) {
            if (sw != tw || sh != th)
                fprintf(stderr, "%s: '%s' is %d x %d, '%s' %d x %d: a pair must match\n", TOOL, sp,
                        sw, sh, tp, tw, th);
            free(sv), free(svalid), free(tv), free(tvalid);
            goto out;
        }
        source_values(&l, sv, sw, sh, feat);
        for (size_t i = 0; i < n; i++) {
            if (!svalid[i] || !tvalid[i]) continue;
            const size_t b = bin_of(&l, feat, i, n);
            cnt[b]++;
            pixels++;
            for (int c = 0; c < l.ct; c++)
                sum[b * l.ct + c] += tv[c * n + i];
        }
        free(sv), free(svalid), free(tv), free(tvalid), free(feat);
        pairs++;
    }
    if (!pairs) {
        fprintf(stderr, "%s: '%s' lists no pair\n", TOOL, list);
        goto out;
    }
    fill_empty(&l, sum, cnt);
    if (write_lut(&l, out, pairs)) goto out;
    if (!quiet)
        printf("%s: fitted the %s -> %s lookup table on %d image pairs (%.0f pixels) -> %s\n", TOOL,
               src, tgt, pairs, pixels, out);
    rc = 0;
out:
    fclose(f);
    lut_free(&l);
    free(sum), free(cnt);
    return rc;
}

/* ---- applying: a libmmgeo processor ------------------------------------------------------- */

typedef struct {
    const lut *l;
    int window;
    float *feat;
} lut_processor;

static int process_lut(void *user, int n_tiles, const uint64_t *tile_ids,
                       const float *const *sources, float *const *targets, char *err,
                       size_t errlen) {
    (void)tile_ids, (void)err, (void)errlen;
    lut_processor *p = user;
    const lut *l = p->l;
    const size_t n = (size_t)p->window * p->window;
    for (int t = 0; t < n_tiles; t++) {
        source_values(l, sources[0] + (size_t)t * l->cs * n, p->window, p->window, p->feat);
        float *d = targets[0] + (size_t)t * l->ct * n;
        for (size_t i = 0; i < n; i++) {
            const size_t b = bin_of(l, p->feat, i, n);
            for (int c = 0; c < l->ct; c++)
                d[c * n + i] = l->table[b * l->ct + c];
        }
    }
    return 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_baseline --fit -s SRC -t TGT --out LUT [--scenes N] [-q]\n"
            "       mm_baseline --fit -s SRC -t TGT --out LUT --pairs LIST [-q]\n"
            "       mm_baseline --lut LUT [-q] [-of FORMAT] [-co NAME=VALUE]... [-ot TYPE]\n"
            "                   [--profile MODALITY=SPEC]... SRC DST\n"
            "The per-pixel lookup-table baseline of docs/quality.md: --fit fits the table from\n"
            "SRC to TGT values (rgb, nir, pan, sar, osm) on N simulator scenes (default 32),\n"
            "or with --pairs on the image pairs listed in LIST (lines \"SRC.tif TGT.tif\");\n"
            "--lut applies it to a raster, written as mm_translate writes the model's output.\n"
            "--help, --help-general, --version: this usage, the options common to all the\n"
            "tools, the version.\n");
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    const char *src = NULL, *tgt = NULL, *out = NULL, *lut_path = NULL, *format = NULL;
    const char *out_type = NULL, *pairs = NULL;
    mm_tool_profiles profiles = {0};
    int do_fit = 0, scenes = 32, quiet = 0;
    char **co = NULL;
    enum { O_FIT = 256, O_OUT, O_SCENES, O_LUT, O_OF, O_CO, O_OT, O_PROFILE, O_HELP, O_PAIRS };
    static const struct option opts[] = {{"fit", no_argument, 0, O_FIT},
                                         {"out", required_argument, 0, O_OUT},
                                         {"scenes", required_argument, 0, O_SCENES},
                                         {"lut", required_argument, 0, O_LUT},
                                         {"of", required_argument, 0, O_OF},
                                         {"co", required_argument, 0, O_CO},
                                         {"ot", required_argument, 0, O_OT},
                                         {"profile", required_argument, 0, O_PROFILE},
                                         {"help", no_argument, 0, O_HELP},
                                         {"pairs", required_argument, 0, O_PAIRS},
                                         {0, 0, 0, 0}};
    int o, bad = 0;
    while (!bad && (o = getopt_long_only(argc, argv, "qs:t:", opts, NULL)) != -1) {
        switch (o) {
        case O_FIT: do_fit = 1; break;
        case O_OUT: out = optarg; break;
        case O_SCENES: bad = mm_arg_int(TOOL, "--scenes", optarg, 1, 100000, &scenes); break;
        case O_LUT: lut_path = optarg; break;
        case O_PAIRS: pairs = optarg; break;
        case O_OF: format = optarg; break;
        case O_CO: co = CSLAddString(co, optarg); break;
        case O_OT: out_type = optarg; break;
        case O_PROFILE: bad = mm_tool_profile_add(TOOL, &profiles, optarg); break;
        case 's': src = optarg; break;
        case 't': tgt = optarg; break;
        case 'q': quiet = 1; break;
        case O_HELP:
            usage(stdout);
            CSLDestroy(co);
            return 0;
        default: bad = 1; break;
        }
    }
    if (bad) {
        CSLDestroy(co);
        return 2;
    }
    if (do_fit) {
        CSLDestroy(co);
        if (!src || !tgt || !out || lut_path || optind != argc) {
            fprintf(stderr, "%s: --fit needs -s SRC -t TGT --out LUT and nothing else\n", TOOL);
            return 2;
        }
        if (pairs) {
            GDALAllRegister();
            const int rc = fit_pairs(src, tgt, out, pairs, quiet);
            GDALDestroyDriverManager();
            return rc;
        }
        return fit(src, tgt, out, scenes, quiet);
    }
    if (!lut_path || optind != argc - 2 || src || tgt || out || pairs) {
        fprintf(stderr, "%s: expected --fit ... or --lut LUT SRC DST (see --help)\n", TOOL);
        CSLDestroy(co);
        return 2;
    }
    lut l;
    if (load_lut(lut_path, &l)) {
        CSLDestroy(co);
        return 1;
    }
    GDALAllRegister();
    int rc = 1;
    char err[2048], **md = NULL;
    const char *src_path = argv[optind], *dst_path = argv[optind + 1];
    lut_processor lp = {&l, WINDOW, malloc(sizeof(float) * 3 * WINDOW * WINDOW)};
    mmgeo_job job;
    mmgeo_job_init(&job);
    if (!lp.feat) {
        fprintf(stderr, "%s: out of memory\n", TOOL);
        goto done;
    }
    GDALDatasetH ds = mm_tool_open_raster(TOOL, src_path);
    if (!ds) goto done;
    const int nb = GDALGetRasterCount(ds);
    const GDALDataType dt = nb ? GDALGetRasterDataType(GDALGetRasterBand(ds, 1)) : GDT_Byte;
    GDALClose(ds);
    if (nb != l.cs) {
        fprintf(stderr, "%s: '%s' has %d band%s; the lookup table takes %s with %d\n", TOOL,
                src_path, nb, nb == 1 ? "" : "s", MODS[l.src], l.cs);
        goto done;
    }
    job.n_sources = 1;
    job.sources[0].path = src_path;
    job.sources[0].modality = MODS[l.src];
    mmgeo_profile_default(MODS[l.src], dt, &job.sources[0].profile);
    job.n_targets = 1;
    job.targets[0].path = dst_path;
    job.targets[0].modality = MODS[l.tgt];
    mmgeo_profile_default(MODS[l.tgt], GDT_Unknown, &job.targets[0].profile);
    if (mm_tool_profiles_apply(TOOL, &profiles, out_type, &job)) goto done;
    mmgeo_processor proc;
    memset(&proc, 0, sizeof proc);
    proc.fn = process_lut;
    proc.user = &lp;
    proc.window = WINDOW;
    proc.n_sources = proc.n_targets = 1;
    proc.src_channels[0] = l.cs;
    proc.dst_channels[0] = l.ct;

    char buf[4400];
    snprintf(buf, sizeof buf, "%s %s", TOOL_NAME, MM_VERSION_STRING);
    md = CSLSetNameValue(md, "MM_TOOL", buf);
    md = CSLSetNameValue(md, "SYNTHETIC", "YES");
    char *abs = realpath(lut_path, NULL);
    snprintf(buf, sizeof buf, "per-pixel lookup table %s -> %s: %s", MODS[l.src], MODS[l.tgt],
             abs ? abs : lut_path);
    free(abs);
    md = CSLSetNameValue(md, "MM_BASELINE", buf);
    md = mm_tool_md_sources(md, &job);
    job.overlap = WINDOW / 4;
    job.batch = 1;
    mm_tool_job_output(&job, TOOL, format, co, md, &quiet, NULL);
    mm_tool_catch_interrupts();
    rc = mm_tool_run_status(TOOL, mmgeo_run(&job, &proc, err, sizeof err), err, dst_path, quiet,
                            NULL);
done:
    free(lp.feat);
    lut_free(&l);
    CSLDestroy(md);
    CSLDestroy(co);
    GDALDestroyDriverManager();
    return rc;
}
