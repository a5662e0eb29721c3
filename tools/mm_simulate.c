/*
 * mm_simulate: georeferenced paired scenes of all five modalities from one simulated land-cover
 * layout (docs/simulator.md), plus the label map, as GeoTIFFs in a UTM projection.
 *
 *   mm_simulate --seed 7 --size 1024 --gsd 2 out/scene7
 *     -> out/scene7_rgb.tif  (UInt16 x 3, reflectance x 10000)
 *        out/scene7_nir.tif, _pan.tif (UInt16, reflectance x 10000)
 *        out/scene7_sar.tif  (Float32, sigma0 as linear intensity, like calibrated GRD)
 *        out/scene7_osm.tif  (Byte x 3, map colours)
 *        out/scene7_label.tif (Byte, class index; names in MM_CLASSES)
 * Every file carries MM_MODALITY, SYNTHETIC=YES and the simulator parameters in its metadata,
 * and is written under a temporary name, then renamed.
 */
#define _POSIX_C_SOURCE 200809L
#include <gdal.h>
#include <getopt.h>
#include <ogr_srs_api.h>
#include <cpl_string.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mmsim.h"

static const char *TOOL = "mm_simulate";

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_simulate [options] OUTPUT_PREFIX\n"
            "Writes OUTPUT_PREFIX_{rgb,nir,pan,sar,osm,label}.tif: one simulated scene in five\n"
            "modalities and its land-cover labels, georeferenced in UTM.\n"
            "  --seed N          layout seed (default 1)\n"
            "  --size W[xH]      pixels (default 1024)\n"
            "  --gsd M           metres per pixel (default 2)\n"
            "  --looks L         SAR looks of the gamma speckle (default 4)\n"
            "  --sun DEG         sun elevation (default 45)\n"
            "  --epsg CODE       UTM CRS (default 32633, UTM 33N)\n"
            "  --origin E,N      scene centre in the CRS (default 500000,5000000)\n"
            "  --only LIST       comma-separated subset of rgb,nir,pan,sar,osm,label\n"
            "  -q                quiet\n"
            "-h, --help, --help-general, --version: this usage, the options common to all the\n"
            "tools, the version.\n");
}

typedef struct {
    const char *name;
    int bands;
    GDALDataType type;
} product;

static int wanted(const char *only, const char *name) {
    if (!only) return 1;
    const size_t n = strlen(name);
    for (const char *p = only; (p = strstr(p, name)); p += n)
        if ((p == only || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

/* Writes one product: data is band-sequential of the product's type. */
static int write_tif(const char *path, int W, int H, const product *pr, const void *data,
                     const double gt[6], const char *wkt, char **meta) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.part", path);
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    char **co = NULL;
    co = CSLSetNameValue(co, "TILED", "YES");
    co = CSLSetNameValue(co, "COMPRESS", "DEFLATE");
    co = CSLSetNameValue(co, "BIGTIFF", "IF_SAFER");
    if (pr->bands == 3) co = CSLSetNameValue(co, "PHOTOMETRIC", pr->type == GDT_Byte ? "RGB" : "MINISBLACK");
    GDALDatasetH ds = GDALCreate(drv, tmp, W, H, pr->bands, pr->type, co);
    CSLDestroy(co);
    if (!ds) return 1;
    int bad = GDALSetGeoTransform(ds, (double *)gt) != CE_None || GDALSetProjection(ds, wkt) != CE_None;
    GDALSetMetadata(ds, meta, NULL);
    const size_t esz = (size_t)GDALGetDataTypeSizeBytes(pr->type);
    for (int b = 0; b < pr->bands && !bad; b++) {
        GDALRasterBandH band = GDALGetRasterBand(ds, b + 1);
        bad |= GDALRasterIO(band, GF_Write, 0, 0, W, H, (char *)data + (size_t)b * W * H * esz, W, H,
                            pr->type, 0, 0) != CE_None;
        if (pr->bands == 3 && pr->type == GDT_Byte)
            GDALSetRasterColorInterpretation(band, (GDALColorInterp)(GCI_RedBand + b));
    }
    CPLErrorReset(); /* GDAL 3.6: GDALClose returns nothing; a failed flush is an error */
    GDALClose(ds);
    if (CPLGetLastErrorType() == CE_Failure) bad = 1;
    if (bad || rename(tmp, path)) {
        remove(tmp);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    mm_sim_params p;
    mm_sim_params_default(&p);
    p.width = p.height = 1024;
    uint64_t seed = 1;
    int epsg = 32633, quiet = 0;
    double east = 500000, north = 5000000;
    const char *only = NULL;
    static const struct option opts[] = {
        {"seed", required_argument, 0, 's'}, {"size", required_argument, 0, 'z'},
        {"gsd", required_argument, 0, 'g'},  {"looks", required_argument, 0, 'l'},
        {"sun", required_argument, 0, 'u'},  {"epsg", required_argument, 0, 'e'},
        {"origin", required_argument, 0, 'o'}, {"only", required_argument, 0, 'O'},
        {"help", no_argument, 0, 'h'},       {"version", no_argument, 0, 'V'},
        {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "qh", opts, NULL)) != -1) {
        int bad = 0;
        float f;
        switch (o) {
        case 's': bad = mm_arg_u64(TOOL, "--seed", optarg, &seed); break;
        case 'z': {
            char *x = strchr(optarg, 'x');
            if (x) *x = 0;
            bad = mm_arg_int(TOOL, "--size", optarg, 1, 200000, &p.width);
            p.height = p.width;
            if (!bad && x) bad = mm_arg_int(TOOL, "--size height", x + 1, 1, 200000, &p.height);
            break;
        }
        case 'g': bad = mm_arg_float(TOOL, "--gsd", optarg, 0.05, 500, &f), p.gsd = f; break;
        case 'l': bad = mm_arg_int(TOOL, "--looks", optarg, 1, 64, &p.sar_looks); break;
        case 'u': bad = mm_arg_float(TOOL, "--sun", optarg, 5, 90, &f), p.sun_elevation_deg = f; break;
        case 'e': bad = mm_arg_int(TOOL, "--epsg", optarg, 32601, 32760, &epsg); break;
        case 'o':
            if (sscanf(optarg, "%lf,%lf", &east, &north) != 2) {
                fprintf(stderr, "%s: --origin must be E,N (metres), got '%s'\n", TOOL, optarg);
                bad = 1;
            }
            break;
        case 'O': only = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("mm_simulate 0.1.0\n"); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) return 2;
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *prefix = argv[optind];
    if ((double)p.width * p.height > 4e8) {
        fprintf(stderr, "%s: %d x %d is too large for one scene (at most 4e8 pixels)\n", TOOL, p.width, p.height);
        return 2;
    }
    GDALAllRegister();
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    char *wkt = NULL;
    if (OSRImportFromEPSG(srs, epsg) != OGRERR_NONE || OSRExportToWkt(srs, &wkt) != OGRERR_NONE) {
        fprintf(stderr, "%s: EPSG:%d is not a known CRS\n", TOOL, epsg);
        OSRDestroySpatialReference(srs);
        return 1;
    }
    OSRDestroySpatialReference(srs);
    const int W = p.width, H = p.height;
    const size_t n = (size_t)W * H;
    uint8_t *label = malloc(n), *osm = malloc(3 * n);
    float *rgb = malloc(3 * n * sizeof(float)), *nir = malloc(n * sizeof(float));
    float *pan = malloc(n * sizeof(float)), *sar = malloc(n * sizeof(float));
    uint16_t *u16 = malloc(3 * n * sizeof(uint16_t));
    int rc = 1;
    if (!label || !osm || !rgb || !nir || !pan || !sar || !u16) {
        fprintf(stderr, "%s: out of memory for a %d x %d scene\n", TOOL, W, H);
        goto out;
    }
    /* the simulator's world origin is the scene centre: keep the world position independent of
     * the CRS offset so the same seed gives the same layout anywhere */
    if (mm_sim_render(seed, &p, label, rgb, nir, pan, sar, osm)) {
        fprintf(stderr, "%s: invalid simulation parameters\n", TOOL);
        goto out;
    }
    const double gt[6] = {east - W / 2.0 * p.gsd, p.gsd, 0, north + H / 2.0 * p.gsd, 0, -p.gsd};
    const product prods[] = {{"rgb", 3, GDT_UInt16}, {"nir", 1, GDT_UInt16}, {"pan", 1, GDT_UInt16},
                             {"sar", 1, GDT_Float32}, {"osm", 3, GDT_Byte}, {"label", 1, GDT_Byte}};
    char seedtxt[32], params[256];
    snprintf(seedtxt, sizeof seedtxt, "%llu", (unsigned long long)seed);
    snprintf(params, sizeof params, "gsd=%g looks=%d sun_elevation=%g size=%dx%d", p.gsd, p.sar_looks,
             p.sun_elevation_deg, W, H);
    for (size_t k = 0; k < sizeof prods / sizeof prods[0]; k++) {
        const product *pr = &prods[k];
        if (!wanted(only, pr->name)) continue;
        const void *data = NULL;
        if (!strcmp(pr->name, "sar")) { /* calibrated products store linear intensity */
            for (size_t i = 0; i < n; i++) sar[i] = powf(10.0f, sar[i] / 10.0f);
            data = sar;
        }
        else if (!strcmp(pr->name, "osm")) data = osm;
        else if (!strcmp(pr->name, "label")) data = label;
        else {
            const float *src = !strcmp(pr->name, "rgb") ? rgb : !strcmp(pr->name, "nir") ? nir : pan;
            for (size_t i = 0; i < (size_t)pr->bands * n; i++) u16[i] = (uint16_t)lrintf(src[i] * 10000.0f);
            data = u16;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s_%s.tif", prefix, pr->name);
        char **meta = NULL;
        meta = CSLSetNameValue(meta, "MM_MODALITY", pr->name);
        meta = CSLSetNameValue(meta, "SYNTHETIC", "YES");
        meta = CSLSetNameValue(meta, "MM_SIMULATOR_SEED", seedtxt);
        meta = CSLSetNameValue(meta, "MM_SIMULATOR", params);
        if (pr->type == GDT_UInt16) meta = CSLSetNameValue(meta, "MM_SCALE", "reflectance x 10000");
        if (!strcmp(pr->name, "sar")) meta = CSLSetNameValue(meta, "MM_UNITS", "sigma0, linear intensity");
        if (!strcmp(pr->name, "label")) { /* in the TIFF itself: category names would need a sidecar */
            char classes[512] = "";
            for (int c = 0; c < MM_SIM_N_CLASSES; c++)
                snprintf(classes + strlen(classes), sizeof classes - strlen(classes), "%s%d=%s",
                         c ? "," : "", c, mm_sim_class_name(c));
            meta = CSLSetNameValue(meta, "MM_CLASSES", classes);
        }
        const int bad = write_tif(path, W, H, pr, data, gt, wkt, meta);
        CSLDestroy(meta);
        if (bad) {
            fprintf(stderr, "%s: cannot write '%s': %s\n", TOOL, path, CPLGetLastErrorMsg());
            goto out;
        }
        if (!quiet) printf("%s\n", path);
    }
    rc = 0;
out:
    CPLFree(wkt);
    free(label), free(osm), free(rgb), free(nir), free(pan), free(sar), free(u16);
    GDALDestroyDriverManager();
    return rc;
}
