/* engine/gguf.h - read-only GGUF v2/v3 reader (FORMATS.md "GGUF container").
 *
 * The file is mmap'd read-only and parsed once by kiln_gguf_open(). Every
 * count, length, offset and size in it is untrusted: each is checked against
 * the bytes left in the file before anything is allocated or read, so a
 * malformed file yields KILN_E_FORMAT (KILN_E_IO if it cannot be opened or
 * mapped) with a message naming the file and the field, never a crash.
 *
 * Invariants after a successful open:
 *   - keys are unique; tensor names are unique, non-empty and < 64 bytes;
 *   - value types are known (arrays of arrays are rejected);
 *   - tensor types are ones kiln_ggml_type_name() knows, 1 <= n_dims <= 4,
 *     dims[0] is a multiple of the type's block size, n_elements fits int64;
 *   - general.alignment (default 32) is a power of two; every tensor offset
 *     is aligned to it; tensor data lies inside the file and no two tensors
 *     overlap.
 * Strings (keys aside) point into the mapping and are NOT NUL-terminated:
 * use (ptr, len). Everything returned stays valid until kiln_gguf_close(). */
#ifndef KILN_ENGINE_GGUF_H
#define KILN_ENGINE_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

/* Metadata value types (GGUF spec numbering). */
enum kiln_gguf_type {
    KILN_GGUF_U8 = 0,
    KILN_GGUF_I8 = 1,
    KILN_GGUF_U16 = 2,
    KILN_GGUF_I16 = 3,
    KILN_GGUF_U32 = 4,
    KILN_GGUF_I32 = 5,
    KILN_GGUF_F32 = 6,
    KILN_GGUF_BOOL = 7,
    KILN_GGUF_STRING = 8,
    KILN_GGUF_ARRAY = 9,
    KILN_GGUF_U64 = 10,
    KILN_GGUF_I64 = 11,
    KILN_GGUF_F64 = 12,
    KILN_GGUF_TYPE_COUNT
};

/* Tensor types (ggml type ids) Kiln recognises; others are rejected. */
enum kiln_ggml_type {
    KILN_GGML_F32 = 0,
    KILN_GGML_F16 = 1,
    KILN_GGML_Q4_0 = 2,
    KILN_GGML_Q4_1 = 3,
    KILN_GGML_Q5_0 = 6,
    KILN_GGML_Q5_1 = 7,
    KILN_GGML_Q8_0 = 8,
    KILN_GGML_Q2_K = 10,
    KILN_GGML_Q3_K = 11,
    KILN_GGML_Q4_K = 12,
    KILN_GGML_Q5_K = 13,
    KILN_GGML_Q6_K = 14,
    KILN_GGML_Q8_K = 15,
    KILN_GGML_BF16 = 30,
};

#define KILN_GGUF_MAX_DIMS 4
#define KILN_GGUF_MAX_NAME 64          /* tensor names are shorter than this */
#define KILN_GGUF_DEFAULT_ALIGNMENT 32

/* One metadata entry. Scalars are widened: unsigned ints in v.u, signed
 * ints in v.i, f32/f64 in v.f, bool in v.b. */
typedef struct kiln_gguf_kv {
    const char *key;             /* NUL-terminated copy */
    int type;                    /* kiln_gguf_type */
    union {
        uint64_t u;
        int64_t i;
        double f;
        int b;
    } v;
    const char *str;             /* KILN_GGUF_STRING: bytes in the mapping */
    uint64_t str_len;
    int arr_type;                /* KILN_GGUF_ARRAY: element type (never ARRAY) */
    uint64_t arr_count;
    const uint8_t *arr_data;     /* first element, in the mapping (unaligned) */
    const uint64_t *arr_str_off; /* string arrays: offset of element i's length field from arr_data */
} kiln_gguf_kv;

typedef struct kiln_gguf_tensor {
    char name[KILN_GGUF_MAX_NAME];
    int type;                            /* kiln_ggml_type */
    int n_dims;
    int64_t dims[KILN_GGUF_MAX_DIMS];    /* dims[0] fastest; unused dims are 1 */
    int64_t n_elements;
    uint64_t offset;                     /* relative to the data section */
    uint64_t n_bytes;
    const void *data;                    /* in the mapping */
} kiln_gguf_tensor;

typedef struct kiln_gguf kiln_gguf;

/* Map and validate `path`. On failure *out is NULL and e says why. */
int kiln_gguf_open(const char *path, kiln_gguf **out, kiln_err *e);
void kiln_gguf_close(kiln_gguf *g);

const char *kiln_gguf_path(const kiln_gguf *g);
uint32_t kiln_gguf_version(const kiln_gguf *g);
uint32_t kiln_gguf_alignment(const kiln_gguf *g);
uint64_t kiln_gguf_file_size(const kiln_gguf *g);
uint64_t kiln_gguf_data_offset(const kiln_gguf *g); /* start of the data section in the file */

/* ---- metadata ---- */
int kiln_gguf_n_kv(const kiln_gguf *g);
const kiln_gguf_kv *kiln_gguf_kv_at(const kiln_gguf *g, int i);
/* NULL when absent (no error: use it for optional keys). */
const kiln_gguf_kv *kiln_gguf_find(const kiln_gguf *g, const char *key);

/* Typed getters: 0 on success; KILN_E_FORMAT naming the key when it is
 * missing, and naming the key and both types when the type does not match.
 * get_u32/get_i32/get_u64 accept any integer type whose value fits;
 * get_f32 accepts f32 and f64; get_str returns a pointer into the mapping
 * (not NUL-terminated) and its length. */
int kiln_gguf_get_u32(const kiln_gguf *g, const char *key, uint32_t *out, kiln_err *e);
int kiln_gguf_get_i32(const kiln_gguf *g, const char *key, int32_t *out, kiln_err *e);
int kiln_gguf_get_u64(const kiln_gguf *g, const char *key, uint64_t *out, kiln_err *e);
int kiln_gguf_get_f32(const kiln_gguf *g, const char *key, float *out, kiln_err *e);
int kiln_gguf_get_bool(const kiln_gguf *g, const char *key, int *out, kiln_err *e);
int kiln_gguf_get_str(const kiln_gguf *g, const char *key, const char **str, size_t *len, kiln_err *e);

/* The array under `key`: its element type and count (either may be NULL).
 * NULL + KILN_E_FORMAT when missing or not an array. */
const kiln_gguf_kv *kiln_gguf_arr(const kiln_gguf *g, const char *key, int *elem_type, uint64_t *count,
                                  kiln_err *e);
/* Element i of an array kv. Out of range or the wrong element type gives
 * NULL/0: check arr_type and arr_count first.
 *   arr_str: string arrays; *len gets the length.
 *   arr_f32: f32 or f64 arrays.
 *   arr_i32 / arr_i64: any integer (or bool) array, converted. */
const char *kiln_gguf_arr_str(const kiln_gguf_kv *kv, uint64_t i, size_t *len);
float kiln_gguf_arr_f32(const kiln_gguf_kv *kv, uint64_t i);
int32_t kiln_gguf_arr_i32(const kiln_gguf_kv *kv, uint64_t i);
int64_t kiln_gguf_arr_i64(const kiln_gguf_kv *kv, uint64_t i);

/* ---- tensors ---- */
int kiln_gguf_n_tensors(const kiln_gguf *g);
const kiln_gguf_tensor *kiln_gguf_tensor_at(const kiln_gguf *g, int i);
const kiln_gguf_tensor *kiln_gguf_tensor_find(const kiln_gguf *g, const char *name); /* NULL if absent */

/* ---- type tables ---- */
/* Name of a value type ("u32", "string", "array", ...; "?" if unknown). */
const char *kiln_gguf_type_name(int type);
/* Bytes of one element of a scalar value type (0 for string/array/unknown). */
size_t kiln_gguf_type_size(int type);
/* ggml tensor types: bytes per block and elements per block (1 for
 * F32/F16/BF16); 0 for types Kiln does not know. Name: "Q4_K", or NULL. */
size_t kiln_ggml_type_block_bytes(int type);
size_t kiln_ggml_type_block_elems(int type);
const char *kiln_ggml_type_name(int type);

#endif
