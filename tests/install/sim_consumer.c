/* find_package(MetaEarthMM)'s MetaEarthMM::mmsim (tests/install/install.sh): one small scene. */
#include <stdio.h>
#include <stdlib.h>

#include "mmsim.h"

int main(void) {
    mm_sim_params p;
    mm_sim_params_default(&p);
    p.width = p.height = 32;
    uint8_t *label = malloc(32 * 32);
    if (!label || mm_sim_render(7, &p, label, NULL, NULL, NULL, NULL, NULL)) {
        fprintf(stderr, "sim_consumer: render failed\n");
        free(label);
        return 1;
    }
    printf("mmsim: first class %s\n", mm_sim_class_name(label[0]));
    free(label);
    return 0;
}
