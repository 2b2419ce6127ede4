/* devices/cpu/cpu_device.c - the CPU backend: host memory, a persistent
 * worker pool, kernels as C functions (kiln_cpu_fn), monotonic-clock timing.
 *
 * A launch cuts the flattened grid into chunks, about four per thread, that
 * the workers and the calling thread claim from a shared counter until none
 * are left, and returns when all are done, so launches are synchronous and
 * finish() has nothing to wait for. Claiming (rather than a fixed share per
 * thread) matters on shared cores: a thread slowed by a neighbour takes
 * fewer chunks instead of holding the whole launch up. The pool belongs to
 * the device; two CPU devices have two pools.
 *
 * Waking: a decode step is hundreds of short launches a few microseconds
 * apart, and a futex wake-up per launch and thread cost ~15% of SmolLM2's
 * decode (perf: futex/cond wake paths). Workers and the caller therefore
 * spin (with pause) for up to spin_ns on the launch counter before they
 * sleep on a condition variable; a host gap longer than that (sampling,
 * tokenizing, an idle server) costs one wake-up, not a core.
 * $KILN_CPU_SPIN_US sets the window (default 100 us, 0 = always sleep). */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "devices/cpu/cpu_internal.h"
#include "devices/cpu/cpu_isa.h"
#include "devices/device.h"
#include "util/clock.h"
#include "util/num.h"

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
    uint32_t n_threads;            /* workers besides the caller */
    uint32_t cap;                  /* kiln_device_set_threads: parts a launch may use (0 = all) */
    unsigned isa;                  /* KILN_ISA_* after $KILN_CPU_ISA */
    uint64_t spin_ns;              /* how long a waiter spins at most before it sleeps */
    int huge_pages;                /* advise big buffers as huge pages ($KILN_CPU_HUGEPAGES=0: no) */
    uint64_t caller_window;        /* the launching thread's current spin window (spin_until) */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    _Atomic uint64_t state;        /* launch generation << 17 | CLOSED | workers inside it (see below) */
    _Atomic int sleepers;          /* workers blocked on go */
    _Atomic int caller_sleeping;   /* the launching thread is blocked on done */
    _Atomic int quit;
    job cur;                       /* stable while the launch is open or has workers inside */
    _Atomic uint64_t next;         /* the current launch's claim counter */
} cpu_impl;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

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

/* A launch's state word. Workers join the current launch (CAS the count up)
 * only while it is open; the caller closes it once every chunk is claimed
 * and then waits only for the workers inside. A worker that was descheduled
 * when the launch began (a busy neighbour on a 2-core box) finds it closed
 * and goes back to waiting: it no longer holds every launch up until it is
 * scheduled again, which made two threads slower than one under load
 * (SmolLM2 decode 65 vs 102 tok/s at load 2.6). */
#define ST_ACTIVE 0xFFFFull
#define ST_CLOSED (1ull << 16)
#define ST_GEN_SHIFT 17

static int new_work(cpu_impl *c, uint64_t seen)
{
    return atomic_load(&c->state) >> ST_GEN_SHIFT != seen || atomic_load_explicit(&c->quit, memory_order_relaxed);
}

static int all_done(cpu_impl *c, uint64_t unused)
{
    (void)unused;
    return (atomic_load(&c->state) & ST_ACTIVE) == 0;
}

/* Spins up to *window ns for cond(c, arg) to hold; 1 if it did. The window
 * adapts like an adaptive mutex: a spin that times out halves it (down to
 * 1/64 of spin_ns), one that succeeds widens it again. When the cores are
 * oversubscribed (other processes, a neighbour's build) the thread we wait
 * for is often not running and a full window per launch would cost more
 * than the wake-up it saves; after the first few hundred pauses the spin
 * also yields the core to whatever else is runnable. */
static inline int spin_until(cpu_impl *c, uint64_t *window, int (*cond)(cpu_impl *, uint64_t), uint64_t arg)
{
    uint64_t t0 = 0;
    for (uint32_t i = 0; *window; i++) {
        if (cond(c, arg)) {
            uint64_t w = *window + c->spin_ns / 8;
            *window = w < c->spin_ns ? w : c->spin_ns;
            return 1;
        }
        if ((i & 63) == 0) {
            uint64_t now = kiln_now_ns();
            if (!t0) {
                t0 = now;
            } else if (now - t0 > *window) {
                uint64_t w = *window / 2;
                *window = w > c->spin_ns / 64 ? w : c->spin_ns / 64;
                return 0;
            }
        }
        if (i < 256)
            cpu_relax();
        else
            sched_yield();
    }
    return 0;
}

/* Waits for a launch newer than generation `seen` (or quit); returns its
 * generation. The sleepers count and the state word are both sequentially
 * consistent: a launcher either sees this worker asleep and signals under
 * the mutex, or this worker sees the new generation before it waits. */
static uint64_t wait_for_work(cpu_impl *c, uint64_t *window, uint64_t seen)
{
    if (!spin_until(c, window, new_work, seen)) {
        pthread_mutex_lock(&c->mu);
        atomic_fetch_add(&c->sleepers, 1);
        while (atomic_load(&c->state) >> ST_GEN_SHIFT == seen && !atomic_load(&c->quit))
            pthread_cond_wait(&c->go, &c->mu);
        atomic_fetch_sub(&c->sleepers, 1);
        pthread_mutex_unlock(&c->mu);
    }
    return atomic_load(&c->state) >> ST_GEN_SHIFT;
}

/* Joins launch gen if it is still open; 1 if joined. */
static int join(cpu_impl *c, uint64_t gen)
{
    uint64_t s = atomic_load(&c->state);
    while (s >> ST_GEN_SHIFT == gen && !(s & ST_CLOSED))
        if (atomic_compare_exchange_weak(&c->state, &s, s + 1))
            return 1;
    return 0;
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
    uint64_t seen = 0, window = c->spin_ns;
    for (;;) {
        seen = wait_for_work(c, &window, seen);
        if (atomic_load(&c->quit))
            break;
        if (!join(c, seen))
            continue; /* closed already: the caller did the work */
        job j = c->cur;
        if (wa.index + 1 < j.n_parts)
            run_part(&j, wa.index + 1);
        uint64_t s = atomic_fetch_sub(&c->state, 1) - 1;
        if ((s & ST_ACTIVE) == 0 && (s & ST_CLOSED) && atomic_load(&c->caller_sleeping)) {
            pthread_mutex_lock(&c->mu);
            pthread_cond_signal(&c->done);
            pthread_mutex_unlock(&c->mu);
        }
    }
    return NULL;
}

static void cpu_destroy(kiln_device *d)
{
    cpu_impl *c = d->impl;
    if (c) {
        pthread_mutex_lock(&c->mu);
        atomic_store(&c->quit, 1);
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

/* Buffers of 2 MiB and more (weights, KV pages, the bandwidth probes) are
 * 2 MiB-aligned and advised as transparent huge pages: a decode step streams
 * every weight once, and with 4 KiB pages that is a TLB miss per 4 KiB
 * (200k per token of a 1B model). Where THP is off this does nothing. */
#define HUGE_BYTES ((size_t)2 << 20)

static kiln_buffer *cpu_alloc(kiln_device *d, size_t bytes, kiln_err *e)
{
    cpu_impl *c = d->impl;
    kiln_buffer *b = calloc(1, sizeof *b);
    size_t n = bytes ? (bytes + 63) & ~(size_t)63 : 64;
    int huge = c->huge_pages && n >= HUGE_BYTES;
    if (huge)
        n = (n + HUGE_BYTES - 1) & ~(HUGE_BYTES - 1);
    if (!b || posix_memalign(&b->ptr, huge ? HUGE_BYTES : 64, n)) {
        free(b);
        kiln_fail(e, KILN_E_NOMEM, "cpu:%d: cannot allocate %zu bytes", d->index, bytes);
        return NULL;
    }
#ifdef MADV_HUGEPAGE
    if (huge)
        (void)madvise(b->ptr, n, MADV_HUGEPAGE); /* advice: failure only means small pages */
#endif
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
    if (c->cap && c->cap < parts)
        parts = c->cap;
    if (p->threads && p->threads < parts)
        parts = p->threads;
    if (parts > j.n_wg)
        parts = j.n_wg ? j.n_wg : 1;
    j.n_parts = parts;
    j.l.n_threads = parts;
    j.chunk = parts > 1 ? j.n_wg / (4 * parts) : j.n_wg;
    if (j.chunk < 1)
        j.chunk = 1;
    j.l.isa = c->isa;
    atomic_store_explicit(&c->next, 0, memory_order_relaxed);
    j.next = &c->next;
    uint64_t t0 = kiln_now_ns();
    if (parts > 1) {
        c->cur = j;
        uint64_t gen = (atomic_load(&c->state) >> ST_GEN_SHIFT) + 1;
        atomic_store(&c->state, gen << ST_GEN_SHIFT); /* open, nobody inside; publishes cur */
        if (atomic_load(&c->sleepers)) {
            pthread_mutex_lock(&c->mu);
            pthread_cond_broadcast(&c->go);
            pthread_mutex_unlock(&c->mu);
        }
    }
    run_part(&j, 0);
    /* every chunk is claimed: close, then wait for the workers inside */
    if (parts > 1 && (atomic_fetch_or(&c->state, ST_CLOSED) & ST_ACTIVE) &&
        !spin_until(c, &c->caller_window, all_done, 0)) {
        pthread_mutex_lock(&c->mu);
        atomic_store(&c->caller_sleeping, 1);
        while (atomic_load(&c->state) & ST_ACTIVE)
            pthread_cond_wait(&c->done, &c->mu);
        atomic_store(&c->caller_sleeping, 0);
        pthread_mutex_unlock(&c->mu);
    }
    if (ns)
        *ns = (double)(kiln_now_ns() - t0);
    return 0;
}

/* Fewer parts per launch; the pool keeps its threads (idle ones only wake
 * and return), so a cap can change between launches. */
static int cpu_set_threads(kiln_device *d, uint32_t n, kiln_err *e)
{
    (void)e;
    cpu_impl *c = d->impl;
    c->cap = n;
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
    .set_threads = cpu_set_threads,
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
    const char *force = getenv("KILN_CPU_ISA");
    if (kiln_cpu_isa_cap(kiln_cpu_isa_detect(), force, &c->isa)) {
        free(d);
        free(c);
        return kiln_fail(e, KILN_E_INVALID,
                         "cpu: KILN_CPU_ISA=%s is not one of scalar, avx2, avx-vnni, avx512, avx512-vnni, neon, "
                         "dotprod, i8mm, native", force);
    }
    /* KILN_CPU_SPIN_US (default 100), KILN_CPU_HUGEPAGES 0|1 (default 1) and
     * KILN_CPU_THREADS (caps the pool: benchmarks on shared machines) */
    long long spin_us, huge, cap;
    int rc;
    if ((rc = kiln_env_int("KILN_CPU_SPIN_US", 0, 10000000, 100, &spin_us, e)) ||
        (rc = kiln_env_int("KILN_CPU_HUGEPAGES", 0, 1, 1, &huge, e)) ||
        (rc = kiln_env_int("KILN_CPU_THREADS", 1, 65536, (long long)d->fp.compute_units, &cap, e))) {
        free(d);
        free(c);
        return rc;
    }
    c->spin_ns = (uint64_t)spin_us * 1000;
    c->huge_pages = (int)huge;
    c->caller_window = c->spin_ns;
    long n = (long)d->fp.compute_units;
    if (cap < n)
        n = (long)cap;
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
