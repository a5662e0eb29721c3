/* mm_convert: brings a checkpoint trained elsewhere (PyTorch .pt/.bin, safetensors, sharded or
 * not) into a libmm model file through a declarative mapping (docs/model-format.md, "Bringing a
 * checkpoint in").
 *
 * Why a C front over a Python converter: reading pickled PyTorch checkpoints needs torch, so the
 * conversion itself is Python (tools/convert/mm_convert.py, installed under
 * share/metaearth-mm/convert), and libmm stays free of it. The front gives the tool what the
 * other tools have (--version, --help, --help-general, an installed, relocatable executable that
 * finds its data beside it), answers --list-tensors from libmm's own list of the tensors a config
 * implies (the converter asks it, so there is one list, not a Python copy of it), and opens the
 * written file with libmm before saying it is done: a converted file that libmm would refuse is
 * removed, with libmm's message. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "config.h" /* libmm's config parser and tensor list (internal, linked statically) */
#include "mm.h"
#include "read_file.h"

static const char *TOOL = "mm_convert";

static void usage(FILE *f) {
    fprintf(f,
            "Usage: mm_convert [-m MAPPING]... [-c CONFIG.json] [--vae-config CONFIG.json]\n"
            "                  [--set KEY=JSON]... [--drop PATTERN]... [--state-key KEY]\n"
            "                  [--dtype F32|F16|BF16] [--dry-run] [-q] -o OUT.safetensors INPUT...\n"
            "       mm_convert --inspect [--state-key KEY] INPUT...\n"
            "       mm_convert --list-mappings\n"
            "       mm_convert --list-tensors CONFIG.json\n"
            "Converts a checkpoint (PyTorch .pt/.pth/.bin, safetensors, or the *.index.json of a\n"
            "sharded one; several INPUTs are read as one) into one libmm model file, mapping names\n"
            "and shapes through declarative mapping files (JSON; shipped: metaearth-ref, dit, sit,\n"
            "diffusers-vae). Every source tensor no rule uses and every tensor the config implies\n"
            "that no rule makes is named, and the conversion refused, unless a mapping or --drop\n"
            "drops it. The output is opened with libmm before the tool succeeds.\n"
            "  -m, --mapping MAPPING   a mapping file, or the name of a shipped one (repeatable)\n"
            "  -c, --config FILE       the model config (JSON), merged over the mappings' fields\n"
            "  --vae-config FILE       a diffusers AutoencoderKL config.json, as the config's vae\n"
            "  --set KEY=JSON          set one config field (dotted key, JSON value), last wins\n"
            "  --drop PATTERN          drop source tensors matching PATTERN (mapping syntax)\n"
            "  --state-key KEY         the state dict inside a .pt checkpoint dict (model, ema)\n"
            "  --dtype TYPE            stored dtype: F32 (default), F16 or BF16\n"
            "  -o, --output FILE       the libmm model file to write\n"
            "  --dry-run               check the mapping and report, write nothing\n"
            "  -q, --quiet             no report on success\n"
            "  --inspect               list the tensors of the INPUTs (names, shapes, dtypes)\n"
            "  --list-mappings         list the shipped mappings\n"
            "  --list-tensors FILE     the tensors a config implies (name and shape per line)\n"
            "Environment: MM_PYTHON, the Python 3 with torch and numpy (default /usr/bin/python3).\n"
            "--help, --help-general, --version: this usage, the options common to all the\n"
            "tools, the version.\n");
}

static int print_tensor(const char *name, int ndim, const int64_t *shape, void *user) {
    (void)user;
    printf("%s\t", name);
    for (int i = 0; i < ndim; i++) printf("%s%" PRId64, i ? "," : "", shape[i]);
    printf("\n");
    return 0;
}

/* --list-tensors: libmm's parser is the judge, so a config libmm cannot honour is refused here
 * with the field named, before any tensor is converted. */
static int list_tensors(const char *path) {
    char *text = mm_read_text_file(path);
    if (!text) {
        fprintf(stderr, "%s: cannot read '%s': %s\n", TOOL, path, strerror(errno));
        return 1;
    }
    mm_config cfg;
    char err[1024];
    int rc = mm_config_parse(text, &cfg, err, sizeof err);
    free(text);
    if (rc) {
        fprintf(stderr, "%s: %s: invalid config: %s\n", TOOL, path, err);
        return 1;
    }
    return mm_config_visit_tensors(&cfg, print_tensor, NULL) ? 1 : 0;
}

int main(int argc, char **argv) {
    if (mm_args_general(TOOL, argc, argv, usage, NULL, NULL)) return 0;
    static const struct option opts[] = {
        {"mapping", required_argument, 0, 'm'},    {"config", required_argument, 0, 'c'},
        {"vae-config", required_argument, 0, 'A'}, {"set", required_argument, 0, 'S'},
        {"drop", required_argument, 0, 'D'},       {"state-key", required_argument, 0, 'K'},
        {"dtype", required_argument, 0, 'T'},      {"output", required_argument, 0, 'o'},
        {"dry-run", no_argument, 0, 'n'},          {"quiet", no_argument, 0, 'q'},
        {"inspect", no_argument, 0, 'I'},          {"list-mappings", no_argument, 0, 'L'},
        {"list-tensors", required_argument, 0, 'l'}, {0, 0, 0, 0}};
    const char *out = NULL, *list_cfg = NULL;
    int dry = 0, inspect = 0, list_maps = 0, quiet = 0, o;
    while ((o = getopt_long(argc, argv, "m:c:o:q", opts, NULL)) != -1) {
        switch (o) {
        case 'o': out = optarg; break;
        case 'n': dry = 1; break;
        case 'q': quiet = 1; break;
        case 'I': inspect = 1; break;
        case 'L': list_maps = 1; break;
        case 'l': list_cfg = optarg; break;
        case 'T':
            if (strcmp(optarg, "F32") && strcmp(optarg, "F16") && strcmp(optarg, "BF16")) {
                fprintf(stderr, "%s: --dtype must be F32, F16 or BF16, got '%s'\n", TOOL, optarg);
                return 2;
            }
            break;
        case 'm': case 'c': case 'A': case 'S': case 'D': case 'K': break; /* the converter's */
        default: usage(stderr); return 2;
        }
    }
    if (list_cfg) {
        if (optind != argc) {
            usage(stderr);
            return 2;
        }
        return list_tensors(list_cfg);
    }
    if (!list_maps && optind == argc) {
        fprintf(stderr, "%s: no INPUT checkpoint given\n", TOOL);
        usage(stderr);
        return 2;
    }
    if (!list_maps && !inspect && !out) {
        fprintf(stderr, "%s: no output file given (-o OUT.safetensors)\n", TOOL);
        return 2;
    }

    char script[8192], self[4096];
    mm_tool_data_file("convert/mm_convert.py", "tools/convert/mm_convert.py", script, sizeof script);
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "%s: the converter %s is missing (%s)\n", TOOL, script, strerror(errno));
        return 1;
    }
    const ssize_t sn = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sn <= 0) {
        fprintf(stderr, "%s: cannot find its own executable: %s\n", TOOL, strerror(errno));
        return 1;
    }
    self[sn] = 0;
    const char *py = getenv("MM_PYTHON");
    if (!py || !*py) py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";

    char **av = calloc((size_t)argc + 3, sizeof *av);
    if (!av) return 1;
    av[0] = (char *)py;
    av[1] = script;
    for (int i = 1; i < argc; i++) av[i + 1] = argv[i];
    fflush(NULL);
    const pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: fork: %s\n", TOOL, strerror(errno));
        free(av);
        return 1;
    }
    if (pid == 0) {
        setenv("MM_CONVERT_FRONT", self, 1); /* the converter asks it for --list-tensors */
        execvp(py, av);
        fprintf(stderr, "%s: cannot run %s: %s (set MM_PYTHON to a Python 3 with torch)\n", TOOL,
                py, strerror(errno));
        _exit(127);
    }
    free(av);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            fprintf(stderr, "%s: waitpid: %s\n", TOOL, strerror(errno));
            return 1;
        }
    if (!WIFEXITED(status)) {
        fprintf(stderr, "%s: the converter was killed by signal %d\n", TOOL, WTERMSIG(status));
        return 1;
    }
    if (WEXITSTATUS(status) != 0 || list_maps || inspect || dry) return WEXITSTATUS(status);

    /* the written file must load as every tool will load it */
    mm_model *m;
    char *err = NULL;
    if (mm_model_open(out, &m, &err) != MM_OK) {
        fprintf(stderr, "%s: libmm refuses the converted file, removed: %s\n", TOOL,
                err ? err : "unknown error");
        mm_free(err);
        unlink(out);
        return 1;
    }
    mm_param_count pc;
    mm_model_param_count(m, &pc);
    if (!quiet)
        printf("%s: %s loads in libmm %s: %lld parameters (%lld without the VAE)\n", TOOL, out,
               mm_version(), (long long)pc.total, (long long)(pc.total - pc.vae));
    mm_model_close(m);
    return 0;
}
