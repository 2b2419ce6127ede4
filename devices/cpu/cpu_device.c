/* devices/cpu/cpu_device.c - the CPU backend: host memory, a persistent
 * worker pool, kernels as C functions (kiln_cpu_fn), monotonic-clock timing.
 *
 * A launch cuts the flattened grid into chunks, about four per thread, that
 * the workers and the calling thread claim from a shared counter until none
 * are left, and returns when all are done, so launches are synchronous and
 * finish() has nothing to wait for. Claiming (rather than a fixed share per
 * thread) matters on shared cores: a thread slowed by a neighbour takes
 * fewer chunks instead of holding the whole launch up. The pool belongs to
 * the device; two CPU devices have two pools. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/cpu/cpu_internal.h"
#include "devices/device.h"
#include "util/clock.h"

struct kiln_buffer {
    void *ptr;
    size_t size;
};

struct kiln_program {
    char kernel[64], entry[64];
    kiln_cpu_fn fn;
    char sig[KILN_MAX_ARGS + 1];
    kiln_define defines[KILN_MAX_DEFINES];
    char names[KILN_MAX_DEFINES][48];
    int n_defines;
    uint32_t local[3];
    uint32_t threads;
};

typedef struct job {
    const kiln_program *p;
    kiln_cpu_launch l;
    uint32_t n_wg, n_parts, chunk; /* workgroups per claim */
    _Atomic uint64_t *next;        /* first unclaimed workgroup */
} job;

typedef struct cpu_impl {
    pthread_t *threads;
    uint32_t n_threads; /* workers besides the caller */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    uint64_t generation;
    uint32_t pending;
    int quit;
    job cur;
    _Atomic uint64_t next; /* the current launch's claim counter */
} cpu_impl;

static void run_part(const job *j, uint32_t part)
{
    kiln_cpu_launch l = j->l;
    l.thread = part;
    for (;;) {
        uint64_t begin = atomic_fetch_add_explicit(j->next, j->chunk, memory_order_relaxed);
        if (begin >= j->n_wg)
            return;
        uint64_t end = begin + j->chunk < j->n_wg ? begin + j->chunk : j->n_wg;
        j->p->fn(&l, (uint32_t)begin, (uint32_t)end);
    }
}

typedef struct worker_arg {
    cpu_impl *impl;
    uint32_t index;
} worker_arg;

static void *worker(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    cpu_impl *c = wa.impl;
    uint64_t seen = 0;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        while (!c->quit && c->generation == seen)
            pthread_cond_wait(&c->go, &c->mu);
        if (c->quit)
            break;
        seen = c->generation;
        job j = c->cur;
        pthread_mutex_unlock(&c->mu);
        if (wa.index + 1 < j.n_parts)
            run_part(&j, wa.index + 1);
        pthread_mutex_lock(&c->mu);
        if (--c->pending == 0)
            pthread_cond_signal(&c->done);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void cpu_destroy(kiln_device *d)
{
    cpu_impl *c = d->impl;
    if (c) {
        pthread_mutex_lock(&c->mu);
        c->quit = 1;
        pthread_cond_broadcast(&c->go);
        pthread_mutex_unlock(&c->mu);
        for (uint32_t i = 0; i < c->n_threads; i++)
            pthread_join(c->threads[i], NULL);
        pthread_mutex_destroy(&c->mu);
        pthread_cond_destroy(&c->go);
        pthread_cond_destroy(&c->done);
        free(c->threads);
        free(c);
    }
    free(d);
}

static kiln_buffer *cpu_alloc(kiln_device *d, size_t bytes, kiln_err *e)
{
    kiln_buffer *b = calloc(1, sizeof *b);
    size_t n = bytes ? (bytes + 63) & ~(size_t)63 : 64;
    if (!b || posix_memalign(&b->ptr, 64, n)) {
        free(b);
        kiln_fail(e, KILN_E_NOMEM, "cpu:%d: cannot allocate %zu bytes", d->index, bytes);
        return NULL;
    }
    b->size = bytes;
    return b;
}

static void cpu_free(kiln_device *d, kiln_buffer *b)
{
    (void)d;
    if (b) {
        free(b->ptr);
        free(b);
    }
}

static int range_ok(kiln_device *d, const kiln_buffer *b, size_t off, size_t n, const char *what, kiln_err *e)
{
    if (!b || off > b->size || n > b->size - off)
        return kiln_fail(e, KILN_E_INVALID, "cpu:%d: %s of %zu bytes at offset %zu outside a buffer of %zu bytes",
                         d->index, what, n, off, b ? b->size : 0);
    return 0;
}

static int cpu_write(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e)
{
    int rc = range_ok(d, b, off, n, "write", e);
    if (!rc && n)
        memcpy((char *)b->ptr + off, src, n);
    return rc;
}

static void *cpu_host_ptr(kiln_device *d, kiln_buffer *b)
{
    (void)d;
    return b ? b->ptr : NULL;
}

static int cpu_read(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e)
{
    int rc = range_ok(d, b, off, n, "read", e);
    if (!rc && n)
        memcpy(dst, (char *)b->ptr + off, n);
    return rc;
}

static int cpu_fill(kiln_device *d, kiln_buffer *b, uint8_t byte, size_t n, kiln_err *e)
{
    int rc = range_ok(d, b, 0, n, "fill", e);
    if (!rc)
        memset(b->ptr, byte, n);
    return rc;
}

/* A copy split over the pool, so the measured bandwidth is the machine's,
 * not one core's. */
static void copy_fn(const kiln_cpu_launch *l, uint32_t begin, uint32_t end)
{
    size_t n = (size_t)l->arg[2].u32 * 4096;
    size_t chunk = (n + l->grid[0] - 1) / l->grid[0];
    for (uint32_t i = begin; i < end; i++) {
        size_t off = (size_t)i * chunk;
        if (off >= n)
            break;
        size_t len = off + chunk > n ? n - off : chunk;
        memcpy((char *)l->ptr[0] + off, (const char *)l->ptr[1] + off, len);
    }
}

static int cpu_launch(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args,
                      double *ns, kiln_err *e);

static int cpu_copy(kiln_device *d, kiln_buffer *dst, kiln_buffer *src, size_t n, double *ns, kiln_err *e)
{
    int rc = range_ok(d, dst, 0, n, "copy destination", e);
    if (rc || (rc = range_ok(d, src, 0, n, "copy source", e)))
        return rc;
    if (n % 4096) { /* small or odd: one memcpy */
        uint64_t t0 = kiln_now_ns();
        memmove(dst->ptr, src->ptr, n);
        if (ns)
            *ns = (double)(kiln_now_ns() - t0);
        return 0;
    }
    kiln_program prog = {.fn = copy_fn, .sig = "bbu", .local = {1, 1, 1}};
    snprintf(prog.kernel, sizeof prog.kernel, "copy");
    cpu_impl *c = d->impl;
    uint32_t parts = c->n_threads + 1;
    uint32_t g[3] = {parts * 4, 1, 1};
    kiln_arg a[3] = {{.kind = KILN_ARG_BUF, .buf = dst}, {.kind = KILN_ARG_BUF, .buf = src},
                     {.kind = KILN_ARG_U32, .u32 = (uint32_t)(n / 4096)}};
    return cpu_launch(d, &prog, g, a, 3, ns, e);
}

static kiln_program *cpu_build(kiln_device *d, const kiln_program_desc *desc, kiln_err *e)
{
    if (!desc->cpu_fn) {
        kiln_fail(e, KILN_E_COMPILE, "cpu:%d: kernel '%s' entry '%s' has no cpu implementation", d->index,
                  desc->kernel ? desc->kernel : "?", desc->entry ? desc->entry : "?");
        return NULL;
    }
    if (!desc->signature || strlen(desc->signature) > KILN_MAX_ARGS || desc->n_defines > KILN_MAX_DEFINES) {
        kiln_fail(e, KILN_E_INVALID, "cpu:%d: kernel '%s': bad signature or too many defines", d->index,
                  desc->kernel ? desc->kernel : "?");
        return NULL;
    }
    kiln_program *p = calloc(1, sizeof *p);
    if (!p) {
        kiln_fail(e, KILN_E_NOMEM, "cpu:%d: no memory for a program", d->index);
        return NULL;
    }
    snprintf(p->kernel, sizeof p->kernel, "%s", desc->kernel ? desc->kernel : "?");
    snprintf(p->entry, sizeof p->entry, "%s", desc->entry ? desc->entry : "?");
    snprintf(p->sig, sizeof p->sig, "%s", desc->signature);
    p->fn = desc->cpu_fn;
    for (int i = 0; i < desc->n_defines; i++) {
        snprintf(p->names[i], sizeof p->names[i], "%s", desc->defines[i].name);
        p->defines[i] = (kiln_define){p->names[i], desc->defines[i].value};
    }
    p->n_defines = desc->n_defines;
    for (int i = 0; i < 3; i++)
        p->local[i] = desc->local[i] ? desc->local[i] : 1;
    p->threads = desc->cpu_threads;
    return p;
}

static void cpu_release(kiln_device *d, kiln_program *p)
{
    (void)d;
    free(p);
}

static int cpu_launch(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args,
                      double *ns, kiln_err *e)
{
    cpu_impl *c = d->impl;
    if ((size_t)n_args != strlen(p->sig))
        return kiln_fail(e, KILN_E_INVALID, "cpu:%d: %s/%s: %d args for signature '%s'", d->index, p->kernel,
                         p->entry, n_args, p->sig);
    job j = {.p = p};
    for (int i = 0; i < n_args; i++) {
        if ((char)args[i].kind != p->sig[i])
            return kiln_fail(e, KILN_E_INVALID, "cpu:%d: %s/%s: arg %d is '%c', signature says '%c'", d->index,
                             p->kernel, p->entry, i, (char)args[i].kind, p->sig[i]);
        if (args[i].kind == KILN_ARG_BUF) {
            if (!args[i].buf)
                return kiln_fail(e, KILN_E_INVALID, "cpu:%d: %s/%s: buffer arg %d is NULL", d->index, p->kernel,
                                 p->entry, i);
            j.l.ptr[i] = (char *)args[i].buf->ptr + args[i].off;
        }
        j.l.arg[i] = args[i];
    }
    j.l.n_args = n_args;
    j.l.defines = p->defines;
    j.l.n_defines = p->n_defines;
    memcpy(j.l.grid, grid, sizeof j.l.grid);
    memcpy(j.l.local, p->local, sizeof j.l.local);
    uint64_t n_wg = (uint64_t)grid[0] * grid[1] * grid[2];
    if (n_wg > UINT32_MAX)
        return kiln_fail(e, KILN_E_INVALID, "cpu:%d: %s: grid of %llu workgroups is too large", d->index, p->kernel,
                         (unsigned long long)n_wg);
    j.n_wg = (uint32_t)n_wg;
    uint32_t parts = c->n_threads + 1;
    if (p->threads && p->threads < parts)
        parts = p->threads;
    if (parts > j.n_wg)
        parts = j.n_wg ? j.n_wg : 1;
    j.n_parts = parts;
    j.l.n_threads = parts;
    j.chunk = parts > 1 ? j.n_wg / (4 * parts) : j.n_wg;
    if (j.chunk < 1)
        j.chunk = 1;
    atomic_store_explicit(&c->next, 0, memory_order_relaxed);
    j.next = &c->next;
    uint64_t t0 = kiln_now_ns();
    if (parts > 1) {
        pthread_mutex_lock(&c->mu);
        c->cur = j;
        c->pending = c->n_threads;
        c->generation++;
        pthread_cond_broadcast(&c->go);
        pthread_mutex_unlock(&c->mu);
    }
    run_part(&j, 0);
    if (parts > 1) {
        pthread_mutex_lock(&c->mu);
        while (c->pending)
            pthread_cond_wait(&c->done, &c->mu);
        pthread_mutex_unlock(&c->mu);
    }
    if (ns)
        *ns = (double)(kiln_now_ns() - t0);
    return 0;
}

static int cpu_finish(kiln_device *d, kiln_err *e)
{
    (void)d;
    (void)e;
    return 0; /* launches are synchronous */
}

static const kiln_device_ops cpu_ops = {
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .write = cpu_write,
    .read = cpu_read,
    .fill = cpu_fill,
    .copy = cpu_copy,
    .build = cpu_build,
    .release = cpu_release,
    .launch = cpu_launch,
    .finish = cpu_finish,
    .host_ptr = cpu_host_ptr,
};

static int probe(kiln_backend_status *st)
{
    st->available = 1;
    st->n_devices = 1;
    return 0;
}

static int open_dev(int index, kiln_device **out, kiln_err *e)
{
    *out = NULL;
    if (index != 0)
        return kiln_fail(e, KILN_E_INVALID, "cpu backend has one device (cpu:0)");
    kiln_device *d = calloc(1, sizeof *d);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!d || !c) {
        free(d);
        free(c);
        return kiln_fail(e, KILN_E_NOMEM, "cpu: no memory");
    }
    d->ops = &cpu_ops;
    d->backend = KILN_CPU;
    d->impl = c;
    kiln_cpu_fingerprint(&d->fp);
    /* KILN_CPU_THREADS caps the pool (benchmarks on shared machines). */
    long n = (long)d->fp.compute_units;
    const char *cap = getenv("KILN_CPU_THREADS");
    if (cap && atol(cap) > 0 && atol(cap) < n)
        n = atol(cap);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->go, NULL);
    pthread_cond_init(&c->done, NULL);
    c->threads = calloc((size_t)(n > 1 ? n - 1 : 1), sizeof *c->threads);
    if (!c->threads) {
        cpu_destroy(d);
        return kiln_fail(e, KILN_E_NOMEM, "cpu: no memory");
    }
    for (long i = 0; i + 1 < n; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa || pthread_create(&c->threads[i], NULL, worker, wa ? (wa->impl = c, wa->index = (uint32_t)i, wa)
                                                                    : NULL)) {
            free(wa);
            cpu_destroy(d);
            return kiln_fail(e, KILN_E_DEVICE, "cpu: cannot start worker thread %ld", i);
        }
        c->n_threads++;
    }
    *out = d;
    return 0;
}

const kiln_backend_impl kiln_backend_impl_cpu = {.kind = KILN_CPU, .probe = probe, .open = open_dev};
