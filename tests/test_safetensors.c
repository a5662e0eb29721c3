/* Tests for libmm/src/safetensors.c (cmocka). */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "safetensors.h"

/* ------------------------------------------------------------------------------------------ */
/* helpers                                                                                     */

static char g_tmpdir[512];

/* A malloc'd file image of exactly the right size (so ASan sees any overread):
 * u64le(hlen) | hdr[0..hlen) | data (dlen bytes; pattern if data is NULL). */
static unsigned char *mkfile_n(const char *hdr, size_t hlen, const void *data, size_t dlen,
                               size_t *outlen)
{
    size_t len = 8 + hlen + dlen;
    unsigned char *b = malloc(len ? len : 1);
    assert_non_null(b);
    for (int k = 0; k < 8; k++)
        b[k] = (unsigned char)((uint64_t)hlen >> (8 * k));
    memcpy(b + 8, hdr, hlen);
    if (data)
        memcpy(b + 8 + hlen, data, dlen);
    else
        for (size_t i = 0; i < dlen; i++)
            b[8 + hlen + i] = (unsigned char)(i * 7 + 1);
    *outlen = len;
    return b;
}

static unsigned char *mkfile(const char *hdr, const void *data, size_t dlen, size_t *outlen)
{
    return mkfile_n(hdr, strlen(hdr), data, dlen, outlen);
}

static const char *ci_strstr(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return hay;
    }
    return NULL;
}

static char g_lastmsg[1024];

/* Opening must fail, *out must be NULL, the message must name "<memory>" and contain word. */
static void expect_fail_buf(const unsigned char *buf, size_t len, const char *word,
                            const char *label)
{
    mm_st_file *f = (mm_st_file *)&g_lastmsg; /* garbage that must be overwritten */
    char err[1024];
    memset(err, 'X', sizeof err);
    int rc = mm_st_open_memory(buf, len, &f, err, sizeof err);
    if (rc == 0) {
        mm_st_close(f);
        fail_msg("[%s] accepted, expected a failure mentioning '%s'", label, word);
    }
    assert_null(f);
    if (!memchr(err, 0, sizeof err))
        fail_msg("[%s] message not NUL-terminated", label);
    if (!strstr(err, "<memory>: ") || strlen(err) < 20)
        fail_msg("[%s] message '%s' does not name the file or is too short", label, err);
    if (word && !ci_strstr(err, word))
        fail_msg("[%s] message '%s' lacks '%s'", label, err, word);
    snprintf(g_lastmsg, sizeof g_lastmsg, "%s", err);
    if (getenv("MM_ST_TEST_VERBOSE"))
        print_message("%-36s %s\n", label, err);
}

static mm_st_file *expect_ok_buf(const unsigned char *buf, size_t len, const char *label)
{
    mm_st_file *f = NULL;
    char err[1024];
    int rc = mm_st_open_memory(buf, len, &f, err, sizeof err);
    if (rc != 0)
        fail_msg("[%s] rejected: %s", label, err);
    assert_non_null(f);
    return f;
}

static float f32_at(const mm_st_tensor *t, size_t i)
{
    float v;
    memcpy(&v, (const unsigned char *)t->data + 4 * i, 4);
    return v;
}

static uint32_t fbits(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return b;
}

static void put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put_f32(unsigned char *p, float f)
{
    uint32_t b = fbits(f);
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(b >> (8 * k));
}

static char *tmp_path(const char *name)
{
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n)
        assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* The rich valid file used by several tests. Tensors listed out of offset order on purpose. */
static const char RICH_HDR[] =
    "{\"__metadata__\":{\"config\":\"{\\\"format\\\":\\\"metaearth-mm\\\"}\",\"author\":\"me\"},"
    "\"w.bf16\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[32,38]},"
    "\"z.empty\":{\"shape\":[0,5],\"dtype\":\"F32\",\"data_offsets\":[24,24]},"
    "\"x.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
    "\"h.f16\":{\"data_offsets\":[24,32],\"dtype\":\"F16\",\"shape\":[2,2]},"
    "\"s.scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[38,42]}}";
#define RICH_DLEN 42

static void rich_data(unsigned char d[RICH_DLEN])
{
    for (int i = 0; i < 6; i++)
        put_f32(d + 4 * i, (float)(i + 1));
    put_le16(d + 24, 0x3c00);
    put_le16(d + 26, 0xc100);
    put_le16(d + 28, 0x7bff);
    put_le16(d + 30, 0x0001);
    put_le16(d + 32, 0x3f80);
    put_le16(d + 34, 0xc020);
    put_le16(d + 36, 0x7f80);
    put_f32(d + 38, 42.0f);
}

static unsigned char *rich_file(size_t *len)
{
    unsigned char d[RICH_DLEN];
    rich_data(d);
    return mkfile(RICH_HDR, d, RICH_DLEN, len);
}

/* Checks everything a successfully opened handle promises, against the buffer it came from. */
static void check_consistent(const mm_st_file *f, const unsigned char *buf, size_t len)
{
    uint64_t n = 0;
    for (int k = 7; k >= 0; k--)
        n = (n << 8) | buf[k];
    assert_true(n <= len - 8);
    const unsigned char *pos = buf + 8 + n;
    size_t cnt = mm_st_count(f);
    for (size_t i = 0; i < cnt; i++) {
        const mm_st_tensor *t = mm_st_get(f, i);
        assert_non_null(t);
        assert_non_null(t->name);
        size_t nl = strlen(t->name);
        assert_true(nl >= 1 && nl <= MM_ST_MAX_NAME);
        assert_true(t->dtype == MM_ST_F32 || t->dtype == MM_ST_F16 || t->dtype == MM_ST_BF16);
        assert_true(t->ndim >= 0 && t->ndim <= MM_ST_MAX_DIMS);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            assert_true(t->shape[d] >= 0);
            assert_false(__builtin_mul_overflow(numel, (uint64_t)t->shape[d], &numel));
        }
        assert_true(t->numel >= 0 && numel == (uint64_t)t->numel);
        assert_true(t->nbytes == (size_t)t->numel * mm_st_dtype_size(t->dtype));
        assert_ptr_equal(t->data, pos);
        assert_true((size_t)((const unsigned char *)t->data - buf) + t->nbytes <= len);
        pos += t->nbytes;
        assert_ptr_equal(mm_st_find(f, t->name), t);
        if (t->numel > 0) {
            float *tmp = malloc((size_t)t->numel * sizeof *tmp);
            assert_non_null(tmp);
            mm_st_to_f32(t, tmp);
            free(tmp);
        }
    }
    assert_ptr_equal(pos, buf + len);
    assert_null(mm_st_get(f, cnt));
}

/* ------------------------------------------------------------------------------------------ */
/* valid files                                                                                 */

static void test_valid_rich(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = rich_file(&len);
    mm_st_file *f = expect_ok_buf(b, len, "rich");
    check_consistent(f, b, len);
    const unsigned char *data = b + 8 + strlen(RICH_HDR);

    assert_int_equal(mm_st_count(f), 5);
    const char *order[] = {"x.weight", "z.empty", "h.f16", "w.bf16", "s.scalar"};
    const size_t offs[] = {0, 24, 24, 32, 38};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(mm_st_get(f, i)->name, order[i]);
        assert_ptr_equal(mm_st_get(f, i)->data, data + offs[i]);
    }
    const mm_st_tensor *t = mm_st_find(f, "x.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, MM_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->shape[2], 0);
    assert_int_equal(t->numel, 6);
    assert_int_equal(t->nbytes, 24);
    for (int i = 0; i < 6; i++)
        assert_true(f32_at(t, (size_t)i) == (float)(i + 1));
    float out[6];
    mm_st_to_f32(t, out);
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == (float)(i + 1));

    t = mm_st_find(f, "h.f16");
    assert_non_null(t);
    assert_int_equal(t->dtype, MM_ST_F16);
    assert_int_equal(t->numel, 4);
    assert_int_equal(t->nbytes, 8);
    mm_st_to_f32(t, out);
    assert_true(out[0] == 1.0f);
    assert_true(out[1] == -2.5f);
    assert_true(out[2] == 65504.0f);
    assert_true(out[3] == ldexpf(1.0f, -24));

    t = mm_st_find(f, "w.bf16");
    assert_non_null(t);
    assert_int_equal(t->dtype, MM_ST_BF16);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], 3);
    mm_st_to_f32(t, out);
    assert_true(out[0] == 1.0f);
    assert_true(out[1] == -2.5f);
    assert_true(isinf(out[2]) && out[2] > 0);

    t = mm_st_find(f, "z.empty");
    assert_non_null(t);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->nbytes, 0);
    assert_non_null(t->data);

    t = mm_st_find(f, "s.scalar");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    assert_int_equal(t->nbytes, 4);
    mm_st_to_f32(t, out); /* unaligned source */
    assert_true(out[0] == 42.0f);

    assert_null(mm_st_find(f, "x"));
    assert_null(mm_st_find(f, "x.weightt"));
    assert_null(mm_st_find(f, "__metadata__"));
    assert_null(mm_st_find(f, ""));
    assert_null(mm_st_find(f, NULL));
    assert_string_equal(mm_st_metadata(f, "config"), "{\"format\":\"metaearth-mm\"}");
    assert_string_equal(mm_st_metadata(f, "author"), "me");
    assert_null(mm_st_metadata(f, "nope"));
    assert_null(mm_st_metadata(f, NULL));
    mm_st_close(f);
    free(b);
}

typedef struct {
    const char *label;
    const char *hdr;
    size_t dlen;
    size_t ntensors;
} ok_case;

static void test_valid_edge_cases(void **state)
{
    (void)state;
    static char longname_hdr[1200];
    char name[MM_ST_MAX_NAME + 1];
    memset(name, 'n', MM_ST_MAX_NAME);
    name[MM_ST_MAX_NAME] = '\0';
    snprintf(longname_hdr, sizeof longname_hdr,
             "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", name);
    const ok_case cases[] = {
        {"empty {}", "{}", 0, 0},
        {"{} padded", "{}      ", 0, 0},
        {"{} whitespace inside and after", "{ \t\r\n}\n\r\t ", 0, 0},
        {"empty metadata", "{\"__metadata__\":{}}", 0, 0},
        {"metadata only", "{\"__metadata__\":{\"a\":\"b\",\"\":\"\"}}", 0, 0},
        {"only a zero-size tensor", "{\"z\":{\"dtype\":\"F16\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0, 1},
        {"zero-size at start, middle and end",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"c\":{\"dtype\":\"BF16\",\"shape\":[3,0],\"data_offsets\":[8,8]},"
         "\"d\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
         "\"e\":{\"dtype\":\"F32\",\"shape\":[0,0,0],\"data_offsets\":[12,12]},"
         "\"f\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[12,12]}}", 12, 6},
        {"zero dim with huge other dims",
         "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,9223372036854775807,9223372036854775807],"
         "\"data_offsets\":[0,0]}}", 0, 1},
        {"8 dims", "{\"t\":{\"dtype\":\"F32\",\"shape\":[1,1,1,2,1,1,1,1],\"data_offsets\":[0,8]}}", 8, 1},
        {"max int64 literal allowed in syntax (zero-size)",
         "{\"t\":{\"dtype\":\"F32\",\"shape\":[9223372036854775807,0],\"data_offsets\":[0,0]}}", 0, 1},
        {"escaped name and metadata",
         "{\"__metadata__\":{\"k\\u00e9\":\"a\\\"b\\n\\u00e9\\ud83d\\ude00\\/\"},"
         "\"na\\u006De\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 1},
        {"raw UTF-8 name", "{\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, 1},
        {"1024-byte name", longname_hdr, 4, 1},
        {"scalar", "{\"s\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[0,2]}}", 2, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        unsigned char *b = mkfile(cases[i].hdr, NULL, cases[i].dlen, &len);
        mm_st_file *f = expect_ok_buf(b, len, cases[i].label);
        assert_int_equal(mm_st_count(f), cases[i].ntensors);
        check_consistent(f, b, len);
        if (i == 10) {
            assert_string_equal(mm_st_metadata(f, "k\xc3\xa9"),
                                "a\"b\n\xc3\xa9\xf0\x9f\x98\x80/");
            assert_non_null(mm_st_find(f, "name"));
        }
        if (i == 4) {
            assert_string_equal(mm_st_metadata(f, ""), "");
            assert_string_equal(mm_st_metadata(f, "a"), "b");
        }
        mm_st_close(f);
        free(b);
    }
}

/* The exact message format of the brief's example. */
static void test_message_example(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b =
        mkfile("{\"x.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", NULL,
               12, &len);
    expect_fail_buf(b, len, "size mismatch", "example");
    assert_non_null(strstr(g_lastmsg, "<memory>: tensor 'x.weight': data_offsets [0, 12) hold 12 "
                                      "bytes but shape [2, 3] of F32 needs 24"));
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* invalid headers                                                                             */

typedef struct {
    const char *label;
    const char *hdr;
    size_t dlen;
    const char *word;
} bad_case;

#define T_(name, dt, shape, offs) "\"" name "\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}"
#define A24 T_("a", "F32", "[2,3]", "[0,24]")

static const bad_case bad_cases[] = {
    /* not JSON / not an object */
    {"not json", "hello", 0, "JSON"},
    {"not json in braces", "{hello}", 0, "JSON"},
    {"unterminated object", "{\"a\":", 0, "JSON"},
    {"unterminated string", "{\"a", 0, "unterminated"},
    {"trailing comma", "{" A24 ",}", 24, "JSON"},
    {"missing colon", "{\"a\" 1}", 0, "JSON"},
    {"single quotes", "{'a':1}", 0, "JSON"},
    {"array not object", "[1,2]", 0, "object"},
    {"string not object", "\"x\"", 0, "object"},
    {"number not object", "5", 0, "object"},
    {"leading whitespace", " {}", 0, "object"},
    {"UTF-8 BOM", "\xef\xbb\xbf{}", 0, "object"},
    {"garbage after object", "{}x", 0, "after"},
    {"two objects", "{}{}", 0, "after"},
    {"leading zero", "{" T_("a", "F32", "[02,3]", "[0,24]") "}", 24, "JSON"},
    {"plus sign", "{" T_("a", "F32", "[+2,3]", "[0,24]") "}", 24, "JSON"},
    {"bare minus", "{" T_("a", "F32", "[-,3]", "[0,24]") "}", 24, "JSON"},
    {"dot without digits", "{" T_("a", "F32", "[2.,3]", "[0,24]") "}", 24, "JSON"},
    {"bad literal", "{\"__metadata__\":tru}", 0, "JSON"},
    {"raw control char", "{\"a\x01\":{}}", 0, "control"},
    {"raw tab in string", "{\"a\t\":{}}", 0, "control"},
    {"invalid escape", "{\"a\\x\":{}}", 0, "escape"},
    {"short \\u escape", "{\"a\\u12\":{}}", 0, "escape"},
    {"escaped NUL", "{\"a\\u0000b\":{}}", 0, "NUL"},
    {"lone high surrogate", "{\"a\\ud800\":{}}", 0, "surrogate"},
    {"high surrogate + non-low", "{\"a\\ud800\\u0041\":{}}", 0, "surrogate"},
    {"lone low surrogate", "{\"a\\udc00\":{}}", 0, "surrogate"},
    {"nesting too deep", "{" T_("a", "F32", "[[2],3]", "[0,24]") "}", 24, "nesting"},
    {"array too long",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
     "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],\"data_offsets\":"
     "[0,4]}}", 4, "elements"},
    {"number too long",
     "{" T_("a", "F32", "[100000000000000000000000000000000000000000000000000,3]", "[0,24]") "}",
     24, "too long"},
    /* invalid UTF-8 */
    {"0xff byte", "{\"a\xff\":{}}", 0, "UTF-8"},
    {"overlong /", "{\"a\xc0\xaf\":{}}", 0, "UTF-8"},
    {"overlong 3-byte", "{\"a\xe0\x80\xaf\":{}}", 0, "UTF-8"},
    {"encoded surrogate", "{\"a\xed\xa0\x80\":{}}", 0, "UTF-8"},
    {"above U+10FFFF", "{\"a\xf4\x90\x80\x80\":{}}", 0, "UTF-8"},
    {"5-byte form", "{\"a\xf8\x88\x80\x80\x80\":{}}", 0, "UTF-8"},
    {"lone continuation", "{\"a\x80\":{}}", 0, "UTF-8"},
    {"truncated sequence at end", "{}\xe2\x82", 0, "UTF-8"},
    {"truncated sequence in string", "{\"\xe2\x82\":{}}", 0, "UTF-8"},
    /* duplicates */
    {"duplicate tensor names", "{" A24 "," T_("a", "F32", "[2,3]", "[24,48]") "}", 48, "duplicate"},
    {"duplicate via escape", "{" A24 "," T_("\\u0061", "F32", "[2,3]", "[24,48]") "}", 48,
     "duplicate"},
    {"duplicate zero-size names",
     "{" T_("z", "F32", "[0]", "[0,0]") "," T_("z", "F32", "[0]", "[0,0]") "}", 0, "duplicate"},
    {"duplicate __metadata__", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate"},
    {"duplicate dtype key",
     "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
     "duplicate"},
    {"duplicate metadata key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate"},
    /* keys */
    {"missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}}", 24, "missing"},
    {"missing dtype", "{\"a\":{\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "missing"},
    {"missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", 24, "missing"},
    {"empty entry", "{\"a\":{}}", 0, "missing"},
    {"extra key",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24],\"foo\":1}}", 24,
     "unexpected"},
    {"wrong-case key",
     "{\"a\":{\"Dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24, "unexpected"},
    /* types */
    {"entry is a string", "{\"a\":\"x\"}", 0, "object"},
    {"entry is null", "{\"a\":null}", 0, "object"},
    {"entry is an array", "{\"a\":[]}", 0, "object"},
    {"dtype is a number", "{\"a\":{\"dtype\":5,\"shape\":[2,3],\"data_offsets\":[0,24]}}", 24,
     "string"},
    {"shape is a string", "{" T_("a", "F32", "\"2,3\"", "[0,24]") "}", 24, "shape"},
    {"shape is an object", "{" T_("a", "F32", "{}", "[0,24]") "}", 24, "shape"},
    {"shape is a number", "{" T_("a", "F32", "6", "[0,24]") "}", 24, "shape"},
    {"shape element string", "{" T_("a", "F32", "[\"2\",3]", "[0,24]") "}", 24, "integer"},
    {"shape element true", "{" T_("a", "F32", "[true,3]", "[0,24]") "}", 24, "integer"},
    {"shape element null", "{" T_("a", "F32", "[null,3]", "[0,24]") "}", 24, "integer"},
    {"data_offsets object", "{" T_("a", "F32", "[2,3]", "{}") "}", 24, "data_offsets"},
    {"data_offsets null", "{" T_("a", "F32", "[2,3]", "null") "}", 24, "data_offsets"},
    {"data_offsets strings", "{" T_("a", "F32", "[2,3]", "[\"0\",\"24\"]") "}", 24, "integer"},
    /* numbers */
    {"negative shape", "{" T_("a", "F32", "[-1,3]", "[0,24]") "}", 24, "negative"},
    {"negative zero", "{" T_("a", "F32", "[-0,3]", "[0,0]") "}", 0, "negative"},
    {"fractional shape", "{" T_("a", "F32", "[1.5,3]", "[0,24]") "}", 24, "integer"},
    {"1.0 shape", "{" T_("a", "F32", "[2.0,3]", "[0,24]") "}", 24, "integer"},
    {"1e30 shape", "{" T_("a", "F32", "[1e30,3]", "[0,24]") "}", 24, "integer"},
    {"2e0 shape", "{" T_("a", "F32", "[2e0,3]", "[0,24]") "}", 24, "integer"},
    {"2E+0 shape", "{" T_("a", "F32", "[2E+0,3]", "[0,24]") "}", 24, "integer"},
    {"shape 2^63", "{" T_("a", "F32", "[9223372036854775808,0]", "[0,0]") "}", 0, "too large"},
    {"shape 2^64", "{" T_("a", "F32", "[18446744073709551616,0]", "[0,0]") "}", 0, "too large"},
    {"shape 9 dims", "{" T_("a", "F32", "[1,1,1,1,1,1,1,1,6]", "[0,24]") "}", 24, "dimensions"},
    {"shape 9 zero dims", "{" T_("a", "F32", "[0,0,0,0,0,0,0,0,0]", "[0,0]") "}", 0,
     "dimensions"},
    {"numel overflows u64",
     "{" T_("a", "F32", "[4294967296,4294967296,2]", "[0,24]") "}", 24, "overflow"},
    {"bytes overflow u64", "{" T_("a", "F32", "[2305843009213693952,2]", "[0,24]") "}", 24,
     "overflow"},
    {"numel above int64", "{" T_("a", "F16", "[9223372036854775807,2]", "[0,24]") "}", 24,
     "overflow"},
    {"intermediate overflow before zero",
     "{" T_("a", "F32", "[4294967296,4294967296,4,0]", "[0,0]") "}", 0, "overflow"},
    {"max shape bytes overflow",
     "{" T_("a", "F32", "[9223372036854775807]", "[0,24]") "}", 24, "overflow"},
    /* offsets */
    {"offsets with gap",
     "{" A24 "," T_("b", "F32", "[6]", "[28,52]") "}", 52, "gap"},
    {"first tensor not at 0", "{" T_("a", "F32", "[2,3]", "[4,28]") "}", 28, "gap"},
    {"zero-size tensor alone not at 0", "{" T_("z", "F32", "[0]", "[4,4]") "}", 4, "gap"},
    {"overlapping offsets",
     "{" A24 "," T_("b", "F32", "[6]", "[20,44]") "}", 44, "overlap"},
    {"identical offsets",
     "{" A24 "," T_("b", "F32", "[6]", "[0,24]") "}", 24, "overlap"},
    {"zero-size tensor inside another",
     "{" A24 "," T_("z", "F32", "[0]", "[12,12]") "}", 24, "overlap"},
    {"zero-size tensor past the end",
     "{" A24 "," T_("z", "F32", "[0]", "[30,30]") "}", 24, "out of range"},
    {"offsets out of range", "{" T_("a", "F32", "[2,3]", "[0,24]") "}", 12, "out of range"},
    {"huge offsets", "{" T_("a", "F32", "[2]", "[9223372036854775799,9223372036854775807]") "}",
     8, "out of range"},
    {"offset 2^63", "{" T_("a", "F32", "[2]", "[0,9223372036854775808]") "}", 8, "too large"},
    {"begin > end", "{" T_("a", "F32", "[0]", "[24,0]") "}", 24, "begin > end"},
    {"trailing data byte", "{" A24 "}", 25, "trailing"},
    {"no tensors but data", "{}", 1, "trailing"},
    {"metadata only but data", "{\"__metadata__\":{}}", 8, "trailing"},
    {"size mismatch", "{" T_("a", "F32", "[2,3]", "[0,20]") "}", 20, "mismatch"},
    {"offsets 3 elements", "{" T_("a", "F32", "[2,3]", "[0,24,24]") "}", 24, "exactly 2"},
    {"offsets 1 element", "{" T_("a", "F32", "[2,3]", "[24]") "}", 24, "exactly 2"},
    {"offsets empty", "{" T_("a", "F32", "[2,3]", "[]") "}", 24, "exactly 2"},
    {"negative offset", "{" T_("a", "F32", "[2,3]", "[-24,0]") "}", 24, "negative"},
    {"fractional offset", "{" T_("a", "F32", "[2,3]", "[0,24.0]") "}", 24, "integer"},
    /* dtypes */
    {"F64", "{" T_("a", "F64", "[3]", "[0,24]") "}", 24, "unsupported dtype"},
    {"I64", "{" T_("a", "I64", "[3]", "[0,24]") "}", 24, "unsupported dtype"},
    {"U8", "{" T_("a", "U8", "[3]", "[0,3]") "}", 3, "unsupported dtype"},
    {"BOOL", "{" T_("a", "BOOL", "[3]", "[0,3]") "}", 3, "unsupported dtype"},
    {"F8_E4M3", "{" T_("a", "F8_E4M3", "[3]", "[0,3]") "}", 3, "unsupported dtype"},
    {"lower-case f32", "{" T_("a", "f32", "[6]", "[0,24]") "}", 24, "unknown dtype"},
    {"made-up dtype", "{" T_("a", "Q4_K", "[6]", "[0,24]") "}", 24, "unknown dtype"},
    {"empty dtype", "{" T_("a", "", "[6]", "[0,24]") "}", 24, "unknown dtype"},
    /* metadata */
    {"metadata number value", "{\"__metadata__\":{\"k\":5}}", 0, "string"},
    {"metadata null value", "{\"__metadata__\":{\"k\":null}}", 0, "string"},
    {"metadata object value", "{\"__metadata__\":{\"k\":{}}}", 0, "string"},
    {"metadata array value", "{\"__metadata__\":{\"k\":[\"v\"]}}", 0, "string"},
    {"metadata is an array", "{\"__metadata__\":[]}", 0, "__metadata__"},
    {"metadata is null", "{\"__metadata__\":null}", 0, "__metadata__"},
    {"metadata is a string", "{\"__metadata__\":\"x\"}", 0, "__metadata__"},
    /* names */
    {"empty name", "{" T_("", "F32", "[2,3]", "[0,24]") "}", 24, "empty name"},
};

static void test_bad_headers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        size_t len;
        unsigned char *b = mkfile(bad_cases[i].hdr, NULL, bad_cases[i].dlen, &len);
        expect_fail_buf(b, len, bad_cases[i].word, bad_cases[i].label);
        free(b);
    }
}

static void test_long_name(void **state)
{
    (void)state;
    char hdr[1300];
    char name[MM_ST_MAX_NAME + 2];
    memset(name, 'n', MM_ST_MAX_NAME + 1);
    name[MM_ST_MAX_NAME + 1] = '\0';
    snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
             name);
    size_t len;
    unsigned char *b = mkfile(hdr, NULL, 4, &len);
    expect_fail_buf(b, len, "1024", "1025-byte name");
    free(b);

    /* control characters and long names are escaped and cut in messages */
    char ctl[40 * 6 + 1] = "";
    for (int i = 0; i < 40; i++)
        strcat(ctl, "\\u0001");
    snprintf(hdr, sizeof hdr, "{\"%s\xc3\xa9\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
             ctl);
    b = mkfile(hdr, NULL, 8, &len);
    expect_fail_buf(b, len, "unsupported dtype", "control characters in a name");
    assert_non_null(strstr(g_lastmsg, "'\\x01\\x01"));
    assert_non_null(strstr(g_lastmsg, "...'"));
    assert_null(memchr(g_lastmsg, 1, strlen(g_lastmsg)));
    free(b);
    char utf[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(utf, "\xc3\xa9"); /* 80 bytes of 2-byte characters, cut at 64 */
    snprintf(hdr, sizeof hdr, "{\"x%s\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
             utf);
    b = mkfile(hdr, NULL, 8, &len);
    expect_fail_buf(b, len, "unsupported dtype", "long UTF-8 name");
    const char *q = strchr(g_lastmsg, '\'');
    assert_non_null(q);
    const char *dots = strstr(q, "...'");
    assert_non_null(dots);
    assert_int_equal((size_t)(dots - q - 1), 63); /* 'x' + 31 whole characters */
    free(b);
}

static void test_nul_in_header(void **state)
{
    (void)state;
    static const char hdr[] = "{\"a\0b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    size_t len;
    unsigned char *b = mkfile_n(hdr, sizeof hdr - 1, NULL, 4, &len);
    expect_fail_buf(b, len, "NUL", "NUL byte in a name");
    free(b);
    b = mkfile_n("{}\0", 3, NULL, 0, &len);
    expect_fail_buf(b, len, "NUL", "NUL byte after the object");
    free(b);
}

static void test_header_length(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = rich_file(&len);
    const struct {
        uint64_t n;
        const char *word;
    } cases[] = {
        {1000, "past the end"},
        {(uint64_t)len - 7, "past the end"},
        {(uint64_t)1 << 63, "too large"},
        {UINT64_MAX, "too large"},
        {MM_ST_MAX_HEADER + 1ull, "too large"},
        {MM_ST_MAX_HEADER, "past the end"},
        {0, "empty"},
        {1, "JSON"},
        {strlen(RICH_HDR) - 1, "JSON"},
        {strlen(RICH_HDR) + 1, "JSON"}, /* the first data byte (0x00) -> NUL */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char *c = malloc(len);
        assert_non_null(c);
        memcpy(c, b, len);
        for (int k = 0; k < 8; k++)
            c[k] = (unsigned char)(cases[i].n >> (8 * k));
        char label[64];
        snprintf(label, sizeof label, "header length %llu", (unsigned long long)cases[i].n);
        const char *w = cases[i].word;
        if (i == 9)
            w = NULL; /* NUL byte or UTF-8 or JSON, depending on the data */
        expect_fail_buf(c, len, w, label);
        free(c);
    }
    free(b);
}

/* Every prefix of a valid file is invalid. */
static void test_truncated_prefixes(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = rich_file(&len);
    for (size_t l = 0; l < len; l++) {
        unsigned char *c = malloc(l ? l : 1);
        assert_non_null(c);
        memcpy(c, b, l);
        char label[64];
        snprintf(label, sizeof label, "prefix %zu of %zu", l, len);
        expect_fail_buf(l ? c : NULL, l, NULL, label);
        if (l < 8)
            assert_non_null(ci_strstr(g_lastmsg, "too small"));
        free(c);
    }
    /* the whole file is fine */
    mm_st_file *f = expect_ok_buf(b, len, "full");
    mm_st_close(f);
    free(b);
}

static void test_too_many_tensors(void **state)
{
    (void)state;
    size_t cap = (size_t)(MM_ST_MAX_TENSORS + 2) * 12 + 16, o = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    h[o++] = '{';
    for (int i = 0; i < MM_ST_MAX_TENSORS + 2; i++)
        o += (size_t)snprintf(h + o, cap - o, "%s\"%x\":0", i ? "," : "", i);
    h[o++] = '}';
    h[o] = '\0';
    size_t len;
    unsigned char *b = mkfile(h, NULL, 0, &len);
    expect_fail_buf(b, len, "more than 1000000 tensors", "1000002 entries");
    free(b);
    free(h);
}

static void test_err_buffer_and_args(void **state)
{
    (void)state;
    size_t len;
    unsigned char *b = mkfile("{\"a\":{}}", NULL, 0, &len);
    mm_st_file *f = (mm_st_file *)&g_lastmsg;
    assert_int_not_equal(mm_st_open_memory(b, len, &f, NULL, 0), 0);
    assert_null(f);
    char e1[1] = {'X'};
    assert_int_not_equal(mm_st_open_memory(b, len, &f, e1, 1), 0);
    assert_int_equal(e1[0], '\0');
    char e16[16];
    memset(e16, 'X', sizeof e16);
    assert_int_not_equal(mm_st_open_memory(b, len, &f, e16, sizeof e16), 0);
    assert_int_equal(strlen(e16), 15);
    char err[256];
    assert_int_not_equal(mm_st_open_memory(b, len, NULL, err, sizeof err), 0);
    assert_int_not_equal(mm_st_open_memory(NULL, 10, &f, err, sizeof err), 0);
    assert_null(f);
    assert_int_not_equal(mm_st_open_memory(NULL, 0, &f, err, sizeof err), 0);
    assert_non_null(strstr(err, "too small"));
    assert_int_not_equal(mm_st_open(NULL, &f, err, sizeof err), 0);
    assert_null(f);
    assert_int_not_equal(mm_st_open("x", NULL, err, sizeof err), 0);
    mm_st_close(NULL);
    assert_int_equal(mm_st_count(NULL), 0);
    assert_null(mm_st_get(NULL, 0));
    assert_null(mm_st_find(NULL, "a"));
    assert_null(mm_st_metadata(NULL, "a"));
    mm_st_to_f32(NULL, NULL);
    assert_int_equal(mm_st_dtype_size(MM_ST_F32), 4);
    assert_int_equal(mm_st_dtype_size(MM_ST_F16), 2);
    assert_int_equal(mm_st_dtype_size(MM_ST_BF16), 2);
    assert_int_equal(mm_st_dtype_size((mm_st_dtype)7), 0);
    assert_string_equal(mm_st_dtype_name(MM_ST_F32), "F32");
    assert_string_equal(mm_st_dtype_name(MM_ST_F16), "F16");
    assert_string_equal(mm_st_dtype_name(MM_ST_BF16), "BF16");
    assert_string_equal(mm_st_dtype_name((mm_st_dtype)7), "?");
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* conversions                                                                                 */

static float conv1(mm_st_dtype dt, uint16_t h)
{
    unsigned char raw[3];
    put_le16(raw + 1, h); /* deliberately unaligned */
    mm_st_tensor t;
    memset(&t, 0, sizeof t);
    t.name = "t";
    t.dtype = dt;
    t.ndim = 0;
    t.numel = 1;
    t.nbytes = 2;
    t.data = raw + 1;
    float out = 0;
    mm_st_to_f32(&t, &out);
    return out;
}

static void test_f16_known_values(void **state)
{
    (void)state;
    assert_true(conv1(MM_ST_F16, 0x3c00) == 1.0f);
    assert_true(conv1(MM_ST_F16, 0xc100) == -2.5f);
    assert_true(conv1(MM_ST_F16, 0x7bff) == 65504.0f);
    assert_true(conv1(MM_ST_F16, 0xfbff) == -65504.0f);
    assert_true(conv1(MM_ST_F16, 0x0001) == ldexpf(1.0f, -24)); /* 5.96e-8 */
    assert_true(fabsf(conv1(MM_ST_F16, 0x0001) - 5.96046448e-8f) < 1e-15f);
    assert_true(conv1(MM_ST_F16, 0x03ff) == ldexpf(1023.0f, -24)); /* largest subnormal */
    assert_true(conv1(MM_ST_F16, 0x0400) == ldexpf(1.0f, -14));    /* smallest normal */
    assert_true(conv1(MM_ST_F16, 0x3555) == 0x555p-12f);
    assert_true(conv1(MM_ST_F16, 0x3bff) == 1.0f - ldexpf(1.0f, -11));
    float z = conv1(MM_ST_F16, 0x0000);
    assert_true(z == 0.0f && !signbit(z));
    z = conv1(MM_ST_F16, 0x8000);
    assert_true(z == 0.0f && signbit(z));
    float inf = conv1(MM_ST_F16, 0x7c00);
    assert_true(isinf(inf) && inf > 0);
    inf = conv1(MM_ST_F16, 0xfc00);
    assert_true(isinf(inf) && inf < 0);
    float nan = conv1(MM_ST_F16, 0x7e00);
    assert_true(isnan(nan));
    assert_int_equal(fbits(nan), 0x7fc00000u);
    assert_int_equal(fbits(conv1(MM_ST_F16, 0x7c01)), 0x7f802000u); /* sNaN payload kept */
    assert_int_equal(fbits(conv1(MM_ST_F16, 0xfe00)), 0xffc00000u);
}

/* Reference decoding by arithmetic (exact in double). */
static uint32_t f16_ref_bits(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    if (e == 31)
        return (uint32_t)s << 31 | 0x7f800000u | (uint32_t)m << 13;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    float f = (float)(s ? -v : v);
    return fbits(f);
}

static void test_f16_exhaustive(void **state)
{
    (void)state;
    /* all 65536 values at once, through a tensor at an odd address */
    unsigned char *raw = malloc(65536 * 2 + 1);
    float *out = malloc(65536 * sizeof *out);
    assert_non_null(raw);
    assert_non_null(out);
    for (uint32_t h = 0; h < 65536; h++)
        put_le16(raw + 1 + 2 * h, (uint16_t)h);
    mm_st_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = MM_ST_F16;
    t.ndim = 1;
    t.shape[0] = 65536;
    t.numel = 65536;
    t.nbytes = 65536 * 2;
    t.data = raw + 1;
    mm_st_to_f32(&t, out);
    for (uint32_t h = 0; h < 65536; h++) {
        if (fbits(out[h]) != f16_ref_bits((uint16_t)h))
            fail_msg("f16 0x%04x -> 0x%08x, expected 0x%08x", h, fbits(out[h]),
                     f16_ref_bits((uint16_t)h));
#ifdef __FLT16_MAX__
        uint16_t hh = (uint16_t)h;
        _Float16 hf;
        memcpy(&hf, &hh, 2);
        if (!isnan(out[h]) && fbits((float)hf) != fbits(out[h]))
            fail_msg("f16 0x%04x disagrees with the compiler's _Float16", h);
#endif
    }
    free(raw);
    free(out);
}

static void test_bf16(void **state)
{
    (void)state;
    assert_true(conv1(MM_ST_BF16, 0x3f80) == 1.0f);
    assert_true(conv1(MM_ST_BF16, 0xc020) == -2.5f);
    assert_true(conv1(MM_ST_BF16, 0x477f) == 65280.0f);
    assert_true(isinf(conv1(MM_ST_BF16, 0x7f80)));
    assert_true(isnan(conv1(MM_ST_BF16, 0x7fc0)));
    assert_true(conv1(MM_ST_BF16, 0x0001) == ldexpf(1.0f, -133)); /* smallest subnormal */
    assert_true(signbit(conv1(MM_ST_BF16, 0x8000)));
    unsigned char *raw = malloc(65536 * 2 + 1);
    float *out = malloc(65536 * sizeof *out);
    assert_non_null(raw);
    assert_non_null(out);
    for (uint32_t h = 0; h < 65536; h++)
        put_le16(raw + 1 + 2 * h, (uint16_t)h);
    mm_st_tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = MM_ST_BF16;
    t.ndim = 1;
    t.numel = 65536;
    t.nbytes = 65536 * 2;
    t.data = raw + 1;
    mm_st_to_f32(&t, out);
    for (uint32_t h = 0; h < 65536; h++)
        if (fbits(out[h]) != h << 16)
            fail_msg("bf16 0x%04x -> 0x%08x", h, fbits(out[h]));
    free(raw);
    free(out);
}

static void test_f32_unaligned(void **state)
{
    (void)state;
    /* header of 61 bytes: data at file offset 69, odd */
    const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
    char padded[128];
    snprintf(padded, sizeof padded, "%s%*s", hdr, (int)(61 - strlen(hdr)), "");
    assert_int_equal(strlen(padded), 61);
    unsigned char d[12];
    put_f32(d, 1.5f);
    put_f32(d + 4, -0.0f);
    put_f32(d + 8, 3e38f);
    size_t len;
    unsigned char *b = mkfile(padded, d, 12, &len);
    mm_st_file *f = expect_ok_buf(b, len, "unaligned f32");
    const mm_st_tensor *t = mm_st_get(f, 0);
    assert_int_equal(((uintptr_t)t->data - (uintptr_t)b) % 2, 1);
    float out[3];
    mm_st_to_f32(t, out);
    assert_true(out[0] == 1.5f);
    assert_true(out[1] == 0.0f && signbit(out[1]));
    assert_true(out[2] == 3e38f);
    mm_st_close(f);
    free(b);
}

/* ------------------------------------------------------------------------------------------ */
/* files and the writer                                                                        */

static void test_open_files(void **state)
{
    (void)state;
    char err[1024];
    mm_st_file *f = (mm_st_file *)&g_lastmsg;

    assert_int_not_equal(mm_st_open(tmp_path("does-not-exist.safetensors"), &f, err, sizeof err),
                         0);
    assert_null(f);
    assert_non_null(strstr(err, "does-not-exist.safetensors"));
    assert_non_null(strstr(err, strerror(ENOENT)));

    assert_int_not_equal(mm_st_open(g_tmpdir, &f, err, sizeof err), 0);
    assert_null(f);
    assert_non_null(strstr(err, "directory"));

    assert_int_not_equal(mm_st_open("/dev/null", &f, err, sizeof err), 0);
    assert_non_null(strstr(err, "regular file"));

    const char *fifo = tmp_path("fifo");
    if (mkfifo(fifo, 0600) == 0) {
        assert_int_not_equal(mm_st_open(fifo, &f, err, sizeof err), 0); /* must not block */
        assert_non_null(strstr(err, "regular file"));
        unlink(fifo);
    }

    const char *empty = tmp_path("empty.safetensors");
    write_bytes(empty, "", 0);
    assert_int_not_equal(mm_st_open(empty, &f, err, sizeof err), 0);
    assert_null(f);
    assert_non_null(strstr(err, "too small"));
    assert_non_null(strstr(err, "empty.safetensors"));

    const char *seven = tmp_path("seven.safetensors");
    write_bytes(seven, "\x02\0\0\0\0\0\0", 7);
    assert_int_not_equal(mm_st_open(seven, &f, err, sizeof err), 0);
    assert_non_null(strstr(err, "too small"));

    size_t len;
    unsigned char *b = rich_file(&len);
    const char *good = tmp_path("rich.safetensors");
    write_bytes(good, b, len);
    assert_int_equal(mm_st_open(good, &f, err, sizeof err), 0);
    assert_non_null(f);
    assert_int_equal(mm_st_count(f), 5);
    const mm_st_tensor *t = mm_st_find(f, "x.weight");
    assert_non_null(t);
    assert_memory_equal(t->data, b + 8 + strlen(RICH_HDR), 24);
    assert_string_equal(mm_st_metadata(f, "author"), "me");
    float out[4];
    mm_st_to_f32(mm_st_find(f, "h.f16"), out);
    assert_true(out[1] == -2.5f);
    mm_st_close(f);

    /* an invalid file names the path */
    b[len - 1] = 0;
    const char *trunc = tmp_path("trunc.safetensors");
    write_bytes(trunc, b, len - 1);
    assert_int_not_equal(mm_st_open(trunc, &f, err, sizeof err), 0);
    assert_null(f);
    assert_non_null(strstr(err, "trunc.safetensors: "));

    if (geteuid() != 0) {
        assert_int_equal(chmod(good, 0), 0);
        assert_int_not_equal(mm_st_open(good, &f, err, sizeof err), 0);
        assert_non_null(strstr(err, strerror(EACCES)));
        assert_int_equal(chmod(good, 0644), 0);
    }
    free(b);
}

static int count_dir_entries_with(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, needle))
            n++;
    closedir(d);
    return n;
}

static void test_write_roundtrip(void **state)
{
    (void)state;
    char err[1024];
    const int64_t s_w[2] = {2, 2}, s_e[2] = {3, 0}, s_v[1] = {5};
    const float w[4] = {1.0f, -2.0f, 3.5f, 1e-40f};
    const float sc = 7.0f;
    float v[5] = {0.1f, 0.2f, 0.3f, -0.0f, 65504.0f};
    const mm_st_write_tensor ts[] = {
        {"enc.w", 2, s_w, w},
        {"scalar", 0, NULL, &sc},
        {"empty", 2, s_e, NULL},
        {"name \"quoted\" \\ \xc3\xa9\n", 1, s_v, v},
    };
    const char *keys[] = {"config", "note"};
    const char *vals[] = {"{\"format\":\"metaearth-mm\",\"x\":[1,2]}", "tab\there \xe2\x82\xac"};
    const char *path = tmp_path("rt.safetensors");
    assert_int_equal(mm_st_write_f32(path, ts, 4, keys, vals, 2, err, sizeof err), 0);
    assert_int_equal(count_dir_entries_with(g_tmpdir, ".tmp."), 0);

    mm_st_file *f = NULL;
    if (mm_st_open(path, &f, err, sizeof err) != 0)
        fail_msg("round trip open failed: %s", err);
    assert_int_equal(mm_st_count(f), 4);
    const mm_st_tensor *t = mm_st_find(f, "enc.w");
    assert_non_null(t);
    assert_int_equal(t->dtype, MM_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 2);
    assert_int_equal((uintptr_t)t->data % 4, 0); /* 8-padded header -> aligned in the mapping */
    float out[5];
    mm_st_to_f32(t, out);
    assert_memory_equal(out, w, sizeof w);
    t = mm_st_find(f, "scalar");
    assert_non_null(t);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    mm_st_to_f32(t, out);
    assert_true(out[0] == 7.0f);
    t = mm_st_find(f, "empty");
    assert_non_null(t);
    assert_int_equal(t->numel, 0);
    assert_int_equal(t->shape[0], 3);
    t = mm_st_find(f, "name \"quoted\" \\ \xc3\xa9\n");
    assert_non_null(t);
    mm_st_to_f32(t, out);
    assert_memory_equal(out, v, sizeof v);
    /* sorted by offset = order written (empty is zero-size at 20, sorts before the next one) */
    assert_string_equal(mm_st_get(f, 0)->name, "enc.w");
    assert_string_equal(mm_st_get(f, 1)->name, "scalar");
    assert_string_equal(mm_st_get(f, 2)->name, "empty");
    assert_string_equal(mm_st_metadata(f, "config"), vals[0]);
    assert_string_equal(mm_st_metadata(f, "note"), vals[1]);
    mm_st_close(f);

    /* header padded to 8 */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char lb[8];
    assert_int_equal(fread(lb, 1, 8, fp), 8);
    fclose(fp);
    assert_int_equal(lb[0] % 8, 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    /* overwrite in place (rename over the old file), no metadata, no tensors */
    assert_int_equal(mm_st_write_f32(path, NULL, 0, NULL, NULL, 0, err, sizeof err), 0);
    assert_int_equal(mm_st_open(path, &f, err, sizeof err), 0);
    assert_int_equal(mm_st_count(f), 0);
    assert_null(mm_st_metadata(f, "config"));
    mm_st_close(f);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 16); /* 8 + "{}      " */
}

static void test_write_errors(void **state)
{
    (void)state;
    char err[1024];
    const int64_t s2[1] = {2}, sneg[1] = {-1};
    const float d[2] = {1, 2};
    const char *path = tmp_path("werr.safetensors");
    unlink(path);
    const mm_st_write_tensor dup[] = {{"a", 1, s2, d}, {"a", 1, s2, d}};
    assert_int_not_equal(mm_st_write_f32(path, dup, 2, NULL, NULL, 0, err, sizeof err), 0);
    assert_non_null(strstr(err, "duplicate"));
    const mm_st_write_tensor empty[] = {{"", 1, s2, d}};
    assert_int_not_equal(mm_st_write_f32(path, empty, 1, NULL, NULL, 0, err, sizeof err), 0);
    const mm_st_write_tensor reserved[] = {{"__metadata__", 1, s2, d}};
    assert_int_not_equal(mm_st_write_f32(path, reserved, 1, NULL, NULL, 0, err, sizeof err), 0);
    const mm_st_write_tensor badutf[] = {{"a\xff", 1, s2, d}};
    assert_int_not_equal(mm_st_write_f32(path, badutf, 1, NULL, NULL, 0, err, sizeof err), 0);
    const mm_st_write_tensor neg[] = {{"a", 1, sneg, d}};
    assert_int_not_equal(mm_st_write_f32(path, neg, 1, NULL, NULL, 0, err, sizeof err), 0);
    assert_non_null(strstr(err, "negative"));
    const mm_st_write_tensor nodata[] = {{"a", 1, s2, NULL}};
    assert_int_not_equal(mm_st_write_f32(path, nodata, 1, NULL, NULL, 0, err, sizeof err), 0);
    const mm_st_write_tensor ndim9[] = {{"a", 9, s2, d}};
    assert_int_not_equal(mm_st_write_f32(path, ndim9, 1, NULL, NULL, 0, err, sizeof err), 0);
    const char *k2[] = {"k", "k"}, *v2[] = {"1", "2"};
    assert_int_not_equal(mm_st_write_f32(path, NULL, 0, k2, v2, 2, err, sizeof err), 0);
    assert_non_null(strstr(err, "duplicate"));
    assert_int_not_equal(mm_st_write_f32(NULL, NULL, 0, NULL, NULL, 0, err, sizeof err), 0);
    assert_int_equal(access(path, F_OK), -1); /* nothing was written */
    const char *nodir = tmp_path("no/such/dir/x.safetensors");
    const mm_st_write_tensor ok[] = {{"a", 1, s2, d}};
    assert_int_not_equal(mm_st_write_f32(nodir, ok, 1, NULL, NULL, 0, err, sizeof err), 0);
    assert_non_null(strstr(err, strerror(ENOENT)));
    assert_int_equal(count_dir_entries_with(g_tmpdir, ".tmp."), 0);
}

/* ------------------------------------------------------------------------------------------ */
/* randomized mutations                                                                        */

static uint64_t rng_state;
static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}
static size_t rndn(size_t n) { return n ? (size_t)(rnd() % n) : 0; }

static void test_mutations(void **state)
{
    (void)state;
    size_t blen;
    unsigned char *base = rich_file(&blen);
    size_t hlen = strlen(RICH_HDR);
    static const char dict[] = "{}[],:\"\\0123456789-.eE \x00\xff" "FBI";
    rng_state = 0x9E3779B97F4A7C15ull;
    int ok = 0, bad = 0;
    for (int it = 0; it < 2000; it++) {
        size_t cap = blen * 2 + 64, len = blen;
        unsigned char *w = malloc(cap);
        assert_non_null(w);
        memcpy(w, base, blen);
        int nmut = 1 + (int)rndn(3);
        int keep_len_consistent = (int)rndn(2);
        for (int m = 0; m < nmut; m++) {
            size_t hdr_end = 8 + hlen < len ? 8 + hlen : len;
            switch (rndn(9)) {
            case 0: /* flip a bit anywhere */
                if (len)
                    w[rndn(len)] ^= (unsigned char)(1u << rndn(8));
                break;
            case 1: /* random byte anywhere */
                if (len)
                    w[rndn(len)] = (unsigned char)rnd();
                break;
            case 2: /* a JSON-meaningful byte inside the header */
                if (hdr_end > 8)
                    w[8 + rndn(hdr_end - 8)] = (unsigned char)dict[rndn(sizeof dict - 1)];
                break;
            case 3: /* truncate */
                len = rndn(len + 1);
                break;
            case 4: { /* splice: overwrite with a chunk of the original from elsewhere */
                if (!len)
                    break;
                size_t src = rndn(blen), dst = rndn(len);
                size_t n = 1 + rndn(16);
                if (n > blen - src)
                    n = blen - src;
                if (n > len - dst)
                    n = len - dst;
                memmove(w + dst, base + src, n);
                break;
            }
            case 5: { /* insert a chunk of the original (grows the file) */
                size_t n = 1 + rndn(12), src = rndn(blen), dst = rndn(len + 1);
                if (n > blen - src)
                    n = blen - src;
                if (len + n > cap || dst > len)
                    break;
                size_t tail = len - dst;
                if (tail)
                    memmove(w + dst + n, w + dst, tail);
                memcpy(w + dst, base + src, n);
                len += n;
                if (keep_len_consistent && dst >= 8 && dst <= 8 + hlen) {
                    uint64_t nn = 0;
                    for (int k = 7; k >= 0; k--)
                        nn = (nn << 8) | w[k];
                    nn += n;
                    for (int k = 0; k < 8; k++)
                        w[k] = (unsigned char)(nn >> (8 * k));
                }
                break;
            }
            case 6: { /* delete a range */
                if (!len)
                    break;
                size_t dst = rndn(len), n = 1 + rndn(8);
                if (n > len - dst)
                    n = len - dst;
                memmove(w + dst, w + dst + n, len - dst - n);
                len -= n;
                if (keep_len_consistent && dst >= 8 && dst + n <= 8 + hlen) {
                    uint64_t nn = 0;
                    for (int k = 7; k >= 0; k--)
                        nn = (nn << 8) | w[k];
                    nn -= n;
                    for (int k = 0; k < 8; k++)
                        w[k] = (unsigned char)(nn >> (8 * k));
                }
                break;
            }
            case 7: /* tweak the header length */
                if (len >= 8) {
                    int64_t delta = (int64_t)rndn(33) - 16;
                    uint64_t nn = 0;
                    for (int k = 7; k >= 0; k--)
                        nn = (nn << 8) | w[k];
                    nn = rndn(4) == 0 ? rnd() : nn + (uint64_t)delta;
                    for (int k = 0; k < 8; k++)
                        w[k] = (unsigned char)(nn >> (8 * k));
                }
                break;
            case 8: { /* change a digit in the header (keeps the JSON valid) */
                if (hdr_end <= 8)
                    break;
                size_t p = 8 + rndn(hdr_end - 8);
                for (size_t k = 0; k < hdr_end - 8; k++) {
                    size_t q = 8 + (p - 8 + k) % (hdr_end - 8);
                    if (w[q] >= '0' && w[q] <= '9') {
                        w[q] = (unsigned char)('0' + rndn(10));
                        break;
                    }
                }
                break;
            }
            }
        }
        /* exact-size copy so that any overread is caught by ASan */
        unsigned char *c = malloc(len ? len : 1);
        assert_non_null(c);
        memcpy(c, w, len);
        free(w);
        mm_st_file *f = NULL;
        char err[512];
        memset(err, 'X', sizeof err);
        if (mm_st_open_memory(len ? c : NULL, len, &f, err, sizeof err) == 0) {
            assert_non_null(f);
            check_consistent(f, c, len);
            mm_st_close(f);
            ok++;
        } else {
            assert_null(f);
            assert_non_null(memchr(err, 0, sizeof err));
            if (!strstr(err, "<memory>: ") || strlen(err) < 20)
                fail_msg("iteration %d: poor message '%s'", it, err);
            bad++;
        }
        free(c);
    }
    print_message("mutations: %d accepted (consistent), %d rejected with a message\n", ok, bad);
    assert_true(ok > 0);
    assert_true(bad > 0);
    free(base);
}

/* ------------------------------------------------------------------------------------------ */

static int rm_rf(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static int setup(void **state)
{
    (void)state;
    const char *t = getenv("TMPDIR");
    snprintf(g_tmpdir, sizeof g_tmpdir, "%s/mm_st_test.XXXXXX", t && *t ? t : "/tmp");
    return mkdtemp(g_tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(g_tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_rich),
        cmocka_unit_test(test_valid_edge_cases),
        cmocka_unit_test(test_message_example),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_nul_in_header),
        cmocka_unit_test(test_header_length),
        cmocka_unit_test(test_truncated_prefixes),
        cmocka_unit_test(test_too_many_tensors),
        cmocka_unit_test(test_err_buffer_and_args),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_exhaustive),
        cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_f32_unaligned),
        cmocka_unit_test(test_open_files),
        cmocka_unit_test(test_write_roundtrip),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
