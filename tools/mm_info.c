/* mm_info: a model's config, parameter counts by module and dtypes; or the parameter count of a
 * bare config (no weights). */
#define _POSIX_C_SOURCE 200809L
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "mm.h"
#include "read_file.h"

static const char *TOOL = "mm_info";

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_info [--json] MODEL.safetensors\n"
            "       mm_info --config CONFIG.json\n"
            "Prints a MetaEarth-MM model's config, its parameters by module (VAE, scene\n"
            "inference module, routed generator, embeddings) and the dtypes they are stored in.\n"
            "With --config, counts the parameters a bare config implies, without weights.\n"
            "--help, --help-general, --version: this usage, the options common to all the\n"
            "tools, the version.\n");
}

static void print_counts(const mm_param_count *p) {
    const struct { const char *name; int64_t n; } rows[] = {
        {"VAE", p->vae}, {"scene inference module", p->scene}, {"routed generator", p->generator},
        {"embeddings (timestep, modality)", p->embeddings}, {"total", p->total},
        {"total without the VAE", p->total - p->vae}};
    printf("parameters:\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("  %-32s %14lld  (%.1fM)\n", rows[i].name, (long long)rows[i].n, rows[i].n / 1e6);
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, NULL, NULL)) return 0;
    const char *config = NULL;
    int json = 0;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {"version", no_argument, 0, 'V'},
                                         {0, 0, 0, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "c:jh", opts, NULL)) != -1) {
        switch (o) {
        case 'c': config = optarg; break;
        case 'j': json = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("mm_info (libmm %s)\n", mm_version()); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (config) {
        if (optind != argc) {
            usage(stderr);
            return 2;
        }
        char *text = mm_read_text_file(config), *err = NULL;
        if (!text) {
            fprintf(stderr, "%s: cannot read '%s'\n", TOOL, config);
            return 1;
        }
        mm_param_count pc;
        if (mm_config_param_count(text, &pc, &err) != MM_OK) {
            fprintf(stderr, "%s: %s: %s\n", TOOL, config, err ? err : "invalid config");
            mm_free(err);
            free(text);
            return 1;
        }
        free(text);
        printf("config: %s (no weights)\n", config);
        print_counts(&pc);
        return 0;
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    mm_model *m = mm_tool_open_model(TOOL, argv[optind]);
    if (!m) return 1;
    if (json) {
        printf("%s\n", mm_model_config_json(m));
        mm_model_close(m);
        return 0;
    }
    mm_param_count pc;
    mm_dtype_count dc;
    mm_model_param_count(m, &pc);
    mm_model_dtype_count(m, &dc);
    printf("model: %s\nname: %s\nimage size: %d, latent %d x %d x %d, %d x %d tokens per modality, hidden %d\n",
           argv[optind], mm_model_name(m), mm_model_image_size(m), mm_model_latent_channels(m),
           mm_model_latent_size(m), mm_model_latent_size(m), mm_model_tokens_per_side(m),
           mm_model_tokens_per_side(m), mm_model_hidden_size(m));
    printf("modalities:");
    for (int i = 0; i < mm_model_num_modalities(m); i++)
        printf(" %s(%d)", mm_model_modality_name(m, i), mm_model_modality_channels(m, i));
    printf("\n");
    print_counts(&pc);
    printf("stored dtypes: F32 %lld, F16 %lld, BF16 %lld parameters\n", (long long)dc.f32,
           (long long)dc.f16, (long long)dc.bf16);
    printf("config: %s\n", mm_model_config_json(m));
    mm_model_close(m);
    return 0;
}
