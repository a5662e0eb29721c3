/*
 * mm_eval: how good is a generated raster? (docs/quality.md)
 *
 *   mm_eval GENERATED REFERENCE [--labels LABELS] [--modality M] [--json]
 *       PSNR and SSIM per band (nodata-aware), and with --labels: class accuracy and mIoU of the
 *       generated raster through the modality's land-cover classifier, and per-class texture
 *       statistics (local mean and standard deviation, 5 x 5) of generated versus reference.
 *   mm_eval --fit-classifier MODALITY --out FILE [--scenes N]
 *       fits that classifier on simulator scenes (sim/) and writes it (a small text file).
 *
 * The classifier is deliberately simple: Gaussian naive Bayes on per-pixel features (band values
 * and their 5 x 5 local mean and standard deviation), the analogue of the paper's cross-modal
 * alignment score: does the generated image show the right land cover where the label map
 * says it is? For OSM the features are the colours, so it amounts to the nearest map colour.
 */
#define _POSIX_C_SOURCE 200809L
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mmsim.h"

static const char *TOOL = "mm_eval";

#define MAXB 4
#define NFEAT (3 * MAXB)
#define NC MM_SIM_N_CLASSES

typedef struct {
    int w, h, bands;
    float *data;   /* bands x h x w, stored units */
    uint8_t *valid;
    double nodata;
    int has_nodata;
} raster;

static void raster_free(raster *r) {
    free(r->data);
    free(r->valid);
}

static int read_raster(const char *path, raster *r) {
    memset(r, 0, sizeof *r);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", TOOL, path, CPLGetLastErrorMsg());
        return 1;
    }
    r->w = GDALGetRasterXSize(ds);
    r->h = GDALGetRasterYSize(ds);
    r->bands = GDALGetRasterCount(ds);
    if (r->bands < 1 || r->bands > MAXB) {
        fprintf(stderr, "%s: '%s' has %d bands (1 to %d supported)\n", TOOL, path, r->bands, MAXB);
        GDALClose(ds);
        return 1;
    }
    const size_t n = (size_t)r->w * r->h;
    r->data = malloc(n * r->bands * sizeof(float));
    r->valid = malloc(n);
    if (!r->data || !r->valid) {
        fprintf(stderr, "%s: out of memory reading '%s'\n", TOOL, path);
        GDALClose(ds);
        raster_free(r);
        return 1;
    }
    memset(r->valid, 1, n);
    for (int b = 0; b < r->bands; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        if (GDALRasterIO(band, GF_Read, 0, 0, r->w, r->h, r->data + (size_t)b * n, r->w, r->h,
                         GDT_Float32, 0, 0) != CE_None) {
            fprintf(stderr, "%s: cannot read '%s'\n", TOOL, path);
            GDALClose(ds);
            raster_free(r);
            return 1;
        }
        int has;
        const double nd = GDALGetRasterNoDataValue(band, &has);
        if (has) {
            r->has_nodata = 1;
            r->nodata = nd;
            for (size_t i = 0; i < n; i++)
                if (r->data[(size_t)b * n + i] == (float)nd) r->valid[i] = 0;
        }
    }
    GDALClose(ds);
    return 0;
}

/* SAR is compared in dB clipped to the model's range [-25, 5]: a raster with no negative value is
 * taken as linear intensity (calibrated products, mm_simulate) and converted; one with negative
 * values is already in dB (mm_translate's output). */
static void sar_to_db(raster *r) {
    const size_t n = (size_t)r->w * r->h * r->bands;
    int linear = 1;
    for (size_t i = 0; i < n && linear; i++)
        if (r->valid[i % ((size_t)r->w * r->h)] && r->data[i] < 0) linear = 0;
    for (size_t i = 0; i < n; i++) {
        double v = linear ? 10.0 * log10(fmax(r->data[i], 1e-12)) : r->data[i];
        r->data[i] = (float)(v < -25 ? -25 : v > 5 ? 5 : v);
    }
}

/* Value range of a modality's stored units, for PSNR/SSIM (docs/quality.md). */
static double data_range(const char *modality, const raster *ref) {
    if (modality && !strcmp(modality, "sar")) return 30.0; /* dB, clipped to [-25, 5] */
    if (modality && (!strcmp(modality, "osm") || !strcmp(modality, "label"))) return 255.0;
    if (modality) return 10000.0; /* reflectance x 10000 */
    double mx = 0;
    for (size_t i = 0; i < (size_t)ref->w * ref->h * ref->bands; i++) mx = fmax(mx, fabs(ref->data[i]));
    return mx > 255 ? 65535.0 : 255.0;
}

static double psnr(const float *a, const float *b, const uint8_t *valid, size_t n, double L) {
    double se = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (valid[i]) {
            se += (a[i] - (double)b[i]) * (a[i] - (double)b[i]);
            k++;
        }
    if (!k) return NAN;
    const double mse = se / k;
    return mse > 0 ? 10 * log10(L * L / mse) : INFINITY;
}

/* Separable box filter (2r+1)^2 mean of x into out, over valid pixels only. */
static void local_mean(const double *x, const uint8_t *valid, int w, int h, int r, double *out) {
    double *tmp = calloc((size_t)w * h, sizeof(double)), *cnt = calloc((size_t)w * h, sizeof(double));
    double *cnt2 = calloc((size_t)w * h, sizeof(double));
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            double s = 0, c = 0;
            for (int d = -r; d <= r; d++) {
                const int q = xx + d;
                if (q < 0 || q >= w || !valid[(size_t)y * w + q]) continue;
                s += x[(size_t)y * w + q];
                c++;
            }
            tmp[(size_t)y * w + xx] = s;
            cnt[(size_t)y * w + xx] = c;
        }
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            double s = 0, c = 0;
            for (int d = -r; d <= r; d++) {
                const int q = y + d;
                if (q < 0 || q >= h) continue;
                s += tmp[(size_t)q * w + xx];
                c += cnt[(size_t)q * w + xx];
            }
            out[(size_t)y * w + xx] = c > 0 ? s / c : 0;
            cnt2[(size_t)y * w + xx] = c;
        }
    free(tmp);
    free(cnt);
    free(cnt2);
}

/* Mean SSIM over valid pixels with 7 x 7 local statistics (box window), C1 = (0.01 L)^2,
 * C2 = (0.03 L)^2. */
static double ssim(const float *a, const float *b, const uint8_t *valid, int w, int h, double L) {
    const size_t n = (size_t)w * h;
    double *buf = malloc(n * 10 * sizeof(double));
    double *x = buf, *y = x + n, *xx = y + n, *yy = xx + n, *xy = yy + n;
    double *mx = xy + n, *my = mx + n, *mxx = my + n, *myy = mxx + n, *mxy = myy + n;
    for (size_t i = 0; i < n; i++) {
        x[i] = a[i], y[i] = b[i];
        xx[i] = x[i] * x[i], yy[i] = y[i] * y[i], xy[i] = x[i] * y[i];
    }
    local_mean(x, valid, w, h, 3, mx);
    local_mean(y, valid, w, h, 3, my);
    local_mean(xx, valid, w, h, 3, mxx);
    local_mean(yy, valid, w, h, 3, myy);
    local_mean(xy, valid, w, h, 3, mxy);
    const double c1 = (0.01 * L) * (0.01 * L), c2 = (0.03 * L) * (0.03 * L);
    double s = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!valid[i]) continue;
        const double vx = mxx[i] - mx[i] * mx[i], vy = myy[i] - my[i] * my[i];
        const double cxy = mxy[i] - mx[i] * my[i];
        s += ((2 * mx[i] * my[i] + c1) * (2 * cxy + c2)) /
             ((mx[i] * mx[i] + my[i] * my[i] + c1) * (vx + vy + c2));
        k++;
    }
    free(buf);
    return k ? s / k : NAN;
}

/* ---- classifier ---------------------------------------------------------------------------- */

typedef struct {
    char modality[16];
    int bands, nfeat;
    double scale;            /* stored units -> features */
    double prior[NC];
    double mean[NC][NFEAT], var[NC][NFEAT];
} classifier;

/* Features per pixel: band values, 5 x 5 local mean and local std, scaled. */
static double *features(const raster *r, double scale, int *nfeat) {
    const size_t n = (size_t)r->w * r->h;
    const int nf = 3 * r->bands;
    double *f = malloc(n * nf * sizeof(double)), *x = malloc(n * sizeof(double));
    double *m = malloc(n * sizeof(double)), *x2 = malloc(n * sizeof(double)), *m2 = malloc(n * sizeof(double));
    for (int b = 0; b < r->bands; b++) {
        for (size_t i = 0; i < n; i++) {
            x[i] = r->data[(size_t)b * n + i] * scale;
            x2[i] = x[i] * x[i];
        }
        local_mean(x, r->valid, r->w, r->h, 2, m);
        local_mean(x2, r->valid, r->w, r->h, 2, m2);
        for (size_t i = 0; i < n; i++) {
            f[i * nf + 3 * b] = x[i];
            f[i * nf + 3 * b + 1] = m[i];
            f[i * nf + 3 * b + 2] = sqrt(fmax(m2[i] - m[i] * m[i], 0));
        }
    }
    free(x), free(m), free(x2), free(m2);
    *nfeat = nf;
    return f;
}

static int classify(const classifier *c, const double *f) {
    int best = 0;
    double bl = -INFINITY;
    for (int k = 0; k < NC; k++) {
        if (c->prior[k] <= 0) continue;
        double l = log(c->prior[k]);
        for (int j = 0; j < c->nfeat; j++) {
            const double d = f[j] - c->mean[k][j];
            l -= 0.5 * (d * d / c->var[k][j] + log(c->var[k][j]));
        }
        if (l > bl) bl = l, best = k;
    }
    return best;
}

static double modality_scale(const char *m) {
    if (!strcmp(m, "sar")) return 1.0 / 30.0;
    if (!strcmp(m, "osm")) return 1.0 / 255.0;
    return 1.0 / 10000.0;
}

static int fit_classifier(const char *modality, const char *out, int scenes) {
    static const char *const mods[] = {"rgb", "nir", "pan", "sar", "osm"};
    static const int bands[] = {3, 1, 1, 1, 3};
    int mi = -1;
    for (int i = 0; i < 5; i++)
        if (!strcmp(mods[i], modality)) mi = i;
    if (mi < 0) {
        fprintf(stderr, "%s: unknown modality '%s' (rgb, nir, pan, sar, osm)\n", TOOL, modality);
        return 2;
    }
    classifier c;
    memset(&c, 0, sizeof c);
    snprintf(c.modality, sizeof c.modality, "%s", modality);
    c.bands = bands[mi];
    c.scale = modality_scale(modality);
    double cnt[NC] = {0};
    const int S = 256;
    mm_sim_params p;
    mm_sim_params_default(&p);
    p.width = p.height = S;
    uint8_t *label = malloc((size_t)S * S), *osm = malloc((size_t)3 * S * S);
    float *rgb = malloc(sizeof(float) * 3 * S * S), *one = malloc(sizeof(float) * S * S);
    raster r = {S, S, c.bands, malloc(sizeof(float) * c.bands * S * S), malloc((size_t)S * S), 0, 0};
    memset(r.valid, 1, (size_t)S * S);
    double (*sum)[NFEAT] = calloc(NC, sizeof *sum), (*sq)[NFEAT] = calloc(NC, sizeof *sq);
    for (int s = 0; s < scenes; s++) {
        /* classifier scenes: seeds 900000+ (disjoint from training and evaluation) */
        p.origin_x = 2300.0 * (s % 5) - 4600.0; /* spread over the world: every class occurs */
        p.origin_y = 2100.0 * (s / 5) - 4200.0;
        p.gsd = 1.5 + 0.5 * (s % 4);
        mm_sim_render(900000 + (uint64_t)s, &p, label, mi == 0 ? rgb : NULL, mi == 1 ? one : NULL,
                      mi == 2 ? one : NULL, mi == 3 ? one : NULL, mi == 4 ? osm : NULL);
        for (size_t i = 0; i < (size_t)c.bands * S * S; i++)
            r.data[i] = mi == 0 ? rgb[i] * 10000.0f : mi == 4 ? osm[i]
                        : mi == 3 ? fminf(fmaxf(one[i], -25.0f), 5.0f) : one[i] * 10000.0f;
        int nf;
        double *f = features(&r, c.scale, &nf);
        c.nfeat = nf;
        for (size_t i = 0; i < (size_t)S * S; i++) {
            const int k = label[i];
            cnt[k]++;
            for (int j = 0; j < nf; j++) {
                sum[k][j] += f[i * nf + j];
                sq[k][j] += f[i * nf + j] * f[i * nf + j];
            }
        }
        free(f);
    }
    double total = 0;
    for (int k = 0; k < NC; k++) total += cnt[k];
    FILE *o = fopen(out, "w");
    if (!o) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, out);
        return 1;
    }
    fprintf(o, "mm_eval-classifier 1 %s %d %d %.17g\n", c.modality, c.bands, c.nfeat, c.scale);
    for (int k = 0; k < NC; k++) {
        fprintf(o, "%.17g", cnt[k] / total);
        for (int j = 0; j < c.nfeat; j++) {
            const double m = cnt[k] ? sum[k][j] / cnt[k] : 0;
            const double v = cnt[k] ? fmax(sq[k][j] / cnt[k] - m * m, 1e-6) : 1;
            fprintf(o, " %.9g %.9g", m, v);
        }
        fputc('\n', o);
    }
    fclose(o);
    free(label), free(osm), free(rgb), free(one), free(r.data), free(r.valid), free(sum), free(sq);
    printf("%s: fitted the %s classifier on %d simulator scenes -> %s\n", TOOL, modality, scenes, out);
    return 0;
}

static int load_classifier(const char *path, classifier *c) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open classifier '%s'\n", TOOL, path);
        return 1;
    }
    memset(c, 0, sizeof *c);
    int ver, ok = fscanf(f, "mm_eval-classifier %d %15s %d %d %lf", &ver, c->modality, &c->bands,
                         &c->nfeat, &c->scale) == 5 && ver == 1 && c->nfeat == 3 * c->bands &&
                  c->bands >= 1 && c->bands <= MAXB;
    for (int k = 0; ok && k < NC; k++) {
        ok = fscanf(f, "%lf", &c->prior[k]) == 1;
        for (int j = 0; ok && j < c->nfeat; j++)
            ok = fscanf(f, "%lf %lf", &c->mean[k][j], &c->var[k][j]) == 2 && c->var[k][j] > 0;
    }
    fclose(f);
    if (!ok) fprintf(stderr, "%s: '%s' is not a classifier file\n", TOOL, path);
    return !ok;
}

/* ---- main ------------------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    const char *labels = NULL, *modality = NULL, *clf_path = NULL, *fit = NULL, *out = NULL;
    int json = 0, scenes = 24;
    static const struct option opts[] = {
        {"labels", required_argument, 0, 'l'}, {"modality", required_argument, 0, 'm'},
        {"classifier", required_argument, 0, 'c'}, {"fit-classifier", required_argument, 0, 'f'},
        {"out", required_argument, 0, 'o'}, {"scenes", required_argument, 0, 's'},
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'l': labels = optarg; break;
        case 'm': modality = optarg; break;
        case 'c': clf_path = optarg; break;
        case 'f': fit = optarg; break;
        case 'o': out = optarg; break;
        case 's':
            if (mm_arg_int(TOOL, "--scenes", optarg, 1, 10000, &scenes)) return 2;
            break;
        case 'j': json = 1; break;
        case 'h':
            printf("Usage: mm_eval GENERATED REFERENCE [--modality M] [--labels LABELS --classifier FILE] [--json]\n"
                   "       mm_eval --fit-classifier MODALITY --out FILE [--scenes N]\n");
            return 0;
        default: return 2;
        }
    }
    GDALAllRegister();
    if (fit) {
        if (!out) {
            fprintf(stderr, "%s: --fit-classifier needs --out FILE\n", TOOL);
            return 2;
        }
        return fit_classifier(fit, out, scenes);
    }
    if (optind != argc - 2) {
        fprintf(stderr, "%s: expected GENERATED and REFERENCE rasters (see --help)\n", TOOL);
        return 2;
    }
    raster g, r;
    if (read_raster(argv[optind], &g)) return 1;
    if (read_raster(argv[optind + 1], &r)) {
        raster_free(&g);
        return 1;
    }
    int rc = 1;
    if (modality && !strcmp(modality, "sar")) {
        sar_to_db(&g);
        sar_to_db(&r);
    }
    if (g.w != r.w || g.h != r.h || g.bands != r.bands) {
        fprintf(stderr, "%s: generated is %dx%dx%d, reference %dx%dx%d: they must match\n", TOOL, g.w,
                g.h, g.bands, r.w, r.h, r.bands);
        goto done;
    }
    const size_t n = (size_t)g.w * g.h;
    uint8_t *valid = malloc(n);
    for (size_t i = 0; i < n; i++) valid[i] = g.valid[i] && r.valid[i];
    const double L = data_range(modality, &r);
    double bp[MAXB], bs[MAXB];
    for (int b = 0; b < g.bands; b++) {
        bp[b] = psnr(g.data + b * n, r.data + b * n, valid, n, L);
        bs[b] = ssim(g.data + b * n, r.data + b * n, valid, g.w, g.h, L);
    }
    double acc = NAN, miou = NAN, tex[NC][4];
    int have_cls = 0;
    if (labels) {
        raster lab;
        classifier c;
        if (!clf_path) {
            fprintf(stderr, "%s: --labels needs --classifier FILE (mm_eval --fit-classifier)\n", TOOL);
            free(valid);
            goto done;
        }
        if (load_classifier(clf_path, &c) || read_raster(labels, &lab)) {
            free(valid);
            goto done;
        }
        if (lab.w != g.w || lab.h != g.h || c.bands != g.bands) {
            fprintf(stderr, "%s: labels or classifier do not match the raster\n", TOOL);
            raster_free(&lab);
            free(valid);
            goto done;
        }
        int nf;
        double *f = features(&g, c.scale, &nf);
        double inter[NC] = {0}, uni[NC] = {0}, ok = 0, tot = 0;
        double *conf = calloc(NC * NC, sizeof(double));
        for (size_t i = 0; i < n; i++) {
            if (!valid[i]) continue;
            const int t = (int)lab.data[i], p = classify(&c, f + i * nf);
            if (t < 0 || t >= NC) continue;
            conf[t * NC + p]++;
            ok += t == p;
            tot++;
        }
        int present = 0;
        miou = 0;
        for (int k = 0; k < NC; k++) {
            double row = 0, col = 0;
            for (int j = 0; j < NC; j++) row += conf[k * NC + j], col += conf[j * NC + k];
            inter[k] = conf[k * NC + k];
            uni[k] = row + col - inter[k];
            if (row > 0) {
                miou += inter[k] / uni[k];
                present++;
            }
        }
        miou = present ? miou / present : NAN;
        acc = tot ? ok / tot : NAN;
        /* texture: per class, mean over its pixels of the 5 x 5 local mean and std (band 1) */
        int nfr;
        double *fr = features(&r, c.scale, &nfr);
        for (int k = 0; k < NC; k++) {
            double s[4] = {0}, cnt = 0;
            for (size_t i = 0; i < n; i++)
                if (valid[i] && (int)lab.data[i] == k) {
                    s[0] += f[i * nf + 1], s[1] += f[i * nf + 2], s[2] += fr[i * nfr + 1], s[3] += fr[i * nfr + 2];
                    cnt++;
                }
            for (int j = 0; j < 4; j++) tex[k][j] = cnt ? s[j] / cnt : NAN;
        }
        free(fr);
        free(f);
        free(conf);
        raster_free(&lab);
        have_cls = 1;
    }
    if (json) {
        printf("{\"generated\": \"%s\", \"reference\": \"%s\", \"range\": %g, \"bands\": [", argv[optind],
               argv[optind + 1], L);
        for (int b = 0; b < g.bands; b++)
            printf("%s{\"psnr\": %.4f, \"ssim\": %.5f}", b ? ", " : "", bp[b], bs[b]);
        printf("]");
        if (have_cls) {
            printf(", \"accuracy\": %.5f, \"miou\": %.5f, \"texture\": {", acc, miou);
            int first = 1;
            for (int k = 0; k < NC; k++)
                if (!isnan(tex[k][0])) {
                    printf("%s\"%s\": {\"gen_mean\": %.5f, \"gen_std\": %.5f, \"ref_mean\": %.5f, \"ref_std\": %.5f}",
                           first ? "" : ", ", mm_sim_class_name(k), tex[k][0], tex[k][1], tex[k][2], tex[k][3]);
                    first = 0;
                }
            printf("}");
        }
        printf("}\n");
    } else {
        printf("band   PSNR (dB)   SSIM      (data range %g)\n", L);
        for (int b = 0; b < g.bands; b++) printf("%4d   %9.3f   %.4f\n", b + 1, bp[b], bs[b]);
        if (have_cls) {
            printf("land-cover accuracy %.4f, mIoU %.4f\n", acc, miou);
            printf("class          gen mean  gen std   ref mean  ref std   (5x5, scaled)\n");
            for (int k = 0; k < NC; k++)
                if (!isnan(tex[k][0]))
                    printf("%-13s  %8.4f  %8.4f  %8.4f  %8.4f\n", mm_sim_class_name(k), tex[k][0], tex[k][1],
                           tex[k][2], tex[k][3]);
        }
    }
    free(valid);
    rc = 0;
done:
    raster_free(&g);
    raster_free(&r);
    GDALDestroyDriverManager();
    return rc;
}
