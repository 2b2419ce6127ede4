/* engine/gguf_write.c - streaming GGUF v3 writer (see gguf_write.h).
 *
 * Owns: the serialized metadata and tensor-info sections (built in memory,
 * they are small), the list of declared tensors, and the .tmp output file.
 * Invariant: once begin_data has run, `written` bytes are in the file and
 * the current tensor (cur) has cur_done of its n_bytes; padding to the
 * alignment is written between tensors as soon as one completes. */
#include "engine/gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

typedef struct wtensor {
    char name[KILN_GGUF_MAX_NAME];
    uint64_t n_bytes, offset;
} wtensor;

struct kiln_gguf_writer {
    char *path, *tmp;
    FILE *f;
    kiln_err err;  /* sticky */
    buf kv, info;
    uint64_t n_kv;
    char **keys;
    wtensor *t;
    int n_t, cap_t;
    uint64_t data_size; /* sum of padded tensor sizes so far */
    uint32_t alignment;
    int started, finished;
    int cur;
    uint64_t cur_done;
    uint64_t total, written;
};

static int buf_put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    return 0;
}

static int buf_str(buf *b, const char *s, size_t n)
{
    uint64_t len = n;
    return buf_put(b, &len, 8) || buf_put(b, s, n) ? -1 : 0;
}

static int buf_u32(buf *b, uint32_t v) { return buf_put(b, &v, 4); }

static int sticky(kiln_gguf_writer *w, kiln_err *e)
{
    if (e) {
        e->code = w->err.code;
        memcpy(e->msg, w->err.msg, sizeof e->msg);
    }
    return w->err.code;
}

#define FAIL(w, e, code, ...) (kiln_fail(&(w)->err, (code), __VA_ARGS__), sticky((w), (e)))

int kiln_gguf_writer_open(const char *path, kiln_gguf_writer **out, kiln_err *e)
{
    *out = NULL;
    kiln_gguf_writer *w = calloc(1, sizeof *w);
    if (!w)
        return kiln_fail(e, KILN_E_NOMEM, "%s: out of memory", path);
    w->alignment = KILN_GGUF_DEFAULT_ALIGNMENT;
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 5);
    if (!w->path || !w->tmp) {
        kiln_gguf_writer_free(w);
        return kiln_fail(e, KILN_E_NOMEM, "%s: out of memory", path);
    }
    sprintf(w->tmp, "%s.tmp", path);
    w->f = fopen(w->tmp, "wb");
    if (!w->f) {
        int rc = kiln_fail(e, KILN_E_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        kiln_gguf_writer_free(w);
        return rc;
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    *out = w;
    return 0;
}

void kiln_gguf_writer_free(kiln_gguf_writer *w)
{
    if (!w)
        return;
    if (w->f) {
        fclose(w->f);
        if (!w->finished)
            remove(w->tmp);
    }
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    free(w->kv.p);
    free(w->info.p);
    free(w->t);
    free(w->path);
    free(w->tmp);
    free(w);
}

/* Common prologue of every metadata setter: state + unique key. */
static int add_key(kiln_gguf_writer *w, const char *key, int type, kiln_err *e)
{
    if (w->err.code)
        return sticky(w, e);
    if (w->started)
        return FAIL(w, e, KILN_E_INVALID, "%s: metadata '%s' set after begin_data", w->path, key);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], key))
            return FAIL(w, e, KILN_E_INVALID, "%s: duplicate metadata key '%s'", w->path, key);
    char **k = realloc(w->keys, (w->n_kv + 1) * sizeof *k);
    if (!k)
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    w->keys = k;
    if (!(k[w->n_kv] = strdup(key)))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    w->n_kv++;
    if (buf_str(&w->kv, key, strlen(key)) || buf_u32(&w->kv, (uint32_t)type))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    return 0;
}

int kiln_gguf_w_scalar(kiln_gguf_writer *w, const char *key, int type, const void *value, kiln_err *e)
{
    size_t sz = kiln_gguf_type_size(type);
    if (!w->err.code && !sz)
        return FAIL(w, e, KILN_E_INVALID, "%s: metadata '%s': %s is not a scalar type", w->path, key,
                    kiln_gguf_type_name(type));
    if (!w->err.code && !strcmp(key, "general.alignment")) {
        uint32_t a;
        if (type != KILN_GGUF_U32)
            return FAIL(w, e, KILN_E_INVALID, "%s: general.alignment must be u32", w->path);
        memcpy(&a, value, 4);
        if (!a || (a & (a - 1)))
            return FAIL(w, e, KILN_E_INVALID, "%s: general.alignment %u is not a power of two", w->path, a);
        w->alignment = a;
    }
    if (add_key(w, key, type, e))
        return w->err.code;
    if (type == KILN_GGUF_BOOL) {
        uint8_t b = *(const uint8_t *)value ? 1 : 0;
        if (buf_put(&w->kv, &b, 1))
            return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
        return 0;
    }
    if (buf_put(&w->kv, value, sz))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    return 0;
}

int kiln_gguf_w_u32(kiln_gguf_writer *w, const char *key, uint32_t v, kiln_err *e)
{
    return kiln_gguf_w_scalar(w, key, KILN_GGUF_U32, &v, e);
}

int kiln_gguf_w_i32(kiln_gguf_writer *w, const char *key, int32_t v, kiln_err *e)
{
    return kiln_gguf_w_scalar(w, key, KILN_GGUF_I32, &v, e);
}

int kiln_gguf_w_f32(kiln_gguf_writer *w, const char *key, float v, kiln_err *e)
{
    return kiln_gguf_w_scalar(w, key, KILN_GGUF_F32, &v, e);
}

int kiln_gguf_w_bool(kiln_gguf_writer *w, const char *key, int v, kiln_err *e)
{
    uint8_t b = v ? 1 : 0;
    return kiln_gguf_w_scalar(w, key, KILN_GGUF_BOOL, &b, e);
}

int kiln_gguf_w_strn(kiln_gguf_writer *w, const char *key, const char *s, size_t len, kiln_err *e)
{
    if (add_key(w, key, KILN_GGUF_STRING, e))
        return w->err.code;
    if (buf_str(&w->kv, s, len))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    return 0;
}

int kiln_gguf_w_str(kiln_gguf_writer *w, const char *key, const char *s, kiln_err *e)
{
    return kiln_gguf_w_strn(w, key, s, strlen(s), e);
}

int kiln_gguf_w_arr(kiln_gguf_writer *w, const char *key, int elem_type, const void *elems, uint64_t count,
                    kiln_err *e)
{
    size_t sz = kiln_gguf_type_size(elem_type);
    if (!w->err.code && !sz)
        return FAIL(w, e, KILN_E_INVALID, "%s: metadata '%s': arrays of %s need kiln_gguf_w_arr_str", w->path, key,
                    kiln_gguf_type_name(elem_type));
    if (add_key(w, key, KILN_GGUF_ARRAY, e))
        return w->err.code;
    if (buf_u32(&w->kv, (uint32_t)elem_type) || buf_put(&w->kv, &count, 8) ||
        (count && buf_put(&w->kv, elems, (size_t)count * sz)))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    return 0;
}

int kiln_gguf_w_arr_str(kiln_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                        uint64_t count, kiln_err *e)
{
    if (add_key(w, key, KILN_GGUF_ARRAY, e))
        return w->err.code;
    if (buf_u32(&w->kv, KILN_GGUF_STRING) || buf_put(&w->kv, &count, 8))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    for (uint64_t i = 0; i < count; i++)
        if (buf_str(&w->kv, strs[i], lens ? lens[i] : strlen(strs[i])))
            return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    return 0;
}

int kiln_gguf_w_tensor(kiln_gguf_writer *w, const char *name, int ggml_type, int n_dims, const int64_t *dims,
                       kiln_err *e)
{
    if (w->err.code)
        return sticky(w, e);
    if (w->started)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s' declared after begin_data", w->path, name);
    size_t nl = strlen(name);
    if (!nl || nl >= KILN_GGUF_MAX_NAME)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor name '%s' must be 1..%d bytes", w->path, name,
                    KILN_GGUF_MAX_NAME - 1);
    size_t be = kiln_ggml_type_block_elems(ggml_type), bb = kiln_ggml_type_block_bytes(ggml_type);
    if (!be)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s': unknown ggml type %d", w->path, name, ggml_type);
    if (n_dims < 1 || n_dims > KILN_GGUF_MAX_DIMS)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s': n_dims %d out of range 1..4", w->path, name, n_dims);
    int64_t ne = 1;
    for (int d = 0; d < n_dims; d++)
        if (dims[d] < 0 || __builtin_mul_overflow(ne, dims[d], &ne))
            return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s': bad dims", w->path, name);
    if (dims[0] % (int64_t)be)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s': dims[0] = %lld not a multiple of the %s block size %zu",
                    w->path, name, (long long)dims[0], kiln_ggml_type_name(ggml_type), be);
    for (int i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name))
            return FAIL(w, e, KILN_E_INVALID, "%s: duplicate tensor name '%s'", w->path, name);
    if (w->n_t == w->cap_t) {
        int cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *t = realloc(w->t, (size_t)cap * sizeof *t);
        if (!t)
            return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
        w->t = t;
        w->cap_t = cap;
    }
    wtensor *t = &w->t[w->n_t++];
    memcpy(t->name, name, nl + 1);
    t->n_bytes = (uint64_t)ne / be * bb;
    /* offsets are assigned at begin_data (the alignment may still change) */
    uint32_t nd = (uint32_t)n_dims, ty = (uint32_t)ggml_type;
    if (buf_str(&w->info, name, nl) || buf_u32(&w->info, nd))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    for (int d = 0; d < n_dims; d++) {
        uint64_t v = (uint64_t)dims[d];
        if (buf_put(&w->info, &v, 8))
            return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    }
    uint64_t off_placeholder = 0;
    if (buf_u32(&w->info, ty) || buf_put(&w->info, &off_placeholder, 8))
        return FAIL(w, e, KILN_E_NOMEM, "%s: out of memory", w->path);
    return 0;
}

static int put(kiln_gguf_writer *w, const void *p, size_t n, kiln_err *e)
{
    if (n && fwrite(p, 1, n, w->f) != n)
        return FAIL(w, e, KILN_E_IO, "%s: write failed: %s", w->tmp, strerror(errno));
    w->written += n;
    return 0;
}

static int pad(kiln_gguf_writer *w, kiln_err *e)
{
    static const uint8_t zeros[256];
    uint64_t a = w->alignment;
    uint64_t n = (a - w->written % a) % a;
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        if (put(w, zeros, k, e))
            return w->err.code;
        n -= k;
    }
    return 0;
}

/* Completes zero-byte tensors and pads after a finished one. */
static int advance(kiln_gguf_writer *w, kiln_err *e)
{
    while (w->cur < w->n_t && w->cur_done == w->t[w->cur].n_bytes) {
        if (pad(w, e))
            return w->err.code;
        w->cur++;
        w->cur_done = 0;
    }
    return 0;
}

int kiln_gguf_w_begin_data(kiln_gguf_writer *w, kiln_err *e)
{
    if (w->err.code)
        return sticky(w, e);
    if (w->started)
        return FAIL(w, e, KILN_E_INVALID, "%s: begin_data called twice", w->path);
    w->started = 1;
    uint64_t a = w->alignment, off = 0;
    /* Patch each info's offset: walk the serialized infos. */
    size_t p = 0;
    for (int i = 0; i < w->n_t; i++) {
        uint64_t nl;
        uint32_t nd;
        memcpy(&nl, w->info.p + p, 8);
        p += 8 + nl;
        memcpy(&nd, w->info.p + p, 4);
        p += 4 + 8 * (size_t)nd + 4;
        w->t[i].offset = off;
        memcpy(w->info.p + p, &off, 8);
        p += 8;
        off += (w->t[i].n_bytes + a - 1) / a * a;
    }
    w->data_size = off;
    uint32_t version = 3;
    uint64_t nt = (uint64_t)w->n_t;
    uint64_t head = 4 + 4 + 8 + 8 + w->kv.n + w->info.n;
    w->total = (head + a - 1) / a * a + w->data_size;
    if (put(w, "GGUF", 4, e) || put(w, &version, 4, e) || put(w, &nt, 8, e) || put(w, &w->n_kv, 8, e) ||
        put(w, w->kv.p, w->kv.n, e) || put(w, w->info.p, w->info.n, e) || pad(w, e))
        return w->err.code;
    free(w->kv.p);
    free(w->info.p);
    memset(&w->kv, 0, sizeof w->kv);
    memset(&w->info, 0, sizeof w->info);
    w->cur = 0;
    w->cur_done = 0;
    return advance(w, e);
}

int kiln_gguf_w_data(kiln_gguf_writer *w, const void *p, size_t n, kiln_err *e)
{
    if (w->err.code)
        return sticky(w, e);
    if (!w->started)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor data written before begin_data", w->path);
    if (w->cur >= w->n_t)
        return n ? FAIL(w, e, KILN_E_INVALID, "%s: %zu bytes of data after the last tensor", w->path, n) : 0;
    wtensor *t = &w->t[w->cur];
    if (n > t->n_bytes - w->cur_done)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s': %zu bytes given, only %llu left of its %llu", w->path,
                    t->name, n, (unsigned long long)(t->n_bytes - w->cur_done), (unsigned long long)t->n_bytes);
    if (put(w, p, n, e))
        return w->err.code;
    w->cur_done += n;
    return advance(w, e);
}

int kiln_gguf_writer_finish(kiln_gguf_writer *w, kiln_err *e)
{
    if (w->err.code)
        return sticky(w, e);
    if (!w->started && kiln_gguf_w_begin_data(w, e))
        return w->err.code;
    if (w->cur < w->n_t)
        return FAIL(w, e, KILN_E_INVALID, "%s: tensor '%s' incomplete: %llu of %llu bytes written", w->path,
                    w->t[w->cur].name, (unsigned long long)w->cur_done, (unsigned long long)w->t[w->cur].n_bytes);
    int rc = fclose(w->f);
    w->f = NULL;
    if (rc) {
        remove(w->tmp);
        return FAIL(w, e, KILN_E_IO, "%s: close failed: %s", w->tmp, strerror(errno));
    }
    if (rename(w->tmp, w->path)) {
        remove(w->tmp);
        return FAIL(w, e, KILN_E_IO, "%s: cannot rename to %s: %s", w->tmp, w->path, strerror(errno));
    }
    w->finished = 1;
    return 0;
}

uint64_t kiln_gguf_w_total_bytes(const kiln_gguf_writer *w) { return w->total; }
uint64_t kiln_gguf_w_written_bytes(const kiln_gguf_writer *w) { return w->written; }
int kiln_gguf_w_tensor_index(const kiln_gguf_writer *w) { return w->cur; }

uint64_t kiln_gguf_w_tensor_left(const kiln_gguf_writer *w)
{
    return w->cur < w->n_t ? w->t[w->cur].n_bytes - w->cur_done : 0;
}
