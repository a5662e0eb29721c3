/*
 * seam_metric RASTER WINDOW OVERLAP ALIGN: gradient energy across window borders versus inside
 * windows, on the anchored grid (mmgeo_grid_origins_aligned(size, WINDOW, OVERLAP, ALIGN)).
 * The image is the mean of the bands. For every pair of horizontally or vertically adjacent
 * pixels, e = (I(p) - I(q))^2; a pair is a "border" pair when it straddles a window's first or
 * last column/row inside the raster (where one window's contribution starts or ends), an
 * "overlap" pair when both pixels lie in an overlap of two windows, else "inside". Prints the
 * mean energies and the ratios border/inside and overlap/inside (1: no seam).
 */
#include <gdal.h>
#include <stdio.h>
#include <stdlib.h>

#include "mmgeo.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: seam_metric RASTER WINDOW OVERLAP ALIGN\n");
        return 2;
    }
    GDALAllRegister();
    GDALDatasetH ds = GDALOpen(argv[1], GA_ReadOnly);
    if (!ds) return 1;
    const int S = atoi(argv[2]), O = atoi(argv[3]), A = atoi(argv[4]);
    const int W = GDALGetRasterXSize(ds), H = GDALGetRasterYSize(ds), nb = GDALGetRasterCount(ds);
    double *img = calloc((size_t)W * H, sizeof *img), *row = malloc(sizeof(double) * W * H);
    for (int b = 1; b <= nb; b++) {
        if (GDALRasterIO(GDALGetRasterBand(ds, b), GF_Read, 0, 0, W, H, row, W, H, GDT_Float64, 0,
                         0) != CE_None)
            return 1;
        for (size_t k = 0; k < (size_t)W * H; k++) img[k] += row[k] / nb;
    }
    GDALClose(ds);
    /* per axis: 1 at a border position (pair x, x+1 straddles a window start or end), count of
     * windows covering each position */
    int *edge[2], *cover[2], size[2] = {W, H};
    for (int a = 0; a < 2; a++) {
        const int n = mmgeo_grid_origins_aligned(size[a], S, O, A, NULL, 0);
        int *o = malloc(sizeof(int) * n);
        mmgeo_grid_origins_aligned(size[a], S, O, A, o, n);
        edge[a] = calloc(size[a], sizeof(int));
        cover[a] = calloc(size[a], sizeof(int));
        for (int k = 0; k < n; k++) {
            if (k > 0 && o[k] > 0) edge[a][o[k] - 1] = 1;
            if (k < n - 1 && o[k] + S - 1 < size[a] - 1) edge[a][o[k] + S - 1] = 1;
            for (int i = o[k]; i < o[k] + S && i < size[a]; i++) cover[a][i]++;
        }
        free(o);
    }
    double e[3] = {0}, n[3] = {0}; /* border, overlap, inside */
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int a = 0; a < 2; a++) {
                const int x2 = a ? x : x + 1, y2 = a ? y + 1 : y;
                if (x2 >= W || y2 >= H) continue;
                const double d = img[(size_t)y * W + x] - img[(size_t)y2 * W + x2];
                const int pos = a ? y : x, *cv = cover[a];
                const int cls = edge[a][pos] ? 0 : (cv[pos] > 1 && cv[pos + 1] > 1) ? 1 : 2;
                e[cls] += d * d, n[cls]++;
            }
    for (int c = 0; c < 3; c++) e[c] = n[c] ? e[c] / n[c] : 0;
    printf("border %.3f (%.0f pairs)  overlap %.3f (%.0f)  inside %.3f (%.0f)  "
           "border/inside %.3f  overlap/inside %.3f\n",
           e[0], n[0], e[1], n[1], e[2], n[2], e[2] ? e[0] / e[2] : 0, e[2] ? e[1] / e[2] : 0);
    return 0;
}
