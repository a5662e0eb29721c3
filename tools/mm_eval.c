/*
 * mm_eval: how good is a generated raster? (docs/quality.md)
 *
 *   mm_eval GENERATED REFERENCE [--labels LABELS --classifier FILE] [--modality M] [--json]
 *       PSNR, SSIM and FSIM per band (nodata-aware), and with --labels: class accuracy and mIoU of
 *       the generated raster through the modality's land-cover classifier, per-class texture
 *       statistics (local mean and standard deviation, 5 x 5) of generated versus reference, and
 *       the texture error (mean relative error of the per-class local standard deviation).
 *   mm_eval --agreement A B --classifier-a FILE --classifier-b FILE [--json]
 *       class agreement and mIoU between the class maps of two rasters of one scene (e.g. two
 *       jointly generated modalities), and each one's texture per predicted class.
 *   mm_eval --fit-classifier MODALITY --out FILE [--scenes N]
 *       fits that classifier on simulator scenes (sim/) and writes it (a small text file).
 *   Real data (docs/quality.md, "Real data"): every score also gives the Wasserstein-1 distance of
 *   each band's value distribution and the whole-image texture (mean 5 x 5 local std);
 *   --classifier with a real-data classifier (--fit-classifier real-rgb --out FILE RGB...: rules
 *   water / vegetation / bare-built on the training images, then naive Bayes) compares the class
 *   maps of GENERATED and REFERENCE (agreement, mIoU); --water MASK adds the water AUC of the
 *   luminance, --auc-only RASTER --water MASK gives it for any raster (the SAR input);
 *   --make-water-mask RGB --out MASK writes the water rule of a reference image.
 *
 * The classifier is deliberately simple, the analogue of the paper's cross-modal alignment score:
 * does the generated image show the right land cover where the label map says it is? For the
 * image modalities it is Gaussian naive Bayes on per-pixel features (band values and their 5 x 5
 * local mean and standard deviation). OSM is a map, not an image: a pixel's class is that of the
 * nearest map colour (the simulator's fills and casings). A naive Bayes fitted on flat fills has
 * near-zero variances, and then a colour a few levels off a fill is given to whichever class
 * happens to have the widest spread, not to the nearest colour.
 */
#define _GNU_SOURCE
#include <cpl_string.h>
#include <cjson/cJSON.h>
#include <fftw3.h>
#include <gdal.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "part_file.h"
#include "mmsim.h"

static const char *TOOL = "mm_eval";

#define MAXB 4
#define NFEAT (3 * MAXB)
#define NC MM_SIM_N_CLASSES

typedef struct {
    int w, h, bands;
    float *data; /* bands x h x w, stored units */
    uint8_t *valid;
    double nodata;
    int has_nodata;
    char modality[16]; /* the MM_MODALITY metadata item, "" when absent */
} raster;

static void raster_free(raster *r) {
    free(r->data);
    free(r->valid);
    r->data = NULL;
    r->valid = NULL;
}

static int read_raster(const char *path, raster *r) {
    memset(r, 0, sizeof *r);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    if (!ds) {
        fprintf(stderr, "%s: cannot open '%s': %s\n", TOOL, path, CPLGetLastErrorMsg());
        return 1;
    }
    const char *mod = GDALGetMetadataItem(ds, "MM_MODALITY", NULL);
    snprintf(r->modality, sizeof r->modality, "%s", mod ? mod : "");
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

/* JSON has no infinity or NaN: PSNR of identical rasters is +inf, a score with no class is NaN;
 * both are written as null. */
static void json_number(double v, int decimals) {
    if (isfinite(v))
        printf("%.*f", decimals, v);
    else
        printf("null");
}

/* A path as a JSON string (quotes, backslashes and control characters escaped by cJSON). */
static void json_string(const char *v) {
    cJSON *j = cJSON_CreateString(v);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    fputs(t ? t : "null", stdout);
    cJSON_free(t);
    cJSON_Delete(j);
}

/* Value range of a modality's stored units, for PSNR/SSIM (docs/quality.md). */
static double data_range(const char *modality, const raster *ref) {
    if (modality && !strcmp(modality, "sar")) return 30.0; /* dB, clipped to [-25, 5] */
    if (modality && (!strcmp(modality, "osm") || !strcmp(modality, "label"))) return 255.0;
    if (modality) return 10000.0; /* reflectance x 10000 */
    double mx = 0;
    for (size_t i = 0; i < (size_t)ref->w * ref->h * ref->bands; i++)
        mx = fmax(mx, fabs(ref->data[i]));
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
    double *tmp = calloc((size_t)w * h, sizeof(double)),
           *cnt = calloc((size_t)w * h, sizeof(double));
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

/* ---- FSIM (Zhang, Zhang, Mou, Zhang, IEEE TIP 2011) ---------------------------------------
 * Feature similarity of two single-band images on the 0..255 scale: phase congruency (PC, Kovesi's
 * log-Gabor construction as in the authors' FSIM.m / phasecong2: 4 scales from a 6 px wavelength,
 * multiplier 2, sigma_f 0.55, 4 orientations, angular spread pi / 4 / 1.2, noise threshold k = 2
 * from the median of the smallest scale's energy, /1.7) and Scharr gradient magnitude (G),
 *   S_PC = (2 PC1 PC2 + 0.85) / (PC1^2 + PC2^2 + 0.85),  S_G = (2 G1 G2 + 160) / (G1^2 + G2^2 +
 * 160), FSIM = sum(S_PC S_G PCm) / sum(PCm),  PCm = max(PC1, PC2), after the authors' averaging and
 * subsampling by F = max(1, round(min(w, h) / 256)). Filters in the frequency domain through FFTW.
 * Invalid pixels are set to the image's valid mean for the filtering and left out of the sums. */

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Frequency coordinate of FFT index k of an n-point axis, as FSIM's meshgrid + ifftshift. */
static double freq_coord(int k, int n) {
    if (n % 2 == 0) return (k < n / 2 ? k : k - n) / (double)n;
    return (k <= (n - 1) / 2 ? k : k - n) / (double)(n > 1 ? n - 1 : 1);
}

/* Phase congruency of img (h x w) into pc. Returns 0 or -1 (out of memory). */
static int phase_congruency(const double *img, int w, int h, double *pc) {
    enum { NS = 4, NO = 4 };
    const double min_wave = 6, mult = 2, sigma_onf = 0.55, dtheta_sigma = 1.2, k = 2.0, eps = 1e-4;
    const double theta_sigma = M_PI / NO / dtheta_sigma;
    const size_t n = (size_t)w * h;
    fftw_complex *imf = fftw_malloc(sizeof(fftw_complex) * n),
                 *buf = fftw_malloc(sizeof(fftw_complex) * n);
    fftw_complex *eo = fftw_malloc(sizeof(fftw_complex) * n * NS);
    double *radius = malloc(n * sizeof(double)), *theta = malloc(n * sizeof(double));
    double *lg = malloc(n * NS * sizeof(double)), *filt = malloc(n * sizeof(double));
    double *ifilt = malloc(n * NS * sizeof(double)), *an = malloc(n * sizeof(double));
    double *energy_all = calloc(n, sizeof(double)), *an_all = calloc(n, sizeof(double));
    double *sum_e = malloc(n * sizeof(double)), *sum_o = malloc(n * sizeof(double));
    double *energy = malloc(n * sizeof(double)), *tmp = malloc(n * sizeof(double));
    int rc = -1;
    fftw_plan fwd = NULL, bwd = NULL;
    if (!imf || !buf || !eo || !radius || !theta || !lg || !filt || !ifilt || !an || !energy_all ||
        !an_all || !sum_e || !sum_o || !energy || !tmp)
        goto out;
    fwd = fftw_plan_dft_2d(h, w, buf, imf, FFTW_FORWARD, FFTW_ESTIMATE);
    bwd = fftw_plan_dft_2d(h, w, buf, buf, FFTW_BACKWARD, FFTW_ESTIMATE);
    if (!fwd || !bwd) goto out;
    for (size_t i = 0; i < n; i++)
        buf[i][0] = img[i], buf[i][1] = 0;
    fftw_execute(fwd); /* buf -> imf */
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const double fx = freq_coord(x, w), fy = freq_coord(y, h);
            const size_t i = (size_t)y * w + x;
            radius[i] = sqrt(fx * fx + fy * fy);
            theta[i] = atan2(-fy, fx);
        }
    for (size_t i = 0; i < n; i++) {
        const double lp =
            1.0 / (1.0 + pow(radius[i] / 0.45, 2 * 15)); /* low-pass, cutoff 0.45, order 15 */
        const double r = i == 0 ? 1.0 : radius[i];
        for (int s = 0; s < NS; s++) {
            const double fo = 1.0 / (min_wave * pow(mult, s));
            const double l = log(r / fo);
            lg[s * n + i] = i == 0 ? 0 : exp(-(l * l) / (2 * log(sigma_onf) * log(sigma_onf))) * lp;
        }
    }
    for (int o = 0; o < NO; o++) {
        const double angl = o * M_PI / NO;
        double em_n = 0;
        for (size_t i = 0; i < n; i++)
            sum_e[i] = sum_o[i] = energy[i] = an[i] = 0;
        for (int s = 0; s < NS; s++) {
            for (size_t i = 0; i < n; i++) {
                const double ds = sin(theta[i]) * cos(angl) - cos(theta[i]) * sin(angl);
                const double dc = cos(theta[i]) * cos(angl) + sin(theta[i]) * sin(angl);
                const double dt = fabs(atan2(ds, dc));
                filt[i] = lg[s * n + i] * exp(-(dt * dt) / (2 * theta_sigma * theta_sigma));
            }
            if (s == 0)
                for (size_t i = 0; i < n; i++)
                    em_n += filt[i] * filt[i];
            /* the filter's spatial form, real(ifft2(filter)) * sqrt(n) */
            for (size_t i = 0; i < n; i++)
                buf[i][0] = filt[i], buf[i][1] = 0;
            fftw_execute(bwd);
            for (size_t i = 0; i < n; i++)
                ifilt[s * n + i] = buf[i][0] / n * sqrt((double)n);
            /* the response EO = ifft2(imagefft .* filter) */
            fftw_complex *e = eo + s * n;
            for (size_t i = 0; i < n; i++)
                buf[i][0] = imf[i][0] * filt[i], buf[i][1] = imf[i][1] * filt[i];
            fftw_execute(bwd);
            for (size_t i = 0; i < n; i++) {
                e[i][0] = buf[i][0] / n, e[i][1] = buf[i][1] / n;
                an[i] += hypot(e[i][0], e[i][1]);
                sum_e[i] += e[i][0], sum_o[i] += e[i][1];
            }
        }
        for (size_t i = 0; i < n; i++) {
            const double xe = sqrt(sum_e[i] * sum_e[i] + sum_o[i] * sum_o[i]) + eps;
            const double me = sum_e[i] / xe, mo = sum_o[i] / xe;
            for (int s = 0; s < NS; s++) {
                const double E = eo[s * n + i][0], O = eo[s * n + i][1];
                energy[i] += E * me + O * mo - fabs(E * mo - O * me);
            }
        }
        /* noise: the median squared amplitude of the smallest scale (Rayleigh mean estimate) */
        for (size_t i = 0; i < n; i++)
            tmp[i] = eo[i][0] * eo[i][0] + eo[i][1] * eo[i][1];
        qsort(tmp, n, sizeof(double), cmp_double);
        const double median = n % 2 ? tmp[n / 2] : 0.5 * (tmp[n / 2 - 1] + tmp[n / 2]);
        const double mean_e2n = -median / log(0.5), noise_power = mean_e2n / em_n;
        double sum_an2 = 0, sum_aiaj = 0;
        for (size_t i = 0; i < n; i++)
            for (int a = 0; a < NS; a++) {
                sum_an2 += ifilt[a * n + i] * ifilt[a * n + i];
                for (int b = a + 1; b < NS; b++)
                    sum_aiaj += ifilt[a * n + i] * ifilt[b * n + i];
            }
        const double est_noise_e2 = 2 * noise_power * sum_an2 + 4 * noise_power * sum_aiaj;
        const double tau = sqrt(est_noise_e2 / 2);
        const double T = (tau * sqrt(M_PI / 2) + k * sqrt((2 - M_PI / 2) * tau * tau)) / 1.7;
        for (size_t i = 0; i < n; i++) {
            energy_all[i] += fmax(energy[i] - T, 0);
            an_all[i] += an[i];
        }
    }
    for (size_t i = 0; i < n; i++)
        pc[i] = an_all[i] > 0 ? energy_all[i] / an_all[i] : 0;
    rc = 0;
out:
    if (fwd) fftw_destroy_plan(fwd);
    if (bwd) fftw_destroy_plan(bwd);
    fftw_free(imf), fftw_free(buf), fftw_free(eo);
    free(radius), free(theta), free(lg), free(filt), free(ifilt), free(an), free(energy_all);
    free(an_all), free(sum_e), free(sum_o), free(energy), free(tmp);
    return rc;
}

/* One band of a raster on FSIM's 0..255 scale ((v - lo) / L * 255), invalid pixels at the valid
 * mean, averaged over F x F and subsampled by F as FSIM.m does (conv2 'same', zero padding). */
static double *fsim_prepare(const float *a, const uint8_t *valid, int w, int h, double lo, double L,
                            int F, int *ow, int *oh) {
    const size_t n = (size_t)w * h;
    double mean = 0, k = 0;
    for (size_t i = 0; i < n; i++)
        if (valid[i]) mean += (a[i] - lo) / L * 255.0, k++;
    mean = k ? mean / k : 0;
    double *y = malloc(n * sizeof(double));
    if (!y) return NULL;
    for (size_t i = 0; i < n; i++)
        y[i] = valid[i] ? (a[i] - lo) / L * 255.0 : mean;
    *ow = (w + F - 1) / F, *oh = (h + F - 1) / F;
    if (F == 1) return y;
    double *d = malloc((size_t)*ow * *oh * sizeof(double));
    if (d)
        for (int r = 0; r < *oh; r++)
            for (int c = 0; c < *ow; c++) {
                double s = 0;
                for (int u = 0; u < F; u++)
                    for (int v = 0; v < F; v++) {
                        const int yy = r * F + F / 2 - u, xx = c * F + F / 2 - v;
                        if (yy >= 0 && yy < h && xx >= 0 && xx < w) s += y[(size_t)yy * w + xx];
                    }
                d[(size_t)r * *ow + c] = s / (F * F);
            }
    free(y);
    return d;
}

/* Scharr gradient magnitude (FSIM's dx, dy kernels / 16, zero padding). */
static void scharr(const double *y, int w, int h, double *g) {
    static const double kx[3][3] = {{3, 0, -3}, {10, 0, -10}, {3, 0, -3}};
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++) {
            double gx = 0, gy = 0;
            for (int u = -1; u <= 1; u++)
                for (int v = -1; v <= 1; v++) {
                    const int rr = r - u, cc = c - v;
                    if (rr < 0 || rr >= h || cc < 0 || cc >= w) continue;
                    const double p = y[(size_t)rr * w + cc];
                    gx += p * kx[u + 1][v + 1] / 16;
                    gy += p * kx[v + 1][u + 1] / 16;
                }
            g[(size_t)r * w + c] = sqrt(gx * gx + gy * gy);
        }
}

/* FSIM of band a against band b (values in stored units, lo..lo+L the data range). NAN when no
 * pixel is valid or memory runs out. */
static double fsim(const float *a, const float *b, const uint8_t *valid, int w, int h, double lo,
                   double L) {
    const int F = (int)fmax(1, lround(fmin(w, h) / 256.0));
    int ow, oh;
    double *y1 = fsim_prepare(a, valid, w, h, lo, L, F, &ow, &oh);
    double *y2 = fsim_prepare(b, valid, w, h, lo, L, F, &ow, &oh);
    const size_t n = (size_t)ow * oh;
    double *pc1 = malloc(n * sizeof(double)), *pc2 = malloc(n * sizeof(double));
    double *g1 = malloc(n * sizeof(double)), *g2 = malloc(n * sizeof(double));
    double r = NAN;
    if (y1 && y2 && pc1 && pc2 && g1 && g2 && !phase_congruency(y1, ow, oh, pc1) &&
        !phase_congruency(y2, ow, oh, pc2)) {
        scharr(y1, ow, oh, g1);
        scharr(y2, ow, oh, g2);
        double num = 0, den = 0;
        for (int rr = 0; rr < oh; rr++)
            for (int c = 0; c < ow; c++) {
                const size_t i = (size_t)rr * ow + c;
                if (!valid[(size_t)(rr * F) * w + (size_t)c * F]) continue;
                const double spc =
                    (2 * pc1[i] * pc2[i] + 0.85) / (pc1[i] * pc1[i] + pc2[i] * pc2[i] + 0.85);
                const double sg = (2 * g1[i] * g2[i] + 160) / (g1[i] * g1[i] + g2[i] * g2[i] + 160);
                const double pcm = fmax(pc1[i], pc2[i]);
                num += spc * sg * pcm;
                den += pcm;
            }
        r = den > 0 ? num / den : NAN;
    }
    free(y1), free(y2), free(pc1), free(pc2), free(g1), free(g2);
    return r;
}

/* ---- classifier ---------------------------------------------------------------------------- */

typedef struct {
    char modality[16];
    int bands, nfeat;
    double scale; /* stored units -> features */
    double prior[NC];
    double mean[NC][NFEAT], var[NC][NFEAT];
    int n_colours; /* > 0: nearest map colour (OSM) instead of naive Bayes */
    double colour[MM_SIM_OSM_N_COLOURS][MAXB]; /* scaled like the features */
    int colour_class[MM_SIM_OSM_N_COLOURS];
    int n_classes;           /* classes 0 .. n_classes - 1 */
    char class_name[NC][24]; /* the simulator's classes, or those of a real-data classifier */
    int real;                /* 1: the real-data classifier (version 3, no label map) */
} classifier;

/* The simulator's class names, for the classifiers fitted on its scenes (versions 1 and 2). */
static void sim_class_names(classifier *c) {
    c->n_classes = NC;
    for (int k = 0; k < NC; k++)
        snprintf(c->class_name[k], sizeof c->class_name[k], "%s", mm_sim_class_name(k));
}

/* Features per pixel: band values, 5 x 5 local mean and local std, scaled. */
static double *features(const raster *r, double scale, int *nfeat) {
    const size_t n = (size_t)r->w * r->h;
    const int nf = 3 * r->bands;
    /* x and x2 zeroed: every element is written below, but GCC cannot see that for n == 0 (the
     * loop over n runs 0 times while local_mean is still called) and warns under -O2 */
    double *f = malloc(n * nf * sizeof(double)), *x = calloc(n, sizeof(double));
    double *m = malloc(n * sizeof(double)), *x2 = calloc(n, sizeof(double)),
           *m2 = malloc(n * sizeof(double));
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

static int nearest_colour(const classifier *c, const double *f) {
    int best = 0;
    double bd = INFINITY;
    for (int i = 0; i < c->n_colours; i++) {
        double d = 0;
        for (int b = 0; b < c->bands; b++) { /* the pixel's own value, not its context */
            const double e = f[3 * b] - c->colour[i][b];
            d += e * e;
        }
        if (d < bd) bd = d, best = i;
    }
    return c->colour_class[best];
}

static int classify(const classifier *c, const double *f) {
    if (c->n_colours > 0) return nearest_colour(c, f);
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

/* The OSM classifier has nothing to fit: it is the simulator's map colours (version 2 file). */
static int write_map_colours(const char *out) {
    uint8_t col[MM_SIM_OSM_N_COLOURS][3], cls[MM_SIM_OSM_N_COLOURS];
    const int n = mm_sim_osm_palette(col, cls, MM_SIM_OSM_N_COLOURS);
    FILE *o = mm_part_open(out, "w");
    if (!o) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, out);
        return 1;
    }
    fprintf(o, "mm_eval-classifier 2 osm 3 9 %.17g nearest-colour %d\n", modality_scale("osm"), n);
    for (int i = 0; i < n; i++)
        fprintf(o, "%d %d %d %d\n", col[i][0], col[i][1], col[i][2], cls[i]);
    if (mm_part_commit(o, out)) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, out);
        return 1;
    }
    printf("%s: wrote the osm classifier (nearest of %d map colours) -> %s\n", TOOL, n, out);
    return 0;
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
    if (mi == 4) return write_map_colours(out);
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
    raster r = {S, S, c.bands, malloc(sizeof(float) * c.bands * S * S), malloc((size_t)S * S),
                0, 0, ""};
    memset(r.valid, 1, (size_t)S * S);
    double(*sum)[NFEAT] = calloc(NC, sizeof *sum), (*sq)[NFEAT] = calloc(NC, sizeof *sq);
    for (int s = 0; s < scenes; s++) {
        /* classifier scenes: seeds 900000+ (disjoint from training and evaluation) */
        p.origin_x = 2300.0 * (s % 5) - 4600.0; /* spread over the world: every class occurs */
        p.origin_y = 2100.0 * (s / 5) - 4200.0;
        p.gsd = 1.5 + 0.5 * (s % 4);
        mm_sim_render(900000 + (uint64_t)s, &p, label, mi == 0 ? rgb : NULL, mi == 1 ? one : NULL,
                      mi == 2 ? one : NULL, mi == 3 ? one : NULL, mi == 4 ? osm : NULL);
        for (size_t i = 0; i < (size_t)c.bands * S * S; i++)
            r.data[i] = mi == 0   ? rgb[i] * 10000.0f
                        : mi == 4 ? osm[i]
                        : mi == 3 ? fminf(fmaxf(one[i], -25.0f), 5.0f)
                                  : one[i] * 10000.0f;
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
    for (int k = 0; k < NC; k++)
        total += cnt[k];
    FILE *o = mm_part_open(out, "w");
    if (o) {
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
    }
    free(label), free(osm), free(rgb), free(one), free(r.data), free(r.valid), free(sum), free(sq);
    if (!o || mm_part_commit(o, out)) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, out);
        return 1;
    }
    printf("%s: fitted the %s classifier on %d simulator scenes -> %s\n", TOOL, modality, scenes,
           out);
    return 0;
}

static int load_classifier(const char *path, classifier *c) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open classifier '%s'\n", TOOL, path);
        return 1;
    }
    memset(c, 0, sizeof *c);
    sim_class_names(c);
    int ver, ok = fscanf(f, "mm_eval-classifier %d %15s %d %d %lf", &ver, c->modality, &c->bands,
                         &c->nfeat, &c->scale) == 5 &&
                  ver >= 1 && ver <= 3 && c->nfeat == 3 * c->bands && c->bands >= 1 &&
                  c->bands <= MAXB;
    if (ok && ver == 3) { /* real data: "naive-bayes K NAME..." then K lines, as version 1's */
        char kind[32];
        ok = fscanf(f, "%31s %d", kind, &c->n_classes) == 2 && !strcmp(kind, "naive-bayes") &&
             c->n_classes >= 2 && c->n_classes <= NC;
        for (int k = 0; ok && k < c->n_classes; k++)
            ok = fscanf(f, "%23s", c->class_name[k]) == 1;
        for (int k = c->n_classes; k < NC; k++)
            c->class_name[k][0] = 0;
        c->real = 1;
    }
    if (ok && ver == 1 && !strcmp(c->modality, "osm")) {
        fprintf(stderr,
                "%s: '%s' is an old OSM classifier (naive Bayes); OSM is now classified by the "
                "nearest map colour: refit it with mm_eval --fit-classifier osm\n",
                TOOL, path);
        fclose(f);
        return 1;
    }
    if (ok && ver == 2) { /* nearest map colour: "nearest-colour N", then N lines "r g b class" */
        char kind[32];
        ok = fscanf(f, "%31s %d", kind, &c->n_colours) == 2 && !strcmp(kind, "nearest-colour") &&
             c->n_colours >= 1 && c->n_colours <= MM_SIM_OSM_N_COLOURS;
        for (int i = 0; ok && i < c->n_colours; i++) {
            for (int b = 0; ok && b < c->bands; b++) {
                ok = fscanf(f, "%lf", &c->colour[i][b]) == 1;
                c->colour[i][b] *= c->scale;
            }
            ok = ok && fscanf(f, "%d", &c->colour_class[i]) == 1 && c->colour_class[i] >= 0 &&
                 c->colour_class[i] < NC;
        }
        fclose(f);
        if (!ok) fprintf(stderr, "%s: '%s' is not a classifier file\n", TOOL, path);
        return !ok;
    }
    for (int k = 0; ok && k < c->n_classes; k++) {
        ok = fscanf(f, "%lf", &c->prior[k]) == 1;
        for (int j = 0; ok && j < c->nfeat; j++)
            ok = fscanf(f, "%lf %lf", &c->mean[k][j], &c->var[k][j]) == 2 && c->var[k][j] > 0;
    }
    fclose(f);
    if (!ok) fprintf(stderr, "%s: '%s' is not a classifier file\n", TOOL, path);
    return !ok;
}

/* ---- class maps, agreement, texture --------------------------------------------------------- */

/* The class of every valid pixel of r (-1 where invalid); the features (caller frees) in *feat. */
static int class_map(const classifier *c, const raster *r, const uint8_t *valid, int8_t *cls,
                     double **feat, int *nfeat) {
    if (r->modality[0] && strcmp(r->modality, c->modality)) {
        fprintf(stderr, "%s: the raster is '%s' (MM_MODALITY), the classifier is for '%s'\n", TOOL,
                r->modality, c->modality);
        return 1;
    }
    if (c->bands != r->bands) {
        fprintf(stderr, "%s: the %s classifier takes %d band%s, the raster has %d\n", TOOL,
                c->modality, c->bands, c->bands == 1 ? "" : "s", r->bands);
        return 1;
    }
    const size_t n = (size_t)r->w * r->h;
    double *f = features(r, c->scale, nfeat);
    for (size_t i = 0; i < n; i++)
        cls[i] = valid[i] ? (int8_t)classify(c, f + i * *nfeat) : -1;
    *feat = f;
    return 0;
}

/* Accuracy and mIoU of a confusion matrix (rows: the reference). mIoU over the classes present in
 * the reference (rows), or, with either_side, in either map. */
static void conf_scores(const double *conf, int either_side, double *acc, double *miou) {
    double ok = 0, tot = 0, m = 0;
    int present = 0;
    for (int k = 0; k < NC; k++) {
        double row = 0, col = 0;
        for (int j = 0; j < NC; j++)
            row += conf[k * NC + j], col += conf[j * NC + k];
        ok += conf[k * NC + k], tot += row;
        if (row > 0 || (either_side && col > 0)) {
            m += conf[k * NC + k] / (row + col - conf[k * NC + k]);
            present++;
        }
    }
    *acc = tot ? ok / tot : NAN;
    *miou = present ? m / present : NAN;
}

/* Texture per class: over the valid pixels of class k (cls), the mean 5 x 5 local mean and local
 * standard deviation (features(), so in scaled units: SAR dB / 30, reflectance, colour / 255),
 * averaged over the bands. */
typedef struct {
    double pixels, mean, std;
} texstat;

static void texture_by_class(const double *f, int nf, int bands, const int8_t *cls, size_t n,
                             texstat out[NC]) {
    memset(out, 0, sizeof(texstat) * NC);
    for (size_t i = 0; i < n; i++) {
        const int k = cls[i];
        if (k < 0 || k >= NC) continue;
        double m = 0, s = 0;
        for (int b = 0; b < bands; b++)
            m += f[i * nf + 3 * b + 1], s += f[i * nf + 3 * b + 2];
        out[k].pixels++, out[k].mean += m / bands, out[k].std += s / bands;
    }
    for (int k = 0; k < NC; k++)
        if (out[k].pixels) out[k].mean /= out[k].pixels, out[k].std /= out[k].pixels;
}

#define TEX_MIN_PIXELS 64 /* classes with fewer reference pixels are left out of the error */

/* Texture error: mean over classes of |std_gen - std_ref| / std_ref (relative error of the local
 * standard deviation: speckle, texture), over the classes with TEX_MIN_PIXELS reference pixels. */
static double texture_error(const texstat g[NC], const texstat r[NC]) {
    double e = 0;
    int k = 0;
    for (int c = 0; c < NC; c++)
        if (r[c].pixels >= TEX_MIN_PIXELS && r[c].std > 0 && g[c].pixels > 0) {
            e += fabs(g[c].std - r[c].std) / r[c].std;
            k++;
        }
    return k ? e / k : NAN;
}

static void print_texture_json(const char *key, const texstat t[NC], const classifier *c) {
    printf(", \"%s\": {", key);
    int first = 1;
    for (int k = 0; k < NC; k++)
        if (t[k].pixels) {
            printf("%s\"%s\": {\"pixels\": %.0f, \"mean\": %.6f, \"std\": %.6f}", first ? "" : ", ",
                   c->class_name[k], t[k].pixels, t[k].mean, t[k].std);
            first = 0;
        }
    printf("}");
}

/* ---- real data (docs/quality.md, "Real data"): rule classes, water, distributions ------------
 * Real Sentinel-2 RGB has no label map. Three classes are given to its pixels by documented rules
 * on reflectance (stored value / 10000) and the 5 x 5 local standard deviation of the luminance
 * (the mean of the three bands):
 *   water       max(R, G, B) < 0.07, B >= 0.8 R (dark, not the blue-less dark of vegetation) and
 *               local std < 0.01 (smooth);
 *   vegetation  not water, (R + G) / 2 < 0.08 (dark);
 *   bare-built  everything else (bright: soil, rock, roads, roofs).
 * The rules label the training split's reference images; the classifier applied to generated
 * images is the Gaussian naive Bayes fitted on those labels (mm_eval --fit-classifier real-rgb),
 * on the same per-pixel features as the simulator classifiers. The water mask of a test scene
 * (mm_eval --make-water-mask) is the water rule itself on its reference image. */

#define REAL_NC 3
static const char *const REAL_CLASS[REAL_NC] = {"water", "vegetation", "bare-built"};
#define WATER_MAX_REFL 0.07     /* every band below */
#define WATER_BLUE_OVER_RED 0.8 /* B >= this x R */
#define WATER_MAX_STD 0.01      /* 5 x 5 local std of the luminance below */
#define VEG_MAX_RG 0.08         /* (R + G) / 2 below */

/* The mean of the bands of every pixel (stored units). */
static double *luminance(const raster *r) {
    const size_t n = (size_t)r->w * r->h;
    double *l = malloc(n * sizeof(double));
    if (!l) return NULL;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int b = 0; b < r->bands; b++)
            s += r->data[(size_t)b * n + i];
        l[i] = s / r->bands;
    }
    return l;
}

/* The rule class of every pixel of a 3-band reflectance x 10000 raster (-1 where invalid). */
static int rule_classes(const raster *r, int8_t *cls) {
    const size_t n = (size_t)r->w * r->h;
    double *l = luminance(r), *l2 = calloc(n, sizeof(double));
    double *m = malloc(n * sizeof(double)), *m2 = malloc(n * sizeof(double));
    if (!l || !l2 || !m || !m2) {
        free(l), free(l2), free(m), free(m2);
        fprintf(stderr, "%s: out of memory\n", TOOL);
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        l[i] *= 1e-4;
        l2[i] = l[i] * l[i];
    }
    local_mean(l, r->valid, r->w, r->h, 2, m);
    local_mean(l2, r->valid, r->w, r->h, 2, m2);
    for (size_t i = 0; i < n; i++) {
        if (!r->valid[i]) {
            cls[i] = -1;
            continue;
        }
        const double R = r->data[i] * 1e-4, G = r->data[n + i] * 1e-4,
                     B = r->data[2 * n + i] * 1e-4;
        const double sd = sqrt(fmax(m2[i] - m[i] * m[i], 0));
        if (fmax(R, fmax(G, B)) < WATER_MAX_REFL && B >= WATER_BLUE_OVER_RED * R &&
            sd < WATER_MAX_STD)
            cls[i] = 0;
        else if ((R + G) / 2 < VEG_MAX_RG)
            cls[i] = 1;
        else
            cls[i] = 2;
    }
    free(l), free(l2), free(m), free(m2);
    return 0;
}

static int read_rgb(const char *path, raster *r) {
    if (read_raster(path, r)) return 1;
    if (r->bands != 3) {
        fprintf(stderr,
                "%s: '%s' has %d band%s; real-data RGB has 3 (R, G, B, reflectance x 10000)\n",
                TOOL, path, r->bands, r->bands == 1 ? "" : "s");
        raster_free(r);
        return 1;
    }
    return 0;
}

/* mm_eval --fit-classifier real-rgb --out FILE RGB...: the naive Bayes of the three rule classes,
 * fitted on the reference RGB images given (the training split), written as a version 3 file. */
static int fit_real_classifier(const char *out, char *const *files, int n_files) {
    if (n_files < 1) {
        fprintf(stderr, "%s: --fit-classifier real-rgb needs the training RGB images\n", TOOL);
        return 2;
    }
    const double scale = modality_scale("rgb");
    double cnt[REAL_NC] = {0}, sum[REAL_NC][NFEAT] = {{0}}, sq[REAL_NC][NFEAT] = {{0}};
    int nf = 0;
    for (int fi = 0; fi < n_files; fi++) {
        raster r;
        if (read_rgb(files[fi], &r)) return 1;
        const size_t n = (size_t)r.w * r.h;
        int8_t *cls = malloc(n);
        double *f = cls ? features(&r, scale, &nf) : NULL;
        if (!f || rule_classes(&r, cls)) {
            free(cls), free(f);
            raster_free(&r);
            fprintf(stderr, "%s: out of memory\n", TOOL);
            return 1;
        }
        for (size_t i = 0; i < n; i++) {
            const int k = cls[i];
            if (k < 0) continue;
            cnt[k]++;
            for (int j = 0; j < nf; j++) {
                sum[k][j] += f[i * nf + j];
                sq[k][j] += f[i * nf + j] * f[i * nf + j];
            }
        }
        free(cls), free(f);
        raster_free(&r);
    }
    double total = 0;
    for (int k = 0; k < REAL_NC; k++)
        total += cnt[k];
    for (int k = 0; k < REAL_NC; k++)
        if (!cnt[k]) {
            fprintf(stderr, "%s: no training pixel is %s by the rules: cannot fit\n", TOOL,
                    REAL_CLASS[k]);
            return 1;
        }
    FILE *o = mm_part_open(out, "w");
    if (o) {
        fprintf(o, "mm_eval-classifier 3 rgb 3 %d %.17g naive-bayes %d", nf, scale, REAL_NC);
        for (int k = 0; k < REAL_NC; k++)
            fprintf(o, " %s", REAL_CLASS[k]);
        fputc('\n', o);
        for (int k = 0; k < REAL_NC; k++) {
            fprintf(o, "%.17g", cnt[k] / total);
            for (int j = 0; j < nf; j++) {
                const double m = sum[k][j] / cnt[k];
                fprintf(o, " %.9g %.9g", m, fmax(sq[k][j] / cnt[k] - m * m, 1e-6));
            }
            fputc('\n', o);
        }
    }
    if (!o || mm_part_commit(o, out)) {
        fprintf(stderr, "%s: cannot write '%s'\n", TOOL, out);
        return 1;
    }
    printf("%s: fitted the real-data rgb classifier on %d images (%.0f pixels: water %.4f, "
           "vegetation %.4f, bare-built %.4f) -> %s\n",
           TOOL, n_files, total, cnt[0] / total, cnt[1] / total, cnt[2] / total, out);
    return 0;
}

/* mm_eval --make-water-mask RGB --out MASK: the water rule on a reference RGB image, as a Byte
 * GeoTIFF on its grid: 1 water, 0 land, 255 (nodata) where the image is invalid. */
static int make_water_mask(const char *in, const char *out) {
    raster r;
    if (read_rgb(in, &r)) return 1;
    const size_t n = (size_t)r.w * r.h;
    int8_t *cls = malloc(n);
    uint8_t *m = malloc(n);
    int rc = 1;
    GDALDatasetH src = NULL, dst = NULL;
    char *part = NULL;
    if (!cls || !m || rule_classes(&r, cls)) goto out;
    for (size_t i = 0; i < n; i++)
        m[i] = cls[i] < 0 ? 255 : cls[i] == 0;
    src = GDALOpen(in, GA_ReadOnly);
    GDALDriverH gtiff = GDALGetDriverByName("GTiff");
    if (!src || !gtiff || asprintf(&part, "%s.part", out) < 0) goto out;
    char **co = CSLSetNameValue(NULL, "COMPRESS", "DEFLATE");
    dst = GDALCreate(gtiff, part, r.w, r.h, 1, GDT_Byte, co);
    CSLDestroy(co);
    if (!dst) goto out;
    double gt[6];
    if (GDALGetGeoTransform(src, gt) == CE_None) GDALSetGeoTransform(dst, gt);
    const char *wkt = GDALGetProjectionRef(src);
    if (wkt && *wkt) GDALSetProjection(dst, wkt);
    GDALSetMetadataItem(dst, "MM_WATER_RULE",
                        "max(R,G,B) < 0.07 and B >= 0.8 R and 5x5 std(luminance) < 0.01", NULL);
    GDALRasterBandH band = GDALGetRasterBand(dst, 1);
    GDALSetRasterNoDataValue(band, 255);
    if (GDALRasterIO(band, GF_Write, 0, 0, r.w, r.h, m, r.w, r.h, GDT_Byte, 0, 0) != CE_None)
        goto out;
    GDALClose(dst);
    dst = NULL;
    if (rename(part, out)) goto out;
    size_t water = 0, valid = 0;
    for (size_t i = 0; i < n; i++)
        water += m[i] == 1, valid += m[i] != 255;
    printf("%s: water mask of %s: %.4f water -> %s\n", TOOL, in,
           valid ? (double)water / valid : 0.0, out);
    rc = 0;
out:
    if (rc) fprintf(stderr, "%s: cannot write the water mask '%s'\n", TOOL, out);
    if (dst) GDALClose(dst);
    if (rc && part) unlink(part);
    if (src) GDALClose(src);
    free(part), free(cls), free(m);
    raster_free(&r);
    return rc;
}

typedef struct {
    float v;
    uint8_t water;
} scored;

static int cmp_scored(const void *a, const void *b) {
    const float x = ((const scored *)a)->v, y = ((const scored *)b)->v;
    return (x > y) - (x < y);
}

/* Water separability: the ROC AUC of -lum as a score for water, i.e. the probability that a water
 * pixel of the mask is darker than a land pixel (ties count one half), over the pixels valid in
 * the image whose mask value is 0 or 1 (the Mann-Whitney statistic). NAN without water or land. */
static double water_auc(const double *lum, const uint8_t *valid, const raster *mask, size_t *nw,
                        size_t *nl) {
    const size_t n = (size_t)mask->w * mask->h;
    scored *s = malloc(n * sizeof *s);
    size_t k = 0;
    *nw = *nl = 0;
    if (!s) return NAN;
    for (size_t i = 0; i < n; i++) {
        const float mv = mask->data[i];
        if (!valid[i] || !mask->valid[i] || (mv != 0 && mv != 1) || !isfinite(lum[i])) continue;
        s[k].v = (float)lum[i], s[k].water = mv == 1;
        *nw += s[k].water, *nl += !s[k].water;
        k++;
    }
    if (!*nw || !*nl) {
        free(s);
        return NAN;
    }
    qsort(s, k, sizeof *s, cmp_scored);
    double num = 0, land_below = 0;
    for (size_t i = 0; i < k;) {
        size_t j = i;
        double w = 0, l = 0;
        for (; j < k && s[j].v == s[i].v; j++)
            w += s[j].water, l += !s[j].water;
        /* each water pixel of this value: the land pixels brighter, and half the ties */
        num += w * ((double)*nl - land_below - l) + 0.5 * w * l;
        land_below += l;
        i = j;
    }
    free(s);
    return num / ((double)*nw * (double)*nl);
}

static int read_mask(const char *path, int w, int h, raster *m) {
    if (read_raster(path, m)) return 1;
    if (m->w != w || m->h != h || m->bands != 1) {
        fprintf(stderr,
                "%s: the water mask '%s' is %d x %d with %d bands; expected %d x %d, 1 band\n",
                TOOL, path, m->w, m->h, m->bands, w, h);
        raster_free(m);
        return 1;
    }
    return 0;
}

/* mm_eval --auc-only RASTER --water MASK: the water AUC of any raster (e.g. the SAR input in dB:
 * water is dark there too). The AUC depends only on the order of the values, so dB or linear
 * intensity give the same. */
static int auc_only(const char *path, const char *mask_path, int json) {
    if (!mask_path) {
        fprintf(stderr, "%s: --auc-only needs --water MASK\n", TOOL);
        return 2;
    }
    raster r, m;
    if (read_raster(path, &r)) return 1;
    if (read_mask(mask_path, r.w, r.h, &m)) {
        raster_free(&r);
        return 1;
    }
    double *lum = luminance(&r);
    size_t nw = 0, nl = 0;
    const double auc = lum ? water_auc(lum, r.valid, &m, &nw, &nl) : NAN;
    free(lum);
    if (json) {
        printf("{\"raster\": ");
        json_string(path);
        printf(", \"water\": ");
        json_string(mask_path);
        printf(", \"water_auc\": ");
        json_number(auc, 5);
        printf(", \"water_pixels\": %zu, \"land_pixels\": %zu}\n", nw, nl);
    } else
        printf("water AUC of %s (darker = water): %.4f (%zu water, %zu land pixels)\n", path, auc,
               nw, nl);
    raster_free(&r);
    raster_free(&m);
    return 0;
}

static int cmp_float(const void *a, const void *b) {
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* 1-D Wasserstein-1 distance between the value distributions of two bands over the same valid
 * pixels: with as many values on each side, the mean |a_(i) - b_(i)| of the sorted values. */
static double wasserstein1(const float *a, const float *b, const uint8_t *valid, size_t n) {
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    size_t k = 0;
    double d = NAN;
    if (x && y) {
        for (size_t i = 0; i < n; i++)
            if (valid[i]) x[k] = a[i], y[k] = b[i], k++;
        qsort(x, k, sizeof(float), cmp_float);
        qsort(y, k, sizeof(float), cmp_float);
        double s = 0;
        for (size_t i = 0; i < k; i++)
            s += fabs((double)x[i] - y[i]);
        d = k ? s / k : NAN;
    }
    free(x), free(y);
    return d;
}

/* The mean over valid pixels and bands of the 5 x 5 local standard deviation (features()). */
static double mean_local_std(const raster *r, const uint8_t *valid, double scale) {
    int nf;
    double *f = features(r, scale, &nf), s = 0;
    size_t k = 0;
    const size_t n = (size_t)r->w * r->h;
    if (!f) return NAN;
    for (size_t i = 0; i < n; i++)
        if (valid[i]) {
            for (int b = 0; b < r->bands; b++)
                s += f[i * nf + 3 * b + 2];
            k++;
        }
    free(f);
    return k ? s / k / r->bands : NAN;
}

/* mm_eval --agreement A B --classifier-a CA --classifier-b CB: the class maps of two rasters of
 * the same scene (e.g. two modalities of one joint generation) through each one's classifier,
 * their agreement (fraction of pixels with the same class, mIoU over the classes either map
 * shows), and each one's texture per predicted class. */
static int agreement(const char *pa, const char *pb, const char *ca_path, const char *cb_path,
                     int json) {
    if (!ca_path || !cb_path) {
        fprintf(stderr, "%s: --agreement needs --classifier-a FILE and --classifier-b FILE\n",
                TOOL);
        return 2;
    }
    classifier ca, cb;
    raster a, b;
    if (load_classifier(ca_path, &ca) || load_classifier(cb_path, &cb)) return 1;
    if (read_raster(pa, &a)) return 1;
    if (read_raster(pb, &b)) {
        raster_free(&a);
        return 1;
    }
    int rc = 1;
    const size_t n = (size_t)a.w * a.h;
    int8_t *ma = NULL, *mb = NULL;
    uint8_t *valid = NULL;
    double *fa = NULL, *fb = NULL;
    if (a.w != b.w || a.h != b.h) {
        fprintf(stderr, "%s: '%s' is %d x %d, '%s' %d x %d: they must match\n", TOOL, pa, a.w, a.h,
                pb, b.w, b.h);
        goto out;
    }
    if (!strcmp(ca.modality, "sar")) sar_to_db(&a);
    if (!strcmp(cb.modality, "sar")) sar_to_db(&b);
    ma = malloc(n), mb = malloc(n), valid = malloc(n);
    if (!ma || !mb || !valid) {
        fprintf(stderr, "%s: out of memory\n", TOOL);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        valid[i] = a.valid[i] && b.valid[i];
    int nfa, nfb;
    if (class_map(&ca, &a, valid, ma, &fa, &nfa) || class_map(&cb, &b, valid, mb, &fb, &nfb))
        goto out;
    double conf[NC * NC] = {0};
    for (size_t i = 0; i < n; i++)
        if (valid[i]) conf[ma[i] * NC + mb[i]]++;
    double acc, miou;
    conf_scores(conf, 1, &acc, &miou);
    texstat ta[NC], tb[NC];
    texture_by_class(fa, nfa, a.bands, ma, n, ta);
    texture_by_class(fb, nfb, b.bands, mb, n, tb);
    if (json) {
        printf("{\"a\": ");
        json_string(pa);
        printf(", \"b\": ");
        json_string(pb);
        printf(", \"modality_a\": \"%s\", \"modality_b\": \"%s\", \"agreement\": ", ca.modality,
               cb.modality);
        json_number(acc, 5);
        printf(", \"miou\": ");
        json_number(miou, 5);
        print_texture_json("texture_a", ta, &ca);
        print_texture_json("texture_b", tb, &cb);
        printf("}\n");
    } else {
        printf("class agreement of %s (%s) and %s (%s): %.4f of the pixels, mIoU %.4f\n", pa,
               ca.modality, pb, cb.modality, acc, miou);
        printf("predicted class  pixels A  mean A    std A     pixels B  mean B    std B\n");
        for (int k = 0; k < NC; k++)
            if (ta[k].pixels || tb[k].pixels)
                printf("%-15s  %8.0f  %8.4f  %8.4f  %8.0f  %8.4f  %8.4f\n", ca.class_name[k],
                       ta[k].pixels, ta[k].mean, ta[k].std, tb[k].pixels, tb[k].mean, tb[k].std);
    }
    rc = 0;
out:
    free(ma), free(mb), free(valid), free(fa), free(fb);
    raster_free(&a);
    raster_free(&b);
    return rc;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(
        f, "Usage: mm_eval GENERATED REFERENCE [--modality M] [--labels LABELS --classifier FILE]\n"
           "               [--classifier REAL_RGB_FILE] [--water MASK] [--json]\n"
           "       mm_eval --agreement A B --classifier-a FILE --classifier-b FILE [--json]\n"
           "       mm_eval --auc-only RASTER --water MASK [--json]\n"
           "       mm_eval --fit-classifier MODALITY --out FILE [--scenes N]\n"
           "       mm_eval --fit-classifier real-rgb --out FILE TRAINING_RGB...\n"
           "       mm_eval --make-water-mask REFERENCE_RGB --out MASK\n"
           "-h, --help, --help-general, --version: this usage, the options common to all the\n"
           "tools, the version.\n");
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    const char *labels = NULL, *modality = NULL, *clf_path = NULL, *fit = NULL, *out = NULL;
    const char *clf_a = NULL, *clf_b = NULL, *water = NULL, *make_mask = NULL;
    int json = 0, scenes = 24, agree = 0, auc_mode = 0;
    enum { O_AGREE = 256, O_CLF_A, O_CLF_B, O_WATER, O_AUC, O_MASK };
    static const struct option opts[] = {{"labels", required_argument, 0, 'l'},
                                         {"modality", required_argument, 0, 'm'},
                                         {"classifier", required_argument, 0, 'c'},
                                         {"fit-classifier", required_argument, 0, 'f'},
                                         {"out", required_argument, 0, 'o'},
                                         {"scenes", required_argument, 0, 's'},
                                         {"agreement", no_argument, 0, O_AGREE},
                                         {"classifier-a", required_argument, 0, O_CLF_A},
                                         {"classifier-b", required_argument, 0, O_CLF_B},
                                         {"water", required_argument, 0, O_WATER},
                                         {"auc-only", no_argument, 0, O_AUC},
                                         {"make-water-mask", required_argument, 0, O_MASK},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
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
        case O_AGREE: agree = 1; break;
        case O_CLF_A: clf_a = optarg; break;
        case O_CLF_B: clf_b = optarg; break;
        case O_WATER: water = optarg; break;
        case O_AUC: auc_mode = 1; break;
        case O_MASK: make_mask = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    GDALAllRegister();
    if (fit) {
        if (!out) {
            fprintf(stderr, "%s: --fit-classifier needs --out FILE\n", TOOL);
            return 2;
        }
        if (!strcmp(fit, "real-rgb")) {
            const int rc = fit_real_classifier(out, argv + optind, argc - optind);
            GDALDestroyDriverManager();
            return rc;
        }
        return fit_classifier(fit, out, scenes);
    }
    if (make_mask) {
        if (!out || optind != argc) {
            fprintf(stderr,
                    "%s: --make-water-mask REFERENCE_RGB needs --out MASK and nothing else\n",
                    TOOL);
            return 2;
        }
        const int rc = make_water_mask(make_mask, out);
        GDALDestroyDriverManager();
        return rc;
    }
    if (auc_mode) {
        if (optind != argc - 1) {
            fprintf(stderr, "%s: --auc-only takes one raster (see --help)\n", TOOL);
            return 2;
        }
        const int rc = auc_only(argv[optind], water, json);
        GDALDestroyDriverManager();
        return rc;
    }
    if (optind != argc - 2) {
        fprintf(stderr, "%s: expected %s (see --help)\n", TOOL,
                agree ? "the two rasters A and B" : "GENERATED and REFERENCE rasters");
        return 2;
    }
    if (agree) {
        const int rc = agreement(argv[optind], argv[optind + 1], clf_a, clf_b, json);
        GDALDestroyDriverManager();
        return rc;
    }
    classifier c;
    if (labels && !clf_path) {
        fprintf(stderr, "%s: --labels needs --classifier FILE (mm_eval --fit-classifier)\n", TOOL);
        return 2;
    }
    if (clf_path) {
        if (load_classifier(clf_path, &c)) return 1;
        if (!modality)
            modality = c.modality;
        else if (strcmp(modality, c.modality)) {
            fprintf(stderr, "%s: --modality %s but the classifier is for %s\n", TOOL, modality,
                    c.modality);
            return 2;
        }
        if (c.real && labels) {
            fprintf(stderr,
                    "%s: '%s' is a real-data classifier (water, vegetation, bare-built): it "
                    "compares the class maps of GENERATED and REFERENCE, not a label map\n",
                    TOOL, clf_path);
            return 2;
        }
    }
    raster g, r;
    if (read_raster(argv[optind], &g)) return 1;
    if (read_raster(argv[optind + 1], &r)) {
        raster_free(&g);
        return 1;
    }
    int rc = 1;
    uint8_t *valid = NULL;
    int8_t *cls = NULL;
    double *f = NULL, *fr = NULL, *lum = NULL;
    raster lab = {0}, mask = {0};
    /* neither --modality nor a classifier: the generated raster's MM_MODALITY */
    if (!modality && g.modality[0]) modality = g.modality;
    if (modality && !strcmp(modality, "sar")) {
        sar_to_db(&g);
        sar_to_db(&r);
    }
    if (g.w != r.w || g.h != r.h || g.bands != r.bands) {
        fprintf(stderr, "%s: generated is %dx%dx%d, reference %dx%dx%d: they must match\n", TOOL,
                g.w, g.h, g.bands, r.w, r.h, r.bands);
        goto done;
    }
    const size_t n = (size_t)g.w * g.h;
    valid = malloc(n);
    if (!valid) goto done;
    for (size_t i = 0; i < n; i++)
        valid[i] = g.valid[i] && r.valid[i];
    const double L = data_range(modality, &r),
                 lo = modality && !strcmp(modality, "sar") ? -25.0 : 0.0;
    double bp[MAXB], bs[MAXB], bf[MAXB];
    for (int b = 0; b < g.bands; b++) {
        bp[b] = psnr(g.data + b * n, r.data + b * n, valid, n, L);
        bs[b] = ssim(g.data + b * n, r.data + b * n, valid, g.w, g.h, L);
        bf[b] = fsim(g.data + b * n, r.data + b * n, valid, g.w, g.h, lo, L);
    }
    /* colour distributions: W1 per band in reflectance (optical), dB (SAR), else stored units */
    const int optical = L == 10000.0;
    const double unit = optical ? 1e-4 : 1.0;
    double w1[MAXB], w1_mean = 0;
    for (int b = 0; b < g.bands; b++) {
        w1[b] = wasserstein1(g.data + b * n, r.data + b * n, valid, n) * unit;
        w1_mean += w1[b] / g.bands;
    }
    /* texture of the whole image: the mean 5 x 5 local std, in the classifier's scaled units */
    const double tscale = clf_path ? c.scale : modality ? modality_scale(modality) : 1.0;
    const double std_g = mean_local_std(&g, valid, tscale),
                 std_r = mean_local_std(&r, valid, tscale);
    /* real data: class maps of the generated raster and the reference by the real classifier */
    int have_real = 0;
    double real_agree = NAN, real_miou = NAN, real_tex = NAN, frac_g[NC] = {0}, frac_r[NC] = {0};
    double real_conf[NC * NC] = {0}; /* rows: the reference's class, columns: the generated's */
    texstat rtg[NC], rtr[NC];
    if (clf_path && c.real) {
        int8_t *cg = malloc(n), *cr = malloc(n);
        int nfg, nfr;
        if (!cg || !cr || class_map(&c, &g, valid, cg, &f, &nfg) ||
            class_map(&c, &r, valid, cr, &fr, &nfr)) {
            free(cg), free(cr);
            goto done;
        }
        double conf[NC * NC] = {0}, tot = 0;
        for (size_t i = 0; i < n; i++)
            if (valid[i])
                conf[cr[i] * NC + cg[i]]++, frac_r[(int)cr[i]]++, frac_g[(int)cg[i]]++, tot++;
        for (int k = 0; k < NC; k++)
            frac_g[k] = tot ? frac_g[k] / tot : NAN, frac_r[k] = tot ? frac_r[k] / tot : NAN;
        conf_scores(conf, 1, &real_agree, &real_miou);
        memcpy(real_conf, conf, sizeof conf);
        /* texture per class of the reference's class map, generated versus reference */
        texture_by_class(f, nfg, g.bands, cr, n, rtg);
        texture_by_class(fr, nfr, r.bands, cr, n, rtr);
        real_tex = texture_error(rtg, rtr);
        free(cg), free(cr);
        free(f), free(fr);
        f = fr = NULL;
        have_real = 1;
    }
    /* water separability of the generated raster's luminance */
    double auc = NAN;
    size_t nw = 0, nl = 0;
    if (water) {
        if (read_mask(water, g.w, g.h, &mask)) goto done;
        lum = luminance(&g);
        if (!lum) goto done;
        auc = water_auc(lum, valid, &mask, &nw, &nl);
    }
    double acc = NAN, miou = NAN, tex_err = NAN;
    texstat tg[NC], tr[NC];
    int have_cls = 0;
    if (labels) {
        if (read_raster(labels, &lab)) goto done;
        if (lab.w != g.w || lab.h != g.h) {
            fprintf(stderr, "%s: the labels are %d x %d, the rasters %d x %d\n", TOOL, lab.w, lab.h,
                    g.w, g.h);
            goto done;
        }
        cls = malloc(n);
        int8_t *truth = malloc(n);
        if (!cls || !truth) {
            free(truth);
            goto done;
        }
        int nf, nfr;
        if (class_map(&c, &g, valid, cls, &f, &nf)) {
            free(truth);
            goto done;
        }
        double conf[NC * NC] = {0};
        for (size_t i = 0; i < n; i++) {
            const int t = (int)lab.data[i];
            truth[i] = valid[i] && lab.valid[i] && t >= 0 && t < NC ? (int8_t)t : -1;
            if (truth[i] >= 0) conf[t * NC + cls[i]]++;
        }
        conf_scores(conf, 0, &acc, &miou);
        /* texture: per true class, generated versus reference */
        fr = features(&r, c.scale, &nfr);
        texture_by_class(f, nf, g.bands, truth, n, tg);
        texture_by_class(fr, nfr, r.bands, truth, n, tr);
        tex_err = texture_error(tg, tr);
        free(truth);
        have_cls = 1;
    }
    if (json) {
        printf("{\"generated\": ");
        json_string(argv[optind]);
        printf(", \"reference\": ");
        json_string(argv[optind + 1]);
        printf(", \"range\": %g, \"bands\": [", L);
        for (int b = 0; b < g.bands; b++) {
            printf("%s{\"psnr\": ", b ? ", " : "");
            json_number(bp[b], 4);
            printf(", \"ssim\": ");
            json_number(bs[b], 5);
            printf(", \"fsim\": ");
            json_number(bf[b], 5);
            printf(", \"w1\": ");
            json_number(w1[b], 6);
            printf("}");
        }
        printf("], \"w1_mean\": ");
        json_number(w1_mean, 6);
        printf(", \"w1_units\": \"%s\"", optical                                ? "reflectance"
                                         : modality && !strcmp(modality, "sar") ? "dB"
                                                                                : "stored");
        printf(", \"texture_std_generated\": ");
        json_number(std_g, 6);
        printf(", \"texture_std_reference\": ");
        json_number(std_r, 6);
        printf(", \"texture_std_rel_error\": ");
        json_number(fabs(std_g - std_r) / std_r, 5);
        if (have_real) {
            printf(", \"class_agreement\": ");
            json_number(real_agree, 5);
            printf(", \"miou\": ");
            json_number(real_miou, 5);
            printf(", \"texture_error\": ");
            json_number(real_tex, 5);
            printf(", \"classes_generated\": {");
            for (int k = 0; k < c.n_classes; k++) {
                printf("%s\"%s\": ", k ? ", " : "", c.class_name[k]);
                json_number(frac_g[k], 5);
            }
            printf("}, \"classes_reference\": {");
            for (int k = 0; k < c.n_classes; k++) {
                printf("%s\"%s\": ", k ? ", " : "", c.class_name[k]);
                json_number(frac_r[k], 5);
            }
            printf("}, \"confusion\": [");
            for (int k = 0; k < c.n_classes; k++) {
                printf("%s[", k ? ", " : "");
                for (int j = 0; j < c.n_classes; j++)
                    printf("%s%.0f", j ? ", " : "", real_conf[k * NC + j]);
                printf("]");
            }
            printf("]");
            print_texture_json("texture_generated", rtg, &c);
            print_texture_json("texture_reference", rtr, &c);
        }
        if (water) {
            printf(", \"water_auc\": ");
            json_number(auc, 5);
            printf(", \"water_pixels\": %zu, \"land_pixels\": %zu", nw, nl);
        }
        if (have_cls) {
            printf(", \"accuracy\": ");
            json_number(acc, 5);
            printf(", \"miou\": ");
            json_number(miou, 5);
            printf(", \"texture_error\": ");
            json_number(tex_err, 5);
            print_texture_json("texture_generated", tg, &c);
            print_texture_json("texture_reference", tr, &c);
        }
        printf("}\n");
    } else {
        printf("band   PSNR (dB)   SSIM     FSIM     (data range %g)\n", L);
        for (int b = 0; b < g.bands; b++)
            printf("%4d   %9.3f   %.4f   %.4f   W1 %.6f\n", b + 1, bp[b], bs[b], bf[b], w1[b]);
        printf("W1 mean %.6f (%s); texture (mean 5x5 local std): generated %.6f, reference %.6f\n",
               w1_mean, optical ? "reflectance" : "stored units", std_g, std_r);
        if (have_real) {
            printf("real-data classes: agreement %.4f, mIoU %.4f; texture error %.4f\n", real_agree,
                   real_miou, real_tex);
            for (int k = 0; k < c.n_classes; k++)
                printf("%-13s  generated %.4f  reference %.4f  std gen %.4f  std ref %.4f\n",
                       c.class_name[k], frac_g[k], frac_r[k], rtg[k].std, rtr[k].std);
        }
        if (water)
            printf("water AUC (darker = water): %.4f (%zu water, %zu land pixels)\n", auc, nw, nl);
        if (have_cls) {
            printf("land-cover accuracy %.4f, mIoU %.4f; texture error %.4f\n", acc, miou, tex_err);
            printf(
                "class          pixels    gen mean  gen std   ref mean  ref std   (5x5, scaled)\n");
            for (int k = 0; k < NC; k++)
                if (tr[k].pixels)
                    printf("%-13s  %8.0f  %8.4f  %8.4f  %8.4f  %8.4f\n", c.class_name[k],
                           tr[k].pixels, tg[k].mean, tg[k].std, tr[k].mean, tr[k].std);
        }
    }
    rc = 0;
done:
    free(valid), free(cls), free(f), free(fr), free(lum);
    if (labels) raster_free(&lab);
    raster_free(&mask);
    raster_free(&g);
    raster_free(&r);
    GDALDestroyDriverManager();
    return rc;
}
