/* devices/read_bandwidth.c - a device's measured read bandwidth: the roof of
 * a memory-bound kernel that reads (a gemv streams its weights once and
 * writes almost nothing), where copy bandwidth, read + write, is the wrong
 * one on memory systems whose writes cost more than reads.
 *
 * The probe is a reduction, one source per backend (read_bw.cl/.comp/.cu and
 * cpu/cpu_read.c), run through the device vtable like any kernel. The data
 * set follows the copy measurement's rule (twice the LLC, at least 128 MiB,
 * at most 4 GiB and a quarter of device memory), split into buffers no larger
 * than the device allows, filled with a pattern whose word sum the host
 * knows: the first pass of each access pattern is checked buffer by buffer,
 * so a probe that skips or repeats data fails instead of looking fast (it
 * caught llvmpipe ending every shader loop after 65535 trips, hence the
 * bound on trips per thread below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/cpu/cpu_internal.h"
#include "devices/device.h"

/* devices/meson.build embeds them (tools/embed_text.c) */
extern const char kiln_read_bw_cl[], kiln_read_bw_comp[], kiln_read_bw_cu[];

int kiln_read_bw_program(kiln_backend_kind k, int layout, uint32_t lanes, uint32_t local, kiln_program_desc *desc,
                         kiln_define *defs, kiln_err *e)
{
    memset(desc, 0, sizeof *desc);
    desc->kernel = "read_bw";
    desc->entry = "read_sum";
    desc->signature = "bbu";
    desc->local[0] = desc->local[1] = desc->local[2] = 1;
    if (k == KILN_CPU) {
        desc->cpu_fn = kiln_cpu_read_sum; /* one pattern: contiguous blocks */
        return 0;
    }
    desc->source = k == KILN_OPENCL ? kiln_read_bw_cl : k == KILN_VULKAN ? kiln_read_bw_comp
                 : k == KILN_CUDA   ? kiln_read_bw_cu : NULL;
    if (!desc->source)
        return kiln_fail(e, KILN_E_UNAVAILABLE, "read probe: no source for backend %d", (int)k);
    if (!local || (local & (local - 1)) || !lanes || (lanes & (lanes - 1)) || lanes > local)
        return kiln_fail(e, KILN_E_INVALID, "read probe: workgroup %u and lanes %u must be powers of two, lanes <= "
                         "workgroup", local, lanes);
    defs[0] = (kiln_define){"CONTIG", layout ? 1 : 0};
    defs[1] = (kiln_define){"LANES", layout ? lanes : 1};
    desc->defines = defs;
    desc->n_defines = 2;
    desc->local[0] = local;
    return 0;
}

/* Word i of buffer b: odd-multiplier hash, so every word differs and a
 * misplaced or repeated vector changes the sum. */
static inline uint32_t pattern(uint64_t i, int b)
{
    return (uint32_t)(i * 2654435761u) ^ ((uint32_t)b * 0x9e3779b9u);
}

/* Fills buf with pattern b through a host staging buffer; *sum: its word sum. */
static int upload(kiln_device *d, kiln_buffer *buf, uint64_t bytes, int b, uint32_t *sum, kiln_err *e)
{
    size_t piece = 16u << 20;
    uint32_t *h = malloc(piece);
    if (!h)
        return kiln_fail(e, KILN_E_NOMEM, "read probe: no host memory for a %zu-byte staging buffer", piece);
    uint32_t acc = 0;
    int rc = 0;
    for (uint64_t off = 0; off < bytes && !rc; off += piece) {
        size_t n = bytes - off < piece ? (size_t)(bytes - off) : piece;
        uint64_t w0 = off / 4;
        for (size_t j = 0; j < n / 4; j++)
            acc += h[j] = pattern(w0 + j, b);
        rc = kiln_write(d, buf, (size_t)off, h, n, e);
    }
    free(h);
    *sum = acc;
    return rc;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum {
    MAX_BUFS = 64,
    SCREEN = 2,          /* timed passes per pattern when choosing (after the checked one) */
    PASSES = 9,          /* timed passes of the chosen pattern: the median is the figure */
    MAX_TRIPS = 16384,   /* loop trips per thread (llvmpipe ends loops after 65535) */
};

typedef struct probe {
    kiln_device *d;
    kiln_buffer *buf[MAX_BUFS], *out;
    uint32_t expect[MAX_BUFS];
    int n_bufs;
    uint64_t chunk;       /* bytes per buffer */
    uint32_t groups;      /* workgroups per launch */
    uint32_t local;
} probe;

/* One pass over every buffer; *ns: the sum of the launches' device times.
 * check: compare each buffer's sum with the host's. */
static int pass(probe *p, kiln_program *prog, int check, uint32_t *sums, double *ns, const char *what, kiln_err *e)
{
    kiln_device *d = p->d;
    uint32_t grid[3] = {p->groups, 1, 1};
    *ns = 0;
    for (int i = 0; i < p->n_bufs; i++) {
        kiln_arg a[3] = {{.kind = KILN_ARG_BUF, .buf = p->buf[i]}, {.kind = KILN_ARG_BUF, .buf = p->out},
                         {.kind = KILN_ARG_U32, .u32 = (uint32_t)(p->chunk / 16)}};
        double t = 0;
        int rc = d->ops->launch(d, prog, grid, a, 3, &t, e);
        if (rc)
            return rc;
        *ns += t;
        if (!check)
            continue;
        if ((rc = kiln_read(d, p->out, 0, sums, sizeof *sums * p->groups, e)))
            return rc;
        uint32_t got = 0;
        for (uint32_t g = 0; g < p->groups; g++)
            got += sums[g];
        if (got != p->expect[i])
            return kiln_fail(e, KILN_E_VERIFY, "read probe (%s, %u x %u) summed buffer %d to 0x%08x, the host to "
                             "0x%08x: it skipped or repeated data", what, p->groups, p->local, i, got, p->expect[i]);
    }
    return 0;
}

/* Buffers of at most the device's limit holding `total` bytes, halving on a refusal. */
static int alloc_set(probe *p, uint64_t total, kiln_err *e)
{
    kiln_device *d = p->d;
    uint64_t chunk = total, floor_bytes = 16ull << 20;
    if (d->fp.max_buffer_bytes && chunk > d->fp.max_buffer_bytes)
        chunk = d->fp.max_buffer_bytes;
    if (chunk > (4095ull << 20)) /* n counts 16-byte vectors in a u32 */
        chunk = 4095ull << 20;
    for (;;) {
        chunk &= ~(uint64_t)4095;
        kiln_err ae = {0};
        int ok = 1;
        while (ok && (uint64_t)p->n_bufs * chunk < total && p->n_bufs < MAX_BUFS)
            if ((p->buf[p->n_bufs] = kiln_alloc(d, chunk, &ae)))
                p->n_bufs++;
            else
                ok = 0;
        if (ok) {
            p->chunk = chunk;
            return 0;
        }
        for (int i = 0; i < p->n_bufs; i++)
            kiln_free(d, p->buf[i]);
        p->n_bufs = 0;
        if (ae.code != KILN_E_INVALID && ae.code != KILN_E_NOMEM)
            return kiln_fail(e, ae.code, "%s", ae.msg);
        if ((chunk /= 2) < floor_bytes)
            return kiln_fail(e, KILN_E_NOMEM, "read probe: not even %llu-byte buffers could be allocated (%s)",
                             (unsigned long long)floor_bytes, ae.msg);
    }
}

static uint32_t pow2_floor(uint32_t x)
{
    uint32_t p = 1;
    while (p <= x / 2 && p < (1u << 30))
        p *= 2;
    return p;
}

/* Workgroup size and count: the cpu backend's workgroups are blocks of 1..4
 * MiB, several per thread so that a slowed thread takes fewer; elsewhere
 * 256-wide groups, 8 per compute unit (a full GPU SM, a few per CPU core),
 * more where a thread would otherwise loop more than MAX_TRIPS times. */
static void geometry(probe *p)
{
    kiln_device *d = p->d;
    uint32_t n_vec = (uint32_t)(p->chunk / 16), cu = d->fp.compute_units ? d->fp.compute_units : 1;
    if (d->backend == KILN_CPU) {
        p->local = 1;
        p->groups = cu * 16 > 64 ? cu * 16 : 64;
    } else {
        uint32_t maxwg = d->fp.max_workgroup ? d->fp.max_workgroup : 256;
        p->local = pow2_floor(maxwg < 256 ? maxwg : 256);
        if (d->fp.local_mem_bytes && p->local * 4 > d->fp.local_mem_bytes)
            p->local = pow2_floor((uint32_t)(d->fp.local_mem_bytes / 4));
        p->groups = cu * 8;
        uint64_t need = ((uint64_t)n_vec + (uint64_t)p->local * MAX_TRIPS - 1) / ((uint64_t)p->local * MAX_TRIPS);
        if (p->groups < need)
            p->groups = (uint32_t)need;
    }
    uint32_t most = n_vec / (p->local * 4); /* at least 4 vectors per thread */
    if (p->groups > most)
        p->groups = most ? most : 1;
}

static void describe(int layout, uint32_t lanes, char *buf, size_t n)
{
    if (!layout)
        snprintf(buf, n, "grid-strided");
    else
        snprintf(buf, n, "runs of %u lane%s", lanes, lanes == 1 ? "" : "s");
}

int kiln_measure_read_bandwidth(kiln_device *d, double *gbps, char *how, size_t how_n, kiln_err *e)
{
    kiln_err local = {0}; /* the code of a failed alloc or build, also for callers that pass no error */
    if (!e)
        e = &local;
    uint64_t total = d->fp.llc_bytes ? 2 * d->fp.llc_bytes : 128ull << 20;
    if (total < (128ull << 20))
        total = 128ull << 20;
    if (total > (4096ull << 20))
        total = 4096ull << 20;
    if (d->fp.memory_bytes && total > d->fp.memory_bytes / 4)
        total = d->fp.memory_bytes / 4;
    probe p = {.d = d};
    int rc = alloc_set(&p, total, e);
    if (!rc)
        geometry(&p);
    for (int i = 0; i < p.n_bufs && !rc; i++)
        rc = upload(d, p.buf[i], p.chunk, i, &p.expect[i], e);
    uint32_t *sums = rc ? NULL : malloc(sizeof *sums * p.groups);
    if (!rc && (!sums || !(p.out = kiln_alloc(d, sizeof *sums * p.groups, e))))
        rc = sums ? (e->code ? e->code : KILN_E_NOMEM) : kiln_fail(e, KILN_E_NOMEM, "read probe: no memory");
    /* the access patterns: on the cpu backend its one; elsewhere grid-strided,
     * a run per thread, and a run per subgroup where there are subgroups */
    struct { int layout; uint32_t lanes; } pats[3] = {{0, 1}, {1, 1}, {1, d->fp.subgroup_size}};
    int n_pats = d->backend == KILN_CPU ? 1 : d->fp.subgroup_size > 1 && d->fp.subgroup_size <= p.local &&
                 !(d->fp.subgroup_size & (d->fp.subgroup_size - 1)) ? 3 : 2;
    kiln_program *progs[3] = {0};
    double screen[3] = {0}, t[PASSES];
    int best = 0;
    char what[48];
    for (int v = 0; v < n_pats && !rc; v++) {
        kiln_program_desc desc;
        kiln_define defs[2];
        describe(pats[v].layout, pats[v].lanes, what, sizeof what);
        if ((rc = kiln_read_bw_program(d->backend, pats[v].layout, pats[v].lanes, p.local, &desc, defs, e)))
            break;
        if (!(progs[v] = d->ops->build(d, &desc, e))) {
            rc = e->code ? e->code : KILN_E_COMPILE;
            break;
        }
        double ns;
        if ((rc = pass(&p, progs[v], 1, sums, &ns, what, e)))
            break;
        for (int s = 0; s < SCREEN && !rc; s++)
            if (!(rc = pass(&p, progs[v], 0, sums, &ns, what, e)) && (!screen[v] || ns < screen[v]))
                screen[v] = ns;
        if (!rc && screen[v] < screen[best])
            best = v;
    }
    for (int i = 0; i < PASSES && !rc; i++)
        rc = pass(&p, progs[best], 0, sums, &t[i], what, e);
    for (int v = 0; v < n_pats; v++)
        if (progs[v])
            d->ops->release(d, progs[v]);
    if (rc) {
        kiln_err_wrap(e, "%s:%d: measuring read bandwidth (%d buffer(s) of %llu bytes)", kiln_backend_name(d->backend),
                      d->index, p.n_bufs, (unsigned long long)p.chunk);
    } else {
        qsort(t, PASSES, sizeof t[0], cmp_double);
        d->fp.read_gbps = t[PASSES / 2] > 0 ? (double)p.chunk * p.n_bufs / t[PASSES / 2] : 0; /* bytes/ns == GB/s */
        if (gbps)
            *gbps = d->fp.read_gbps;
        if (how) {
            if (d->backend == KILN_CPU)
                snprintf(what, sizeof what, "a block per task");
            else
                describe(pats[best].layout, pats[best].lanes, what, sizeof what);
            snprintf(how, how_n, "%s, %u x %u over %d x %.0f MiB", what, p.groups, p.local, p.n_bufs,
                     (double)p.chunk / (1 << 20));
        }
    }
    free(sums);
    kiln_free(d, p.out);
    for (int i = 0; i < p.n_bufs; i++)
        kiln_free(d, p.buf[i]);
    return rc;
}
