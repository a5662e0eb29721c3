/* Strict memory-mapped safetensors reader and F32 writer. See safetensors.h for the rules. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__GNUC__)
#define MM_ST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define MM_ST_PRINTF(a, b)
#endif

/* Limits of the JSON pre-scan; a valid header never comes near them. */
#define JS_MAX_CONTAINER_DEPTH 3  /* top object = 1, tensor entry = 2, shape array = 3 */
#define JS_MAX_SMALL_CONTAINER 64 /* elements of any array, members of a depth-3 object */
#define JS_MAX_NUMBER_CHARS 40

typedef struct {
    const char *what; /* path or "<memory>" */
    char *buf;
    size_t len;
} errctx;

static void fail(errctx *e, const char *fmt, ...) MM_ST_PRINTF(2, 3);
static void fail(errctx *e, const char *fmt, ...) {
    if (!e || !e->buf || e->len == 0) return;
    int k = snprintf(e->buf, e->len, "%s: ", e->what ? e->what : "safetensors");
    if (k < 0) {
        e->buf[0] = '\0';
        k = 0;
    }
    if ((size_t)k < e->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf + k, e->len - (size_t)k, fmt, ap);
        va_end(ap);
    }
    e->buf[e->len - 1] = '\0';
}

static const char *errno_text(int en, char *buf, size_t n) {
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(en, buf, n);
#else
    if (strerror_r(en, buf, n) != 0) snprintf(buf, n, "error %d", en);
    return buf;
#endif
}

/* Quotes a (possibly long or odd) string for a message: escapes control bytes, cuts at 64 bytes
 * on a UTF-8 boundary. */
typedef struct {
    char s[96];
} qbuf;
static const char *quote(qbuf *q, const char *s) {
    size_t o = 0, i = 0;
    const size_t lim = 64;
    while (s[i]) {
        unsigned char c = (unsigned char)s[i];
        if (i >= lim || o + 8 >= sizeof q->s) {
            /* cut: drop a trailing partial (or complete) multi-byte sequence, then "..." */
            while (o > 0 && ((unsigned char)q->s[o - 1] & 0xC0) == 0x80)
                o--;
            if (o > 0 && ((unsigned char)q->s[o - 1] & 0xC0) == 0xC0) o--;
            memcpy(q->s + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7f)
            o += (size_t)snprintf(q->s + o, sizeof q->s - o, "\\x%02x", c);
        else
            q->s[o++] = (char)c;
        i++;
    }
    q->s[o] = '\0';
    return q->s;
}

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                      */

/* Returns the offset of the first invalid byte, or n if s[0..n) is valid UTF-8. */
static size_t utf8_invalid_at(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* > U+10FFFF */
        } else {
            return i;
        }
        if (n - i < len) return i;
        if (s[i + 1] < lo || s[i + 1] > hi) return i;
        for (size_t k = 2; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80) return i;
        i += len;
    }
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON pre-scan: a strict RFC 8259 grammar check that cJSON (lenient: leading zeros, control
 * characters, BOM, ...) does not do, plus the exact text of every number, which cJSON only keeps
 * as a double. cJSON then builds the tree of the same (already validated) text; its numbers are
 * matched to ours by document order. */

enum { NUM_OK = 0, NUM_NEGATIVE, NUM_NOT_INTEGER, NUM_TOO_BIG };

typedef struct {
    int64_t value; /* valid when kind == NUM_OK */
    uint32_t off;  /* offset of the token in the header */
    uint8_t len;
    uint8_t kind;
} jnum;

typedef struct {
    const unsigned char *s;
    size_t n, i;
    jnum *nums;
    size_t nnum, capnum;
    errctx *e;
    int oom;
} jscan;

static int js_err(jscan *j, const char *what) {
    if (j->i >= j->n)
        fail(j->e, "header is not valid JSON: %s at the end of the header (byte %zu)", what, j->i);
    else {
        unsigned char c = j->s[j->i];
        if (c >= 0x20 && c < 0x7f)
            fail(j->e, "header is not valid JSON: %s at header byte %zu ('%c')", what, j->i, c);
        else
            fail(j->e, "header is not valid JSON: %s at header byte %zu (byte 0x%02x)", what, j->i,
                 c);
    }
    return -1;
}

static void js_ws(jscan *j) {
    while (j->i < j->n) {
        unsigned char c = j->s[j->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        j->i++;
    }
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads "uXXXX" at s[i] (the 'u'); returns the code unit or -1. */
static long js_u4(jscan *j, size_t i) {
    if (j->n - i < 5 || j->s[i] != 'u') return -1;
    long v = 0;
    for (size_t k = 1; k <= 4; k++) {
        int h = hexval(j->s[i + k]);
        if (h < 0) return -1;
        v = v * 16 + h;
    }
    return v;
}

static int js_string(jscan *j) {
    size_t start = j->i;
    j->i++; /* opening quote */
    for (;;) {
        if (j->i >= j->n) {
            j->i = start;
            return js_err(j, "unterminated string");
        }
        unsigned char c = j->s[j->i];
        if (c == '"') {
            j->i++;
            return 0;
        }
        if (c < 0x20) return js_err(j, "raw control character in a string");
        if (c != '\\') {
            j->i++; /* UTF-8 was validated beforehand */
            continue;
        }
        j->i++;
        if (j->i >= j->n) return js_err(j, "unterminated escape");
        c = j->s[j->i];
        switch (c) {
        case '"':
        case '\\':
        case '/':
        case 'b':
        case 'f':
        case 'n':
        case 'r':
        case 't': j->i++; break;
        case 'u': {
            long u = js_u4(j, j->i);
            if (u < 0) return js_err(j, "invalid \\u escape");
            if (u == 0) return js_err(j, "escaped NUL (\\u0000) in a string (not allowed)");
            if (u >= 0xDC00 && u <= 0xDFFF) return js_err(j, "unpaired low surrogate escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                size_t k = j->i + 5;
                long lo = -1;
                if (k + 1 < j->n && j->s[k] == '\\') lo = js_u4(j, k + 1);
                if (lo < 0xDC00 || lo > 0xDFFF) return js_err(j, "unpaired high surrogate escape");
                j->i = k + 6;
            } else {
                j->i += 5;
            }
            break;
        }
        default: return js_err(j, "invalid escape sequence");
        }
    }
}

static int is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static int js_number(jscan *j) {
    size_t st = j->i;
    int neg = 0, integral = 1;
    if (j->s[j->i] == '-') {
        neg = 1;
        j->i++;
    }
    if (j->i >= j->n || !is_digit(j->s[j->i])) return js_err(j, "invalid number");
    size_t int_start = j->i;
    if (j->s[j->i] == '0')
        j->i++;
    else
        while (j->i < j->n && is_digit(j->s[j->i]))
            j->i++;
    size_t int_end = j->i;
    if (j->i < j->n && j->s[j->i] == '.') {
        j->i++;
        if (j->i >= j->n || !is_digit(j->s[j->i]))
            return js_err(j, "invalid number (no digit after '.')");
        while (j->i < j->n && is_digit(j->s[j->i]))
            j->i++;
        integral = 0;
    }
    if (j->i < j->n && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
        j->i++;
        if (j->i < j->n && (j->s[j->i] == '+' || j->s[j->i] == '-')) j->i++;
        if (j->i >= j->n || !is_digit(j->s[j->i]))
            return js_err(j, "invalid number (no digit in the exponent)");
        while (j->i < j->n && is_digit(j->s[j->i]))
            j->i++;
        integral = 0;
    }
    if (j->i - st > JS_MAX_NUMBER_CHARS) {
        j->i = st;
        return js_err(j, "number too long");
    }
    jnum num = {0, (uint32_t)st, (uint8_t)(j->i - st), NUM_OK};
    if (!integral) {
        num.kind = NUM_NOT_INTEGER;
    } else if (neg) {
        num.kind = NUM_NEGATIVE;
    } else {
        uint64_t v = 0;
        for (size_t k = int_start; k < int_end; k++) {
            if (__builtin_mul_overflow(v, 10u, &v) ||
                __builtin_add_overflow(v, (uint64_t)(j->s[k] - '0'), &v)) {
                num.kind = NUM_TOO_BIG;
                break;
            }
        }
        if (num.kind == NUM_OK && v > (uint64_t)INT64_MAX) num.kind = NUM_TOO_BIG;
        num.value = (int64_t)v;
    }
    if (j->nnum == j->capnum) {
        size_t cap = j->capnum ? j->capnum * 2 : 64;
        jnum *p = realloc(j->nums, cap * sizeof *p);
        if (!p) {
            j->oom = 1;
            fail(j->e, "out of memory while scanning the header");
            return -1;
        }
        j->nums = p;
        j->capnum = cap;
    }
    j->nums[j->nnum++] = num;
    return 0;
}

static int js_value(jscan *j, int depth);

static int js_container(jscan *j, int depth) {
    int is_obj = j->s[j->i] == '{';
    unsigned char close = is_obj ? '}' : ']';
    size_t limit = JS_MAX_SMALL_CONTAINER;
    if (is_obj && depth == 1)
        limit = (size_t)MM_ST_MAX_TENSORS + 1;
    else if (is_obj && depth == 2)
        limit = MM_ST_MAX_METADATA;
    if (depth > JS_MAX_CONTAINER_DEPTH)
        return js_err(j, "nesting too deep (a valid header has at most 3 levels: shape and "
                         "data_offsets hold integers, __metadata__ holds strings)");
    size_t open_at = j->i;
    j->i++;
    js_ws(j);
    if (j->i < j->n && j->s[j->i] == close) {
        j->i++;
        return 0;
    }
    size_t count = 0;
    for (;;) {
        if (is_obj) {
            if (j->i >= j->n || j->s[j->i] != '"') return js_err(j, "expected a string key");
            if (js_string(j)) return -1;
            js_ws(j);
            if (j->i >= j->n || j->s[j->i] != ':') return js_err(j, "expected ':'");
            j->i++;
            js_ws(j);
        }
        if (js_value(j, depth + 1)) return -1;
        if (++count > limit) {
            if (is_obj && depth == 1)
                fail(j->e, "header has more than %d tensors (the limit)", MM_ST_MAX_TENSORS);
            else if (is_obj && depth == 2)
                fail(j->e, "header object at byte %zu has more than %d members (the limit)",
                     open_at, MM_ST_MAX_METADATA);
            else
                fail(j->e,
                     "header %s at byte %zu has more than %d elements (a valid header "
                     "needs at most %d)",
                     is_obj ? "object" : "array", open_at, JS_MAX_SMALL_CONTAINER, MM_ST_MAX_DIMS);
            return -1;
        }
        js_ws(j);
        if (j->i < j->n && j->s[j->i] == ',') {
            j->i++;
            js_ws(j);
            continue;
        }
        if (j->i < j->n && j->s[j->i] == close) {
            j->i++;
            return 0;
        }
        return js_err(j, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static int js_literal(jscan *j, const char *lit) {
    size_t l = strlen(lit);
    if (j->n - j->i < l || memcmp(j->s + j->i, lit, l) != 0) return js_err(j, "invalid literal");
    j->i += l;
    return 0;
}

static int js_value(jscan *j, int depth) {
    if (j->i >= j->n) return js_err(j, "expected a value");
    unsigned char c = j->s[j->i];
    switch (c) {
    case '{':
    case '[': return js_container(j, depth);
    case '"': return js_string(j);
    case 't': return js_literal(j, "true");
    case 'f': return js_literal(j, "false");
    case 'n': return js_literal(j, "null");
    default:
        if (c == '-' || is_digit(c)) return js_number(j);
        return js_err(j, "expected a value");
    }
}

/* Numbers of the cJSON tree, in document order, get their index into jscan.nums in valueint. */
static void tag_numbers(cJSON *item, size_t *k) {
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            item->valueint = (*k <= (size_t)INT_MAX) ? (int)*k : -1;
            (*k)++;
        } else if (cJSON_IsArray(item) || cJSON_IsObject(item)) {
            tag_numbers(item->child, k);
        }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The file handle                                                                             */

typedef struct {
    const char *key, *value;
} kv;

struct mm_st_file {
    const unsigned char *base;
    size_t len;
    int mapped;
    size_t ntensors;
    mm_st_tensor *tensors;       /* sorted by data offset */
    const mm_st_tensor **byname; /* sorted by name */
    size_t nmeta;
    kv *meta;      /* sorted by key */
    char *strings; /* names, keys, values */
};

typedef struct {
    const char *name; /* into the cJSON tree until copied */
    mm_st_dtype dtype;
    int ndim;
    int64_t shape[MM_ST_MAX_DIMS];
    int64_t numel;
    uint64_t begin, end;
} tinfo;

size_t mm_st_dtype_size(mm_st_dtype dt) {
    switch (dt) {
    case MM_ST_F32: return 4;
    case MM_ST_F16: return 2;
    case MM_ST_BF16: return 2;
    }
    return 0;
}

const char *mm_st_dtype_name(mm_st_dtype dt) {
    switch (dt) {
    case MM_ST_F32: return "F32";
    case MM_ST_F16: return "F16";
    case MM_ST_BF16: return "BF16";
    }
    return "?";
}

static const char *jtype(const cJSON *v) {
    if (cJSON_IsString(v)) return "a string";
    if (cJSON_IsNumber(v)) return "a number";
    if (cJSON_IsObject(v)) return "an object";
    if (cJSON_IsArray(v)) return "an array";
    if (cJSON_IsTrue(v)) return "true";
    if (cJSON_IsFalse(v)) return "false";
    if (cJSON_IsNull(v)) return "null";
    return "an invalid value";
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Finds a duplicate key among the members of obj; returns it or NULL. *oom set on failure. */
static const char *find_duplicate_key(const cJSON *obj, int *oom) {
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2) return NULL;
    const char **keys = malloc(n * sizeof *keys);
    if (!keys) {
        *oom = 1;
        return NULL;
    }
    size_t k = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        keys[k++] = c->string;
    qsort(keys, n, sizeof *keys, cmp_str_ptr);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0) dup = keys[i];
    free(keys);
    return dup;
}

typedef struct {
    const jnum *nums;
    size_t nnum;
    const unsigned char *hdr;
    errctx *e;
} semctx;

/* Reads a non-negative integer (exact text) or fails with a message about `what`. */
static int get_uint(semctx *s, const char *tname, const char *what0, int index, const cJSON *v,
                    int64_t *out) {
    const jnum *num = NULL;
    if (cJSON_IsNumber(v)) {
        if (v->valueint < 0 || (size_t)v->valueint >= s->nnum) {
            fail(s->e, "internal error: number index mismatch while reading the header");
            return -1;
        }
        num = &s->nums[v->valueint];
        if (num->kind == NUM_OK) {
            *out = num->value;
            return 0;
        }
    }
    /* error: name the element */
    qbuf q;
    char what[48];
    if (index >= 0)
        snprintf(what, sizeof what, "%s[%d]", what0, index);
    else
        snprintf(what, sizeof what, "%s", what0);
    if (!num) {
        fail(s->e, "tensor '%s': %s is %s, expected a non-negative integer", quote(&q, tname), what,
             jtype(v));
        return -1;
    }
    const char *why = num->kind == NUM_NEGATIVE      ? "expected a non-negative integer"
                      : num->kind == NUM_NOT_INTEGER ? "not an integer (expected digits only, no "
                                                       "'.' or exponent)"
                                                     : "too large (at most 2^63-1)";
    fail(s->e, "tensor '%s': %s is %.*s, %s", quote(&q, tname), what, (int)num->len,
         (const char *)s->hdr + num->off, why);
    return -1;
}

static const char *const other_dtypes[] = {
    "BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2",
    "I16",  "U16", "I32", "U32",     "I64",     "U64",     "F64", "C64",     "E8M0",
};

static void fmt_shape(char *buf, size_t n, const int64_t *shape, int ndim) {
    size_t o = 0;
    o += (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < ndim && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

static int parse_tensor(semctx *s, const cJSON *entry, tinfo *t, uint64_t data_len) {
    qbuf q;
    const char *name = entry->string;
    size_t nlen = strlen(name);
    if (nlen == 0) {
        fail(s->e, "tensor with an empty name");
        return -1;
    }
    if (nlen > MM_ST_MAX_NAME) {
        fail(s->e, "tensor '%s': name is %zu bytes long (at most %d allowed)", quote(&q, name),
             nlen, MM_ST_MAX_NAME);
        return -1;
    }
    memset(t, 0, sizeof *t);
    t->name = name;
    if (!cJSON_IsObject(entry)) {
        fail(s->e,
             "tensor '%s': entry is %s, expected an object with dtype, shape and "
             "data_offsets",
             quote(&q, name), jtype(entry));
        return -1;
    }
    const cJSON *dt = NULL, *sh = NULL, *off = NULL;
    for (const cJSON *c = entry->child; c; c = c->next) {
        const cJSON **slot = NULL;
        if (strcmp(c->string, "dtype") == 0)
            slot = &dt;
        else if (strcmp(c->string, "shape") == 0)
            slot = &sh;
        else if (strcmp(c->string, "data_offsets") == 0)
            slot = &off;
        if (!slot) {
            qbuf q2;
            fail(s->e, "tensor '%s': unexpected key '%s' (allowed: dtype, shape, data_offsets)",
                 quote(&q, name), quote(&q2, c->string));
            return -1;
        }
        if (*slot) {
            fail(s->e, "tensor '%s': duplicate key '%s'", quote(&q, name), c->string);
            return -1;
        }
        *slot = c;
    }
    if (!dt || !sh || !off) {
        fail(s->e, "tensor '%s': missing key '%s'", quote(&q, name),
             !dt   ? "dtype"
             : !sh ? "shape"
                   : "data_offsets");
        return -1;
    }

    /* dtype */
    if (!cJSON_IsString(dt)) {
        fail(s->e, "tensor '%s': dtype is %s, expected a string", quote(&q, name), jtype(dt));
        return -1;
    }
    if (strcmp(dt->valuestring, "F32") == 0)
        t->dtype = MM_ST_F32;
    else if (strcmp(dt->valuestring, "F16") == 0)
        t->dtype = MM_ST_F16;
    else if (strcmp(dt->valuestring, "BF16") == 0)
        t->dtype = MM_ST_BF16;
    else {
        int known = 0;
        for (size_t i = 0; i < sizeof other_dtypes / sizeof other_dtypes[0]; i++)
            if (strcmp(dt->valuestring, other_dtypes[i]) == 0) known = 1;
        qbuf q2;
        fail(s->e, "tensor '%s': %s dtype '%s' (libmm reads F32, F16 and BF16)", quote(&q, name),
             known ? "unsupported" : "unknown", quote(&q2, dt->valuestring));
        return -1;
    }

    /* shape */
    if (!cJSON_IsArray(sh)) {
        fail(s->e, "tensor '%s': shape is %s, expected an array of integers", quote(&q, name),
             jtype(sh));
        return -1;
    }
    int ndim = cJSON_GetArraySize(sh);
    if (ndim > MM_ST_MAX_DIMS) {
        fail(s->e, "tensor '%s': shape has %d dimensions (at most %d supported)", quote(&q, name),
             ndim, MM_ST_MAX_DIMS);
        return -1;
    }
    t->ndim = ndim;
    int d = 0;
    for (const cJSON *c = sh->child; c; c = c->next, d++) {
        if (get_uint(s, name, "shape", d, c, &t->shape[d])) return -1;
    }

    /* data_offsets */
    if (!cJSON_IsArray(off)) {
        fail(s->e, "tensor '%s': data_offsets is %s, expected an array [begin, end]",
             quote(&q, name), jtype(off));
        return -1;
    }
    int noff = cJSON_GetArraySize(off);
    if (noff != 2) {
        fail(s->e, "tensor '%s': data_offsets has %d element(s), expected exactly 2 [begin, end]",
             quote(&q, name), noff);
        return -1;
    }
    int64_t b, en;
    if (get_uint(s, name, "data_offsets[0] (begin)", -1, off->child, &b) ||
        get_uint(s, name, "data_offsets[1] (end)", -1, off->child->next, &en))
        return -1;
    if (b > en) {
        fail(s->e, "tensor '%s': data_offsets [%lld, %lld) has begin > end", quote(&q, name),
             (long long)b, (long long)en);
        return -1;
    }
    t->begin = (uint64_t)b;
    t->end = (uint64_t)en;

    /* size, with overflow checks (left-to-right product, as the reference) */
    char shp[8 * 22 + 8];
    fmt_shape(shp, sizeof shp, t->shape, t->ndim);
    uint64_t numel = 1, nbytes;
    for (int k = 0; k < t->ndim; k++) {
        if (__builtin_mul_overflow(numel, (uint64_t)t->shape[k], &numel)) {
            fail(s->e, "tensor '%s': shape %s overflows (element count exceeds 2^64)",
                 quote(&q, name), shp);
            return -1;
        }
    }
    if (numel > (uint64_t)INT64_MAX ||
        __builtin_mul_overflow(numel, (uint64_t)mm_st_dtype_size(t->dtype), &nbytes)) {
        fail(s->e, "tensor '%s': shape %s of %s overflows (byte size exceeds 2^64)",
             quote(&q, name), shp, mm_st_dtype_name(t->dtype));
        return -1;
    }
    t->numel = (int64_t)numel;
    if (nbytes != t->end - t->begin) {
        fail(s->e,
             "tensor '%s': data_offsets [%llu, %llu) hold %llu bytes but shape %s of %s "
             "needs %llu (size mismatch)",
             quote(&q, name), (unsigned long long)t->begin, (unsigned long long)t->end,
             (unsigned long long)(t->end - t->begin), shp, mm_st_dtype_name(t->dtype),
             (unsigned long long)nbytes);
        return -1;
    }
    if (t->end > data_len) {
        fail(s->e,
             "tensor '%s': data_offsets [%llu, %llu) out of range: the data section is "
             "only %llu bytes (file truncated?)",
             quote(&q, name), (unsigned long long)t->begin, (unsigned long long)t->end,
             (unsigned long long)data_len);
        return -1;
    }
    return 0;
}

static int cmp_tinfo_offset(const void *a, const void *b) {
    const tinfo *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int cmp_tensor_name(const void *a, const void *b) {
    const mm_st_tensor *x = *(const mm_st_tensor *const *)a, *y = *(const mm_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_kv(const void *a, const void *b) {
    return strcmp(((const kv *)a)->key, ((const kv *)b)->key);
}

static void free_file(mm_st_file *f) {
    if (!f) return;
    free(f->tensors);
    free(f->byname);
    free(f->meta);
    free(f->strings);
    free(f);
}

/* The whole validation. On success fills f (base/len already set). */
static int parse_buffer(mm_st_file *f, errctx *e) {
    const unsigned char *buf = f->base;
    size_t len = f->len;
    if (len < 8) {
        fail(e,
             "file is %zu bytes, too small (truncated): a safetensors file starts with an "
             "8-byte header length",
             len);
        return -1;
    }
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = (n << 8) | buf[k];
    if (n > MM_ST_MAX_HEADER) {
        fail(e, "header length %llu is too large (limit %u bytes)", (unsigned long long)n,
             MM_ST_MAX_HEADER);
        return -1;
    }
    if (n > len - 8) {
        fail(e,
             "header length %llu runs past the end of the file (file is %zu bytes: "
             "truncated?)",
             (unsigned long long)n, len);
        return -1;
    }
    const unsigned char *hdr = buf + 8;
    uint64_t data_len = (uint64_t)(len - 8 - (size_t)n);
    if (n == 0) {
        fail(e, "header is empty (expected a JSON object)");
        return -1;
    }
    const unsigned char *nul = memchr(hdr, 0, (size_t)n);
    if (nul) {
        fail(e, "header contains a NUL byte at header byte %zu", (size_t)(nul - hdr));
        return -1;
    }
    size_t bad = utf8_invalid_at(hdr, (size_t)n);
    if (bad != n) {
        fail(e, "header is not valid UTF-8 (byte 0x%02x at header byte %zu)", hdr[bad], bad);
        return -1;
    }
    if (hdr[0] != '{') {
        char first[8];
        if (hdr[0] >= 0x20 && hdr[0] < 0x7f)
            snprintf(first, sizeof first, "'%c'", hdr[0]);
        else
            snprintf(first, sizeof first, "0x%02x", hdr[0]);
        fail(e, "header is not a JSON object (it must start with '{', starts with %s)", first);
        return -1;
    }

    int rc = -1;
    jscan j = {hdr, (size_t)n, 0, NULL, 0, 0, e, 0};
    char *text = NULL;
    cJSON *root = NULL;
    tinfo *ti = NULL;
    kv *meta = NULL;
    size_t nmeta = 0, nt = 0;

    if (js_container(&j, 1)) goto out;
    js_ws(&j);
    if (j.i != j.n) {
        js_err(&j, "unexpected data after the JSON object");
        goto out;
    }

    text = malloc((size_t)n + 1);
    if (!text) {
        fail(e, "out of memory (header of %llu bytes)", (unsigned long long)n);
        goto out;
    }
    memcpy(text, hdr, (size_t)n);
    text[n] = '\0';
    root = cJSON_ParseWithOpts(text, NULL, 1);
    if (!root || !cJSON_IsObject(root)) {
        fail(e, "header JSON could not be parsed by cJSON (out of memory?)");
        goto out;
    }
    size_t tagged = 0;
    tag_numbers(root->child, &tagged);
    if (tagged != j.nnum) {
        fail(e, "internal error: header number count mismatch (%zu vs %zu)", tagged, j.nnum);
        goto out;
    }
    semctx s = {j.nums, j.nnum, hdr, e};

    int oom = 0;
    const char *dup = find_duplicate_key(root, &oom);
    if (oom) {
        fail(e, "out of memory");
        goto out;
    }
    if (dup) {
        qbuf q;
        fail(e, "duplicate key '%s' in the header (tensor names must be unique)", quote(&q, dup));
        goto out;
    }

    size_t nmembers = (size_t)cJSON_GetArraySize(root);
    ti = calloc(nmembers ? nmembers : 1, sizeof *ti);
    if (!ti) {
        fail(e, "out of memory");
        goto out;
    }
    const cJSON *meta_obj = NULL;
    size_t strbytes = 0;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            meta_obj = c;
            continue;
        }
        if (parse_tensor(&s, c, &ti[nt], data_len)) goto out;
        strbytes += strlen(c->string) + 1;
        nt++;
    }
    if (nt > MM_ST_MAX_TENSORS) {
        fail(e, "header has %zu tensors (limit %d)", nt, MM_ST_MAX_TENSORS);
        goto out;
    }
    if (meta_obj) {
        if (!cJSON_IsObject(meta_obj)) {
            fail(e, "__metadata__ is %s, expected an object of string values", jtype(meta_obj));
            goto out;
        }
        dup = find_duplicate_key(meta_obj, &oom);
        if (oom) {
            fail(e, "out of memory");
            goto out;
        }
        if (dup) {
            qbuf q;
            fail(e, "__metadata__: duplicate key '%s'", quote(&q, dup));
            goto out;
        }
        for (const cJSON *c = meta_obj->child; c; c = c->next) {
            if (!cJSON_IsString(c)) {
                qbuf q;
                fail(e, "__metadata__['%s'] is %s, but metadata values must be strings",
                     quote(&q, c->string), jtype(c));
                goto out;
            }
            strbytes += strlen(c->string) + strlen(c->valuestring) + 2;
            nmeta++;
        }
    }

    /* tiling of the data section */
    qsort(ti, nt, sizeof *ti, cmp_tinfo_offset);
    uint64_t pos = 0;
    for (size_t i = 0; i < nt; i++) {
        qbuf q, q2;
        if (ti[i].begin > pos) {
            if (i == 0)
                fail(e,
                     "tensor '%s' begins at data offset %llu: gap of %llu unused bytes at the "
                     "start of the data section (the first tensor must begin at 0)",
                     quote(&q, ti[i].name), (unsigned long long)ti[i].begin,
                     (unsigned long long)ti[i].begin);
            else
                fail(e,
                     "gap of %llu unused bytes between tensor '%s' (ends at %llu) and tensor "
                     "'%s' (begins at %llu)",
                     (unsigned long long)(ti[i].begin - pos), quote(&q, ti[i - 1].name),
                     (unsigned long long)pos, quote(&q2, ti[i].name),
                     (unsigned long long)ti[i].begin);
            goto out;
        }
        if (ti[i].begin < pos) {
            fail(e, "tensor '%s' [%llu, %llu) overlaps tensor '%s' which ends at %llu",
                 quote(&q, ti[i].name), (unsigned long long)ti[i].begin,
                 (unsigned long long)ti[i].end, quote(&q2, ti[i - 1].name),
                 (unsigned long long)pos);
            goto out;
        }
        pos = ti[i].end;
    }
    if (pos != data_len) {
        fail(e,
             "the data section is %llu bytes but the tensors cover %llu: %llu trailing "
             "byte(s) after the last tensor (the data must end exactly at the end of the file)",
             (unsigned long long)data_len, (unsigned long long)pos,
             (unsigned long long)(data_len - pos));
        goto out;
    }

    /* build the handle */
    f->strings = malloc(strbytes ? strbytes : 1);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    f->byname = calloc(nt ? nt : 1, sizeof *f->byname);
    meta = calloc(nmeta ? nmeta : 1, sizeof *meta);
    if (!f->strings || !f->tensors || !f->byname || !meta) {
        fail(e, "out of memory");
        goto out;
    }
    char *sp = f->strings;
    const unsigned char *data = buf + 8 + n;
    for (size_t i = 0; i < nt; i++) {
        mm_st_tensor *t = &f->tensors[i];
        size_t l = strlen(ti[i].name) + 1;
        memcpy(sp, ti[i].name, l);
        t->name = sp;
        sp += l;
        t->dtype = ti[i].dtype;
        t->ndim = ti[i].ndim;
        memcpy(t->shape, ti[i].shape, sizeof t->shape);
        t->numel = ti[i].numel;
        t->data = data + ti[i].begin;
        t->nbytes = (size_t)(ti[i].end - ti[i].begin);
        f->byname[i] = t;
    }
    qsort(f->byname, nt, sizeof *f->byname, cmp_tensor_name);
    f->ntensors = nt;
    if (meta_obj) {
        size_t k = 0;
        for (const cJSON *c = meta_obj->child; c; c = c->next, k++) {
            size_t l = strlen(c->string) + 1;
            memcpy(sp, c->string, l);
            meta[k].key = sp;
            sp += l;
            l = strlen(c->valuestring) + 1;
            memcpy(sp, c->valuestring, l);
            meta[k].value = sp;
            sp += l;
        }
        qsort(meta, nmeta, sizeof *meta, cmp_kv);
    }
    f->meta = meta;
    f->nmeta = nmeta;
    meta = NULL;
    rc = 0;

out:
    free(meta);
    free(ti);
    cJSON_Delete(root);
    free(text);
    free(j.nums);
    return rc;
}

static void clear_err(char *err, size_t errlen) {
    if (err && errlen) err[0] = '\0';
}

int mm_st_open_memory(const void *buf, size_t len, mm_st_file **out, char *err, size_t errlen) {
    errctx e = {"<memory>", err, errlen};
    clear_err(err, errlen);
    if (!out) {
        fail(&e, "invalid argument (out is NULL)");
        return -1;
    }
    *out = NULL;
    if (!buf && len) {
        fail(&e, "invalid argument (buffer is NULL)");
        return -1;
    }
    mm_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        fail(&e, "out of memory");
        return -1;
    }
    f->base = buf;
    f->len = buf ? len : 0;
    if (parse_buffer(f, &e)) {
        free_file(f);
        return -1;
    }
    *out = f;
    return 0;
}

int mm_st_open(const char *path, mm_st_file **out, char *err, size_t errlen) {
    errctx e = {path ? path : "(null)", err, errlen};
    char eb[128];
    clear_err(err, errlen);
    if (!out) {
        fail(&e, "invalid argument (out is NULL)");
        return -1;
    }
    *out = NULL;
    if (!path) {
        fail(&e, "invalid argument (path is NULL)");
        return -1;
    }
    int fd;
    do
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        fail(&e, "cannot open: %s", errno_text(errno, eb, sizeof eb));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        fail(&e, "cannot stat: %s", errno_text(errno, eb, sizeof eb));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        fail(&e, "not a regular file (%s)",
             S_ISDIR(st.st_mode) ? "it is a directory"
                                 : "a device, "
                                   "pipe or socket");
        close(fd);
        return -1;
    }
    if (st.st_size < 8) {
        fail(&e,
             "file is %lld bytes, too small (truncated): a safetensors file starts with an "
             "8-byte header length",
             (long long)st.st_size);
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > (uint64_t)SIZE_MAX) {
        fail(&e, "file too large to map");
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED) {
        fail(&e, "cannot mmap %zu bytes: %s", len, errno_text(map_errno, eb, sizeof eb));
        return -1;
    }
    mm_st_file *f = calloc(1, sizeof *f);
    if (!f) {
        munmap(map, len);
        fail(&e, "out of memory");
        return -1;
    }
    f->base = map;
    f->len = len;
    f->mapped = 1;
    if (parse_buffer(f, &e)) {
        munmap(map, len);
        free_file(f);
        return -1;
    }
    *out = f;
    return 0;
}

void mm_st_close(mm_st_file *f) {
    if (!f) return;
    if (f->mapped && f->base) munmap((void *)(uintptr_t)f->base, f->len);
    free_file(f);
}

size_t mm_st_count(const mm_st_file *f) {
    return f ? f->ntensors : 0;
}

const mm_st_tensor *mm_st_get(const mm_st_file *f, size_t i) {
    if (!f || i >= f->ntensors) return NULL;
    return &f->tensors[i];
}

const mm_st_tensor *mm_st_find(const mm_st_file *f, const char *name) {
    if (!f || !name) return NULL;
    size_t lo = 0, hi = f->ntensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->byname[mid]->name);
        if (c == 0) return f->byname[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *mm_st_metadata(const mm_st_file *f, const char *key) {
    if (!f || !key) return NULL;
    size_t lo = 0, hi = f->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(key, f->meta[mid].key);
        if (c == 0) return f->meta[mid].value;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Conversion                                                                                  */

static uint32_t f16_bits_to_f32_bits(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1Fu;
    uint32_t mant = h & 0x3FFu;
    if (exp == 0x1F) /* inf / NaN, payload kept */
        return sign | 0x7F800000u | (mant << 13);
    if (exp == 0) {
        if (mant == 0) return sign; /* +-0 */
        /* subnormal: mant * 2^-24; normalise */
        uint32_t e32 = 113; /* 127 - 15 + 1 */
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e32--;
        }
        mant &= 0x3FFu;
        return sign | (e32 << 23) | (mant << 13);
    }
    return sign | ((exp + 112u) << 23) | (mant << 13);
}

static float bits_to_float(uint32_t b) {
    float f;
    memcpy(&f, &b, sizeof f);
    return f;
}

void mm_st_to_f32(const mm_st_tensor *t, float *dst) {
    if (!t || !dst || t->numel <= 0 || !t->data) return;
    const unsigned char *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case MM_ST_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(dst, p, n * 4);
#else
        for (size_t i = 0; i < n; i++, p += 4)
            dst[i] = bits_to_float((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                                   (uint32_t)p[3] << 24);
#endif
        break;
    case MM_ST_F16:
        for (size_t i = 0; i < n; i++, p += 2)
            dst[i] = bits_to_float(f16_bits_to_f32_bits((uint16_t)(p[0] | p[1] << 8)));
        break;
    case MM_ST_BF16:
        for (size_t i = 0; i < n; i++, p += 2)
            dst[i] = bits_to_float(((uint32_t)p[0] | (uint32_t)p[1] << 8) << 16);
        break;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Writer                                                                                      */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

static void sb_fmt(sbuf *b, const char *fmt, ...) MM_ST_PRINTF(2, 3);
static void sb_fmt(sbuf *b, const char *fmt, ...) {
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k > 0) sb_put(b, tmp, (size_t)k < sizeof tmp ? (size_t)k : sizeof tmp - 1);
}

static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"')
            sb_put(b, "\\\"", 2);
        else if (*p == '\\')
            sb_put(b, "\\\\", 2);
        else if (*p < 0x20)
            sb_fmt(b, "\\u%04x", *p);
        else
            sb_put(b, (const char *)p, 1);
    }
    sb_put(b, "\"", 1);
}

static int write_all(int fd, const void *buf, size_t n) {
    const unsigned char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n > (size_t)1 << 30 ? (size_t)1 << 30 : n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int valid_utf8_cstr(const char *s) {
    size_t n = strlen(s);
    return utf8_invalid_at((const unsigned char *)s, n) == n;
}

int mm_st_write_f32(const char *path, const mm_st_write_tensor *tensors, size_t n,
                    const char *const *meta_keys, const char *const *meta_values, size_t n_meta,
                    char *err, size_t errlen) {
    errctx e = {path ? path : "(null)", err, errlen};
    char eb[128];
    qbuf q;
    clear_err(err, errlen);
    if (!path || (n && !tensors) || (n_meta && (!meta_keys || !meta_values))) {
        fail(&e, "invalid argument (NULL path, tensors or metadata arrays)");
        return -1;
    }
    if (n > MM_ST_MAX_TENSORS || n_meta > MM_ST_MAX_METADATA) {
        fail(&e, "too many tensors or metadata entries");
        return -1;
    }
    /* validate */
    uint64_t *nbytes = calloc(n ? n : 1, sizeof *nbytes);
    const char **names = calloc((n > n_meta ? n : n_meta) + 1, sizeof *names);
    sbuf hb = {NULL, 0, 0, 0};
    char *tmp = NULL;
    int fd = -1, rc = -1;
    if (!nbytes || !names) {
        fail(&e, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const mm_st_write_tensor *t = &tensors[i];
        if (!t->name || !*t->name) {
            fail(&e, "tensor %zu: empty or NULL name", i);
            goto out;
        }
        size_t l = strlen(t->name);
        if (l > MM_ST_MAX_NAME || !valid_utf8_cstr(t->name) ||
            strcmp(t->name, "__metadata__") == 0) {
            fail(&e, "tensor %zu: invalid name '%s' (too long, not UTF-8 or reserved)", i,
                 quote(&q, t->name));
            goto out;
        }
        if (t->ndim < 0 || t->ndim > MM_ST_MAX_DIMS || (t->ndim > 0 && !t->shape)) {
            fail(&e, "tensor '%s': ndim %d invalid (0..%d, shape required)", quote(&q, t->name),
                 t->ndim, MM_ST_MAX_DIMS);
            goto out;
        }
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || __builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel)) {
                fail(&e, "tensor '%s': shape[%d] = %lld negative or overflowing",
                     quote(&q, t->name), d, (long long)t->shape[d]);
                goto out;
            }
        }
        if (numel > (uint64_t)INT64_MAX / 4 || numel > SIZE_MAX / 4) {
            fail(&e, "tensor '%s': too large", quote(&q, t->name));
            goto out;
        }
        if (numel && !t->data) {
            fail(&e, "tensor '%s': data is NULL", quote(&q, t->name));
            goto out;
        }
        nbytes[i] = numel * 4;
        names[i] = t->name;
    }
    qsort(names, n, sizeof *names, cmp_str_ptr);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            fail(&e, "duplicate tensor name '%s'", quote(&q, names[i]));
            goto out;
        }
    for (size_t i = 0; i < n_meta; i++) {
        if (!meta_keys[i] || !meta_values[i] || !valid_utf8_cstr(meta_keys[i]) ||
            !valid_utf8_cstr(meta_values[i])) {
            fail(&e, "metadata entry %zu: NULL or not valid UTF-8", i);
            goto out;
        }
        names[i] = meta_keys[i];
    }
    qsort(names, n_meta, sizeof *names, cmp_str_ptr);
    for (size_t i = 1; i < n_meta; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            fail(&e, "duplicate metadata key '%s'", quote(&q, names[i]));
            goto out;
        }

    /* header */
    sb_str(&hb, "{");
    int first = 1;
    if (n_meta) {
        sb_str(&hb, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_str(&hb, ",");
            sb_json_string(&hb, meta_keys[i]);
            sb_str(&hb, ":");
            sb_json_string(&hb, meta_values[i]);
        }
        sb_str(&hb, "}");
        first = 0;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        const mm_st_write_tensor *t = &tensors[i];
        if (!first) sb_str(&hb, ",");
        first = 0;
        sb_json_string(&hb, t->name);
        sb_str(&hb, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++)
            sb_fmt(&hb, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        sb_fmt(&hb, "],\"data_offsets\":[%llu,", (unsigned long long)off);
        off += nbytes[i];
        sb_fmt(&hb, "%llu]}", (unsigned long long)off);
    }
    sb_str(&hb, "}");
    while (!hb.oom && hb.len % 8)
        sb_str(&hb, " ");
    if (hb.oom) {
        fail(&e, "out of memory");
        goto out;
    }
    if (hb.len > MM_ST_MAX_HEADER) {
        fail(&e, "header would be %zu bytes (limit %u)", hb.len, MM_ST_MAX_HEADER);
        goto out;
    }

    /* write to a temporary file next to path, then rename */
    size_t pl = strlen(path);
    tmp = malloc(pl + 16);
    if (!tmp) {
        fail(&e, "out of memory");
        goto out;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp.XXXXXX", 12);
    fd = mkstemp(tmp);
    if (fd < 0) {
        fail(&e, "cannot create temporary file '%s': %s", tmp, errno_text(errno, eb, sizeof eb));
        free(tmp);
        tmp = NULL;
        goto out;
    }
    unsigned char lenb[8];
    for (int k = 0; k < 8; k++)
        lenb[k] = (unsigned char)((uint64_t)hb.len >> (8 * k));
    if (write_all(fd, lenb, 8) || write_all(fd, hb.p, hb.len)) goto io_error;
    for (size_t i = 0; i < n; i++) {
        const float *src = tensors[i].data;
        size_t cnt = (size_t)(nbytes[i] / 4);
        unsigned char chunk[4096];
        while (cnt) {
            size_t m = cnt < sizeof chunk / 4 ? cnt : sizeof chunk / 4;
            for (size_t k = 0; k < m; k++) {
                uint32_t b;
                memcpy(&b, &src[k], 4);
                chunk[4 * k + 0] = (unsigned char)b;
                chunk[4 * k + 1] = (unsigned char)(b >> 8);
                chunk[4 * k + 2] = (unsigned char)(b >> 16);
                chunk[4 * k + 3] = (unsigned char)(b >> 24);
            }
            if (write_all(fd, chunk, 4 * m)) goto io_error;
            src += m;
            cnt -= m;
        }
    }
    if (fchmod(fd, 0644) != 0 || fsync(fd) != 0) goto io_error;
    if (close(fd) != 0) {
        fd = -1;
        goto io_error;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        fail(&e, "cannot rename '%s' to the destination: %s", tmp,
             errno_text(errno, eb, sizeof eb));
        goto out;
    }
    free(tmp);
    tmp = NULL;
    { /* make the rename durable; failure here is not an error of the write */
        char *dir = malloc(pl + 2);
        if (dir) {
            memcpy(dir, path, pl + 1);
            char *slash = strrchr(dir, '/');
            if (!slash)
                strcpy(dir, ".");
            else if (slash == dir)
                dir[1] = '\0';
            else
                *slash = '\0';
            int dfd = open(dir, O_RDONLY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    rc = 0;
    goto out;

io_error:
    fail(&e, "write error: %s", errno_text(errno, eb, sizeof eb));
out:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(hb.p);
    free(names);
    free(nbytes);
    return rc;
}
