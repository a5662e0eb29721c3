/*
 * mm_translate: translate georeferenced rasters of some modalities into another modality with a
 * MetaEarth-MM model, over the whole scene: the scene is cut into the model's windows on a grid
 * anchored to the raster, each window translated, and the results blended back onto the input's
 * grid (size, geotransform or GCPs, CRS, nodata). See man/mm_translate.1 and docs/tools.md.
 */
#define _GNU_SOURCE
#include <cpl_conv.h>
#include <cpl_string.h>
#include <gdal.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "tool_metadata.h"
#include "tool_model.h"
#include "tool_opts.h"
#include "tool_profiles.h"
#include "tool_run.h"
#include "translate_cmd.h"
#include "mm.h"
#include "mmgeo.h"

#define TOOL_NAME "mm_translate"
static const char *TOOL = TOOL_NAME;

static void usage(FILE *f) {
    fprintf(
        f,
        "Usage: mm_translate [--help] [--help-general] [--version] [-q]\n"
        "         [-of FORMAT] [-co NAME=VALUE]...\n"
        "         [--config KEY VALUE]... [--model FILE] [--device cpu|cuda] [--threads N]\n"
        "         [--precision bf16|fp32] [--steps N] [--guidance G] [--seed N]\n"
        "         [--sampler euler|heun|euler_maruyama] [--overlap PX] [--batch N] [--seamless]\n"
        "         [-s MODALITY | -s MODALITY:FILE]... [-t MODALITY] [-b BAND]...\n"
        "         [-srcwin XOFF YOFF XSIZE YSIZE | -projwin ULX ULY LRX LRY] [-ot TYPE]\n"
        "         [--profile MODALITY=SPEC]... [--aoi FILE [--aoi-layer NAME]] [--gsd M]\n"
        "         [--nonfinite error|nodata] [--max-pixels N] [--force]\n"
        "         [--sar-units db|linear|amplitude] [--sar-band N]\n"
        "         [--samples K [--spread band|sidecar]] [--stac] [SRC] DST\n"
        "Translates SRC (or the -s MODALITY:FILE sources) into DST in the target modality.\n"
        "Modalities come from -s/-t, else the MM_MODALITY metadata item, else a modality word\n"
        "in the file name (in_sar.tif, out_rgb.tif). SAR units come from --sar-units, else\n"
        "the band's unit type or SAR_UNITS item, else detection (integer: amplitude; float:\n"
        "linear, refused when it looks like dB); a multi-band SAR source uses its VH band.\n"
        "--samples K writes the mean of K samples and their spread (DST.spread.EXT, or one\n"
        "more band); --stac a STAC item DST.stac.json.\n"
        "See mm_translate(1).\n"
        "The model: --model, else $MM_MODEL, else the default model (%s).\n",
        mm_tool_default_model());
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, "GDAL", GDALVersionInfo("RELEASE_NAME")))
        return 0;
    mm_translate_cmd cmd; /* parsed and run in tools/common/translate_cmd.c, shared with mm_batch */
    mm_translate_cmd_init(&cmd, TOOL, MM_TR_TRANSLATE);
    const int p = mm_translate_cmd_parse(&cmd, argc, argv, usage);
    int rc = p == 1 ? 0 : p;
    if (p == 0) {
        rc = mm_translate_cmd_run(&cmd, TOOL);
        GDALDestroyDriverManager();
    }
    mm_translate_cmd_free(&cmd);
    return rc;
}
