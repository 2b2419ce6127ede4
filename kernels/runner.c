/* kernels/runner.c - build, run and verify kernel variants on a device.
 *
 * Owns: the program cache, turning a kernel's plan into device programs,
 * binding slots, poisoning outputs and comparing them with the reference.
 * Invariant: a variant that failed to build holds no programs or buffers. */
#include "kernels/runner.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/f16.h"

/* ---------------------------------------------------------------- cache */

typedef struct cache_entry {
    char *key;
    kiln_program *prog;
} cache_entry;

struct kiln_progcache {
    kiln_device *dev;
    cache_entry *items;
    int n, cap;
};

kiln_progcache *kiln_progcache_new(kiln_device *d)
{
    kiln_progcache *c = calloc(1, sizeof *c);
    if (c)
        c->dev = d;
    return c;
}

void kiln_progcache_free(kiln_progcache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        c->dev->ops->release(c->dev, c->items[i].prog);
        free(c->items[i].key);
    }
    free(c->items);
    free(c);
}

/* Everything that makes two builds different: backend source, entry,
 * workgroup size, threads and every define (in plan order; plans are
 * deterministic so equal configs give equal keys). */
static void program_key(const kiln_program_desc *d, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "%s|%s|%p|%u,%u,%u|t%u|s%u", d->kernel, d->entry, (const void *)d->source,
                                   d->local[0], d->local[1], d->local[2], d->cpu_threads, d->subgroup);
    for (int i = 0; i < d->n_defines && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "|%s=%lld", d->defines[i].name, d->defines[i].value);
}

/* A device build; its code, which the vtable reports only through e, is
 * returned (kept in a local when the caller passed no e). */
static int build_program(kiln_device *d, const kiln_program_desc *desc, kiln_program **out, kiln_err *e)
{
    kiln_err own = {0};
    kiln_err *err = e ? e : &own;
    if ((*out = d->ops->build(d, desc, err)))
        return 0;
    return err->code ? err->code : kiln_fail(e, KILN_E_COMPILE, "%s: the build failed without a reason", desc->kernel);
}

static int cache_build(kiln_progcache *c, kiln_device *d, const kiln_program_desc *desc, kiln_program **out,
                       kiln_err *e)
{
    if (!c)
        return build_program(d, desc, out, e);
    char key[2048];
    program_key(desc, key, sizeof key);
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->items[i].key, key) == 0) {
            *out = c->items[i].prog;
            return 0;
        }
    kiln_program *p;
    int rc = build_program(d, desc, &p, e);
    if (rc)
        return rc;
    *out = NULL;
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : 16;
        cache_entry *items = realloc(c->items, (size_t)cap * sizeof *items);
        if (!items) {
            d->ops->release(d, p);
            return kiln_fail(e, KILN_E_NOMEM, "program cache: out of memory");
        }
        c->items = items;
        c->cap = cap;
    }
    c->items[c->n].key = strdup(key);
    c->items[c->n].prog = p;
    if (!c->items[c->n].key) {
        d->ops->release(d, p);
        return kiln_fail(e, KILN_E_NOMEM, "program cache: out of memory");
    }
    c->n++;
    *out = p;
    return 0;
}

/* ---------------------------------------------------------------- build */

static int check_step_args(const kiln_kernel *k, const kiln_plan *plan, const kiln_plan_step *s, int si, kiln_err *e)
{
    size_t n_sig = strlen(s->signature);
    if ((size_t)s->n_args != n_sig || s->n_args > KILN_MAX_ARGS)
        return kiln_fail(e, KILN_E_INVALID, "%s step %d (%s): %d args for signature '%s'", k->name, si, s->entry,
                         s->n_args, s->signature);
    for (int i = 0; i < s->n_args; i++) {
        const kiln_plan_arg *a = &s->args[i];
        char want = s->signature[i];
        char got = (a->kind == KILN_PA_SLOT || a->kind == KILN_PA_SCRATCH) ? 'b' : (char)a->kind;
        if (got != want)
            return kiln_fail(e, KILN_E_INVALID, "%s step %d (%s): arg %d is '%c' but the signature says '%c'", k->name,
                             si, s->entry, i, got, want);
        if (a->kind == KILN_PA_SLOT && (a->index < 0 || a->index >= k->n_slots))
            return kiln_fail(e, KILN_E_INVALID, "%s step %d: slot %d out of range (kernel has %d)", k->name, si,
                             a->index, k->n_slots);
        if (a->kind == KILN_PA_SCRATCH && (a->index < 0 || a->index >= plan->n_scratch))
            return kiln_fail(e, KILN_E_INVALID, "%s step %d: scratch %d out of range (plan has %d)", k->name, si,
                             a->index, plan->n_scratch);
    }
    return 0;
}

static void describe(const kiln_variant *v, char *buf, size_t n)
{
    char shape[128], cfg[512];
    v->kernel->shape_key(&v->shape, shape, sizeof shape);
    kiln_config_to_json(v->kernel, &v->cfg, cfg, sizeof cfg);
    snprintf(buf, n, "%s on %s:%d (%s), shape %s, config %s", v->kernel->name, kiln_backend_name(v->dev->backend),
             v->dev->index, v->dev->fp.name, shape, cfg);
}

/* Plans v->shape with v->cfg and gets every step's program (through the
 * cache when there is one). Scratch buffers are not touched. */
static int plan_and_build(kiln_variant *v, unsigned flags, kiln_err *e)
{
    kiln_device *d = v->dev;
    const kiln_kernel *k = v->kernel;
    const kiln_shape *s = &v->shape;
    char what[1024];
    describe(v, what, sizeof what);

    char why[256] = "";
    if (!k->config_valid(s, &v->cfg, &d->fp, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "%s: config not valid here: %s", what, why);
    int rc = k->plan(s, &v->cfg, d->backend, &v->plan, e);
    if (rc) {
        kiln_err_wrap(e, "%s: plan", what);
        return rc;
    }
    if (v->plan.n_steps < 1 || v->plan.n_steps > KILN_MAX_STEPS || v->plan.n_scratch > KILN_MAX_SCRATCH)
        return kiln_fail(e, KILN_E_INVALID, "%s: plan has %d steps / %d scratch buffers", what, v->plan.n_steps,
                         v->plan.n_scratch);

    for (int i = 0; i < v->plan.n_steps; i++) {
        kiln_plan_step *st = &v->plan.steps[i];
        if ((rc = check_step_args(k, &v->plan, st, i, e)))
            return rc;
        for (int a = 0; a < 3; a++) { /* unset dimensions mean 1 */
            if (!st->local[a])
                st->local[a] = 1;
            if (!st->grid[a])
                st->grid[a] = 1;
        }
        kiln_plan_define(st, "LOCAL_X", st->local[0]);
        kiln_plan_define(st, "LOCAL_Y", st->local[1]);
        kiln_plan_define(st, "LOCAL_Z", st->local[2]);
        if (flags & KILN_BUILD_TEST_BREAK)
            kiln_plan_define(st, "KILN_TEST_BREAK", 1);
        if (flags & KILN_BUILD_TEST_CRASH)
            kiln_plan_define(st, "KILN_TEST_CRASH", 1);
        if (flags & KILN_BUILD_TEST_HANG)
            kiln_plan_define(st, "KILN_TEST_HANG", 1);

        kiln_program_desc desc = {
            .kernel = k->name,
            .entry = st->entry,
            .signature = st->signature,
            .defines = st->defines,
            .n_defines = st->n_defines,
            .local = {st->local[0], st->local[1], st->local[2]},
            .cpu_threads = st->cpu_threads,
        };
        if (d->backend == KILN_CPU) {
            desc.cpu_fn = kiln_cpu_kernel_find(st->entry);
            if (!desc.cpu_fn)
                return kiln_fail(e, KILN_E_UNAVAILABLE, "%s: no cpu entry '%s'", what, st->entry);
        } else {
            /* GLSL has one main() per file, named after the entry. */
            const char *name = d->backend == KILN_VULKAN ? st->entry : st->source;
            desc.source = kiln_source_get(name, d->backend);
            if (!desc.source)
                return kiln_fail(e, KILN_E_UNAVAILABLE, "%s: no %s source '%s'", what, kiln_backend_name(d->backend),
                                 name);
        }
        if (v->prog[i] && !v->cache)
            d->ops->release(d, v->prog[i]);
        v->prog[i] = NULL;
        if ((rc = cache_build(v->cache, d, &desc, &v->prog[i], e))) {
            kiln_err_wrap(e, "%s: building step %d (%s)", what, i, st->entry);
            return rc;
        }
    }
    return 0;
}

/* Scratch buffers at least as large as the plan asks (kept when they are). */
static int ensure_scratch(kiln_variant *v, kiln_err *e)
{
    for (int i = 0; i < v->plan.n_scratch; i++) {
        size_t bytes = v->plan.scratch_bytes[i] ? v->plan.scratch_bytes[i] : 4;
        if (v->scratch[i] && v->scratch_cap[i] >= bytes)
            continue;
        kiln_free(v->dev, v->scratch[i]);
        v->scratch_cap[i] = 0;
        v->scratch[i] = v->dev->ops->alloc(v->dev, bytes, e);
        if (!v->scratch[i]) {
            char what[1024];
            describe(v, what, sizeof what);
            return kiln_err_wrap(e, "%s: scratch buffer %d (%zu bytes)", what, i, bytes);
        }
        v->scratch_cap[i] = bytes;
    }
    return 0;
}

int kiln_variant_build(kiln_variant *v, kiln_device *d, const kiln_kernel *k, const kiln_shape *s,
                       const kiln_config *c, unsigned flags, kiln_progcache *cache, kiln_err *e)
{
    memset(v, 0, sizeof *v);
    v->dev = d;
    v->kernel = k;
    v->shape = *s;
    v->cfg = *c;
    v->cache = cache;
    int rc = plan_and_build(v, flags, e);
    if (!rc)
        rc = ensure_scratch(v, e);
    if (rc)
        kiln_variant_release(v);
    return rc;
}

int kiln_variant_reshape(kiln_variant *v, const kiln_shape *s, kiln_err *e)
{
    if (!v->cache)
        return kiln_fail(e, KILN_E_INVALID, "%s: reshape needs a variant built with a program cache", v->kernel->name);
    kiln_shape old = v->shape;
    v->shape = *s;
    int rc = plan_and_build(v, 0, e);
    if (!rc)
        rc = ensure_scratch(v, e);
    if (rc)
        v->shape = old;
    return rc;
}

void kiln_variant_release(kiln_variant *v)
{
    if (!v->dev)
        return;
    for (int i = 0; i < KILN_MAX_STEPS; i++) {
        if (v->prog[i] && !v->cache)
            v->dev->ops->release(v->dev, v->prog[i]);
        v->prog[i] = NULL;
    }
    for (int i = 0; i < KILN_MAX_SCRATCH; i++) {
        kiln_free(v->dev, v->scratch[i]);
        v->scratch[i] = NULL;
        v->scratch_cap[i] = 0;
    }
}

int kiln_variant_run(kiln_variant *v, kiln_buffer *const *slots, double *ns, kiln_err *e)
{
    return kiln_variant_run_at(v, slots, NULL, ns, e);
}

int kiln_variant_run_at(kiln_variant *v, kiln_buffer *const *slots, const size_t *offs, double *ns, kiln_err *e)
{
    double total = 0;
    for (int i = 0; i < v->plan.n_steps; i++) {
        const kiln_plan_step *st = &v->plan.steps[i];
        kiln_arg args[KILN_MAX_ARGS];
        for (int a = 0; a < st->n_args; a++) {
            const kiln_plan_arg *pa = &st->args[a];
            switch (pa->kind) {
            case KILN_PA_SLOT:
                args[a] = (kiln_arg){.kind = KILN_ARG_BUF, .buf = slots[pa->index], .off = offs ? offs[pa->index] : 0};
                break;
            case KILN_PA_SCRATCH: args[a] = (kiln_arg){.kind = KILN_ARG_BUF, .buf = v->scratch[pa->index]}; break;
            case KILN_PA_I32: args[a] = (kiln_arg){.kind = KILN_ARG_I32, .i32 = pa->i32}; break;
            case KILN_PA_U32: args[a] = (kiln_arg){.kind = KILN_ARG_U32, .u32 = pa->u32}; break;
            case KILN_PA_F32: args[a] = (kiln_arg){.kind = KILN_ARG_F32, .f32 = pa->f32}; break;
            }
        }
        double step_ns = 0;
        int rc = v->dev->ops->launch(v->dev, v->prog[i], st->grid, args, st->n_args, ns ? &step_ns : NULL, e);
        if (rc) {
            char what[1024];
            describe(v, what, sizeof what);
            return kiln_err_wrap(e, "%s: launching step %d (%s)", what, i, st->entry);
        }
        total += step_ns;
    }
    if (ns)
        *ns = total;
    return 0;
}

/* ---------------------------------------------------------------- problems */

static int upload_one(kiln_device *d, const kiln_problem *p, int i, kiln_buffer *b, kiln_err *e)
{
    const kiln_problem_buf *pb = &p->bufs[i];
    if (!pb->bytes)
        return 0;
    if (pb->role == KILN_OUT)
        return d->ops->fill(d, b, 0xFF, pb->bytes, e);
    return d->ops->write(d, b, 0, pb->host, pb->bytes, e);
}

int kiln_problem_upload(kiln_device *d, const kiln_problem *p, kiln_problem_dev *pd, kiln_err *e)
{
    memset(pd, 0, sizeof *pd);
    pd->dev = d;
    for (int i = 0; i < p->n_bufs; i++) {
        size_t bytes = p->bufs[i].bytes ? p->bufs[i].bytes : 4;
        pd->buf[i] = d->ops->alloc(d, bytes, e);
        pd->n = i + 1;
        if (!pd->buf[i]) {
            kiln_problem_dev_free(pd);
            return kiln_err_wrap(e, "uploading buffer '%s' (%zu bytes)", p->bufs[i].name, bytes);
        }
        int rc = upload_one(d, p, i, pd->buf[i], e);
        if (rc) {
            kiln_problem_dev_free(pd);
            return kiln_err_wrap(e, "uploading buffer '%s'", p->bufs[i].name);
        }
    }
    return 0;
}

int kiln_problem_reset(const kiln_problem *p, kiln_problem_dev *pd, kiln_err *e)
{
    for (int i = 0; i < p->n_bufs; i++) {
        if (p->bufs[i].role == KILN_IN)
            continue; /* inputs are never written by a correct kernel; OUT/INOUT are reset */
        int rc = upload_one(pd->dev, p, i, pd->buf[i], e);
        if (rc)
            return kiln_err_wrap(e, "resetting buffer '%s'", p->bufs[i].name);
    }
    return 0;
}

void kiln_problem_dev_free(kiln_problem_dev *pd)
{
    for (int i = 0; i < pd->n; i++)
        kiln_free(pd->dev, pd->buf[i]);
    memset(pd->buf, 0, sizeof pd->buf);
    pd->n = 0;
}

/* ---------------------------------------------------------------- compare */

static float elem(const void *base, size_t i, kiln_cmp cmp)
{
    if (cmp == KILN_CMP_F16)
        return kiln_f16_to_f32(((const uint16_t *)base)[i]);
    return ((const float *)base)[i];
}

static int is_poison(const void *base, size_t i, kiln_cmp cmp)
{
    if (cmp == KILN_CMP_F16)
        return ((const uint16_t *)base)[i] == 0xFFFFu;
    return ((const uint32_t *)base)[i] == 0xFFFFFFFFu;
}

/* Normalized error of one float output: max|y - r| / max(rms(r), 1e-30).
 * Relative to the RMS (not per element) so small reference values do not
 * inflate it, yet one wrong index moves it by O(1) and is caught. */
static void compare_float(const kiln_problem_buf *pb, int slot, const void *got, kiln_verify_result *r)
{
    size_t es = pb->cmp == KILN_CMP_F16 ? 2 : 4;
    size_t n = pb->bytes / es;
    double ss = 0;
    for (size_t i = 0; i < n; i++) {
        double v = elem(pb->expect, i, pb->cmp);
        ss += v * v;
    }
    double rms = n ? sqrt(ss / (double)n) : 0;
    double denom = rms > 1e-30 ? rms : 1e-30;
    double worst = 0;
    size_t worst_i = 0, unwritten = 0, first_bad = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        if (pb->role == KILN_OUT && is_poison(got, i, pb->cmp)) {
            if (!unwritten && first_bad == (size_t)-1)
                first_bad = i;
            unwritten++;
            continue;
        }
        double y = elem(got, i, pb->cmp), ref = elem(pb->expect, i, pb->cmp);
        double d = fabs(y - ref) / denom;
        if (!(d == d) || isinf(y)) /* NaN or Inf where the reference is finite */
            d = INFINITY;
        if (d > worst) {
            worst = d;
            worst_i = i;
        }
        if (d > pb->tol && first_bad == (size_t)-1)
            first_bad = i;
    }
    r->unwritten += unwritten;
    int bad = worst > pb->tol || unwritten;
    /* keep the detail of the output that is furthest over its budget */
    double ratio = unwritten ? INFINITY : worst / (pb->tol > 0 ? pb->tol : 1e-300);
    double current = r->worst_buf < 0 ? -1.0 : r->budget > 0 ? r->err / r->budget : INFINITY;
    if (ratio > current) {
        r->err = unwritten ? INFINITY : worst;
        r->budget = pb->tol;
        r->worst_buf = slot;
        r->first_bad = first_bad;
        if (unwritten)
            snprintf(r->detail, sizeof r->detail, "%s: %zu of %zu elements never written (first at %zu)", pb->name,
                     unwritten, n, first_bad);
        else
            snprintf(r->detail, sizeof r->detail, "%s[%zu]: got %.6g want %.6g (err %.3g, budget %.3g)", pb->name,
                     worst_i, elem(got, worst_i, pb->cmp), elem(pb->expect, worst_i, pb->cmp), worst, pb->tol);
    }
    if (bad)
        r->ok = 0;
}

static void compare_exact(const kiln_problem_buf *pb, int slot, const void *got, kiln_verify_result *r)
{
    const uint8_t *a = got, *b = pb->expect;
    size_t bad = 0, first = (size_t)-1;
    for (size_t i = 0; i < pb->bytes; i++)
        if (a[i] != b[i]) {
            if (first == (size_t)-1)
                first = i;
            bad++;
        }
    if (!bad)
        return;
    r->ok = 0;
    r->mismatches += bad;
    r->worst_buf = slot;
    r->first_bad = first;
    r->err = INFINITY;
    r->budget = 0;
    size_t w = first & ~(size_t)3; /* show the 32-bit word around it */
    uint32_t gw = 0, ew = 0;
    if (w + 4 <= pb->bytes) {
        memcpy(&gw, a + w, 4);
        memcpy(&ew, b + w, 4);
    }
    snprintf(r->detail, sizeof r->detail, "%s: %zu of %zu bytes differ, first at byte %zu (word got 0x%08x want 0x%08x)",
             pb->name, bad, pb->bytes, first, gw, ew);
}

void kiln_compare_outputs(const kiln_problem *p, void *const *got, kiln_verify_result *r)
{
    memset(r, 0, sizeof *r);
    r->ok = 1;
    r->worst_buf = -1;
    for (int i = 0; i < p->n_bufs; i++) {
        const kiln_problem_buf *pb = &p->bufs[i];
        if (pb->role == KILN_IN || pb->cmp == KILN_CMP_NONE)
            continue;
        if (pb->cmp == KILN_CMP_EXACT)
            compare_exact(pb, i, got[i], r);
        else
            compare_float(pb, i, got[i], r);
    }
}

int kiln_verify(kiln_variant *v, const kiln_problem *p, kiln_problem_dev *pd, kiln_verify_result *r, kiln_err *e)
{
    memset(r, 0, sizeof *r);
    r->worst_buf = -1;
    int rc = kiln_problem_reset(p, pd, e);
    if (rc)
        return rc;
    if ((rc = kiln_variant_run(v, pd->buf, NULL, e)))
        return rc;
    if ((rc = kiln_finish(v->dev, e)))
        return kiln_err_wrap(e, "%s: waiting for the run", v->kernel->name);
    void *got[KILN_MAX_BUFS] = {0};
    for (int i = 0; i < p->n_bufs && !rc; i++) {
        if (p->bufs[i].role == KILN_IN || !p->bufs[i].bytes)
            continue;
        if (!(got[i] = malloc(p->bufs[i].bytes)))
            rc = kiln_fail(e, KILN_E_NOMEM, "verify: no memory for '%s'", p->bufs[i].name);
        else if ((rc = kiln_read(v->dev, pd->buf[i], 0, got[i], p->bufs[i].bytes, e)))
            kiln_err_wrap(e, "verify: reading '%s'", p->bufs[i].name);
    }
    if (!rc)
        kiln_compare_outputs(p, got, r);
    for (int i = 0; i < p->n_bufs; i++)
        free(got[i]);
    return rc;
}
