/*
 * One scene over many machines, on Slurm (issue 18, item 2): mm_batch plan | chunk | stitch.
 *
 * plan: cuts the processed extent of one translation (mm_translate's command line, given after
 * "--") into chunks whose borders are window origins of the run's grid (mmgeo_grid_origins), so
 * that only the one row or column of windows that crosses a border is computed twice. It writes
 * PLAN/plan.json, a job array script (one chunk per task, SLURM_ARRAY_TASK_ID picks it) and a
 * stitch script, and with --submit runs sbatch for both (the stitch --dependency=afterok on the
 * array).
 * chunk: runs chunk K as mm_translate -srcwin of the chunk's pixels, written as GeoTIFF under
 * PLAN/chunks/, with a stamp as mm_batch's items have: a finished chunk is skipped on a rerun, a
 * failed or pre-empted one (no file under its name: libmmgeo renames only a complete output) is
 * redone alone.
 * stitch: checks every chunk's stamp, builds PLAN/chunks.vrt of the chunks and copies it into the
 * final output (-of, -co as the translation asks) under OUTPUT.part.EXT, renamed when complete.
 *
 * Why the result is the one-process output, bit for bit: libmmgeo's grid, tile ids (the noise
 * addresses) and blending order depend on the full raster only, and a -srcwin run computes every
 * window that touches its pixels and accumulates them in the same order (mmgeo.h: extent
 * independence); each output pixel is therefore computed, rounded and written as in one run.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <errno.h>
#include <gdal.h>
#include <gdal_vrt.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "args.h"
#include "batch.h"
#include "mm.h"
#include "mmgeo.h"
#include "part_file.h"
#include "tool_model.h"
#include "tool_run.h"
#include "tool_stac.h"
#include "translate_cmd.h"

static const char *TOOL = "mm_batch";

void mm_batch_plan_usage(FILE *f) {
    fprintf(f,
            "One scene over a Slurm cluster (see mm_batch(1), docs/batch.md):\n"
            "       mm_batch plan [-q] [--chunks N] [--dir PLAN] [--submit] [--partition P]\n"
            "         [--time T] [--mem M] [--cpus-per-task N] [--account A] [--qos Q]\n"
            "         [--sbatch OPTION]... -- [mm_translate's options] SRC DST\n"
            "       mm_batch chunk PLAN [INDEX]...\n"
            "       mm_batch stitch [-q] PLAN\n"
            "plan splits one translation into N chunks on the model's window grid (default 4)\n"
            "and writes PLAN (default DST.mmplan): plan.json, array.sbatch (a job array, one\n"
            "chunk per task) and stitch.sbatch; --submit submits both with sbatch, the stitch\n"
            "to start once the array has succeeded. chunk runs chunks (INDEX, else the task's\n"
            "$SLURM_ARRAY_TASK_ID), skipping those whose stamp matches; stitch writes DST from\n"
            "the chunks, the same raster as mm_translate's output of the same command.\n");
}

/* ---- small helpers ------------------------------------------------------------------------- */

static char *xstrdup(const char *s) { return strdup(s ? s : ""); }

/* path made absolute against the current directory (not resolved: links stay as given) */
static char *absolute(const char *p) {
    if (p[0] == '/' || !strncmp(p, "/vsi", 4)) return xstrdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return xstrdup(p);
    char *r = malloc(strlen(cwd) + strlen(p) + 2);
    sprintf(r, "%s/%s", cwd, p);
    return r;
}

static char *join(const char *dir, const char *name) {
    char *r = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(r, "%s/%s", dir, name);
    return r;
}

/* a word for sh, single-quoted */
static void sh_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++)
        if (*s == '\'')
            fputs("'\\''", f);
        else
            fputc(*s, f);
    fputc('\'', f);
}

static void no_usage(FILE *f) { (void)f; }

/* ---- the plan file ------------------------------------------------------------------------- */

typedef struct {
    int srcwin[4];  /* the chunk's pixels: xoff yoff xsize ysize of the source raster */
    int windows[4]; /* the grid windows it computes: kx0 ky0 kx1 ky1 (inclusive) */
    char *output;   /* absolute */
} chunk;

typedef struct {
    char *dir;       /* the plan's folder, absolute */
    char *cwd;       /* where the translation's relative paths are resolved */
    char **words;    /* mm_translate's command line (argv[0] "mm_translate"), a GDAL list */
    char *output;    /* the final output, absolute */
    int width, height, window, overlap, extent[4];
    int n;
    chunk *c;
} plan;

static void plan_free(plan *p) {
    free(p->dir), free(p->cwd), free(p->output);
    CSLDestroy(p->words);
    for (int i = 0; i < p->n; i++) free(p->c[i].output);
    free(p->c);
    memset(p, 0, sizeof *p);
}

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]));
    return a;
}

static int get_ints(const cJSON *o, const char *key, int *v, int n) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return -1;
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(x) || x->valuedouble != (int)x->valuedouble) return -1;
        v[i] = (int)x->valuedouble;
    }
    return 0;
}

static int get_int(const cJSON *o, const char *key, int *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x) || x->valuedouble != (int)x->valuedouble) return -1;
    *v = (int)x->valuedouble;
    return 0;
}

static const char *get_str(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int write_plan(const plan *p) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "tool", "mm_batch " MM_VERSION_STRING);
    cJSON_AddNumberToObject(j, "plan_version", 1);
    cJSON_AddStringToObject(j, "cwd", p->cwd);
    cJSON *w = cJSON_AddArrayToObject(j, "translation");
    for (char **q = p->words + 1; *q; q++) cJSON_AddItemToArray(w, cJSON_CreateString(*q));
    cJSON_AddStringToObject(j, "output", p->output);
    cJSON_AddNumberToObject(j, "width", p->width);
    cJSON_AddNumberToObject(j, "height", p->height);
    cJSON_AddNumberToObject(j, "window", p->window);
    cJSON_AddNumberToObject(j, "overlap", p->overlap);
    cJSON_AddItemToObject(j, "extent", int_array(p->extent, 4));
    cJSON *a = cJSON_AddArrayToObject(j, "chunks");
    const size_t dl = strlen(p->dir);
    for (int i = 0; i < p->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", i);
        cJSON_AddItemToObject(o, "srcwin", int_array(p->c[i].srcwin, 4));
        cJSON_AddItemToObject(o, "windows", int_array(p->c[i].windows, 4));
        cJSON_AddStringToObject(o, "output", p->c[i].output + dl + 1); /* relative to the plan */
        cJSON_AddItemToArray(a, o);
    }
    char *path = join(p->dir, "plan.json");
    const int rc = mm_part_write_json(path, j);
    if (rc) fprintf(stderr, "%s: cannot write '%s': %s\n", TOOL, path, strerror(errno));
    free(path);
    cJSON_Delete(j);
    return rc;
}

/* Reads PLAN (the folder, or its plan.json); 0, or -1 after a message. */
static int read_plan(const char *arg, plan *p) {
    memset(p, 0, sizeof *p);
    struct stat st;
    char *path = NULL;
    if (!stat(arg, &st) && S_ISDIR(st.st_mode)) {
        path = join(arg, "plan.json");
        p->dir = realpath(arg, NULL);
    } else {
        path = xstrdup(arg);
        char *d = xstrdup(arg), *slash = strrchr(d, '/');
        if (slash) *slash = 0;
        p->dir = realpath(slash ? (*d ? d : "/") : ".", NULL);
        free(d);
    }
    FILE *f = fopen(path, "rb");
    if (!f || !p->dir) {
        fprintf(stderr, "%s: cannot open the plan '%s': %s (make one with mm_batch plan)\n", TOOL,
                path, strerror(errno));
        if (f) fclose(f);
        free(path);
        plan_free(p);
        return -1;
    }
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 65536 > cap) buf = realloc(buf, cap = 2 * cap + 65536);
        const size_t r = fread(buf + n, 1, cap - n - 1, f);
        if (!r) break;
        n += r;
    }
    fclose(f);
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    const char *bad = NULL;
    if (!cJSON_IsObject(j)) bad = "not a JSON object";
    int ver = 0;
    if (!bad && (get_int(j, "plan_version", &ver) || ver != 1)) bad = "not a plan of this version";
    const char *cwd = bad ? NULL : get_str(j, "cwd"), *out = bad ? NULL : get_str(j, "output");
    if (!bad && (!cwd || !out)) bad = "no \"cwd\" or \"output\"";
    if (!bad && (get_int(j, "width", &p->width) || get_int(j, "height", &p->height) ||
                 get_int(j, "window", &p->window) || get_int(j, "overlap", &p->overlap) ||
                 get_ints(j, "extent", p->extent, 4)))
        bad = "a missing or bad grid field";
    const cJSON *tr = bad ? NULL : cJSON_GetObjectItemCaseSensitive(j, "translation");
    if (!bad && !cJSON_IsArray(tr)) bad = "no \"translation\"";
    if (!bad) {
        p->words = CSLAddString(NULL, "mm_translate");
        const cJSON *x;
        cJSON_ArrayForEach(x, tr) {
            if (!cJSON_IsString(x)) {
                bad = "a \"translation\" word that is not a string";
                break;
            }
            p->words = CSLAddString(p->words, x->valuestring);
        }
    }
    const cJSON *ch = bad ? NULL : cJSON_GetObjectItemCaseSensitive(j, "chunks");
    if (!bad && (!cJSON_IsArray(ch) || cJSON_GetArraySize(ch) < 1)) bad = "no \"chunks\"";
    if (!bad) {
        p->n = cJSON_GetArraySize(ch);
        p->c = calloc((size_t)p->n, sizeof *p->c);
        for (int i = 0; i < p->n && !bad; i++) {
            const cJSON *o = cJSON_GetArrayItem(ch, i);
            const char *co = get_str(o, "output");
            if (!co || get_ints(o, "srcwin", p->c[i].srcwin, 4) ||
                get_ints(o, "windows", p->c[i].windows, 4))
                bad = "a bad chunk";
            else
                p->c[i].output = co[0] == '/' ? xstrdup(co) : join(p->dir, co);
        }
    }
    if (bad) {
        fprintf(stderr, "%s: '%s' is not a plan of mm_batch plan: %s\n", TOOL, path, bad);
        cJSON_Delete(j);
        free(path);
        plan_free(p);
        return -1;
    }
    p->cwd = xstrdup(cwd);
    p->output = xstrdup(out);
    cJSON_Delete(j);
    free(path);
    return 0;
}

/* The plan's translation parsed into c (argv: a copy of the words, which c points into; free both
 * after). 0, or 2 after a message. */
static int parse_translation(const plan *p, mm_translate_cmd *c, char ***argv) {
    *argv = CSLDuplicate(p->words);
    mm_translate_cmd_init(c, TOOL, MM_TR_TRANSLATE);
    const int r = mm_translate_cmd_parse(c, CSLCount(*argv), *argv, no_usage);
    if (r) {
        fprintf(stderr, "%s: the plan's translation does not parse any more\n", TOOL);
        return 2;
    }
    return 0;
}

/* c made into chunk k's run: its pixels as -srcwin, GeoTIFF with mm_translate's default creation
 * options (the final format and -co are the stitch's), the chunk's file as the output. */
static void as_chunk(mm_translate_cmd *c, const plan *p, int k) {
    c->opt.format = "GTiff";
    CSLDestroy(c->opt.co);
    c->opt.co = NULL;
    c->opt.has_projwin = 0;
    c->opt.has_srcwin = 1;
    memcpy(c->opt.srcwin, p->c[k].srcwin, sizeof c->opt.srcwin);
    c->dst_path = p->c[k].output;
    c->stac = 0; /* a STAC item is the final output's (stitch), not a chunk's */
}

/* ---- plan --------------------------------------------------------------------------------- */

/* Cuts [a, b) at the window origins strictly inside it into at most n pieces of about equal
 * numbers of window rows: cut[0] = a < cut[1] < ... < cut[m] = b; returns m. */
static int cut_axis(const int *org, int norg, int a, int b, int n, int *cut) {
    int *bd = malloc(sizeof(int) * (size_t)(norg + 2)), nb = 0;
    bd[nb++] = a;
    for (int k = 0; k < norg; k++)
        if (org[k] > a && org[k] < b && org[k] > bd[nb - 1]) bd[nb++] = org[k];
    bd[nb++] = b;
    const int rows = nb - 1, m = n < rows ? n : rows;
    for (int i = 0; i <= m; i++) cut[i] = bd[(int)((long)i * rows / m)];
    free(bd);
    return m;
}

/* the window range [k0, k1] of origins org touching [a, b) */
static void touching(const int *org, int norg, int S, int a, int b, int *k0, int *k1) {
    int i = 0;
    while (i < norg - 1 && org[i] + S <= a) i++;
    int j = norg - 1;
    while (j > 0 && org[j] >= b) j--;
    *k0 = i, *k1 = j;
}

/* Runs argv (a program and its arguments); its standard output into out (len bytes). Returns its
 * exit status (-1: it could not run, after a message). */
static int run_capture(char *const *argv, char *out, size_t len) {
    int fd[2];
    if (pipe(fd)) return -1;
    fflush(stdout);
    fflush(stderr);
    const pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        fprintf(stderr, "%s: cannot run %s: %s\n", TOOL, argv[0], strerror(errno));
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "%s: cannot run %s: %s\n", TOOL, argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    for (ssize_t r; n + 1 < len && (r = read(fd[0], out + n, len - n - 1)) != 0;) {
        if (r < 0) {
            if (errno == EINTR) continue;
            break;
        }
        n += (size_t)r;
    }
    out[n] = 0;
    char sink[256];
    while (read(fd[0], sink, sizeof sink) > 0) {
    }
    close(fd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* sbatch --parsable [extra] script: the job id, or -1 after a message */
static long submit(const char *script, const char *dependency) {
    char dep[64] = "";
    char *av[6];
    int n = 0;
    av[n++] = "sbatch";
    av[n++] = "--parsable";
    if (dependency) {
        snprintf(dep, sizeof dep, "--dependency=afterok:%s", dependency);
        av[n++] = dep;
        av[n++] = "--kill-on-invalid-dep=yes"; /* a failed chunk cancels the stitch */
    }
    av[n++] = (char *)script;
    av[n] = NULL;
    char out[1024];
    const int rc = run_capture(av, out, sizeof out);
    /* --parsable: "JOBID" or "JOBID;CLUSTER" */
    char *end = NULL;
    const long id = strtol(out, &end, 10);
    if (rc != 0 || end == out || id <= 0 || (*end && *end != ';' && *end != '\n')) {
        if (rc >= 0)
            fprintf(stderr, "%s: sbatch %s failed (exit status %d)%s%s\n", TOOL, script, rc,
                    *out ? ": it said " : "", out);
        return -1;
    }
    return id;
}

/* the #SBATCH lines of the user's options */
typedef struct {
    char **lines;
} sbatch_opts;

static int write_script(const char *path, const plan *p, const char *exe, const sbatch_opts *so,
                        int array) {
    FILE *f = mm_part_open(path, "w");
    if (!f) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", TOOL, path, strerror(errno));
        return -1;
    }
    fprintf(f, "#!/bin/sh\n");
    if (array) {
        fprintf(f, "#SBATCH --job-name=mm-chunks\n#SBATCH --array=0-%d\n", p->n - 1);
        fprintf(f, "#SBATCH --output=%s/logs/chunk-%%a.log\n", p->dir);
    } else {
        fprintf(f, "#SBATCH --job-name=mm-stitch\n#SBATCH --output=%s/logs/stitch.log\n", p->dir);
    }
    for (char **l = so->lines; l && *l; l++) fprintf(f, "#SBATCH %s\n", *l);
    if (array)
        fprintf(f, "# Written by mm_batch plan: one chunk of %s per task of the array\n"
                   "# ($SLURM_ARRAY_TASK_ID); a chunk already done (its stamp matches) is skipped.\n"
                   "# Rerun chunks alone: sbatch --array=2,5 %s/array.sbatch\n",
                p->output, p->dir);
    else
        fprintf(f, "# Written by mm_batch plan: the chunks of the job array into %s\n"
                   "# (submitted with --dependency=afterok:ARRAY_JOB_ID).\n",
                p->output);
    fprintf(f, "exec ");
    sh_quote(f, exe);
    fprintf(f, array ? " chunk " : " stitch ");
    sh_quote(f, p->dir);
    fputc('\n', f);
    if (mm_part_commit(f, path) || chmod(path, 0755)) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", TOOL, path, strerror(errno));
        return -1;
    }
    return 0;
}

static int safe_for_sbatch(const char *s) { return !strpbrk(s, " \t\n\r%'\"\\"); }

static int plan_main(int argc, char **argv) {
    enum { O_CHUNKS = 256, O_DIR, O_SUBMIT, O_SBATCH, O_HELP };
    static const struct option opts[] = {{"chunks", required_argument, 0, O_CHUNKS},
                                         {"dir", required_argument, 0, O_DIR},
                                         {"submit", no_argument, 0, O_SUBMIT},
                                         {"partition", required_argument, 0, 'p'},
                                         {"time", required_argument, 0, 't'},
                                         {"mem", required_argument, 0, 'm'},
                                         {"cpus-per-task", required_argument, 0, 'c'},
                                         {"account", required_argument, 0, 'A'},
                                         {"qos", required_argument, 0, 'Q'},
                                         {"sbatch", required_argument, 0, O_SBATCH},
                                         {"help", no_argument, 0, O_HELP},
                                         {0, 0, 0, 0}};
    int n_chunks = 4, do_submit = 0, quiet = 0, bad = 0, o;
    const char *dir = NULL;
    sbatch_opts so = {NULL};
    optind = 0;
    while ((o = getopt_long_only(argc, argv, "+q", opts, NULL)) != -1) {
        const char *name = NULL;
        switch (o) {
        case 'q': quiet = 1; break;
        case O_CHUNKS: bad |= mm_arg_int(TOOL, "--chunks", optarg, 1, 100000, &n_chunks); break;
        case O_DIR: dir = optarg; break;
        case O_SUBMIT: do_submit = 1; break;
        case O_HELP:
            mm_batch_plan_usage(stdout);
            CSLDestroy(so.lines);
            return 0;
        case 'p': name = "partition"; break;
        case 't': name = "time"; break;
        case 'm': name = "mem"; break;
        case 'c': name = "cpus-per-task"; break;
        case 'A': name = "account"; break;
        case 'Q': name = "qos"; break;
        case O_SBATCH:
            if (optarg[0] != '-' || strchr(optarg, '\n')) {
                fprintf(stderr, "%s: --sbatch takes one sbatch option (e.g. --sbatch=--constraint=avx512), "
                                "not '%s'\n", TOOL, optarg);
                bad = 1;
            } else
                so.lines = CSLAddString(so.lines, optarg);
            break;
        default:
            fprintf(stderr, "%s: plan: mm_translate's options come after '--': mm_batch plan "
                            "[OPTIONS] -- [mm_translate's options] SRC DST\n", TOOL);
            bad = 1;
            break;
        }
        if (name) {
            if (!*optarg || strchr(optarg, '\n') || strchr(optarg, ' ')) {
                fprintf(stderr, "%s: --%s '%s': not a value for sbatch\n", TOOL, name, optarg);
                bad = 1;
            } else
                so.lines = CSLAddString(so.lines, CPLSPrintf("--%s=%s", name, optarg));
        }
    }
    if (!bad && (optind < 2 || strcmp(argv[optind - 1], "--"))) {
        fprintf(stderr, "%s: plan: the translation comes after '--', as mm_translate takes it: "
                        "mm_batch plan [OPTIONS] -- [mm_translate's options] SRC DST\n", TOOL);
        bad = 1;
    }
    if (bad) {
        CSLDestroy(so.lines);
        return 2;
    }
    /* the translation, checked by mm_translate's own parser */
    plan p;
    memset(&p, 0, sizeof p);
    p.words = CSLAddString(NULL, "mm_translate");
    for (int i = optind; i < argc; i++) p.words = CSLAddString(p.words, argv[i]);
    char **av = CSLDuplicate(p.words);
    mm_translate_cmd c;
    mm_translate_cmd_init(&c, TOOL, MM_TR_TRANSLATE);
    int rc = 2;
    mm_tool_model tm = {0};
    GDALDatasetH ds = NULL;
    int *ox = NULL, *oy = NULL;
    const int pr = mm_translate_cmd_parse(&c, CSLCount(av), av, no_usage);
    if (pr == 1) {
        fprintf(stderr, "%s: --help and --version are not options of the translation\n", TOOL);
        goto done;
    }
    if (pr) goto done;
    const char *refuse = c.opt.gsd > 0   ? "--gsd (its warped result is not bit-identical by region)"
                         : c.opt.aoi     ? "--aoi (chunks outside the area would fail)"
                         : c.opt.seamless ? "--seamless (its margins make chunks cost whole scenes)"
                         : c.opt.samples.samples > 1 && c.opt.samples.spread == MMGEO_SPREAD_SIDECAR
                             ? "--samples with the spread in a sidecar (give --spread band)"
                             : NULL;
    if (refuse) {
        fprintf(stderr, "%s: plan: %s is not supported in a plan; run mm_translate\n", TOOL, refuse);
        goto done;
    }
    rc = 1;
    GDALAllRegister();
    char err[2048];
    {
        GDALDriverH drv = mmgeo_output_driver(c.opt.format, c.dst_path, err, sizeof err);
        if (!drv || mmgeo_check_creation_options(drv, c.opt.co, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto done;
        }
    }
    const char *src = c.src_path[0];
    if (!(ds = mm_tool_open_raster(TOOL, src))) goto done;
    p.width = GDALGetRasterXSize(ds), p.height = GDALGetRasterYSize(ds);
    GDALClose(ds);
    ds = NULL;
    if (mm_tool_model_open(TOOL, c.opt.model_path, &tm)) goto done;
    p.window = strcmp(c.processor, "model") && c.window ? c.window : mm_model_image_size(tm.model);
    p.overlap = c.opt.overlap < 0 ? p.window / 4 : c.opt.overlap;
    if (p.overlap >= p.window) {
        fprintf(stderr, "%s: the overlap (%d) must be less than the window (%d)\n", TOOL, p.overlap,
                p.window);
        goto done;
    }
    mmgeo_job job;
    mmgeo_job_init(&job);
    if (mm_tool_srcwin(&c.opt, src, &job)) goto done;
    if (job.has_srcwin) {
        memcpy(p.extent, job.srcwin, sizeof p.extent);
        if (p.extent[0] < 0 || p.extent[1] < 0 || p.extent[2] < 1 || p.extent[3] < 1 ||
            p.extent[0] > p.width - p.extent[2] || p.extent[1] > p.height - p.extent[3]) {
            fprintf(stderr, "%s: -srcwin %d %d %d %d is not inside the %dx%d raster\n", TOOL,
                    p.extent[0], p.extent[1], p.extent[2], p.extent[3], p.width, p.height);
            goto done;
        }
    } else
        p.extent[0] = p.extent[1] = 0, p.extent[2] = p.width, p.extent[3] = p.height;

    /* the chunks: bands of window rows, and columns when there are more chunks than rows */
    const int S = p.window, O = p.overlap;
    const int nx = mmgeo_grid_origins(p.width, S, O, NULL, 0),
              ny = mmgeo_grid_origins(p.height, S, O, NULL, 0);
    ox = malloc(sizeof(int) * (size_t)nx), oy = malloc(sizeof(int) * (size_t)ny);
    mmgeo_grid_origins(p.width, S, O, ox, nx);
    mmgeo_grid_origins(p.height, S, O, oy, ny);
    const int x0 = p.extent[0], y0 = p.extent[1], x1 = x0 + p.extent[2], y1 = y0 + p.extent[3];
    int *cy = malloc(sizeof(int) * (size_t)(ny + 2)), *cx = malloc(sizeof(int) * (size_t)(nx + 2));
    const int my = cut_axis(oy, ny, y0, y1, n_chunks, cy);
    const int mx = cut_axis(ox, nx, x0, x1, n_chunks / my, cx);
    p.n = mx * my;
    p.c = calloc((size_t)p.n, sizeof *p.c);
    long long computed = 0;
    {
        int k0, k1, l0, l1;
        touching(ox, nx, S, x0, x1, &k0, &k1);
        touching(oy, ny, S, y0, y1, &l0, &l1);
        const long long one = (long long)(k1 - k0 + 1) * (l1 - l0 + 1);
        /* the folder and the chunks' names */
        char *dst_abs = absolute(c.dst_path);
        char *d = dir ? xstrdup(dir) : NULL;
        if (!d) {
            d = malloc(strlen(c.dst_path) + 8);
            sprintf(d, "%s.mmplan", c.dst_path);
        }
        if (mkdir(d, 0777) && errno != EEXIST) {
            fprintf(stderr, "%s: cannot make the plan folder '%s': %s\n", TOOL, d, strerror(errno));
            free(d), free(dst_abs), free(cx), free(cy);
            goto done;
        }
        p.dir = realpath(d, NULL);
        free(d);
        char cwd[PATH_MAX];
        p.cwd = xstrdup(getcwd(cwd, sizeof cwd) ? cwd : "/");
        p.output = dst_abs;
        if (!p.dir || !safe_for_sbatch(p.dir)) {
            fprintf(stderr, "%s: the plan folder '%s' %s\n", TOOL, p.dir ? p.dir : dir,
                    p.dir ? "has a blank, quote, backslash or %% in its path, which #SBATCH "
                            "lines cannot hold; choose another with --dir"
                          : "cannot be resolved");
            free(cx), free(cy);
            goto done;
        }
        for (int j = 0; j < my; j++)
            for (int i = 0; i < mx; i++) {
                chunk *q = &p.c[j * mx + i];
                q->srcwin[0] = cx[i], q->srcwin[1] = cy[j];
                q->srcwin[2] = cx[i + 1] - cx[i], q->srcwin[3] = cy[j + 1] - cy[j];
                touching(ox, nx, S, cx[i], cx[i + 1], &q->windows[0], &q->windows[2]);
                touching(oy, ny, S, cy[j], cy[j + 1], &q->windows[1], &q->windows[3]);
                computed += (long long)(q->windows[2] - q->windows[0] + 1) *
                            (q->windows[3] - q->windows[1] + 1);
                /* the output's name in the chunk's, which may be what tells the target
                   modality (out_rgb.tif: rgb) */
                const char *base = strrchr(c.dst_path, '/');
                base = base ? base + 1 : c.dst_path;
                const char *dot = strrchr(base, '.');
                char name[1100];
                snprintf(name, sizeof name, "chunks/chunk-%04d_%.*s.tif", j * mx + i,
                         dot && dot != base ? (int)(dot - base) : (int)strlen(base), base);
                q->output = join(p.dir, name);
            }
        free(cx), free(cy);
        char *sub[2] = {join(p.dir, "chunks"), join(p.dir, "logs")};
        for (int i = 0; i < 2; i++) {
            if (mkdir(sub[i], 0777) && errno != EEXIST) {
                fprintf(stderr, "%s: cannot make '%s': %s\n", TOOL, sub[i], strerror(errno));
                free(sub[0]), free(sub[1]);
                goto done;
            }
        }
        free(sub[0]), free(sub[1]);
        if (!quiet) {
            fprintf(stderr,
                    "%s: plan: %d chunk%s (%d x %d) of the %d x %d pixels of '%s' on the grid of "
                    "%d-pixel windows (overlap %d): %lld window runs against %lld in one process "
                    "(%+.0f %%)\n",
                    TOOL, p.n, p.n == 1 ? "" : "s", mx, my, p.extent[2], p.extent[3], src, S, O,
                    computed, one, 100.0 * (double)(computed - one) / (double)one);
            if (p.n < n_chunks)
                fprintf(stderr, "%s: plan: %d chunks asked, but the extent has room for %d on its "
                                "window grid\n", TOOL, n_chunks, p.n);
        }
    }
    char exe[PATH_MAX];
    const ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0) {
        fprintf(stderr, "%s: cannot find my own executable (/proc/self/exe)\n", TOOL);
        goto done;
    }
    exe[el] = 0;
    char *pa = join(p.dir, "array.sbatch"), *ps = join(p.dir, "stitch.sbatch");
    if (write_plan(&p) || write_script(pa, &p, exe, &so, 1) || write_script(ps, &p, exe, &so, 0)) {
        free(pa), free(ps);
        goto done;
    }
    rc = 0;
    if (do_submit) {
        const long a = submit(pa, NULL);
        char id[32];
        snprintf(id, sizeof id, "%ld", a);
        const long s = a > 0 ? submit(ps, id) : -1;
        if (a > 0 && s > 0)
            printf("%s\narray job %ld (%d tasks), stitch job %ld\n", p.dir, a, p.n, s);
        else
            rc = 1;
    } else
        printf("%s\n", p.dir);
    if (!quiet && !rc)
        fprintf(stderr, "%s: plan: %s; %s\n", TOOL, p.dir,
                do_submit ? "submitted"
                          : "submit with: id=$(sbatch --parsable PLAN/array.sbatch) && sbatch "
                            "--dependency=afterok:$id PLAN/stitch.sbatch (or mm_batch plan --submit)");
    free(pa), free(ps);
done:
    free(ox), free(oy);
    mm_model_close(tm.model);
    mm_translate_cmd_free(&c);
    CSLDestroy(av);
    CSLDestroy(so.lines);
    plan_free(&p);
    return rc;
}

/* ---- chunk -------------------------------------------------------------------------------- */

static int run_chunk(const plan *p, int k) {
    mm_translate_cmd c;
    char **av = NULL;
    int rc = parse_translation(p, &c, &av);
    cJSON *fields = NULL;
    char *key = NULL, *sp = NULL;
    if (rc) goto out;
    as_chunk(&c, p, k);
    const char *sc = getenv("SLURM_CPUS_PER_TASK"); /* the task's cores, not the node's */
    if (c.opt.threads == 0 && sc && atoi(sc) > 0) c.opt.threads = atoi(sc);
    const int *w = p->c[k].srcwin;
    char task[128];
    snprintf(task, sizeof task, "chunk %d of %d: -srcwin %d %d %d %d", k, p->n, w[0], w[1], w[2],
             w[3]);
    key = mm_batch_stamp_key_sources(&c, &fields); /* every source: a change to any redoes it */
    sp = mm_batch_stamp_path(c.dst_path);
    if (key && mm_batch_stamp_matches(sp, key, c.dst_path)) {
        fprintf(stderr, "%s: %s: up to date (its stamp matches), skipped\n", TOOL, task);
        rc = 0;
        goto out;
    }
    if (unlink(sp) && errno != ENOENT) {
        fprintf(stderr, "%s: cannot remove the stale stamp '%s': %s\n", TOOL, sp, strerror(errno));
        rc = 1;
        goto out;
    }
    const double t0 = mm_now_seconds();
    rc = mm_translate_cmd_run(&c, TOOL);
    if (rc == 0) {
        if (!key) {
            cJSON_Delete(fields);
            fields = NULL;
            key = mm_batch_stamp_key_sources(&c, &fields);
        }
        if (!key || mm_batch_write_stamp(sp, key, fields, c.src_path[0], task, c.dst_path))
            rc = 1;
        else
            fprintf(stderr, "%s: %s: done in %.1f s\n", TOOL, task, mm_now_seconds() - t0);
    } else
        fprintf(stderr, "%s: %s: failed\n", TOOL, task);
out:
    cJSON_Delete(fields);
    free(key), free(sp);
    mm_translate_cmd_free(&c);
    CSLDestroy(av);
    return rc;
}

static int chunk_main(int argc, char **argv) {
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "%s: usage: mm_batch chunk PLAN [INDEX]...\n", TOOL);
        return 2;
    }
    plan p;
    if (read_plan(argv[1], &p)) return 2;
    int n = argc - 2, *idx = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1)), rc = 0;
    const char *env = getenv("SLURM_ARRAY_TASK_ID");
    if (n == 0) {
        if (!env) {
            fprintf(stderr, "%s: chunk: no INDEX and no $SLURM_ARRAY_TASK_ID\n", TOOL);
            rc = 2;
        } else if (mm_arg_int(TOOL, "$SLURM_ARRAY_TASK_ID", env, 0, p.n - 1, &idx[0]))
            rc = 2;
        n = 1;
    } else
        for (int i = 0; i < n && !rc; i++)
            if (mm_arg_int(TOOL, "INDEX", argv[2 + i], 0, p.n - 1, &idx[i])) rc = 2;
    if (!rc && chdir(p.cwd)) {
        fprintf(stderr, "%s: cannot enter the plan's working folder '%s': %s\n", TOOL, p.cwd,
                strerror(errno));
        rc = 1;
    }
    for (int i = 0; i < n && !rc; i++) {
        const int r = run_chunk(&p, idx[i]);
        if (r) rc = r;
    }
    free(idx);
    plan_free(&p);
    return rc;
}

/* ---- stitch ------------------------------------------------------------------------------- */

static const char *gdal_msg(void) {
    const char *m = CPLGetLastErrorMsg();
    return m && *m ? m : "GDAL gave no reason";
}

/* PLAN/chunks.vrt: the chunks at their places, with the georeferencing, nodata, mask and
 * metadata of the first (which starts at the extent's origin, so has the output's geotransform
 * or GCPs). 0, or -1 after a message. */
static int build_vrt(const plan *p, const char *vrt_path) {
    GDALDatasetH *cd = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *cd);
    int rc = -1;
    GDALDatasetH v = NULL;
    char err[2048];
    for (int i = 0; i < p->n; i++)
        if (!(cd[i] = mmgeo_open_raster(p->c[i].output, err, sizeof err))) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto out;
        }
    const int nb = GDALGetRasterCount(cd[0]);
    const GDALDataType type = GDALGetRasterDataType(GDALGetRasterBand(cd[0], 1));
    int any_mask = 0;
    for (int i = 0; i < p->n; i++) {
        const int *w = p->c[i].srcwin;
        if (GDALGetRasterCount(cd[i]) != nb || GDALGetRasterXSize(cd[i]) != w[2] ||
            GDALGetRasterYSize(cd[i]) != w[3] ||
            GDALGetRasterDataType(GDALGetRasterBand(cd[i], 1)) != type) {
            fprintf(stderr, "%s: the chunk '%s' is not the plan's (%d x %d pixels, %d bands)\n",
                    TOOL, p->c[i].output, w[2], w[3], nb);
            goto out;
        }
        if (GDALGetMaskFlags(GDALGetRasterBand(cd[i], 1)) == GMF_PER_DATASET) any_mask = 1;
    }
    CPLErrorReset();
    v = GDALCreate(GDALGetDriverByName("VRT"), vrt_path, p->extent[2], p->extent[3], nb, type,
                   NULL);
    if (!v) {
        fprintf(stderr, "%s: cannot create '%s': %s\n", TOOL, vrt_path, gdal_msg());
        goto out;
    }
    double gt[6];
    if (GDALGetGeoTransform(cd[0], gt) == CE_None) {
        GDALSetGeoTransform(v, gt);
        if (GDALGetSpatialRef(cd[0])) GDALSetSpatialRef(v, GDALGetSpatialRef(cd[0]));
    } else if (GDALGetGCPCount(cd[0]) > 0)
        GDALSetGCPs2(v, GDALGetGCPCount(cd[0]), GDALGetGCPs(cd[0]), GDALGetGCPSpatialRef(cd[0]));
    GDALSetMetadata(v, GDALGetMetadata(cd[0], NULL), NULL);
    for (int b = 1; b <= nb; b++) {
        GDALRasterBandH vb = GDALGetRasterBand(v, b), b0 = GDALGetRasterBand(cd[0], b);
        int has = 0;
        const double nd = GDALGetRasterNoDataValue(b0, &has);
        if (has) GDALSetRasterNoDataValue(vb, nd);
        GDALSetRasterColorInterpretation(vb, GDALGetRasterColorInterpretation(b0));
        const char *ut = GDALGetRasterUnitType(b0);
        if (ut && *ut) GDALSetRasterUnitType(vb, ut);
        const char *desc = GDALGetDescription(b0);
        if (desc && *desc) GDALSetDescription(vb, desc);
        GDALSetMetadata(vb, GDALGetMetadata(b0, NULL), NULL);
        for (int i = 0; i < p->n; i++) {
            const int *w = p->c[i].srcwin;
            if (VRTAddSimpleSource(vb, GDALGetRasterBand(cd[i], b), 0, 0, w[2], w[3],
                                   w[0] - p->extent[0], w[1] - p->extent[1], w[2], w[3], NULL,
                                   VRT_NODATA_UNSET) != CE_None) {
                fprintf(stderr, "%s: cannot add '%s' to '%s': %s\n", TOOL, p->c[i].output,
                        vrt_path, gdal_msg());
                goto out;
            }
        }
    }
    if (any_mask) { /* the run's per-dataset mask; all valid where a chunk has none */
        if (GDALCreateDatasetMaskBand(v, GMF_PER_DATASET) != CE_None) {
            fprintf(stderr, "%s: cannot make the mask of '%s': %s\n", TOOL, vrt_path, gdal_msg());
            goto out;
        }
        GDALRasterBandH mb = GDALGetMaskBand(GDALGetRasterBand(v, 1));
        for (int i = 0; i < p->n; i++) {
            const int *w = p->c[i].srcwin;
            GDALRasterBandH b1 = GDALGetRasterBand(cd[i], 1);
            const int dx = w[0] - p->extent[0], dy = w[1] - p->extent[1];
            const CPLErr e =
                GDALGetMaskFlags(b1) == GMF_PER_DATASET
                    ? VRTAddSimpleSource(mb, GDALGetMaskBand(b1), 0, 0, w[2], w[3], dx, dy, w[2],
                                         w[3], NULL, VRT_NODATA_UNSET)
                    : VRTAddComplexSource(mb, b1, 0, 0, w[2], w[3], dx, dy, w[2], w[3], 255.0, 0.0,
                                          VRT_NODATA_UNSET);
            if (e != CE_None) {
                fprintf(stderr, "%s: cannot add the mask of '%s': %s\n", TOOL, p->c[i].output,
                        gdal_msg());
                goto out;
            }
        }
    }
    CPLErrorReset();
    GDALClose(v); /* writes the file */
    v = NULL;
    if (CPLGetLastErrorType() == CE_Failure) {
        fprintf(stderr, "%s: cannot write '%s': %s\n", TOOL, vrt_path, gdal_msg());
        goto out;
    }
    rc = 0;
out:
    if (v) GDALClose(v);
    for (int i = 0; i < p->n; i++)
        if (cd[i]) GDALClose(cd[i]);
    free(cd);
    return rc;
}

/* the temporary output and its side-cars */
static void delete_part(GDALDriverH drv, const char *part) {
    VSIStatBufL st;
    if (VSIStatL(part, &st) != 0) return;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    if (GDALDeleteDataset(drv, part) != CE_None) VSIUnlink(part);
    CPLPopErrorHandler();
}

static int stitch_main(int argc, char **argv) {
    int quiet = 0, a = 1;
    if (a < argc && !strcmp(argv[a], "-q")) quiet = 1, a++;
    if (argc - a != 1 || argv[a][0] == '-') {
        fprintf(stderr, "%s: usage: mm_batch stitch [-q] PLAN\n", TOOL);
        return 2;
    }
    plan p;
    if (read_plan(argv[a], &p)) return 2;
    mm_translate_cmd c;
    char **av = NULL;
    int rc = parse_translation(&p, &c, &av);
    char *key = NULL, *sp = NULL, *vrt = NULL, *part = NULL;
    cJSON *fields = NULL;
    GDALDatasetH vd = NULL, od = NULL;
    char **co = NULL;
    if (rc) goto out;
    rc = 1;
    if (chdir(p.cwd)) {
        fprintf(stderr, "%s: cannot enter the plan's working folder '%s': %s\n", TOOL, p.cwd,
                strerror(errno));
        goto out;
    }
    const char *src = c.src_path[0], *dst = p.output;
    char in_hex[MMGEO_MAX_IO][65], model_hex[65], err[2048];
    const char *hexes[MMGEO_MAX_IO];
    for (int i = 0; i < c.n_src; i++) { /* every source (SAR and another modality, ...) */
        if (mmgeo_sha256_file(c.src_path[i], in_hex[i], err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", TOOL, err);
            goto out;
        }
        hexes[i] = in_hex[i];
    }
    if (c.n_src < 1 || mmgeo_sha256_file(c.opt.model_path, model_hex, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", TOOL, c.n_src < 1 ? "the plan's translation has no source" : err);
        goto out;
    }
    /* the final output's stamp: the whole translation's, as an mm_batch item of it would have */
    key = mm_batch_stamp_key_hexes(&c, hexes, c.n_src, model_hex, &fields);
    sp = mm_batch_stamp_path(dst);
    if (mm_batch_stamp_matches(sp, key, dst)) {
        if (!quiet) fprintf(stderr, "%s: stitch: '%s' is up to date (its stamp matches)\n", TOOL, dst);
        rc = 0;
        goto out;
    }
    /* every chunk there, made by this plan's translation from this input and model */
    char missing[1024] = "";
    int n_missing = 0;
    for (int k = 0; k < p.n; k++) {
        mm_translate_cmd ck;
        char **cav = NULL;
        if (parse_translation(&p, &ck, &cav)) {
            CSLDestroy(cav);
            goto out;
        }
        as_chunk(&ck, &p, k);
        cJSON *f = NULL;
        char *kk = mm_batch_stamp_key_hexes(&ck, hexes, c.n_src, model_hex, &f);
        char *ksp = mm_batch_stamp_path(ck.dst_path);
        if (!mm_batch_stamp_matches(ksp, kk, ck.dst_path)) {
            const size_t l = strlen(missing);
            if (l < sizeof missing - 16) snprintf(missing + l, sizeof missing - l, "%s%d", l ? "," : "", k);
            n_missing++;
        }
        cJSON_Delete(f);
        free(kk), free(ksp);
        mm_translate_cmd_free(&ck);
        CSLDestroy(cav);
    }
    if (n_missing) {
        fprintf(stderr,
                "%s: stitch: %d of the %d chunks %s missing or out of date: %s; run them again "
                "(sbatch --array=%s %s/array.sbatch, or mm_batch chunk %s INDEX), then stitch\n",
                TOOL, n_missing, p.n, n_missing == 1 ? "is" : "are", missing, missing, p.dir, p.dir);
        goto out;
    }
    GDALAllRegister();
    vrt = join(p.dir, "chunks.vrt");
    if (build_vrt(&p, vrt)) goto out;
    vd = mmgeo_open_raster(vrt, err, sizeof err);
    if (!vd) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto out;
    }
    GDALDriverH drv = mmgeo_output_driver(c.opt.format, dst, err, sizeof err);
    if (!drv) {
        fprintf(stderr, "%s: %s\n", TOOL, err);
        goto out;
    }
    co = mmgeo_output_options(drv, c.opt.co, GDALGetRasterCount(vd),
                              GDALGetRasterDataType(GDALGetRasterBand(vd, 1)));
    /* DST.part.EXT: GDAL renames a file set (out.tif.part.tif.msk too) only when the names
       correspond */
    const char *base = strrchr(dst, '/'), *dot = strrchr(base ? base : dst, '.');
    part = malloc(strlen(dst) + 8 + (dot ? strlen(dot) : 0));
    sprintf(part, "%s.part%s", dst, dot && dot[1] ? dot : "");
    delete_part(drv, part); /* of a stitch killed before */
    const double t0 = mm_now_seconds();
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    od = GDALCreateCopy(drv, part, vd, FALSE, co, quiet ? GDALDummyProgress : GDALTermProgress,
                        NULL);
    CPLPopErrorHandler();
    int bad = !od;
    if (od) {
        CPLErrorReset();
        GDALClose(od);
        bad = CPLGetLastErrorType() == CE_Failure;
    }
    od = NULL;
    if (bad) {
        fprintf(stderr, "%s: stitch: cannot write '%s' as %s: %s\n", TOOL, dst,
                GDALGetDriverShortName(drv), gdal_msg());
        delete_part(drv, part);
        goto out;
    }
    /* side-cars of an older file that the new one lacks (GDAL renames those it has: an external
       mask .msk, which GTiff writes unless GDAL_TIFF_INTERNAL_MASK, as mm_translate's run) */
    static const char *const side[2] = {".aux.xml", ".msk"};
    for (int i = 0; i < 2; i++) {
        char old[4200], neu[4200];
        snprintf(old, sizeof old, "%s%s", dst, side[i]);
        snprintf(neu, sizeof neu, "%s%s", part, side[i]);
        struct stat st;
        if (stat(neu, &st)) unlink(old);
    }
    if (unlink(sp) && errno != ENOENT) {
        fprintf(stderr, "%s: cannot remove the stale stamp '%s': %s\n", TOOL, sp, strerror(errno));
        delete_part(drv, part);
        goto out;
    }
    CPLErrorReset();
    CPLPushErrorHandler(CPLQuietErrorHandler);
    const CPLErr re = GDALRenameDataset(drv, dst, part);
    CPLPopErrorHandler();
    if (re != CE_None) {
        fprintf(stderr, "%s: cannot rename '%s' to '%s': %s\n", TOOL, part, dst, gdal_msg());
        delete_part(drv, part);
        goto out;
    }
    if (mm_batch_write_stamp(sp, key, fields, src, "mm_batch stitch", dst)) goto out;
    /* --stac of the translation: the item of the output, as mm_translate writes it */
    if (c.stac && mm_tool_stac_item(TOOL, dst)) goto out;
    if (!quiet)
        fprintf(stderr, "%s: stitch: %d chunks into '%s' (%s) in %.1f s\n", TOOL, p.n, dst,
                GDALGetDriverShortName(drv), mm_now_seconds() - t0);
    rc = 0;
out:
    if (vd) GDALClose(vd);
    CSLDestroy(co);
    cJSON_Delete(fields);
    free(key), free(sp), free(vrt), free(part);
    mm_translate_cmd_free(&c);
    CSLDestroy(av);
    plan_free(&p);
    return rc;
}

int mm_batch_plan_main(int argc, char **argv) {
    if (!strcmp(argv[0], "plan")) return plan_main(argc, argv);
    if (!strcmp(argv[0], "chunk")) return chunk_main(argc, argv);
    return stitch_main(argc, argv);
}
