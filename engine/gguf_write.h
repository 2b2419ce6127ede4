/* engine/gguf_write.h - streaming GGUF v3 writer.
 *
 * Usage, in this order:
 *   1. kiln_gguf_writer_open(path)            creates path + ".tmp"
 *   2. kiln_gguf_w_*() metadata and kiln_gguf_w_tensor() infos, any mix;
 *      these are buffered (metadata + infos only, never tensor data)
 *   3. kiln_gguf_w_begin_data()               writes header, metadata, infos
 *   4. kiln_gguf_w_data() the bytes of each tensor, in declaration order,
 *      in chunks of any size; the writer pads between tensors
 *   5. kiln_gguf_writer_finish()              checks every tensor is complete
 *      and renames the .tmp file to path
 *   kiln_gguf_writer_free() at any point releases it (and deletes the .tmp
 *   file if finish did not succeed).
 * Errors are sticky: after the first failure every call returns that error.
 * The alignment is 32 unless a u32 "general.alignment" (a power of two) is
 * set before begin_data. Keys and tensor names must be unique. */
#ifndef KILN_ENGINE_GGUF_WRITE_H
#define KILN_ENGINE_GGUF_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef struct kiln_gguf_writer kiln_gguf_writer;

int kiln_gguf_writer_open(const char *path, kiln_gguf_writer **out, kiln_err *e);
int kiln_gguf_writer_finish(kiln_gguf_writer *w, kiln_err *e);
void kiln_gguf_writer_free(kiln_gguf_writer *w);

/* Metadata. `value` points to one scalar of `type` (kiln_gguf_type, not
 * string/array). */
int kiln_gguf_w_scalar(kiln_gguf_writer *w, const char *key, int type, const void *value, kiln_err *e);
int kiln_gguf_w_u32(kiln_gguf_writer *w, const char *key, uint32_t v, kiln_err *e);
int kiln_gguf_w_i32(kiln_gguf_writer *w, const char *key, int32_t v, kiln_err *e);
int kiln_gguf_w_f32(kiln_gguf_writer *w, const char *key, float v, kiln_err *e);
int kiln_gguf_w_bool(kiln_gguf_writer *w, const char *key, int v, kiln_err *e);
int kiln_gguf_w_str(kiln_gguf_writer *w, const char *key, const char *s, kiln_err *e);
int kiln_gguf_w_strn(kiln_gguf_writer *w, const char *key, const char *s, size_t len, kiln_err *e);
/* Array of `count` scalars of elem_type, packed little-endian in `elems`. */
int kiln_gguf_w_arr(kiln_gguf_writer *w, const char *key, int elem_type, const void *elems, uint64_t count,
                    kiln_err *e);
/* Array of strings; lens may be NULL (then each is NUL-terminated). */
int kiln_gguf_w_arr_str(kiln_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                        uint64_t count, kiln_err *e);

/* Declares a tensor (dims[0] fastest; dims[0] a multiple of the type's
 * block size). Its data offset is assigned in declaration order. */
int kiln_gguf_w_tensor(kiln_gguf_writer *w, const char *name, int ggml_type, int n_dims, const int64_t *dims,
                       kiln_err *e);

int kiln_gguf_w_begin_data(kiln_gguf_writer *w, kiln_err *e);
/* Appends n bytes to the current tensor (crossing into the next one is an
 * error: a tensor's bytes must be given whole, possibly in chunks). */
int kiln_gguf_w_data(kiln_gguf_writer *w, const void *p, size_t n, kiln_err *e);

/* Progress: the final file size (valid after begin_data) and bytes written. */
uint64_t kiln_gguf_w_total_bytes(const kiln_gguf_writer *w);
uint64_t kiln_gguf_w_written_bytes(const kiln_gguf_writer *w);
/* Bytes of the tensor data still expected for the current tensor (0 once
 * all are complete), and that tensor's index. */
uint64_t kiln_gguf_w_tensor_left(const kiln_gguf_writer *w);
int kiln_gguf_w_tensor_index(const kiln_gguf_writer *w);

#endif
