/* A program built against an installed prefix (tests/install/install.sh): with pkg-config
 * (libmm, or mmgeo with -DUSE_MMGEO) or find_package(MetaEarthMM) (CMakeLists.txt here). Opens
 * the model named on the command line and prints its name and modalities; with mmgeo also the
 * model's geo settings and a window grid. Exit 0 when everything worked. */
#include <stdio.h>
#include <string.h>

#include "mm.h"
#ifdef USE_MMGEO
#include "mmgeo.h"
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: consumer MODEL\n");
        return 2;
    }
    printf("libmm %s\n", mm_version());
    if (strcmp(mm_version(), MM_VERSION_STRING)) {
        fprintf(stderr, "consumer: header %s, library %s\n", MM_VERSION_STRING, mm_version());
        return 1;
    }
    mm_model *m = NULL;
    char *err = NULL;
    if (mm_model_open(argv[1], &m, &err) != MM_OK) {
        fprintf(stderr, "consumer: %s\n", err ? err : "cannot open the model");
        mm_free(err);
        return 1;
    }
    printf("model %s: image %d, modalities", mm_model_name(m), mm_model_image_size(m));
    for (int i = 0; i < mm_model_num_modalities(m); i++)
        printf(" %s", mm_model_modality_name(m, i));
    printf("\n");
#ifdef USE_MMGEO
    mmgeo_model_geo geo;
    char e[1024];
    if (mmgeo_model_geo_get(m, &geo, e, sizeof e)) {
        fprintf(stderr, "consumer: %s\n", e);
        mm_model_close(m);
        return 1;
    }
    int origins[16];
    const int n = mmgeo_grid_origins(1000, 256, 32, origins, 16);
    printf("mmgeo: %d windows over 1000 px\n", n);
    if (n < 4) {
        mm_model_close(m);
        return 1;
    }
#endif
    mm_model_close(m);
    return 0;
}
