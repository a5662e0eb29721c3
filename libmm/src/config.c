/* The model config (docs/model-format.md): parsing, validation and the implied tensors. */
#include "config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- limits ------------------------------------------------------------------------------ */

#define MAX_SIZE (1 << 20) /* any size or channel count */
#define MAX_HIDDEN 65536
#define MAX_DEPTH 1000 /* scene_depth, gen_depth, layers_per_block */
#define MAX_BRANCHES 1024
#define MAX_STEPS 65535      /* the noise counter holds the step in 16 bits */
#define MAX_TOKENS (1 << 24) /* tokens per modality */

/* ---- errors ------------------------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t len;
} errbuf;

static int fail(errbuf *e, const char *fmt, ...) {
    if (e->buf && e->len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf, e->len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---- JSON helpers ------------------------------------------------------------------------ */

static const char *type_name(const cJSON *v) {
    if (cJSON_IsNull(v)) return "null";
    if (cJSON_IsBool(v)) return "a boolean";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsObject(v)) return "an object";
    return "invalid";
}

/* Object keys must be unique and belong to `allowed` (NULL-terminated), unless `ignore_ok`
 * accepts them (diffusers' extra keys). */
static int check_keys(errbuf *e, const cJSON *obj, const char *path, const char *const *allowed,
                      int (*ignore_ok)(const char *key)) {
    for (const cJSON *c = obj->child; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        for (const cJSON *d = obj->child; d != c; d = d->next)
            if (d->string && strcmp(d->string, k) == 0)
                return fail(e, "%s%s%s: duplicate key", path, *path ? "." : "", k);
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, k) == 0) ok = 1;
        if (!ok && ignore_ok && ignore_ok(k)) ok = 1;
        if (!ok)
            return fail(e, "%s%s%s: unknown key%s%s", path, *path ? "." : "", k,
                        *path ? " in " : "", path);
    }
    return 0;
}

/* The member `key` of obj, or NULL (and an error if required). Path is "parent.key". */
static const cJSON *member(errbuf *e, const cJSON *obj, const char *parent, const char *key,
                           int required, int *rc) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v && required) {
        *rc = fail(e, "%s%s%s: missing required key", parent, *parent ? "." : "", key);
    }
    return v;
}

/* A JSON integer value in [lo, hi]. `path` names it in messages. */
static int get_int_value(errbuf *e, const cJSON *v, const char *path, long lo, long hi, int *out) {
    if (!cJSON_IsNumber(v)) return fail(e, "%s must be an integer, not %s", path, type_name(v));
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) return fail(e, "%s (%g) must be an integer", path, d);
    if (d < (double)lo || d > (double)hi)
        return fail(e, "%s (%.0f) must be in [%ld, %ld]", path, d, lo, hi);
    *out = (int)d;
    return 0;
}

static int get_int(errbuf *e, const cJSON *obj, const char *parent, const char *key, int required,
                   int def, long lo, long hi, int *out) {
    int rc = 0;
    const cJSON *v = member(e, obj, parent, key, required, &rc);
    if (rc) return rc;
    if (!v) {
        *out = def;
        return 0;
    }
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", parent, *parent ? "." : "", key);
    return get_int_value(e, v, path, lo, hi, out);
}

static int get_bool(errbuf *e, const cJSON *obj, const char *parent, const char *key, int def,
                    int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v))
        return fail(e, "%s.%s must be a boolean, not %s", parent, key, type_name(v));
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return 0;
}

/* A finite number. `null_ok`: JSON null means the default (diffusers writes null). */
static int get_number(errbuf *e, const cJSON *obj, const char *parent, const char *key,
                      int required, int null_ok, double def, double *out) {
    int rc = 0;
    const cJSON *v = member(e, obj, parent, key, required, &rc);
    if (rc) return rc;
    if (!v || (null_ok && cJSON_IsNull(v))) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsNumber(v))
        return fail(e, "%s%s%s must be a number, not %s", parent, *parent ? "." : "", key,
                    type_name(v));
    if (!isfinite(v->valuedouble))
        return fail(e, "%s%s%s must be finite", parent, *parent ? "." : "", key);
    *out = v->valuedouble;
    return 0;
}

/* A float field: the value must also be representable as a finite float. */
static int to_float(errbuf *e, const char *path, double d, float *out) {
    if (fabs(d) > 3.0e38) return fail(e, "%s (%g) is out of range", path, d);
    *out = (float)d;
    return 0;
}

/* An array of n_min..n_max integers in [lo, hi]. */
static int get_int_array(errbuf *e, const cJSON *obj, const char *parent, const char *key,
                         int n_min, int n_max, long lo, long hi, int *out, int *n_out) {
    int rc = 0;
    const cJSON *v = member(e, obj, parent, key, 1, &rc);
    if (rc) return rc;
    char path[96];
    snprintf(path, sizeof path, "%s%s%s", parent, *parent ? "." : "", key);
    if (!cJSON_IsArray(v)) return fail(e, "%s must be an array, not %s", path, type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n < n_min || n > n_max)
        return fail(e, "%s has %d entries; it must have %d to %d", path, n, n_min, n_max);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        char ipath[112];
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        if (get_int_value(e, c, ipath, lo, hi, &out[i])) return -1;
    }
    *n_out = n;
    return 0;
}

/* A string among `names` (NULL-terminated); absent: `def`. The message lists the accepted
 * values, so a converted model's typo or a convention libmm lacks is named, never guessed. */
static int get_enum(errbuf *e, const cJSON *obj, const char *parent, const char *key,
                    const char *const *names, int def, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    *out = def;
    if (!v) return 0;
    if (!cJSON_IsString(v))
        return fail(e, "%s.%s must be a string, not %s", parent, key, type_name(v));
    char list[256] = "";
    for (int i = 0; names[i]; i++) {
        if (strcmp(v->valuestring, names[i]) == 0) {
            *out = i;
            return 0;
        }
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s\"%s\"", i ? ", " : "", names[i]);
    }
    return fail(e, "%s.%s (\"%.40s\") is not supported: it must be one of %s", parent, key,
                v->valuestring, list);
}

/* diffusers' vae.latents_mean / latents_std: null or an array of latent_channels numbers. */
static int get_latent_stats(errbuf *e, const cJSON *vae, const char *key, int n, int positive,
                            float *out, int *given) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(vae, key);
    *given = 0;
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsArray(v))
        return fail(e, "vae.%s must be an array or null, not %s", key, type_name(v));
    if (n > MM_MAX_LATENT_STATS)
        return fail(e, "vae.%s: given for %d latent channels; at most %d are supported", key, n,
                    MM_MAX_LATENT_STATS);
    if (cJSON_GetArraySize(v) != n)
        return fail(e, "vae.%s has %d entries; it must have one per latent channel (%d)", key,
                    cJSON_GetArraySize(v), n);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!cJSON_IsNumber(c) || !isfinite(c->valuedouble) || fabs(c->valuedouble) > 1e30)
            return fail(e, "vae.%s[%d] must be a finite number", key, i);
        if (positive && !(c->valuedouble > 1e-30))
            return fail(e, "vae.%s[%d] (%g) must be > 0", key, i, c->valuedouble);
        out[i] = (float)c->valuedouble;
    }
    *given = 1;
    return 0;
}

/* ---- sections ---------------------------------------------------------------------------- */

static int diffusers_ignored(const char *k) {
    /* diffusers AutoencoderKL config keys that do not change the tensors or the computation
     * we implement; keys starting with '_' are diffusers' own metadata (_class_name,
     * _diffusers_version, _name_or_path, _use_default_values, ...). */
    static const char *const ignored[] = {"act_fn",      "down_block_types", "up_block_types",
                                          "sample_size", "force_upcast",     NULL};
    if (k[0] == '_') return 1;
    for (const char *const *a = ignored; *a; a++)
        if (strcmp(*a, k) == 0) return 1;
    return 0;
}

static int check_block_types(errbuf *e, const cJSON *vae, const char *key, const char *want,
                             int n_blocks) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(vae, key);
    if (!v) return 0;
    if (!cJSON_IsArray(v)) return fail(e, "vae.%s must be an array, not %s", key, type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n != n_blocks)
        return fail(e, "vae.%s has %d entries; it must match vae.block_out_channels (%d)", key, n,
                    n_blocks);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++)
        if (!cJSON_IsString(c) || strcmp(c->valuestring, want) != 0)
            return fail(e, "vae.%s[%d] must be \"%s\" (the only block type supported)", key, i,
                        want);
    return 0;
}

static int parse_vae(errbuf *e, const cJSON *vae, mm_vae_config *v) {
    static const char *const keys[] = {"in_channels",
                                       "out_channels",
                                       "latent_channels",
                                       "block_out_channels",
                                       "layers_per_block",
                                       "norm_num_groups",
                                       "mid_block_add_attention",
                                       "use_quant_conv",
                                       "use_post_quant_conv",
                                       "scaling_factor",
                                       "shift_factor",
                                       "latents_mean",
                                       "latents_std",
                                       NULL};
    if (!cJSON_IsObject(vae)) return fail(e, "vae must be an object, not %s", type_name(vae));
    if (check_keys(e, vae, "vae", keys, diffusers_ignored)) return -1;

    if (get_int(e, vae, "vae", "in_channels", 1, 0, 1, MAX_SIZE, &v->in_channels)) return -1;
    if (get_int(e, vae, "vae", "out_channels", 1, 0, 1, MAX_SIZE, &v->out_channels)) return -1;
    if (v->out_channels != v->in_channels)
        return fail(e, "vae.out_channels (%d) must equal vae.in_channels (%d)", v->out_channels,
                    v->in_channels);
    if (get_int(e, vae, "vae", "latent_channels", 1, 0, 1, MAX_SIZE, &v->latent_channels))
        return -1;
    if (get_int_array(e, vae, "vae", "block_out_channels", 1, MM_MAX_VAE_BLOCKS, 1, MAX_SIZE,
                      v->block_out_channels, &v->n_blocks))
        return -1;
    if (get_int(e, vae, "vae", "layers_per_block", 1, 0, 1, MAX_DEPTH, &v->layers_per_block))
        return -1;
    if (get_int(e, vae, "vae", "norm_num_groups", 1, 0, 1, MAX_SIZE, &v->norm_num_groups))
        return -1;
    for (int i = 0; i < v->n_blocks; i++)
        if (v->block_out_channels[i] % v->norm_num_groups != 0)
            return fail(e,
                        "vae.block_out_channels[%d] (%d) must be divisible by "
                        "vae.norm_num_groups (%d)",
                        i, v->block_out_channels[i], v->norm_num_groups);
    if (get_bool(e, vae, "vae", "mid_block_add_attention", 1, &v->mid_block_add_attention))
        return -1;
    if (get_bool(e, vae, "vae", "use_quant_conv", 1, &v->use_quant_conv)) return -1;
    if (get_bool(e, vae, "vae", "use_post_quant_conv", 1, &v->use_post_quant_conv)) return -1;

    double d;
    if (get_number(e, vae, "vae", "scaling_factor", 1, 0, 0.0, &d)) return -1;
    if (!(d > 0.0)) return fail(e, "vae.scaling_factor (%g) must be > 0", d);
    if (to_float(e, "vae.scaling_factor", d, &v->scaling_factor)) return -1;
    if (v->scaling_factor == 0.0f) return fail(e, "vae.scaling_factor (%g) must be > 0", d);
    if (get_number(e, vae, "vae", "shift_factor", 0, 1, 0.0, &d)) return -1;
    if (to_float(e, "vae.shift_factor", d, &v->shift_factor)) return -1;
    /* ignored until this version: a diffusers VAE trained with them gives wrong latents without */
    int has_mean, has_std;
    if (get_latent_stats(e, vae, "latents_mean", v->latent_channels, 0, v->latents_mean,
                         &has_mean) ||
        get_latent_stats(e, vae, "latents_std", v->latent_channels, 1, v->latents_std, &has_std))
        return -1;
    if (has_mean != has_std)
        return fail(e, "vae.%s: missing (vae.%s is given; diffusers uses the two together)",
                    has_mean ? "latents_std" : "latents_mean",
                    has_mean ? "latents_mean" : "latents_std");
    v->has_latents_stats = has_mean;

    /* accepted diffusers keys whose value we still check */
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(vae, "act_fn");
    if (act && (!cJSON_IsString(act) || strcmp(act->valuestring, "silu") != 0))
        return fail(e, "vae.act_fn must be \"silu\" (the only activation supported)");
    if (check_block_types(e, vae, "down_block_types", "DownEncoderBlock2D", v->n_blocks)) return -1;
    if (check_block_types(e, vae, "up_block_types", "UpDecoderBlock2D", v->n_blocks)) return -1;
    return 0;
}

static int parse_dit(errbuf *e, const cJSON *dit, int n_modalities, mm_dit_config *t) {
    static const char *const keys[] = {
        "hidden_size",    "num_heads",      "mlp_ratio",      "patch_size",
        "scene_depth",    "gen_depth",      "freq_dim",       "ffn_branches",
        "routing",        "timestep_scale", "time_direction", "pos_embed_order",
        "scene_norm_out", "adaln_chunks",   "condition",      NULL};
    static const char *const directions[] = {"noise_at_1", "data_at_1", NULL};
    static const char *const orders[] = {"row_first", "column_first", NULL};
    static const char *const conds[] = {"scene+time+modality", "scene+time", NULL};
    if (!cJSON_IsObject(dit)) return fail(e, "dit must be an object, not %s", type_name(dit));
    if (check_keys(e, dit, "dit", keys, NULL)) return -1;

    if (get_int(e, dit, "dit", "hidden_size", 1, 0, 1, MAX_HIDDEN, &t->hidden_size)) return -1;
    if (get_int(e, dit, "dit", "num_heads", 1, 0, 1, MAX_HIDDEN, &t->num_heads)) return -1;
    if (t->hidden_size % t->num_heads != 0)
        return fail(e, "dit.hidden_size (%d) must be divisible by dit.num_heads (%d)",
                    t->hidden_size, t->num_heads);
    if (t->hidden_size % 4 != 0)
        return fail(e, "dit.hidden_size (%d) must be divisible by 4", t->hidden_size);

    double ratio;
    if (get_number(e, dit, "dit", "mlp_ratio", 1, 0, 0.0, &ratio)) return -1;
    if (!(ratio > 0.0)) return fail(e, "dit.mlp_ratio (%g) must be > 0", ratio);
    double f = ratio * (double)t->hidden_size;
    if (f != floor(f))
        return fail(e, "dit.mlp_ratio (%g) * dit.hidden_size (%d) = %.17g must be an integer",
                    ratio, t->hidden_size, f);
    if (f > (double)MAX_SIZE)
        return fail(e, "dit.mlp_ratio (%g) * dit.hidden_size (%d) = %.0f must be at most %d", ratio,
                    t->hidden_size, f, MAX_SIZE);
    t->mlp_hidden = (int)f;

    if (get_int(e, dit, "dit", "patch_size", 1, 0, 1, MAX_SIZE, &t->patch_size)) return -1;
    if (get_int(e, dit, "dit", "scene_depth", 1, 0, 1, MAX_DEPTH, &t->scene_depth)) return -1;
    if (get_int(e, dit, "dit", "gen_depth", 1, 0, 1, MAX_DEPTH, &t->gen_depth)) return -1;
    if (get_int(e, dit, "dit", "freq_dim", 1, 0, 2, MAX_SIZE, &t->freq_dim)) return -1;
    if (t->freq_dim % 2 != 0) return fail(e, "dit.freq_dim (%d) must be even", t->freq_dim);
    if (get_int(e, dit, "dit", "ffn_branches", 1, 0, 1, MAX_BRANCHES, &t->ffn_branches)) return -1;

    memset(t->routing, 0, sizeof t->routing);
    if (cJSON_GetObjectItemCaseSensitive(dit, "routing")) {
        int n = 0;
        if (get_int_array(e, dit, "dit", "routing", 0, MM_MAX_MODALITIES, 0, MAX_BRANCHES,
                          t->routing, &n))
            return -1;
        if (n != n_modalities)
            return fail(e, "dit.routing has %d entries; it must have one per modality (%d)", n,
                        n_modalities);
        for (int m = 0; m < n; m++)
            if (t->routing[m] >= t->ffn_branches)
                return fail(e, "dit.routing[%d] (%d) must be < dit.ffn_branches (%d)", m,
                            t->routing[m], t->ffn_branches);
    } else {
        if (t->ffn_branches < n_modalities)
            return fail(e,
                        "dit.routing: missing required key (dit.ffn_branches (%d) < number "
                        "of modalities (%d), so there is no identity default)",
                        t->ffn_branches, n_modalities);
        for (int m = 0; m < n_modalities; m++)
            t->routing[m] = m;
    }

    /* conventions: absent means the project's own, so every earlier model loads unchanged */
    double sc;
    if (get_number(e, dit, "dit", "timestep_scale", 0, 0, 1000.0, &sc)) return -1;
    if (!(sc > 0.0) || sc > 1e9) return fail(e, "dit.timestep_scale (%g) must be in (0, 1e9]", sc);
    t->timestep_scale = sc;
    if (get_enum(e, dit, "dit", "time_direction", directions, 0, &t->time_data_at_1)) return -1;
    if (get_enum(e, dit, "dit", "pos_embed_order", orders, 0, &t->pos_column_first)) return -1;
    if (get_bool(e, dit, "dit", "scene_norm_out", 1, &t->scene_norm_out)) return -1;
    if (get_int(e, dit, "dit", "adaln_chunks", 0, 6, 0, MAX_SIZE, &t->adaln_chunks)) return -1;
    if (t->adaln_chunks != 6 && t->adaln_chunks != 4)
        return fail(e,
                    "dit.adaln_chunks (%d) is not supported: it must be 6 (shift, scale, gate "
                    "of attention and FFN: adaLN-Zero) or 4 (shift, scale of each: adaLN)",
                    t->adaln_chunks);
    int cond;
    if (get_enum(e, dit, "dit", "condition", conds, 0, &cond)) return -1;
    t->cond_modality = cond == 0;
    return 0;
}

static const char *const sampler_names[] = {"euler", "heun", "euler_maruyama"};

static int parse_sampling(errbuf *e, const cJSON *s, mm_sampling_config *out) {
    static const char *const keys[] = {"sampler",    "steps",      "guidance",        "sde_eta",
                                       "time_shift", "final_step", "final_step_size", NULL};
    static const char *const finals[] = {"euler", "mean", NULL};
    out->sampler = 2;
    out->steps = 250;
    out->guidance = 1.2f;
    out->sde_eta = 1.0f;
    out->time_shift = 1.0f;
    out->final_mean = 0;
    out->final_step_size = 0.0f;
    if (!s) return 0;
    if (!cJSON_IsObject(s)) return fail(e, "sampling must be an object, not %s", type_name(s));
    if (check_keys(e, s, "sampling", keys, NULL)) return -1;

    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "sampler");
    if (v) {
        if (!cJSON_IsString(v))
            return fail(e, "sampling.sampler must be a string, not %s", type_name(v));
        int found = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(v->valuestring, sampler_names[i]) == 0) found = i;
        if (found < 0)
            return fail(e,
                        "sampling.sampler (\"%.40s\") must be one of \"euler\", \"heun\", "
                        "\"euler_maruyama\"",
                        v->valuestring);
        out->sampler = found;
    }
    if (get_int(e, s, "sampling", "steps", 0, 250, 1, MAX_STEPS, &out->steps)) return -1;
    double d;
    if (get_number(e, s, "sampling", "guidance", 0, 0, 1.2, &d)) return -1;
    if (!(d >= 0.0)) return fail(e, "sampling.guidance (%g) must be >= 0", d);
    if (to_float(e, "sampling.guidance", d, &out->guidance)) return -1;
    if (get_number(e, s, "sampling", "sde_eta", 0, 0, 1.0, &d)) return -1;
    if (!(d >= 0.0)) return fail(e, "sampling.sde_eta (%g) must be >= 0", d);
    if (to_float(e, "sampling.sde_eta", d, &out->sde_eta)) return -1;
    if (get_number(e, s, "sampling", "time_shift", 0, 0, 1.0, &d)) return -1;
    if (!(d > 0.0)) return fail(e, "sampling.time_shift (%g) must be > 0", d);
    if (to_float(e, "sampling.time_shift", d, &out->time_shift)) return -1;
    if (out->time_shift == 0.0f) return fail(e, "sampling.time_shift (%g) must be > 0", d);
    if (get_enum(e, s, "sampling", "final_step", finals, 0, &out->final_mean)) return -1;
    if (get_number(e, s, "sampling", "final_step_size", 0, 0, 0.0, &d)) return -1;
    if (!(d >= 0.0 && d < 1.0))
        return fail(e, "sampling.final_step_size (%g) must be in [0, 1)", d);
    out->final_step_size = (float)d;
    return 0;
}

static int valid_modality_name(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= MM_MODALITY_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
    }
    return 1;
}

/* "geo": the ground sample distance range the model was trained on and its modality I/O profiles
 * (strings in the syntax of libmmgeo's mmgeo_profile_parse, which checks them; here only their
 * shape). Nothing of it is stored in mm_config: libmmgeo reads it from the config JSON. */
static int parse_geo(errbuf *e, const cJSON *g, const mm_config *cfg) {
    static const char *const keys[] = {"gsd_range_m", "profiles", NULL};
    if (!g) return 0;
    if (!cJSON_IsObject(g)) return fail(e, "geo must be an object, not %s", type_name(g));
    if (check_keys(e, g, "geo", keys, NULL)) return -1;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(g, "gsd_range_m");
    if (r) {
        if (!cJSON_IsArray(r))
            return fail(e, "geo.gsd_range_m must be an array, not %s", type_name(r));
        if (cJSON_GetArraySize(r) != 2)
            return fail(e, "geo.gsd_range_m has %d entries; it must have 2 ([lo, hi] in metres)",
                        cJSON_GetArraySize(r));
        double v[2];
        int i = 0;
        for (const cJSON *c = r->child; c; c = c->next, i++) {
            if (!cJSON_IsNumber(c))
                return fail(e, "geo.gsd_range_m[%d] must be a number, not %s", i, type_name(c));
            v[i] = c->valuedouble;
            if (!isfinite(v[i]) || !(v[i] > 0.0))
                return fail(e, "geo.gsd_range_m[%d] (%g) must be a positive number of metres", i,
                            v[i]);
        }
        if (!(v[0] < v[1]))
            return fail(e, "geo.gsd_range_m ([%g, %g]) must have lo < hi", v[0], v[1]);
    }
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(g, "profiles");
    if (p) {
        if (!cJSON_IsObject(p))
            return fail(e, "geo.profiles must be an object, not %s", type_name(p));
        for (const cJSON *c = p->child; c; c = c->next) {
            const char *k = c->string ? c->string : "";
            for (const cJSON *d = p->child; d != c; d = d->next)
                if (d->string && strcmp(d->string, k) == 0)
                    return fail(e, "geo.profiles.%.40s: duplicate key", k);
            int found = 0;
            for (int m = 0; m < cfg->n_modalities; m++)
                if (strcmp(cfg->modalities[m], k) == 0) found = 1;
            if (!found) return fail(e, "geo.profiles.%.40s: not one of the model's modalities", k);
            if (!cJSON_IsString(c))
                return fail(e, "geo.profiles.%s must be a string, not %s", k, type_name(c));
            size_t n = strlen(c->valuestring);
            if (n == 0 || n > 64) return fail(e, "geo.profiles.%s must have 1 to 64 characters", k);
        }
    }
    return 0;
}

static int parse_root(errbuf *e, const cJSON *root, mm_config *cfg) {
    static const char *const keys[] = {
        "format", "format_version", "name", "image_size", "modalities", "modality_channels", "vae",
        "dit",    "sampling",       "geo",  NULL};
    int rc = 0;
    if (!cJSON_IsObject(root))
        return fail(e, "config must be a JSON object, not %s", type_name(root));
    if (check_keys(e, root, "", keys, NULL)) return -1;

    const cJSON *v = member(e, root, "", "format", 1, &rc);
    if (rc) return rc;
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "metaearth-mm") != 0)
        return fail(e, "format must be \"metaearth-mm\"");
    int version;
    if (get_int(e, root, "", "format_version", 1, 0, 0, MAX_SIZE, &version)) return -1;
    if (version != 1) return fail(e, "format_version (%d) is not supported (only 1)", version);

    v = cJSON_GetObjectItemCaseSensitive(root, "name");
    if (v) {
        if (!cJSON_IsString(v)) return fail(e, "name must be a string, not %s", type_name(v));
        size_t n = strlen(v->valuestring);
        if (n == 0 || n >= sizeof cfg->name)
            return fail(e, "name must have 1 to %zu bytes (has %zu)", sizeof cfg->name - 1, n);
        memcpy(cfg->name, v->valuestring, n + 1);
    } else {
        strcpy(cfg->name, "unnamed");
    }

    if (get_int(e, root, "", "image_size", 1, 0, 1, MAX_SIZE, &cfg->image_size)) return -1;

    v = member(e, root, "", "modalities", 1, &rc);
    if (rc) return rc;
    if (!cJSON_IsArray(v)) return fail(e, "modalities must be an array, not %s", type_name(v));
    int n = cJSON_GetArraySize(v);
    if (n < 1 || n > MM_MAX_MODALITIES)
        return fail(e, "modalities has %d entries; it must have 1 to %d", n, MM_MAX_MODALITIES);
    int i = 0;
    for (const cJSON *c = v->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c))
            return fail(e, "modalities[%d] must be a string, not %s", i, type_name(c));
        if (!valid_modality_name(c->valuestring))
            return fail(e, "modalities[%d] (\"%.40s\") must be 1 to %d characters of [a-z0-9_]", i,
                        c->valuestring, MM_MODALITY_NAME_MAX - 1);
        for (int j = 0; j < i; j++)
            if (strcmp(cfg->modalities[j], c->valuestring) == 0)
                return fail(e, "modalities[%d] (\"%s\") duplicates modalities[%d]", i,
                            c->valuestring, j);
        strcpy(cfg->modalities[i], c->valuestring);
    }
    cfg->n_modalities = n;

    if (!cJSON_GetObjectItemCaseSensitive(root, "vae")) return fail(e, "vae: missing required key");
    if (parse_vae(e, cJSON_GetObjectItemCaseSensitive(root, "vae"), &cfg->vae)) return -1;

    int nc = 0;
    if (get_int_array(e, root, "", "modality_channels", 0, MM_MAX_MODALITIES, 1, MAX_SIZE,
                      cfg->modality_channels, &nc))
        return -1;
    if (nc != n)
        return fail(e, "modality_channels has %d entries; it must have one per modality (%d)", nc,
                    n);
    for (int m = 0; m < n; m++)
        if (cfg->modality_channels[m] > cfg->vae.in_channels)
            return fail(e, "modality_channels[%d] (%d) must be <= vae.in_channels (%d)", m,
                        cfg->modality_channels[m], cfg->vae.in_channels);

    if (!cJSON_GetObjectItemCaseSensitive(root, "dit")) return fail(e, "dit: missing required key");
    if (parse_dit(e, cJSON_GetObjectItemCaseSensitive(root, "dit"), n, &cfg->dit)) return -1;

    if (parse_sampling(e, cJSON_GetObjectItemCaseSensitive(root, "sampling"), &cfg->sampling))
        return -1;
    if (parse_geo(e, cJSON_GetObjectItemCaseSensitive(root, "geo"), cfg)) return -1;

    /* derived sizes */
    cfg->vae_factor = 1 << (cfg->vae.n_blocks - 1);
    long unit = (long)cfg->vae_factor * cfg->dit.patch_size;
    if (cfg->image_size % unit != 0)
        return fail(e,
                    "image_size (%d) must be divisible by 2^(len(vae.block_out_channels)-1) "
                    "* dit.patch_size (%d * %d = %ld)",
                    cfg->image_size, cfg->vae_factor, cfg->dit.patch_size, unit);
    cfg->latent_size = cfg->image_size / cfg->vae_factor;
    cfg->tokens_per_side = cfg->latent_size / cfg->dit.patch_size;
    long long tokens = (long long)cfg->tokens_per_side * cfg->tokens_per_side;
    if (tokens > MAX_TOKENS)
        return fail(e, "image_size (%d) gives %lld tokens per modality; at most %d are supported",
                    cfg->image_size, tokens, MAX_TOKENS);
    cfg->n_tokens = (int)tokens;
    return 0;
}

int mm_config_parse(const char *json, mm_config *cfg, char *err, size_t errlen) {
    errbuf e = {err, errlen};
    if (err && errlen > 0) err[0] = '\0';
    if (!json || !cfg) return fail(&e, "mm_config_parse: NULL argument");
    mm_config tmp;
    memset(&tmp, 0, sizeof tmp);

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(json, &end, 1);
    if (!root) {
        size_t off = end && end >= json ? (size_t)(end - json) : 0;
        int line = 1, col = 1;
        for (size_t k = 0; k < off && json[k]; k++) {
            if (json[k] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        return fail(&e, "config: invalid JSON at byte %zu (line %d, column %d)", off, line, col);
    }
    int rc = parse_root(&e, root, &tmp);
    cJSON_Delete(root);
    if (rc) return rc;
    *cfg = tmp;
    return 0;
}

/* ---- tensors ----------------------------------------------------------------------------- */

typedef struct {
    mm_tensor_visitor fn;
    void *user;
    int rc;
    char name[256];
} visit;

/* Emits prefix+suffix with the given shape. A no-op once the visitor has stopped. */
static void emit(visit *v, const char *prefix, const char *suffix, int ndim, int64_t a, int64_t b,
                 int64_t c, int64_t d) {
    if (v->rc) return;
    int64_t shape[4] = {a, b, c, d};
    snprintf(v->name, sizeof v->name, "%s%s", prefix, suffix);
    v->rc = v->fn(v->name, ndim, shape, v->user);
}

static void linear(visit *v, const char *p, int64_t out, int64_t in) {
    emit(v, p, ".weight", 2, out, in, 0, 0);
    emit(v, p, ".bias", 1, out, 0, 0, 0);
}

static void conv(visit *v, const char *p, int64_t out, int64_t in, int64_t k) {
    emit(v, p, ".weight", 4, out, in, k, k);
    emit(v, p, ".bias", 1, out, 0, 0, 0);
}

static void norm(visit *v, const char *p, int64_t c) {
    emit(v, p, ".weight", 1, c, 0, 0, 0);
    emit(v, p, ".bias", 1, c, 0, 0, 0);
}

static void sub(char *dst, size_t n, const char *prefix, const char *fmt, ...) {
    size_t l = (size_t)snprintf(dst, n, "%s", prefix);
    if (l >= n) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst + l, n - l, fmt, ap);
    va_end(ap);
}

static void resnet(visit *v, const char *p, int64_t cin, int64_t ch) {
    char q[160];
    sub(q, sizeof q, p, ".norm1");
    norm(v, q, cin);
    sub(q, sizeof q, p, ".conv1");
    conv(v, q, ch, cin, 3);
    sub(q, sizeof q, p, ".norm2");
    norm(v, q, ch);
    sub(q, sizeof q, p, ".conv2");
    conv(v, q, ch, ch, 3);
    if (cin != ch) {
        sub(q, sizeof q, p, ".conv_shortcut");
        conv(v, q, ch, cin, 1);
    }
}

static void mid_block(visit *v, const char *p, const mm_vae_config *c, int64_t ch) {
    char q[160];
    sub(q, sizeof q, p, ".mid_block.resnets.0");
    resnet(v, q, ch, ch);
    sub(q, sizeof q, p, ".mid_block.resnets.1");
    resnet(v, q, ch, ch);
    if (c->mid_block_add_attention) {
        static const char *const parts[] = {"to_q", "to_k", "to_v", "to_out.0"};
        sub(q, sizeof q, p, ".mid_block.attentions.0.group_norm");
        norm(v, q, ch);
        for (int k = 0; k < 4; k++) {
            sub(q, sizeof q, p, ".mid_block.attentions.0.%s", parts[k]);
            linear(v, q, ch, ch);
        }
    }
}

static void visit_vae(visit *v, const mm_vae_config *c) {
    const int n = c->n_blocks;
    const int *boc = c->block_out_channels;
    const int64_t c0 = boc[0], clast = boc[n - 1], L = c->latent_channels;
    char p[160];

    conv(v, "encoder.conv_in", c0, c->in_channels, 3);
    for (int i = 0; i < n; i++) {
        int64_t ch = boc[i];
        for (int j = 0; j < c->layers_per_block; j++) {
            int64_t cin = j == 0 ? (i == 0 ? c0 : boc[i - 1]) : ch;
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d", i, j);
            resnet(v, p, cin, ch);
        }
        if (i < n - 1) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.downsamplers.0.conv", i);
            conv(v, p, ch, ch, 3);
        }
    }
    mid_block(v, "encoder", c, clast);
    norm(v, "encoder.conv_norm_out", clast);
    conv(v, "encoder.conv_out", 2 * L, clast, 3);
    if (c->use_quant_conv) conv(v, "quant_conv", 2 * L, 2 * L, 1);
    if (c->use_post_quant_conv) conv(v, "post_quant_conv", L, L, 1);

    conv(v, "decoder.conv_in", clast, L, 3);
    mid_block(v, "decoder", c, clast);
    for (int i = 0; i < n; i++) {
        int64_t ch = boc[n - 1 - i];
        int64_t prev = i == 0 ? clast : boc[n - i];
        for (int j = 0; j < c->layers_per_block + 1; j++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d", i, j);
            resnet(v, p, j == 0 ? prev : ch, ch);
        }
        if (i < n - 1) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.upsamplers.0.conv", i);
            conv(v, p, ch, ch, 3);
        }
    }
    norm(v, "decoder.conv_norm_out", c0);
    conv(v, "decoder.conv_out", c->out_channels, c0, 3);
}

static void attn_block(visit *v, const char *p, int64_t H, int64_t chunks) {
    char q[160];
    sub(q, sizeof q, p, ".adaLN_modulation.1");
    linear(v, q, chunks * H, H);
    sub(q, sizeof q, p, ".attn.qkv");
    linear(v, q, 3 * H, H);
    sub(q, sizeof q, p, ".attn.proj");
    linear(v, q, H, H);
}

static void visit_dit(visit *v, const mm_config *cfg) {
    const mm_dit_config *d = &cfg->dit;
    const int64_t H = d->hidden_size, F = d->mlp_hidden, C = cfg->vae.latent_channels;
    const int64_t p = d->patch_size;
    char q[160];

    linear(v, "t_embedder.mlp.0", H, d->freq_dim);
    linear(v, "t_embedder.mlp.2", H, H);
    emit(v, "modality_embed", "", 2, cfg->n_modalities, H, 0, 0);

    for (int m = 0; m < cfg->n_modalities; m++) {
        snprintf(q, sizeof q, "scene.x_embedder.%d", m);
        emit(v, q, ".weight", 4, H, C, p, p);
        emit(v, q, ".bias", 1, H, 0, 0, 0);
    }
    for (int i = 0; i < d->scene_depth; i++) {
        char b[64];
        snprintf(b, sizeof b, "scene.blocks.%d", i);
        attn_block(v, b, H, d->adaln_chunks);
        sub(q, sizeof q, b, ".mlp.fc1");
        linear(v, q, F, H);
        sub(q, sizeof q, b, ".mlp.fc2");
        linear(v, q, H, F);
    }
    if (d->scene_norm_out) norm(v, "scene.norm_out", H);

    for (int m = 0; m < cfg->n_modalities; m++) {
        snprintf(q, sizeof q, "gen.x_embedder.%d", m);
        emit(v, q, ".weight", 4, H, C, p, p);
        emit(v, q, ".bias", 1, H, 0, 0, 0);
    }
    for (int j = 0; j < d->gen_depth; j++) {
        char b[64];
        snprintf(b, sizeof b, "gen.blocks.%d", j);
        attn_block(v, b, H, d->adaln_chunks);
        for (int br = 0; br < d->ffn_branches; br++) {
            sub(q, sizeof q, b, ".mlp.%d.fc1", br);
            linear(v, q, F, H);
            sub(q, sizeof q, b, ".mlp.%d.fc2", br);
            linear(v, q, H, F);
        }
    }
    linear(v, "gen.final_layer.adaLN_modulation.1", 2 * H, H);
    linear(v, "gen.final_layer.linear", p * p * C, H);
}

int mm_config_visit_tensors(const mm_config *cfg, mm_tensor_visitor fn, void *user) {
    if (!cfg || !fn) return -1;
    visit v;
    v.fn = fn;
    v.user = user;
    v.rc = 0;
    visit_vae(&v, &cfg->vae);
    visit_dit(&v, cfg);
    return v.rc;
}

static int starts_with(const char *s, const char *prefix) {
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

int mm_config_tensor_module(const char *name) {
    if (!name) return -1;
    if (starts_with(name, "encoder.") || starts_with(name, "decoder.") ||
        starts_with(name, "quant_conv.") || starts_with(name, "post_quant_conv."))
        return 0;
    if (starts_with(name, "scene.")) return 1;
    if (starts_with(name, "gen.")) return 2;
    if (starts_with(name, "t_embedder.") || strcmp(name, "modality_embed") == 0) return 3;
    return -1;
}
