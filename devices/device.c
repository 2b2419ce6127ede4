/* devices/device.c - backend table, device selection, fingerprint keys.
 * Backend-independent; each backend lives in devices/<name>/. */
#include "devices/device.h"
#include "devices/limits.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln_config.h"

extern const kiln_backend_impl kiln_backend_impl_cpu;
#if KILN_HAVE_OPENCL
extern const kiln_backend_impl kiln_backend_impl_opencl;
#endif
#if KILN_HAVE_VULKAN
extern const kiln_backend_impl kiln_backend_impl_vulkan;
#endif
#if KILN_HAVE_CUDA
extern const kiln_backend_impl kiln_backend_impl_cuda;
#endif

static const char *const backend_names[KILN_BACKEND_COUNT] = {"cpu", "opencl", "vulkan", "cuda"};

const char *kiln_backend_name(kiln_backend_kind k)
{
    return (unsigned)k < KILN_BACKEND_COUNT ? backend_names[k] : "?";
}

int kiln_backend_parse(const char *s, kiln_backend_kind *out)
{
    for (int i = 0; i < KILN_BACKEND_COUNT; i++)
        if (strcmp(s, backend_names[i]) == 0) {
            *out = (kiln_backend_kind)i;
            return 0;
        }
    return KILN_E_INVALID;
}

const kiln_backend_impl *kiln_backend_get(kiln_backend_kind k)
{
    switch (k) {
    case KILN_CPU: return &kiln_backend_impl_cpu;
#if KILN_HAVE_OPENCL
    case KILN_OPENCL: return &kiln_backend_impl_opencl;
#endif
#if KILN_HAVE_VULKAN
    case KILN_VULKAN: return &kiln_backend_impl_vulkan;
#endif
#if KILN_HAVE_CUDA
    case KILN_CUDA: return &kiln_backend_impl_cuda;
#endif
    default: return NULL;
    }
}

void kiln_backend_probe(kiln_backend_kind k, kiln_backend_status *st)
{
    memset(st, 0, sizeof *st);
    st->kind = k;
    const kiln_backend_impl *b = kiln_backend_get(k);
    if (!b) {
        snprintf(st->reason, sizeof st->reason, "not built into this binary (meson option %s=disabled or headers missing)",
                 kiln_backend_name(k));
        return;
    }
    st->compiled = 1;
    b->probe(st);
    if (st->n_devices <= 0)
        st->available = 0;
}

int kiln_device_open(kiln_backend_kind k, int index, kiln_device **out, kiln_err *e)
{
    *out = NULL;
    kiln_backend_status st;
    kiln_backend_probe(k, &st);
    if (!st.available)
        return kiln_fail(e, KILN_E_UNAVAILABLE, "%s backend unavailable: %s", kiln_backend_name(k), st.reason);
    /* a device that is not there is unavailable (exit 3), as a name that
     * matches nothing is: the spec itself was well formed */
    if (index < 0 || index >= st.n_devices)
        return kiln_fail(e, KILN_E_UNAVAILABLE, "%s backend has %d device(s); index %d does not exist", kiln_backend_name(k),
                         st.n_devices, index);
    int rc = kiln_backend_get(k)->open(index, out, e);
    if (rc)
        return kiln_err_wrap(e, "opening %s:%d", kiln_backend_name(k), index);
    /* a limits override (a phone GPU's, for tests and tuning here) lowers
     * what a GPU-style device reports before anyone reads it; workers
     * inherit it. The cpu backend is no GPU: left as it is. */
    if (k != KILN_CPU && (rc = kiln_limits_apply_env(&(*out)->fp, e))) {
        kiln_device_close(*out);
        *out = NULL;
        return kiln_err_wrap(e, "opening %s:%d", kiln_backend_name(k), index);
    }
    return 0;
}

void kiln_device_close(kiln_device *d)
{
    if (d)
        d->ops->destroy(d);
}

int kiln_device_set_threads(kiln_device *d, uint32_t n, kiln_err *e)
{
    if (!d->ops->set_threads)
        return kiln_fail(e, KILN_E_INVALID, "%s:%d (%s) runs its own threads: a thread count applies to the cpu backend",
                         kiln_backend_name(d->backend), d->index, d->fp.name);
    return d->ops->set_threads(d, n, e);
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

int kiln_device_select(const char *spec, kiln_device **out, kiln_err *e)
{
    *out = NULL;
    char name[64];
    snprintf(name, sizeof name, "%s", spec);
    char *colon = strchr(name, ':');
    int index = 0;
    if (colon) {
        *colon = 0;
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (*end || v < 0)
            return kiln_fail(e, KILN_E_INVALID, "device '%s': index after ':' must be a number", spec);
        index = (int)v;
    }
    kiln_backend_kind k;
    if (kiln_backend_parse(name, &k) == 0)
        return kiln_device_open(k, index, out, e);
    /* otherwise: a substring of "backend vendor name" over every device */
    for (int b = 0; b < KILN_BACKEND_COUNT; b++) {
        kiln_backend_status st;
        kiln_backend_probe((kiln_backend_kind)b, &st);
        for (int i = 0; st.available && i < st.n_devices; i++) {
            kiln_device *d;
            if (kiln_device_open((kiln_backend_kind)b, i, &d, NULL))
                continue;
            char full[320];
            snprintf(full, sizeof full, "%s %s %s", kiln_backend_name(d->backend), d->fp.vendor, d->fp.name);
            if (contains_ci(full, spec)) {
                *out = d;
                return 0;
            }
            kiln_device_close(d);
        }
    }
    return kiln_fail(e, KILN_E_UNAVAILABLE,
                     "no device matches '%s' (use a backend name cpu|opencl|vulkan|cuda, backend:index, or part of a "
                     "device name; `kiln devices` lists them)",
                     spec);
}

void kiln_fingerprint_key(const kiln_fingerprint *fp, char *buf, size_t n)
{
    snprintf(buf, n, "%s|%s|%04x:%04x|%s|%s|%s", kiln_backend_name(fp->backend), fp->vendor, fp->vendor_id,
             fp->device_id, fp->name, fp->driver_version, fp->compiler_version);
}

long long kiln_define_get(const kiln_define *defs, int n, const char *name, long long fallback)
{
    for (int i = 0; i < n; i++)
        if (defs[i].name && strcmp(defs[i].name, name) == 0)
            return defs[i].value;
    return fallback;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int kiln_measure_copy_bandwidth(kiln_device *d, double *gbps, kiln_err *e)
{
    /* Twice the LLC in flight, at least 128 MiB, so that the copies stream
     * from memory; at most 1/4 of device memory and 4 GiB. Drivers cap one
     * buffer (Vulkan: maxStorageBufferRange, often 128 MiB), so the total is
     * split into pairs of buffers, halving the pair size on a refused
     * allocation, and one timed pass copies every pair. A single 128 MiB
     * pair made this an L3 measurement on a 300 MiB-L3 Xeon. */
    uint64_t total = d->fp.llc_bytes ? 2 * d->fp.llc_bytes : 128ull << 20;
    if (total < (128ull << 20))
        total = 128ull << 20;
    if (total > (4096ull << 20))
        total = 4096ull << 20;
    if (d->fp.memory_bytes && total > d->fp.memory_bytes / 4)
        total = d->fp.memory_bytes / 4;
    enum { MAX_PAIRS = 32 };
    kiln_buffer *src[MAX_PAIRS] = {0}, *dst[MAX_PAIRS] = {0};
    uint64_t chunk = total / 2, floor_bytes = 16ull << 20;
    int pairs = 0, rc = 0;
    while (chunk >= floor_bytes && (uint64_t)pairs * chunk * 2 < total) {
        chunk &= ~(uint64_t)4095;
        kiln_err ae = {0};
        if (pairs == MAX_PAIRS)
            break;
        if ((src[pairs] = kiln_alloc(d, chunk, &ae)) && (dst[pairs] = kiln_alloc(d, chunk, &ae))) {
            pairs++;
            continue;
        }
        kiln_free(d, src[pairs]);
        src[pairs] = NULL;
        if (ae.code != KILN_E_INVALID && ae.code != KILN_E_NOMEM) {
            rc = kiln_fail(e, ae.code, "%s", ae.msg);
            break;
        }
        /* too large for one buffer, or out of memory: smaller pairs, same data set */
        for (int i = 0; i < pairs; i++) {
            kiln_free(d, src[i]);
            kiln_free(d, dst[i]);
            src[i] = dst[i] = NULL;
        }
        pairs = 0;
        chunk /= 2;
    }
    if (!rc && pairs == 0)
        rc = kiln_fail(e, KILN_E_NOMEM, "no pair of %llu-byte buffers could be allocated",
                       (unsigned long long)floor_bytes);
    for (int i = 0; i < pairs && !rc; i++)
        if ((rc = d->ops->fill(d, src[i], 0x5a, chunk, e)) == 0)
            rc = d->ops->fill(d, dst[i], 0xa5, chunk, e);
    double t[9];
    int n = 0;
    for (int it = 0; it < 2 + 9 && !rc; it++) { /* 2 warm-up passes, 9 timed */
        double pass = 0;
        for (int i = 0; i < pairs && !rc; i++) {
            double ns = 0; /* alternate directions so no pass starts from what the last one wrote */
            rc = d->ops->copy(d, it & 1 ? src[i] : dst[i], it & 1 ? dst[i] : src[i], chunk, &ns, e);
            pass += ns;
        }
        if (!rc && it >= 2)
            t[n++] = pass;
    }
    if (rc) {
        kiln_err_wrap(e, "%s:%d: measuring copy bandwidth (%d pair(s) of %llu bytes)", kiln_backend_name(d->backend),
                      d->index, pairs, (unsigned long long)chunk);
    } else {
        qsort(t, (size_t)n, sizeof t[0], cmp_double);
        double med = t[n / 2];
        /* read + write bytes per ns == GB/s */
        d->fp.copy_gbps = med > 0 ? 2.0 * (double)chunk * pairs / med : 0;
        if (gbps)
            *gbps = d->fp.copy_gbps;
    }
    for (int i = 0; i < pairs; i++) {
        kiln_free(d, src[i]);
        kiln_free(d, dst[i]);
    }
    return rc;
}
