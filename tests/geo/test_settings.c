/*
 * The one settings parser of the tools and the GDAL driver (libmmgeo/src/settings.c,
 * mmgeo_settings.h): names in every spelling, the integer rule (decimal digits only), the number
 * rule, words in any case, lists, ranges, the messages (one text whichever spelling was used), a
 * refused value leaving the setting as it was, MM_DEVICE and MM_MODEL, the checks of
 * mmgeo_settings_finish, and the context and sampling parameters made from the settings.
 * tests/driver/settings.sh gives the same settings to mm_translate and to the driver.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cpl_conv.h>

#include "mmgeo.h"
#include "mmgeo_settings.h"

static mmgeo_settings g_s;

static int set(const char *name, const char *value) {
    return mmgeo_settings_set(&g_s, name, value);
}

/* value is refused for name; the message names the setting in both spellings and holds want */
static void refused(const char *name, const char *value, const char *want) {
    if (set(name, value) != MMGEO_ERROR) fail_msg("%s=%s was accepted", name, value);
    const char *msg = mmgeo_settings_errmsg(&g_s);
    if (!strstr(msg, want)) fail_msg("%s=%s: no '%s' in '%s'", name, value, want, msg);
    const char *shown = mmgeo_settings_display_name(name);
    if (shown && strncmp(msg, shown, strlen(shown)))
        fail_msg("%s=%s: the message does not start with '%s': '%s'", name, value, shown, msg);
}

static void test_integers(void **state) {
    (void)state;
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(set("seed", "0"), 0);
    assert_true(g_s.seed_set && g_s.seed == 0);
    assert_int_equal(set("SEED", "1000"), 0);
    assert_true(g_s.seed == 1000);
    assert_int_equal(set("--seed", "18446744073709551615"), 0);
    assert_true(g_s.seed == UINT64_MAX);
    assert_int_equal(set("Seed", "42"), 0);
    assert_true(g_s.seed == 42);
    /* refused, and the seed stays 42 */
    const char *bad_seeds[] = {"1e3",
                               "010",
                               "0x10",
                               "00",
                               "-1",
                               "+5",
                               " 5",
                               "5 ",
                               "5x",
                               "",
                               "18446744073709551616",
                               "99999999999999999999",
                               "4.0",
                               "٣"};
    for (size_t i = 0; i < sizeof bad_seeds / sizeof bad_seeds[0]; i++) {
        refused("SEED", bad_seeds[i], "must be a decimal integer from 0 to 18446744073709551615");
        assert_true(g_s.seed == 42);
    }
    refused("seed", NULL, "got ''");
    refused("SEED", "1e3",
            "--seed / SEED must be a decimal integer from 0 to 18446744073709551615 (digits "
            "only: no sign, exponent, leading zero or other characters), got '1e3'");

    assert_int_equal(set("steps", "1"), 0);
    assert_int_equal(set("STEPS", "65535"), 0);
    assert_int_equal(g_s.steps, 65535);
    refused("STEPS", "0", "--steps / STEPS must be a decimal integer from 1 to 65535");
    refused("--steps", "65536", "from 1 to 65535");
    refused("steps", "08", "got '08'");
    refused("steps", "8.0", "got '8.0'");
    refused("steps", "8 ", "got '8 '");
    assert_int_equal(g_s.steps, 65535);
    assert_int_equal(set("threads", "0"), 0);
    refused("THREADS", "4097", "from 0 to 4096");
    assert_int_equal(set("overlap", "0"), 0);
    assert_int_equal(g_s.overlap, 0);
    refused("OVERLAP", "1048577", "from 0 to 1048576");
    assert_int_equal(set("window", "64"), 0);
    assert_int_equal(g_s.window, 64);
    refused("WINDOW", "0", "--window / WINDOW must be a decimal integer from 1 to 8192");
    assert_int_equal(set("samples", "3"), 0);
    assert_int_equal(g_s.samples.samples, 3);
    refused("SAMPLES", "1001", "--samples / SAMPLES must be a decimal integer from 1 to 1000");
    assert_int_equal(set("SAR_BAND", "2"), 0);
    assert_int_equal(g_s.sar.band, 2);
    refused("--sar-band", "0", "from 1 to 1048576");
    /* BATCH: from the front end's smallest */
    assert_int_equal(set("batch", "0"), 0);
    assert_int_equal(g_s.batch, 0);
    mmgeo_settings_init(&g_s, 1);
    refused("BATCH", "0", "--batch / BATCH must be a decimal integer from 1 to 4096");
    assert_int_equal(g_s.batch, -1);
    assert_int_equal(set("BATCH", "4096"), 0);
}

static void test_numbers(void **state) {
    (void)state;
    mmgeo_settings_init(&g_s, 0);
    const struct {
        const char *v;
        double x;
    } ok[] = {{"0", 0},     {"1.5", 1.5}, {"2", 2},     {".5", .5},     {"3.", 3},
              {"1e-1", .1}, {"1E1", 10},  {"100", 100}, {"0.25e+2", 25}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(set("GUIDANCE", ok[i].v), 0);
        assert_true(g_s.guidance == ok[i].x);
    }
    const char *bad[] = {"",   ".",  "-",    "e3", "1e",   "nan",   "inf", "0x1p3", "1,5",
                         " 1", "1 ", "1.5x", "+1", "-0.5", "100.5", "1e3", "1e400"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        refused("--guidance", bad[i],
                "--guidance / GUIDANCE must be a decimal number from 0 to 100");
        assert_true(g_s.guidance == 25);
    }
    assert_int_equal(set("CACHE_MB", "0.5"), 0);
    assert_true(g_s.cache_mb == 0.5);
    refused("cache-mb", "-1", "CACHE_MB must be a decimal number from 0 to 1.04858e+06");
}

static void test_words(void **state) {
    (void)state;
    mmgeo_settings_init(&g_s, 0);
    assert_false(g_s.device_set);
    assert_int_equal(set("DEVICE", "CUDA"), 0);
    assert_true(g_s.device_set && g_s.device == MM_DEVICE_CUDA);
    assert_int_equal(set("--device", "Cpu"), 0);
    assert_true(g_s.device == MM_DEVICE_CPU);
    refused("device", "gpu", "--device / DEVICE takes cpu or cuda (in any case), got 'gpu'");
    refused("device", "cuda ", "got 'cuda '");
    assert_true(g_s.device == MM_DEVICE_CPU);
    assert_int_equal(set("PRECISION", "FP32"), 0);
    assert_true(g_s.precision_set && g_s.precision == MM_PRECISION_FP32);
    refused("precision", "fp16", "takes bf16 or fp32");
    assert_int_equal(set("SAMPLER", "Euler_Maruyama"), 0);
    assert_int_equal(g_s.sampler, MM_SAMPLER_EULER_MARUYAMA);
    assert_int_equal(set("sampler", "HEUN"), 0);
    assert_int_equal(g_s.sampler, MM_SAMPLER_HEUN);
    refused("SAMPLER", "rk4", "--sampler / SAMPLER takes euler, heun or euler_maruyama");
    assert_int_equal(set("SAR_UNITS", "Linear"), 0);
    assert_int_equal(g_s.sar.units, MMGEO_SAR_UNITS_LINEAR);
    refused("--sar-units", "decibel", "--sar-units / SAR_UNITS takes db, linear or amplitude");
    assert_int_equal(set("NONFINITE", "NODATA"), 0);
    assert_int_equal(g_s.nonfinite, MMGEO_NONFINITE_NODATA);
    refused("nonfinite", "maybe", "--nonfinite / NONFINITE takes error or nodata");
    assert_int_equal(set("SPREAD", "BAND"), 0);
    assert_true(g_s.samples.spread_set && g_s.samples.spread == MMGEO_SPREAD_BAND);
    assert_int_equal(set("processor", "Negate"), 0);
    assert_string_equal(g_s.processor, "negate");
    refused("PROCESSOR", "blur", "takes model (test hooks: identity, negate)");
    assert_int_equal(set("OT", "uint16"), 0);
    assert_int_equal(g_s.out_type, GDT_UInt16);
    refused("-ot", "CInt16", "-ot / OT takes a real GDAL data type");
    refused("ot", "Foo", "got 'Foo'");
    assert_int_equal(g_s.out_type, GDT_UInt16);
    assert_int_equal(set("MODEL", "/some/model.safetensors"), 0);
    assert_string_equal(g_s.model_path, "/some/model.safetensors");
    assert_int_equal(set("model", ""), 0); /* MODEL="": not given */
    assert_null(g_s.model_path);
}

static void test_lists(void **state) {
    (void)state;
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(set("BANDS", "1,2,3"), 0);
    assert_int_equal(set("-b", "4"), 0); /* -b again adds */
    assert_int_equal(g_s.n_bands, 4);
    assert_int_equal(g_s.bands[3], 4);
    const char *bad[] = {"0", "1,,2", "1,x", "", ",", "1,", "01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        refused("BANDS", bad[i], "-b / BANDS takes band numbers");
        assert_int_equal(g_s.n_bands, 4); /* a refused list changes nothing */
    }
    refused("b", "1,2,3,4,5,6,7,8,9,10,11,12,13", "at most 16 bands");
    assert_int_equal(g_s.n_bands, 4);
    assert_int_equal(set("PROFILE", "sar=db:-30:10,rgb=byte"), 0);
    assert_int_equal(set("--profile", "nir=reflectance:0:10000"), 0);
    assert_int_equal(g_s.n_profiles, 3);
    assert_string_equal(g_s.profiles[0], "sar=db:-30:10");
    assert_string_equal(g_s.profiles[1], "rgb=byte");
    assert_string_equal(g_s.profiles[2], "nir=reflectance:0:10000");
    refused("profile", "sar", "--profile / PROFILE takes MODALITY=SPEC items");
    refused("profile", "=db", "MODALITY=SPEC");
    refused("profile", "rgb=byte,sar=", "MODALITY=SPEC");
    assert_int_equal(g_s.n_profiles, 3);
}

/* the same message whatever the spelling: what the front ends print after "TOOL: " / "MM: " */
static void test_names(void **state) {
    (void)state;
    const char *spellings[][4] = {{"--seed", "SEED", "seed", "Seed"},
                                  {"--sar-units", "SAR_UNITS", "sar_units", "sar-units"},
                                  {"-b", "BANDS", "bands", "b"},
                                  {"--cache-mb", "CACHE_MB", "cache_mb", "Cache-Mb"}};
    const char *values[] = {"1e3", "decibel", "x", "y"};
    for (int i = 0; i < 4; i++) {
        char first[1024];
        for (int k = 0; k < 4; k++) {
            assert_true(mmgeo_settings_known(spellings[i][k]));
            mmgeo_settings_init(&g_s, 0);
            assert_int_equal(set(spellings[i][k], values[i]), MMGEO_ERROR);
            if (k == 0)
                snprintf(first, sizeof first, "%s", mmgeo_settings_errmsg(&g_s));
            else
                assert_string_equal(mmgeo_settings_errmsg(&g_s), first);
        }
    }
    assert_false(mmgeo_settings_known("colour"));
    assert_false(mmgeo_settings_known("SOURCE_MODALITY"));
    assert_false(mmgeo_settings_known("seeds"));
    assert_false(mmgeo_settings_known(""));
    assert_int_equal(set("colour", "red"), MMGEO_ERROR);
    assert_string_equal(mmgeo_settings_errmsg(&g_s), "unknown setting 'colour'");
    assert_string_equal(mmgeo_settings_display_name("SAR_BAND"), "--sar-band / SAR_BAND");
    assert_null(mmgeo_settings_display_name("colour"));
}

static void test_finish(void **state) {
    (void)state;
    unsetenv("MM_DEVICE");
    unsetenv("MM_MODEL");
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), 0);
    assert_false(g_s.device_set);
    assert_null(g_s.model_path);
    /* MM_DEVICE: the same rule as DEVICE, when DEVICE is not given */
    setenv("MM_DEVICE", "Cuda", 1);
    setenv("MM_MODEL", "/env/model.safetensors", 1);
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), 0);
    assert_true(g_s.device_set && g_s.device == MM_DEVICE_CUDA);
    assert_string_equal(g_s.model_path, "/env/model.safetensors");
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(set("device", "cpu"), 0);
    assert_int_equal(set("model", "/given.safetensors"), 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), 0);
    assert_true(g_s.device == MM_DEVICE_CPU);
    assert_string_equal(g_s.model_path, "/given.safetensors");
    setenv("MM_DEVICE", "gpu", 1);
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), MMGEO_ERROR);
    assert_string_equal(mmgeo_settings_errmsg(&g_s),
                        "MM_DEVICE takes cpu or cuda (in any case), got 'gpu'");
    CPLSetConfigOption("MM_DEVICE", "cpu"); /* --config MM_DEVICE cpu wins over the environment */
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), 0);
    assert_true(g_s.device_set && g_s.device == MM_DEVICE_CPU);
    CPLSetConfigOption("MM_DEVICE", NULL);
    unsetenv("MM_DEVICE");
    unsetenv("MM_MODEL");
    /* --spread needs --samples K >= 2 */
    mmgeo_settings_init(&g_s, 0);
    assert_int_equal(set("spread", "band"), 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), MMGEO_ERROR);
    assert_non_null(strstr(mmgeo_settings_errmsg(&g_s), "--spread / SPREAD needs --samples"));
    assert_int_equal(set("samples", "2"), 0);
    assert_int_equal(mmgeo_settings_finish(&g_s), 0);
    assert_string_equal(mmgeo_settings_errmsg(&g_s), "");
}

static void test_params(void **state) {
    (void)state;
    mm_model *m = NULL;
    char *e = NULL;
    assert_int_equal(mm_model_open(MM_GOLDEN_DIR "/tiny_model.safetensors", &m, &e), MM_OK);
    mm_sample_params def, p;
    mm_sample_params_default(m, &def);
    mmgeo_settings_init(&g_s, 0);
    mmgeo_settings_sample_params(&g_s, m, &p);
    assert_int_equal(p.steps, def.steps);
    assert_true(p.seed == def.seed && p.guidance == def.guidance && p.sampler == def.sampler);
    assert_int_equal(set("STEPS", "7"), 0);
    assert_int_equal(set("SEED", "1000"), 0);
    assert_int_equal(set("GUIDANCE", "1.25"), 0);
    assert_int_equal(set("SAMPLER", "HEUN"), 0);
    mmgeo_settings_sample_params(&g_s, m, &p);
    assert_int_equal(p.steps, 7);
    assert_true(p.seed == 1000 && p.guidance == 1.25f && p.sampler == MM_SAMPLER_HEUN);
    mm_context_params cd, cp;
    mm_context_params_default(&cd);
    mmgeo_settings_init(&g_s, 0);
    mmgeo_settings_context_params(&g_s, &cp);
    assert_true(cp.device == cd.device && cp.precision == cd.precision && cp.n_threads == 0);
    assert_int_equal(set("THREADS", "3"), 0);
    assert_int_equal(set("PRECISION", "FP32"), 0);
    assert_int_equal(set("DEVICE", "CUDA"), 0);
    mmgeo_settings_context_params(&g_s, &cp);
    assert_true(cp.device == MM_DEVICE_CUDA && cp.precision == MM_PRECISION_FP32 &&
                cp.n_threads == 3);
    mm_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integers), cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_words),    cmocka_unit_test(test_lists),
        cmocka_unit_test(test_names),    cmocka_unit_test(test_finish),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
