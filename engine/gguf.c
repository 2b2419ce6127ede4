/* engine/gguf.c - GGUF v2/v3 reader (see gguf.h for the invariants it
 * establishes).
 *
 * Parsing walks a bounds-checked cursor over the mapping. Before any
 * allocation sized by the file (kv table, tensor table, string-array
 * offsets) the count is bounded by the bytes left: every entry needs at
 * least a minimum number of bytes, so a count the file cannot hold is
 * rejected up front. Keys and tensor names are looked up through small
 * open-addressing hash tables, which also detect duplicates. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

#define MAX_KEY_LEN 65535u /* keys are short identifiers; anything longer is garbage */

struct kiln_gguf {
    char *path;
    const uint8_t *map;
    uint64_t size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int n_kv;
    kiln_gguf_kv *kv;
    int n_tensors;
    kiln_gguf_tensor *tensors;
    int *kv_hash;      /* index+1, 0 = empty; kv_mask+1 slots */
    size_t kv_mask;
    int *tensor_hash;
    size_t tensor_mask;
};

/* ---------------------------------------------------------------- tables */

static const char *const vtype_names[KILN_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
static const size_t vtype_sizes[KILN_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *kiln_gguf_type_name(int type)
{
    return type >= 0 && type < KILN_GGUF_TYPE_COUNT ? vtype_names[type] : "?";
}

size_t kiln_gguf_type_size(int type)
{
    return type >= 0 && type < KILN_GGUF_TYPE_COUNT ? vtype_sizes[type] : 0;
}

static const struct {
    int type;
    const char *name;
    size_t block_bytes, block_elems;
} ggml_types[] = {
    {KILN_GGML_F32, "F32", 4, 1},       {KILN_GGML_F16, "F16", 2, 1},
    {KILN_GGML_Q4_0, "Q4_0", 18, 32},   {KILN_GGML_Q4_1, "Q4_1", 20, 32},
    {KILN_GGML_Q5_0, "Q5_0", 22, 32},   {KILN_GGML_Q5_1, "Q5_1", 24, 32},
    {KILN_GGML_Q8_0, "Q8_0", 34, 32},   {KILN_GGML_Q2_K, "Q2_K", 84, 256},
    {KILN_GGML_Q3_K, "Q3_K", 110, 256}, {KILN_GGML_Q4_K, "Q4_K", 144, 256},
    {KILN_GGML_Q5_K, "Q5_K", 176, 256}, {KILN_GGML_Q6_K, "Q6_K", 210, 256},
    {KILN_GGML_Q8_K, "Q8_K", 292, 256}, {KILN_GGML_BF16, "BF16", 2, 1},
};

static int ggml_index(int type)
{
    for (size_t i = 0; i < sizeof ggml_types / sizeof ggml_types[0]; i++)
        if (ggml_types[i].type == type)
            return (int)i;
    return -1;
}

size_t kiln_ggml_type_block_bytes(int type)
{
    int i = ggml_index(type);
    return i < 0 ? 0 : ggml_types[i].block_bytes;
}

size_t kiln_ggml_type_block_elems(int type)
{
    int i = ggml_index(type);
    return i < 0 ? 0 : ggml_types[i].block_elems;
}

const char *kiln_ggml_type_name(int type)
{
    int i = ggml_index(type);
    return i < 0 ? NULL : ggml_types[i].name;
}

/* ---------------------------------------------------------------- hashing */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static size_t table_slots(int n)
{
    size_t s = 16;
    while (s < (size_t)n * 2)
        s <<= 1;
    return s;
}

typedef const char *(*name_fn)(const kiln_gguf *g, int i);
static const char *kv_name(const kiln_gguf *g, int i) { return g->kv[i].key; }
static const char *tensor_name(const kiln_gguf *g, int i) { return g->tensors[i].name; }

/* Returns the index of `name` (len bytes), or -1. */
static int table_find(const kiln_gguf *g, const int *tab, size_t mask, name_fn fn, const char *name, size_t len)
{
    if (!tab)
        return -1;
    for (size_t s = fnv1a(name, len) & mask;; s = (s + 1) & mask) {
        int v = tab[s];
        if (!v)
            return -1;
        const char *n = fn(g, v - 1);
        if (strlen(n) == len && !memcmp(n, name, len))
            return v - 1;
    }
}

/* Inserts index i; returns the index of an existing equal name, or -1. */
static int table_insert(const kiln_gguf *g, int *tab, size_t mask, name_fn fn, int i)
{
    const char *name = fn(g, i);
    size_t len = strlen(name);
    size_t s = fnv1a(name, len) & mask;
    for (; tab[s]; s = (s + 1) & mask)
        if (!strcmp(fn(g, tab[s] - 1), name))
            return tab[s] - 1;
    tab[s] = i + 1;
    return -1;
}

/* ---------------------------------------------------------------- cursor */

typedef struct cursor {
    const uint8_t *base;
    uint64_t size, pos;
    const char *path;
    kiln_err *e;
} cursor;

static uint64_t left(const cursor *c) { return c->size - c->pos; }

/* Fails with "truncated" unless n bytes remain; `what` is a printf format
 * naming the field, only expanded on failure. */
__attribute__((format(printf, 3, 4))) static int need(cursor *c, uint64_t n, const char *what, ...)
{
    if (n <= left(c))
        return 0;
    char field[512];
    va_list ap;
    va_start(ap, what);
    vsnprintf(field, sizeof field, what, ap);
    va_end(ap);
    return kiln_fail(c->e, KILN_E_FORMAT,
                     "%s: truncated file: %s needs %llu bytes at offset %llu, but the file ends at %llu", c->path,
                     field, (unsigned long long)n, (unsigned long long)c->pos, (unsigned long long)c->size);
}

/* Copies one fixed-size field out of the mapping (sizeof *dst bytes). */
#define READ_FIELD(c, dst, ...)                                                                                    \
    (need((c), sizeof *(dst), __VA_ARGS__) ? KILN_E_FORMAT                                                         \
                                           : (memcpy((dst), (c)->base + (c)->pos, sizeof *(dst)),                  \
                                              (c)->pos += sizeof *(dst), 0))

/* A string: u64 length then bytes. Length checked against what is left. */
__attribute__((format(printf, 5, 6))) static int read_str(cursor *c, const char **s, uint64_t *len,
                                                          uint64_t max_len, const char *what, ...)
{
    char field[512];
    va_list ap;
    uint64_t n = 0;
    if (8 > left(c) || (memcpy(&n, c->base + c->pos, 8), n > left(c) - 8) || n > max_len) {
        va_start(ap, what);
        vsnprintf(field, sizeof field, what, ap);
        va_end(ap);
        if (8 > left(c))
            return need(c, 8, "%s length", field);
        if (n > max_len)
            return kiln_fail(c->e, KILN_E_FORMAT, "%s: %s: string length %llu too long (at most %llu) at offset %llu",
                             c->path, field, (unsigned long long)n, (unsigned long long)max_len,
                             (unsigned long long)c->pos);
        return kiln_fail(c->e, KILN_E_FORMAT,
                         "%s: %s: string length %llu too long: only %llu bytes left after offset %llu (file size %llu)",
                         c->path, field, (unsigned long long)n, (unsigned long long)(left(c) - 8),
                         (unsigned long long)c->pos + 8, (unsigned long long)c->size);
    }
    *s = (const char *)c->base + c->pos + 8;
    *len = n;
    c->pos += 8 + n;
    return 0;
}

/* Scalar value of type t into kv. */
static void decode_scalar(int t, const uint8_t *p, kiln_gguf_kv *kv)
{
    switch (t) {
    case KILN_GGUF_U8: kv->v.u = p[0]; break;
    case KILN_GGUF_I8: kv->v.i = (int8_t)p[0]; break;
    case KILN_GGUF_U16: { uint16_t x; memcpy(&x, p, 2); kv->v.u = x; break; }
    case KILN_GGUF_I16: { int16_t x; memcpy(&x, p, 2); kv->v.i = x; break; }
    case KILN_GGUF_U32: { uint32_t x; memcpy(&x, p, 4); kv->v.u = x; break; }
    case KILN_GGUF_I32: { int32_t x; memcpy(&x, p, 4); kv->v.i = x; break; }
    case KILN_GGUF_F32: { float x; memcpy(&x, p, 4); kv->v.f = x; break; }
    case KILN_GGUF_BOOL: kv->v.b = p[0] != 0; break;
    case KILN_GGUF_U64: { uint64_t x; memcpy(&x, p, 8); kv->v.u = x; break; }
    case KILN_GGUF_I64: { int64_t x; memcpy(&x, p, 8); kv->v.i = x; break; }
    case KILN_GGUF_F64: { double x; memcpy(&x, p, 8); kv->v.f = x; break; }
    default: break;
    }
}

static int parse_value(cursor *c, kiln_gguf_kv *kv)
{
    const char *k = kv->key;
    int rc; /* the code of a failed read, returned as is: c->e may be NULL */
    uint32_t t = 0;
    if ((rc = READ_FIELD(c, &t, "metadata '%s' value type", k)))
        return rc;
    if (t >= KILN_GGUF_TYPE_COUNT)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: metadata '%s': unknown value type %u at offset %llu", c->path, k, t,
                         (unsigned long long)c->pos - 4);
    kv->type = (int)t;
    if (t == KILN_GGUF_STRING)
        return read_str(c, &kv->str, &kv->str_len, UINT64_MAX, "metadata '%s' string value", k);
    if (t != KILN_GGUF_ARRAY) {
        if ((rc = need(c, vtype_sizes[t], "metadata '%s' %s value", k, vtype_names[t])))
            return rc;
        decode_scalar((int)t, c->base + c->pos, kv);
        c->pos += vtype_sizes[t];
        return 0;
    }
    uint32_t et = 0;
    uint64_t n = 0;
    if ((rc = READ_FIELD(c, &et, "metadata '%s' array element type", k)))
        return rc;
    if (et == KILN_GGUF_ARRAY)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: metadata '%s': arrays of arrays are not supported", c->path, k);
    if (et >= KILN_GGUF_TYPE_COUNT)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: metadata '%s': unknown array element type %u at offset %llu",
                         c->path, k, et, (unsigned long long)c->pos - 4);
    if ((rc = READ_FIELD(c, &n, "metadata '%s' array count", k)))
        return rc;
    kv->arr_type = (int)et;
    kv->arr_count = n;
    kv->arr_data = c->base + c->pos;
    uint64_t min_elem = et == KILN_GGUF_STRING ? 8 : vtype_sizes[et];
    if (n > left(c) / min_elem)
        return kiln_fail(c->e, KILN_E_FORMAT,
                         "%s: metadata '%s': array count %llu too large: %llu elements of at least %llu bytes do not "
                         "fit in the %llu bytes left (file size %llu)",
                         c->path, k, (unsigned long long)n, (unsigned long long)n, (unsigned long long)min_elem,
                         (unsigned long long)left(c), (unsigned long long)c->size);
    if (et != KILN_GGUF_STRING) {
        c->pos += n * min_elem;
        return 0;
    }
    uint64_t *off = malloc((n ? n : 1) * sizeof *off);
    if (!off)
        return kiln_fail(c->e, KILN_E_NOMEM, "%s: metadata '%s': no memory for %llu string offsets", c->path, k,
                         (unsigned long long)n);
    kv->arr_str_off = off;
    uint64_t start = c->pos;
    for (uint64_t i = 0; i < n; i++) {
        const char *s;
        uint64_t len;
        off[i] = c->pos - start;
        if ((rc = read_str(c, &s, &len, UINT64_MAX, "metadata '%s' string element %llu", k, (unsigned long long)i)))
            return rc;
    }
    return 0;
}

static int parse_tensor_info(cursor *c, int idx, kiln_gguf_tensor *t)
{
    int rc;
    const char *s;
    uint64_t len;
    if ((rc = read_str(c, &s, &len, UINT64_MAX, "tensor[%d] name", idx)))
        return rc;
    if (len == 0)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor[%d]: empty name", c->path, idx);
    if (len >= KILN_GGUF_MAX_NAME)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor[%d] name: string length %llu too long (names are < %d bytes)",
                         c->path, idx, (unsigned long long)len, KILN_GGUF_MAX_NAME);
    if (memchr(s, 0, len))
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor[%d] name contains a NUL byte", c->path, idx);
    memcpy(t->name, s, len);
    t->name[len] = 0;
    const char *nm = t->name;

    uint32_t nd = 0;
    if ((rc = READ_FIELD(c, &nd, "tensor '%s' n_dims", nm)))
        return rc;
    if (nd < 1 || nd > KILN_GGUF_MAX_DIMS)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor '%s': n_dims %u out of range (1..%d)", c->path, nm, nd,
                         KILN_GGUF_MAX_DIMS);
    t->n_dims = (int)nd;
    int64_t ne = 1;
    for (int d = 0; d < KILN_GGUF_MAX_DIMS; d++)
        t->dims[d] = 1;
    for (uint32_t d = 0; d < nd; d++) {
        uint64_t v = 0;
        if ((rc = READ_FIELD(c, &v, "tensor '%s' dims[%u]", nm, d)))
            return rc;
        if (v > (uint64_t)INT64_MAX)
            return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor '%s': dims[%u] = %llu out of range", c->path, nm, d,
                             (unsigned long long)v);
        t->dims[d] = (int64_t)v;
        if (__builtin_mul_overflow(ne, (int64_t)v, &ne))
            return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor '%s': dims overflow: element count exceeds 2^63",
                             c->path, nm);
    }
    t->n_elements = ne;

    uint32_t ty = 0;
    if ((rc = READ_FIELD(c, &ty, "tensor '%s' type", nm)))
        return rc;
    int gi = ggml_index((int)ty);
    if (gi < 0)
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor '%s': unknown or unsupported tensor type %u", c->path, nm,
                         ty);
    t->type = (int)ty;
    size_t be = ggml_types[gi].block_elems, bb = ggml_types[gi].block_bytes;
    if (t->dims[0] % (int64_t)be)
        return kiln_fail(c->e, KILN_E_FORMAT,
                         "%s: tensor '%s': dims[0] = %lld is not a multiple of the %s block size %zu", c->path, nm,
                         (long long)t->dims[0], ggml_types[gi].name, be);
    uint64_t nblocks = (uint64_t)ne / be;
    if (nblocks > ((uint64_t)INT64_MAX) / bb) /* keeps n_bytes (and offset + n_bytes) from overflowing */
        return kiln_fail(c->e, KILN_E_FORMAT, "%s: tensor '%s': dims overflow: %lld elements of %s exceed 2^63 bytes",
                         c->path, nm, (long long)ne, ggml_types[gi].name);
    t->n_bytes = nblocks * bb;
    if ((rc = READ_FIELD(c, &t->offset, "tensor '%s' offset", nm)))
        return rc;
    return 0;
}

static int cmp_offset(const void *a, const void *b)
{
    const kiln_gguf_tensor *x = *(kiln_gguf_tensor *const *)a, *y = *(kiln_gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

static int parse(kiln_gguf *g, kiln_err *e)
{
    cursor c = {g->map, g->size, 0, g->path, e};
    const char *path = g->path;
    int rc;
    char magic[4] = {0};
    if ((rc = READ_FIELD(&c, &magic, "magic")))
        return rc;
    if (memcmp(magic, "GGUF", 4)) {
        char shown[32];
        int o = 0;
        for (int i = 0; i < 4; i++) {
            unsigned char ch = (unsigned char)magic[i];
            o += snprintf(shown + o, sizeof shown - (size_t)o, ch >= 32 && ch < 127 ? "%c" : "\\x%02x", ch);
        }
        return kiln_fail(e, KILN_E_FORMAT, "%s: bad magic \"%s\": not a GGUF file", path, shown);
    }
    if ((rc = READ_FIELD(&c, &g->version, "version")))
        return rc;
    if (g->version != 2 && g->version != 3) {
        uint32_t sw = __builtin_bswap32(g->version);
        return kiln_fail(e, KILN_E_FORMAT, "%s: unsupported GGUF version %u (Kiln reads versions 2 and 3)%s", path,
                         g->version, sw == 2 || sw == 3 ? "; this looks like a big-endian file" : "");
    }
    uint64_t n_tensors = 0, n_kv = 0;
    if ((rc = READ_FIELD(&c, &n_tensors, "tensor count")) || (rc = READ_FIELD(&c, &n_kv, "metadata count")))
        return rc;
    /* Minimum sizes: a kv is key length (8) + type (4) + at least 1 byte;
     * a tensor info is name length (8) + 1 name byte + n_dims (4) + one
     * dim (8) + type (4) + offset (8). */
    if (n_kv > left(&c) / 13 || n_kv > INT32_MAX)
        return kiln_fail(e, KILN_E_FORMAT, "%s: metadata count %llu too large for a file of %llu bytes", path,
                         (unsigned long long)n_kv, (unsigned long long)g->size);
    if (n_tensors > left(&c) / 33 || n_tensors > INT32_MAX)
        return kiln_fail(e, KILN_E_FORMAT, "%s: tensor count %llu too large for a file of %llu bytes", path,
                         (unsigned long long)n_tensors, (unsigned long long)g->size);

    g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
    g->kv_mask = table_slots((int)n_kv) - 1;
    g->tensor_mask = table_slots((int)n_tensors) - 1;
    g->kv_hash = calloc(g->kv_mask + 1, sizeof *g->kv_hash);
    g->tensor_hash = calloc(g->tensor_mask + 1, sizeof *g->tensor_hash);
    if (!g->kv || !g->tensors || !g->kv_hash || !g->tensor_hash)
        return kiln_fail(e, KILN_E_NOMEM, "%s: no memory for %llu metadata entries and %llu tensors", path,
                         (unsigned long long)n_kv, (unsigned long long)n_tensors);

    for (uint64_t i = 0; i < n_kv; i++) {
        const char *k;
        uint64_t len;
        if ((rc = read_str(&c, &k, &len, MAX_KEY_LEN, "metadata[%llu] key", (unsigned long long)i)))
            return rc;
        if (memchr(k, 0, len))
            return kiln_fail(e, KILN_E_FORMAT, "%s: metadata[%llu] key contains a NUL byte", path,
                             (unsigned long long)i);
        char *key = malloc(len + 1);
        if (!key)
            return kiln_fail(e, KILN_E_NOMEM, "%s: no memory for a metadata key", path);
        memcpy(key, k, len);
        key[len] = 0;
        g->kv[i].key = key;
        g->n_kv = (int)i + 1; /* owned from here on: freed by close */
        int dup = table_insert(g, g->kv_hash, g->kv_mask, kv_name, (int)i);
        if (dup >= 0)
            return kiln_fail(e, KILN_E_FORMAT, "%s: duplicate metadata key '%s' (entries %d and %llu)", path, key, dup,
                             (unsigned long long)i);
        if ((rc = parse_value(&c, &g->kv[i])))
            return rc;
    }

    g->alignment = KILN_GGUF_DEFAULT_ALIGNMENT;
    const kiln_gguf_kv *al = kiln_gguf_find(g, "general.alignment");
    if (al) {
        if (al->type != KILN_GGUF_U32)
            return kiln_fail(e, KILN_E_FORMAT, "%s: general.alignment has type %s, expected u32", path,
                             kiln_gguf_type_name(al->type));
        if (al->v.u == 0 || (al->v.u & (al->v.u - 1)))
            return kiln_fail(e, KILN_E_FORMAT, "%s: general.alignment %llu is not a power of two", path,
                             (unsigned long long)al->v.u);
        g->alignment = (uint32_t)al->v.u;
    }

    for (uint64_t i = 0; i < n_tensors; i++) {
        kiln_gguf_tensor *t = &g->tensors[i];
        if ((rc = parse_tensor_info(&c, (int)i, t)))
            return rc;
        g->n_tensors = (int)i + 1;
        int dup = table_insert(g, g->tensor_hash, g->tensor_mask, tensor_name, (int)i);
        if (dup >= 0)
            return kiln_fail(e, KILN_E_FORMAT, "%s: duplicate tensor name '%s' (tensors %d and %llu)", path, t->name,
                             dup, (unsigned long long)i);
    }

    uint64_t a = g->alignment;
    g->data_offset = (c.pos + a - 1) / a * a; /* pos < size <= 2^63, no overflow */
    if (n_tensors == 0)
        return 0;
    if (g->data_offset > g->size)
        return kiln_fail(e, KILN_E_FORMAT, "%s: truncated file: data section starts at %llu past end of file (size %llu)",
                         path, (unsigned long long)g->data_offset, (unsigned long long)g->size);
    uint64_t data_size = g->size - g->data_offset;
    for (int i = 0; i < g->n_tensors; i++) {
        kiln_gguf_tensor *t = &g->tensors[i];
        if (t->offset % a)
            return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': offset %llu is not a multiple of the alignment %llu",
                             path, t->name, (unsigned long long)t->offset, (unsigned long long)a);
        if (t->offset > data_size || t->n_bytes > data_size - t->offset) {
            /* absolute file offsets; the file is < 2^63 and n_bytes <= 2^63 */
            unsigned long long a0 = t->offset > (uint64_t)INT64_MAX ? t->offset : g->data_offset + t->offset;
            unsigned long long a1 = a0 > (uint64_t)INT64_MAX ? a0 : a0 + t->n_bytes;
            return kiln_fail(e, KILN_E_FORMAT, "%s: tensor '%s': data [%llu, %llu) past end of file (size %llu)", path,
                             t->name, a0, a1, (unsigned long long)g->size);
        }
        t->data = g->map + g->data_offset + t->offset;
    }
    kiln_gguf_tensor **order = malloc((size_t)g->n_tensors * sizeof *order);
    if (!order)
        return kiln_fail(e, KILN_E_NOMEM, "%s: no memory to sort tensors", path);
    for (int i = 0; i < g->n_tensors; i++)
        order[i] = &g->tensors[i];
    qsort(order, (size_t)g->n_tensors, sizeof *order, cmp_offset);
    rc = 0;
    for (int i = 1; i < g->n_tensors && !rc; i++) {
        const kiln_gguf_tensor *p = order[i - 1], *q = order[i];
        if (p->offset + p->n_bytes > q->offset)
            rc = kiln_fail(e, KILN_E_FORMAT,
                           "%s: tensor '%s': data [%llu, %llu) overlaps tensor '%s' at [%llu, %llu) (data-section offsets)",
                           path, q->name, (unsigned long long)q->offset, (unsigned long long)(q->offset + q->n_bytes),
                           p->name, (unsigned long long)p->offset, (unsigned long long)(p->offset + p->n_bytes));
    }
    free(order);
    return rc;
}

int kiln_gguf_open(const char *path, kiln_gguf **out, kiln_err *e)
{
    *out = NULL;
    kiln_gguf *g = calloc(1, sizeof *g);
    if (!g || !(g->path = strdup(path))) {
        free(g);
        return kiln_fail(e, KILN_E_NOMEM, "%s: out of memory", path);
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int rc = kiln_fail(e, KILN_E_IO, "%s: cannot open: %s", path, strerror(errno));
        kiln_gguf_close(g);
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        int rc = kiln_fail(e, KILN_E_IO, "%s: cannot stat: %s", path, strerror(errno));
        close(fd);
        kiln_gguf_close(g);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        kiln_gguf_close(g);
        return kiln_fail(e, KILN_E_IO, "%s: not a regular file", path);
    }
    g->size = (uint64_t)st.st_size;
    if (g->size < 4) {
        close(fd);
        kiln_gguf_close(g);
        return kiln_fail(e, KILN_E_FORMAT,
                         "%s: truncated file: magic needs 4 bytes at offset 0, but the file ends at %llu", path,
                         (unsigned long long)st.st_size);
    }
    void *m = mmap(NULL, (size_t)g->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        int rc = kiln_fail(e, KILN_E_IO, "%s: cannot mmap %llu bytes: %s", path, (unsigned long long)g->size,
                           strerror(errno));
        kiln_gguf_close(g);
        return rc;
    }
    g->map = m;
    int rc = parse(g, e);
    if (rc) {
        kiln_gguf_close(g);
        return rc;
    }
    *out = g;
    return 0;
}

void kiln_gguf_close(kiln_gguf *g)
{
    if (!g)
        return;
    if (g->kv)
        for (int i = 0; i < g->n_kv; i++) {
            free((void *)g->kv[i].key);
            free((void *)g->kv[i].arr_str_off);
        }
    free(g->kv);
    free(g->tensors);
    free(g->kv_hash);
    free(g->tensor_hash);
    if (g->map)
        munmap((void *)g->map, (size_t)g->size);
    free(g->path);
    free(g);
}

/* ---------------------------------------------------------------- accessors */

const char *kiln_gguf_path(const kiln_gguf *g) { return g->path; }
uint32_t kiln_gguf_version(const kiln_gguf *g) { return g->version; }
uint32_t kiln_gguf_alignment(const kiln_gguf *g) { return g->alignment; }
uint64_t kiln_gguf_file_size(const kiln_gguf *g) { return g->size; }
uint64_t kiln_gguf_data_offset(const kiln_gguf *g) { return g->data_offset; }
int kiln_gguf_n_kv(const kiln_gguf *g) { return g->n_kv; }
int kiln_gguf_n_tensors(const kiln_gguf *g) { return g->n_tensors; }

const kiln_gguf_kv *kiln_gguf_kv_at(const kiln_gguf *g, int i)
{
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const kiln_gguf_kv *kiln_gguf_find(const kiln_gguf *g, const char *key)
{
    int i = table_find(g, g->kv_hash, g->kv_mask, kv_name, key, strlen(key));
    return i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const kiln_gguf_tensor *kiln_gguf_tensor_at(const kiln_gguf *g, int i)
{
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const kiln_gguf_tensor *kiln_gguf_tensor_find(const kiln_gguf *g, const char *name)
{
    int i = table_find(g, g->tensor_hash, g->tensor_mask, tensor_name, name, strlen(name));
    return i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

static const kiln_gguf_kv *find_req(const kiln_gguf *g, const char *key, kiln_err *e)
{
    const kiln_gguf_kv *kv = kiln_gguf_find(g, key);
    if (!kv)
        kiln_fail(e, KILN_E_FORMAT, "%s: metadata key '%s' is missing", g->path, key);
    return kv;
}

static int wrong_type(const kiln_gguf *g, const kiln_gguf_kv *kv, const char *want, kiln_err *e)
{
    if (kv->type == KILN_GGUF_ARRAY)
        return kiln_fail(e, KILN_E_FORMAT, "%s: metadata '%s' has type array of %s, expected %s", g->path, kv->key,
                         kiln_gguf_type_name(kv->arr_type), want);
    return kiln_fail(e, KILN_E_FORMAT, "%s: metadata '%s' has type %s, expected %s", g->path, kv->key,
                     kiln_gguf_type_name(kv->type), want);
}

static int is_unsigned(int t) { return t == KILN_GGUF_U8 || t == KILN_GGUF_U16 || t == KILN_GGUF_U32 || t == KILN_GGUF_U64; }
static int is_signed(int t) { return t == KILN_GGUF_I8 || t == KILN_GGUF_I16 || t == KILN_GGUF_I32 || t == KILN_GGUF_I64; }

/* Integer value in [lo, hi] (as int128-free checks). */
static int get_int(const kiln_gguf *g, const char *key, int64_t lo, uint64_t hi, const char *want, int *neg,
                   uint64_t *mag, kiln_err *e)
{
    const kiln_gguf_kv *kv = find_req(g, key, e);
    if (!kv)
        return KILN_E_FORMAT;
    if (is_unsigned(kv->type)) {
        if (kv->v.u > hi)
            return kiln_fail(e, KILN_E_FORMAT, "%s: metadata '%s' = %llu does not fit in %s", g->path, key,
                             (unsigned long long)kv->v.u, want);
        *neg = 0;
        *mag = kv->v.u;
        return 0;
    }
    if (is_signed(kv->type)) {
        if (kv->v.i < lo || (kv->v.i >= 0 && (uint64_t)kv->v.i > hi))
            return kiln_fail(e, KILN_E_FORMAT, "%s: metadata '%s' = %lld does not fit in %s", g->path, key,
                             (long long)kv->v.i, want);
        *neg = kv->v.i < 0;
        *mag = kv->v.i < 0 ? (uint64_t)(-(kv->v.i + 1)) + 1 : (uint64_t)kv->v.i;
        return 0;
    }
    return wrong_type(g, kv, want, e);
}

int kiln_gguf_get_u32(const kiln_gguf *g, const char *key, uint32_t *out, kiln_err *e)
{
    int neg = 0;
    uint64_t m = 0; /* set when get_int returns 0 (gcc -O3 cannot see it) */
    int rc = get_int(g, key, 0, UINT32_MAX, "u32", &neg, &m, e);
    if (!rc)
        *out = (uint32_t)m;
    return rc;
}

int kiln_gguf_get_i32(const kiln_gguf *g, const char *key, int32_t *out, kiln_err *e)
{
    int neg = 0;
    uint64_t m = 0; /* set when get_int returns 0 (gcc -O3 cannot see it) */
    int rc = get_int(g, key, INT32_MIN, INT32_MAX, "i32", &neg, &m, e);
    if (!rc)
        *out = neg ? (int32_t)(-(int64_t)m) : (int32_t)m;
    return rc;
}

int kiln_gguf_get_u64(const kiln_gguf *g, const char *key, uint64_t *out, kiln_err *e)
{
    int neg = 0;
    uint64_t m = 0; /* set when get_int returns 0 (gcc -O3 cannot see it) */
    int rc = get_int(g, key, 0, UINT64_MAX, "u64", &neg, &m, e);
    if (!rc)
        *out = m;
    return rc;
}

int kiln_gguf_get_f32(const kiln_gguf *g, const char *key, float *out, kiln_err *e)
{
    const kiln_gguf_kv *kv = find_req(g, key, e);
    if (!kv)
        return KILN_E_FORMAT;
    if (kv->type != KILN_GGUF_F32 && kv->type != KILN_GGUF_F64)
        return wrong_type(g, kv, "f32", e);
    *out = (float)kv->v.f;
    return 0;
}

int kiln_gguf_get_bool(const kiln_gguf *g, const char *key, int *out, kiln_err *e)
{
    const kiln_gguf_kv *kv = find_req(g, key, e);
    if (!kv)
        return KILN_E_FORMAT;
    if (kv->type != KILN_GGUF_BOOL)
        return wrong_type(g, kv, "bool", e);
    *out = kv->v.b;
    return 0;
}

int kiln_gguf_get_str(const kiln_gguf *g, const char *key, const char **str, size_t *len, kiln_err *e)
{
    const kiln_gguf_kv *kv = find_req(g, key, e);
    if (!kv)
        return KILN_E_FORMAT;
    if (kv->type != KILN_GGUF_STRING)
        return wrong_type(g, kv, "string", e);
    *str = kv->str;
    *len = (size_t)kv->str_len;
    return 0;
}

const kiln_gguf_kv *kiln_gguf_arr(const kiln_gguf *g, const char *key, int *elem_type, uint64_t *count,
                                  kiln_err *e)
{
    const kiln_gguf_kv *kv = find_req(g, key, e);
    if (!kv)
        return NULL;
    if (kv->type != KILN_GGUF_ARRAY) {
        wrong_type(g, kv, "array", e);
        return NULL;
    }
    if (elem_type)
        *elem_type = kv->arr_type;
    if (count)
        *count = kv->arr_count;
    return kv;
}

const char *kiln_gguf_arr_str(const kiln_gguf_kv *kv, uint64_t i, size_t *len)
{
    if (!kv || kv->type != KILN_GGUF_ARRAY || kv->arr_type != KILN_GGUF_STRING || i >= kv->arr_count) {
        if (len)
            *len = 0;
        return NULL;
    }
    const uint8_t *p = kv->arr_data + kv->arr_str_off[i];
    uint64_t n = 0;
    memcpy(&n, p, 8);
    if (len)
        *len = (size_t)n;
    return (const char *)p + 8;
}

float kiln_gguf_arr_f32(const kiln_gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != KILN_GGUF_ARRAY || i >= kv->arr_count)
        return 0.0f;
    if (kv->arr_type == KILN_GGUF_F32) {
        float f;
        memcpy(&f, kv->arr_data + 4 * i, 4);
        return f;
    }
    if (kv->arr_type == KILN_GGUF_F64) {
        double d;
        memcpy(&d, kv->arr_data + 8 * i, 8);
        return (float)d;
    }
    return 0.0f;
}

int64_t kiln_gguf_arr_i64(const kiln_gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != KILN_GGUF_ARRAY || i >= kv->arr_count)
        return 0;
    int t = kv->arr_type;
    if (!is_signed(t) && !is_unsigned(t) && t != KILN_GGUF_BOOL)
        return 0;
    kiln_gguf_kv tmp;
    memset(&tmp, 0, sizeof tmp);
    decode_scalar(t, kv->arr_data + vtype_sizes[t] * i, &tmp);
    if (t == KILN_GGUF_BOOL)
        return tmp.v.b;
    return is_signed(t) ? tmp.v.i : (int64_t)tmp.v.u;
}

int32_t kiln_gguf_arr_i32(const kiln_gguf_kv *kv, uint64_t i)
{
    return (int32_t)kiln_gguf_arr_i64(kv, i);
}
