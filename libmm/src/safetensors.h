/*
 * A strict, memory-mapped safetensors reader (and a small F32 writer for tests and tools).
 *
 * File layout: u64 little-endian N | N bytes of UTF-8 JSON header | data section.
 * Validation follows docs/model-format.md ("Validation") and is at least as strict as the Rust
 * reference implementation (huggingface/safetensors):
 *   - the file is at least 8 bytes; N <= MM_ST_MAX_HEADER and 8 + N <= file size;
 *   - the header contains no NUL byte, is valid UTF-8 (no overlong forms, no surrogates), starts
 *     with '{' and is one RFC 8259 JSON object (JSON whitespace may follow it: writers pad
 *     with spaces; nothing else may);
 *     no duplicate keys in any object (keys compared after unescaping); strings must not contain
 *     an escaped NUL (\u0000) or an unpaired surrogate escape;
 *   - every entry but "__metadata__" is an object with exactly the keys "dtype" (string),
 *     "shape" (array of at most MM_ST_MAX_DIMS integers) and "data_offsets" (array of exactly 2
 *     integers, begin <= end); the integers are written as plain non-negative decimal integers
 *     not above INT64_MAX (1.0, 1e3, -0, -1, 1.5 and 1e30 are all refused);
 *   - dtype is F32, F16 or BF16 (the other safetensors dtypes are refused as "unsupported");
 *   - names are non-empty, at most MM_ST_MAX_NAME bytes;
 *   - end - begin == product(shape) * dtype size, computed with overflow checks (an intermediate
 *     overflow of the product, taken left to right, is an error, as in the reference);
 *   - sorted by (begin, end), the tensors tile the data section exactly: the first starts at 0,
 *     each starts where the previous ended, the last ends at the end of the file; zero-size
 *     tensors are allowed at any boundary;
 *   - "__metadata__", if present, is an object whose values are all strings;
 *   - at most MM_ST_MAX_TENSORS tensors and MM_ST_MAX_METADATA metadata entries; JSON nesting at
 *     most 3 levels and at most 64 elements in any array (a valid header needs neither more).
 * "{}" with no data is a valid, empty file.
 *
 * Data pointers: mm_st_tensor.data points into the mapping (or the caller's buffer) at
 * 8 + N + begin. Nothing in the format aligns it: it may be unaligned for ANY dtype, F32 included
 * (files written by mm_st_write_f32 and by the Rust/Python writers do have 8-aligned data
 * sections, so their F32 tensors are 4-aligned in a mapping). Read it with mm_st_to_f32() or
 * memcpy(); cast it to float * only after checking ((uintptr_t)data % 4 == 0). Data is
 * little-endian. Zero-size tensors have nbytes == 0 and a non-NULL data pointer that must not be
 * dereferenced.
 *
 * A handle is immutable after opening: any number of threads may read it concurrently. The file
 * is mapped MAP_PRIVATE, PROT_READ; if another process truncates it while it is mapped, reads
 * fault (SIGBUS), as with any mmap reader; replace model files by rename, never in place.
 */
#ifndef MM_SAFETENSORS_H
#define MM_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { MM_ST_F32 = 0, MM_ST_F16 = 1, MM_ST_BF16 = 2 } mm_st_dtype;

#define MM_ST_MAX_DIMS 8
#define MM_ST_MAX_HEADER 100000000u /* N limit, as in the reference implementation */
#define MM_ST_MAX_NAME 1024         /* bytes, excluding the terminating NUL */
#define MM_ST_MAX_TENSORS 1000000
#define MM_ST_MAX_METADATA 1000000

typedef struct {
    const char *name; /* NUL-terminated, owned by the file handle */
    mm_st_dtype dtype;
    int ndim;                      /* 0..MM_ST_MAX_DIMS; 0 = scalar */
    int64_t shape[MM_ST_MAX_DIMS]; /* entries past ndim are 0 */
    int64_t numel;                 /* product of shape (1 for ndim 0) */
    const void *data; /* into the mapping; possibly UNALIGNED for every dtype, see above */
    size_t nbytes;    /* numel * mm_st_dtype_size(dtype) */
} mm_st_tensor;

typedef struct mm_st_file mm_st_file;

/* Opens and validates; on failure returns non-zero, *out = NULL, and writes a readable message
 * ("<path>: <problem>") into err (size errlen, always NUL-terminated when errlen > 0; err may be
 * NULL). Never crashes, never exit()s. */
int mm_st_open(const char *path, mm_st_file **out, char *err, size_t errlen);
/* Same validation on a caller-owned memory buffer (not copied; must outlive the handle).
 * Messages name the file "<memory>". */
int mm_st_open_memory(const void *buf, size_t len, mm_st_file **out, char *err, size_t errlen);
void mm_st_close(mm_st_file *f);         /* NULL ok */
size_t mm_st_count(const mm_st_file *f); /* 0 for NULL */
/* Sorted by data offset (ties, i.e. zero-size tensors: by end, then name); NULL if i >= count. */
const mm_st_tensor *mm_st_get(const mm_st_file *f, size_t i);
/* NULL if absent; O(log n). */
const mm_st_tensor *mm_st_find(const mm_st_file *f, const char *name);
/* The __metadata__ string value of key, or NULL. */
const char *mm_st_metadata(const mm_st_file *f, const char *key);
size_t mm_st_dtype_size(mm_st_dtype dt);      /* 4, 2, 2; 0 for an invalid value */
const char *mm_st_dtype_name(mm_st_dtype dt); /* "F32", "F16", "BF16"; "?" for an invalid value */

/* Converts numel elements of any supported dtype to float32 (dst must hold numel floats).
 * bf16->f32 and f16->f32 are exact, including subnormals, infinities and NaN payloads (bit
 * manipulation, no FP arithmetic). Handles unaligned source. No-op if t or dst is NULL. */
void mm_st_to_f32(const mm_st_tensor *t, float *dst);

/* Writer, for tests and tools: writes F32 tensors (in the order given) and metadata key/values to
 * path atomically (temporary file in the same directory, fsync, rename). The header is padded with
 * spaces to a multiple of 8 bytes. Names must be valid UTF-8, non-empty, at most MM_ST_MAX_NAME
 * bytes, unique and not "__metadata__"; metadata keys unique, keys and values valid UTF-8; ndim
 * 0..MM_ST_MAX_DIMS, shape entries >= 0; data may be NULL only when numel is 0. meta_keys and
 * meta_values may be NULL when n_meta is 0. Returns 0, or non-zero with a message in err. */
typedef struct {
    const char *name;
    int ndim;
    const int64_t *shape;
    const float *data;
} mm_st_write_tensor;
int mm_st_write_f32(const char *path, const mm_st_write_tensor *tensors, size_t n,
                    const char *const *meta_keys, const char *const *meta_values, size_t n_meta,
                    char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* MM_SAFETENSORS_H */
