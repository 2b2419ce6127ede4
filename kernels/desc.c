/* kernels/desc.c - the generic shapes / validity / problem / plan of a
 * declarative kernel descriptor (kernels/desc.h). */
#include "kernels/desc.h"

#include <stdio.h>
#include <string.h>

int64_t kiln_shape_field_get(const kiln_shape *s, kiln_shape_field f)
{
    switch (f) {
    case KILN_SF_M: return s->m;
    case KILN_SF_K: return s->k;
    case KILN_SF_N: return s->n;
    case KILN_SF_QUANT: return s->quant;
    case KILN_SF_GROUP: return s->group;
    case KILN_SF_HEADS: return s->heads;
    case KILN_SF_KV_HEADS: return s->kv_heads;
    case KILN_SF_HEAD_DIM: return s->head_dim;
    case KILN_SF_PAGE_SIZE: return s->page_size;
    case KILN_SF_CTX: return s->ctx;
    case KILN_SF_OP: return s->op;
    case KILN_SF_ACT: return s->act;
    case KILN_SF_ILV: return s->ilv;
    }
    return 0;
}

int kiln_desc_shapes(const kiln_kernel_desc *d, int which, kiln_shape *out, int max)
{
    if (which < 0 || which > 2)
        return 0;
    const kiln_shape_list *l = &d->shapes[which];
    int n = l->n < max ? l->n : max;
    for (int i = 0; i < n; i++)
        out[i] = l->v[i];
    return n > 0 ? n : 0;
}

/* The constraints every descriptor shares, from the parameter flags. */
static int params_ok(const kiln_kernel_desc *d, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n)
{
    const kiln_kernel *k = d->kernel;
    int cpu = fp->backend == KILN_CPU;
    for (int i = 0; i < k->n_params; i++) {
        const kiln_param *p = &k->params[i];
        int f = p->flags;
        if (cpu && (f & KILN_P_GPU) && c->v[i] != p->def) {
            snprintf(why, n, "%s applies to GPU backends only (cpu: %d)", p->name, p->def);
            return 0;
        }
        if (!cpu && (f & KILN_P_CPU) && c->v[i] != p->def) {
            snprintf(why, n, "%s applies to the cpu backend only", p->name);
            return 0;
        }
        if (!cpu && (f & KILN_P_WG) && fp->max_workgroup && (uint32_t)c->v[i] > fp->max_workgroup) {
            snprintf(why, n, "%s %d > device max %u", p->name, c->v[i], fp->max_workgroup);
            return 0;
        }
    }
    return 1;
}

int kiln_desc_valid(const kiln_kernel_desc *d, const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp,
                    char *why, size_t n)
{
    return d->shape_ok(s, why, n) && params_ok(d, c, fp, why, n) && (!d->check || d->check(s, c, fp, why, n));
}

/* The slots shape s uses, sized: a copy of the table through `sizes`; -1
 * when `sizes` ran out of memory. */
static int slots_for(const kiln_kernel_desc *d, const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot)
{
    int n = d->kernel->n_slots;
    for (int i = 0; i < n; i++)
        slot[i] = d->slots[i];
    int used = d->sizes(s, cls, seed, slot);
    if (used < 0)
        return -1;
    return used <= n ? used : n;
}

int kiln_desc_problem(const kiln_kernel_desc *d, kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed,
                      kiln_err *e)
{
    kiln_err own = {0};
    if (!e) /* kiln_problem_add reports through e only: keep the code when the caller passed none */
        e = &own;
    const char *name = d->kernel->name;
    char why[160];
    if (!d->shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "%s: bad shape: %s", name, why);
    memset(p, 0, sizeof *p);
    p->shape = *s;
    kiln_slot slot[KILN_MAX_BUFS];
    int used = slots_for(d, s, cls, seed, slot);
    if (used < 0)
        return kiln_fail(e, KILN_E_NOMEM, "%s: no memory for the problem's layout", name);
    for (int i = 0; i < used; i++)
        if (!kiln_problem_add(p, slot[i].name, slot[i].role, slot[i].bytes, slot[i].cmp, slot[i].tol, e)) {
            kiln_problem_free(p);
            return e->code;
        }
    int rc = d->fill(p, s, cls, seed, e);
    if (rc)
        kiln_problem_free(p);
    return rc;
}

/* How many slots shape s uses (for KA_SLOT_OR), asked of `sizes` the first
 * time an argument needs it (*used < 0 until then): most plans never do. */
static int slots_used(const kiln_kernel_desc *d, const kiln_shape *s, int *used)
{
    if (*used < 0) {
        kiln_slot slot[KILN_MAX_BUFS];
        *used = slots_for(d, s, 0, 0, slot);
        if (*used < 0) /* out of memory: bind every slot the table has */
            *used = d->kernel->n_slots;
    }
    return *used;
}

static void add_arg(const kiln_kernel_desc *d, kiln_plan_step *st, const kiln_arg_desc *a, const kiln_shape *s,
                    const kiln_launch *v, int *used, int n_scratch)
{
    switch (a->src) {
    case KILN_A_SLOT: kiln_plan_slot(st, a->a); break;
    case KILN_A_SLOT_OR: kiln_plan_slot(st, a->a < slots_used(d, s, used) ? a->a : a->b); break;
    case KILN_A_SCRATCH: kiln_plan_scratch(st, a->a); break;
    case KILN_A_SCRATCH_OR:
        if (a->a < n_scratch)
            kiln_plan_scratch(st, a->a);
        else
            kiln_plan_slot(st, a->b);
        break;
    case KILN_A_SHAPE: kiln_plan_i32(st, (int32_t)kiln_shape_field_get(s, (kiln_shape_field)a->a)); break;
    case KILN_A_VAL: kiln_plan_i32(st, v->val[a->a]); break;
    case KILN_A_FVAL: kiln_plan_f32(st, v->fval[a->a]); break;
    case KILN_A_F32: kiln_plan_f32(st, a->f); break;
    case KILN_A_I32: kiln_plan_i32(st, a->a); break;
    case KILN_A_END: break;
    }
}

int kiln_desc_plan(const kiln_kernel_desc *d, const kiln_shape *s, const kiln_config *c, kiln_backend_kind be,
                   kiln_plan *out, kiln_err *e)
{
    char why[160];
    if (d->plan_ok ? !d->plan_ok(s, c, why, sizeof why) : !d->shape_ok(s, why, sizeof why))
        return kiln_fail(e, KILN_E_INVALID, "%s: %s", d->kernel->name, why);
    if (d->plan)
        return d->plan(s, c, be, out, e);
    memset(out, 0, sizeof *out);
    out->n_steps = d->n_steps;
    for (int i = 0; i < d->n_steps; i++) {
        kiln_plan_step *st = &out->steps[i];
        st->source = d->steps[i].source;
        st->entry = be == KILN_CPU ? d->steps[i].cpu_entry : d->steps[i].entry;
        st->signature = d->steps[i].signature;
        kiln_plan_config_defines(st, d->kernel, c);
        for (const kiln_define *df = d->steps[i].defines; df < d->steps[i].defines + KILN_STEP_DEFINES && df->name;
             df++)
            kiln_plan_define(st, df->name, df->value);
        st->grid[0] = st->grid[1] = st->grid[2] = 1;
        st->local[0] = st->local[1] = st->local[2] = 1;
    }
    kiln_launch v;
    memset(&v, 0, sizeof v);
    d->launch(s, c, be, out, &v);
    int used = -1;
    for (int i = 0; i < out->n_steps; i++)
        for (const kiln_arg_desc *a = d->steps[i].args; a < d->steps[i].args + KILN_MAX_ARGS && a->src; a++)
            add_arg(d, &out->steps[i], a, s, &v, &used, out->n_scratch);
    return 0;
}

int kiln_subgroup_reduce_ok(const kiln_fingerprint *fp, int wg, char *why, size_t n)
{
    if (fp->backend == KILN_OPENCL) {
        snprintf(why, n, "subgroup reductions are not available in OpenCL C 1.2");
        return 0;
    }
    if (!fp->has_subgroup_ops || !fp->subgroup_size || wg % (int)fp->subgroup_size) {
        snprintf(why, n, "subgroup reduction needs subgroup ops and wg %d a multiple of the subgroup size %u", wg,
                 fp->subgroup_size);
        return 0;
    }
    if (fp->backend == KILN_CUDA && fp->subgroup_size != 32) {
        snprintf(why, n, "subgroup reduction on CUDA assumes warps of 32 (device says %u)", fp->subgroup_size);
        return 0;
    }
    return 1;
}

int kiln_plan_unchecked(const kiln_shape *s, const kiln_config *c, char *why, size_t n)
{
    (void)s, (void)c, (void)why, (void)n;
    return 1;
}

void kiln_grid_1d(kiln_plan_step *st, int64_t threads, int wg)
{
    int64_t nwg = (threads + wg - 1) / wg;
    if (nwg < 1)
        nwg = 1;
    st->local[0] = (uint32_t)wg;
    st->grid[0] = (uint32_t)(nwg < 32768 ? nwg : 32768);
    st->grid[1] = (uint32_t)((nwg + 32767) / 32768);
    st->grid[2] = 1;
}

void kiln_grid_n(kiln_plan_step *st, int64_t n, uint32_t local)
{
    st->local[0] = local;
    st->grid[0] = (uint32_t)(n > 0 ? n : 1);
    st->grid[1] = st->grid[2] = 1;
}
