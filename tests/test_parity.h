/*
 * What the parity tests against the PyTorch reference share (test_golden.c, test_readout.c):
 * the choice of backend from MM_TEST_DEVICE and reading a golden tensor as fp32.
 * Include after <cmocka.h> (the reader fails the running test through cmocka).
 */
#ifndef MM_TEST_PARITY_H
#define MM_TEST_PARITY_H

#include <stddef.h>

#include "safetensors.h"

/* MM_TEST_DEVICE: unset, empty or "cpu" -> 0 and *on_cuda = 0; "cuda" with a device -> 0 and
 * *on_cuda = 1 (prints "WHAT on the CUDA backend (fp32)"); "cuda" without one -> 77 (ctest's
 * SKIP_RETURN_CODE, with "SKIPPED: ..."); anything else -> 2. main returns a non-zero result. */
int mm_test_pick_device(const char *what, int *on_cuda);

/* Tensor NAME of f as fp32 (malloc'd, the caller frees; *n its element count when n != NULL);
 * fails the running test when f has no such tensor. */
float *mm_test_tensor(mm_st_file *f, const char *name, size_t *n);

#endif
