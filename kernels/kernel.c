/* kernels/kernel.c - problem and plan helpers shared by every kernel. */
#include "kernels/kernel.h"
#include "util/num.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const quant_names[KILN_QUANT_COUNT] = {"q4f16_1", "q4_0", "q4_1", "q8_0", "f16", "f32"};

const char *kiln_quant_name(int q) { return q >= 0 && q < KILN_QUANT_COUNT ? quant_names[q] : "?"; }

int kiln_quant_parse(const char *s, int *q)
{
    for (int i = 0; i < KILN_QUANT_COUNT; i++)
        if (strcmp(s, quant_names[i]) == 0) {
            *q = i;
            return 0;
        }
    return KILN_E_INVALID;
}

void kiln_problem_free(kiln_problem *p)
{
    for (int i = 0; i < p->n_bufs; i++) {
        free(p->bufs[i].host);
        free(p->bufs[i].expect);
    }
    memset(p, 0, sizeof *p);
}

kiln_problem_buf *kiln_problem_add(kiln_problem *p, const char *name, kiln_buf_role role, size_t bytes,
                                   kiln_cmp cmp, double tol, kiln_err *e)
{
    if (p->n_bufs >= KILN_MAX_BUFS) {
        kiln_fail(e, KILN_E_INVALID, "problem: too many buffers (adding '%s')", name);
        return NULL;
    }
    kiln_problem_buf *b = &p->bufs[p->n_bufs];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->role = role;
    b->bytes = bytes;
    b->cmp = role == KILN_IN ? KILN_CMP_NONE : cmp;
    b->tol = tol;
    size_t n = bytes ? bytes : 1;
    if (role != KILN_OUT && !(b->host = calloc(1, n)))
        goto oom;
    if (role != KILN_IN && !(b->expect = calloc(1, n)))
        goto oom;
    p->n_bufs++;
    return b;
oom:
    free(b->host);
    b->host = NULL;
    kiln_fail(e, KILN_E_NOMEM, "problem: cannot allocate %zu bytes for '%s'", bytes, name);
    return NULL;
}

void kiln_plan_define(kiln_plan_step *s, const char *name, long long value)
{
    for (int i = 0; i < s->n_defines; i++)
        if (strcmp(s->defines[i].name, name) == 0) {
            s->defines[i].value = value;
            return;
        }
    if (s->n_defines < KILN_MAX_DEFINES)
        s->defines[s->n_defines++] = (kiln_define){name, value};
}

static kiln_plan_arg *next_arg(kiln_plan_step *s)
{
    /* Overflow is a programming error in a kernel's plan(); the runner
     * rejects plans whose n_args exceeds the signature. */
    return s->n_args < KILN_MAX_ARGS ? &s->args[s->n_args++] : &s->args[KILN_MAX_ARGS - 1];
}

void kiln_plan_slot(kiln_plan_step *s, int slot) { *next_arg(s) = (kiln_plan_arg){.kind = KILN_PA_SLOT, .index = slot}; }
void kiln_plan_scratch(kiln_plan_step *s, int i) { *next_arg(s) = (kiln_plan_arg){.kind = KILN_PA_SCRATCH, .index = i}; }
void kiln_plan_i32(kiln_plan_step *s, int32_t v) { *next_arg(s) = (kiln_plan_arg){.kind = KILN_PA_I32, .i32 = v}; }
void kiln_plan_u32(kiln_plan_step *s, uint32_t v) { *next_arg(s) = (kiln_plan_arg){.kind = KILN_PA_U32, .u32 = v}; }
void kiln_plan_f32(kiln_plan_step *s, float v) { *next_arg(s) = (kiln_plan_arg){.kind = KILN_PA_F32, .f32 = v}; }

int kiln_data_class(const kiln_kernel *k, const kiln_shape *s, const kiln_config *c)
{
    return k->data_class && k->problem_class ? k->data_class(s, c) : 0;
}

int kiln_problem_make(const kiln_kernel *k, kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed,
                      kiln_err *e)
{
    if (cls == 0 || !k->problem_class)
        return k->problem_init(p, s, seed, e);
    return k->problem_class(p, s, cls, seed, e);
}

/* Sets field f of s to a value other than its current one (for the check
 * below); 0 if f is not a field. */
static int perturb(kiln_shape *s, const char *f)
{
    if (!strcmp(f, "m")) s->m = s->m * 2 + 1;
    else if (!strcmp(f, "k")) s->k = s->k * 2 + 1;
    else if (!strcmp(f, "n")) s->n = s->n * 2 + 1;
    else if (!strcmp(f, "group")) s->group = s->group * 2 + 1;
    else if (!strcmp(f, "heads")) s->heads = s->heads * 2 + 1;
    else if (!strcmp(f, "kv_heads")) s->kv_heads = s->kv_heads * 2 + 1;
    else if (!strcmp(f, "head_dim")) s->head_dim = s->head_dim * 2 + 1;
    else if (!strcmp(f, "page_size")) s->page_size = s->page_size * 2 + 1;
    else if (!strcmp(f, "ctx")) s->ctx = s->ctx * 2 + 1;
    else if (!strcmp(f, "op")) s->op = s->op * 2 + 1;
    else if (!strcmp(f, "ilv")) s->ilv = s->ilv * 2 + 1;
    else if (!strcmp(f, "act")) s->act = !s->act;
    else if (!strcmp(f, "quant")) /* f32 <-> f16 (a KV cache's type), else between two weight quants */
        s->quant = s->quant == KILN_F16 ? KILN_F32 : s->quant == KILN_F32 ? KILN_F16
                                                   : s->quant == KILN_Q4_0 ? KILN_Q4_1 : KILN_Q4_0;
    else return 0;
    return 1;
}

int kiln_shape_parse_for(const kiln_kernel *k, const char *spec, kiln_shape *s, kiln_err *e)
{
    int rc = kiln_shape_parse(spec, s, e);
    if (rc)
        return rc;
    /* a field the kernel's shape key ignores would be tuned as something
     * else (rmsnorm takes its row width from k, not n): refuse it */
    char buf[512], key[256], other[256];
    snprintf(buf, sizeof buf, "%s", spec);
    k->shape_key(s, key, sizeof key);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = 0;
        kiln_shape t = *s;
        if (!perturb(&t, tok))
            continue;
        k->shape_key(&t, other, sizeof other);
        if (strcmp(key, other))
            continue;
        static const char *const fields[] = {"m", "k", "n", "quant", "group", "heads", "kv_heads", "head_dim",
                                             "page_size", "ctx", "op", "act", "ilv"};
        char used[128] = "";
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
            kiln_shape u = *s;
            perturb(&u, fields[i]);
            k->shape_key(&u, other, sizeof other);
            if (strcmp(key, other)) {
                size_t l = strlen(used);
                snprintf(used + l, sizeof used - l, "%s%s", l ? " " : "", fields[i]);
            }
        }
        return kiln_fail(e, KILN_E_INVALID, "shape '%s': kernel %s does not use field '%s' (its fields: %s)", spec,
                         k->name, tok, used);
    }
    return 0;
}

int kiln_shape_parse(const char *spec, kiln_shape *s, kiln_err *e)
{
    char buf[512];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return kiln_fail(e, KILN_E_INVALID, "shape '%s': '%s' is not field=value", spec, tok);
        *eq = 0;
        const char *f = tok, *v = eq + 1;
        if (!strcmp(f, "quant")) {
            int q;
            if (kiln_quant_parse(v, &q))
                return kiln_fail(e, KILN_E_INVALID, "shape '%s': unknown quant '%s'", spec, v);
            s->quant = q;
            continue;
        }
        if (!strcmp(f, "act")) {
            if (!strcmp(v, "f32") || !strcmp(v, "0"))
                s->act = KILN_ACT_F32;
            else if (!strcmp(v, "q8") || !strcmp(v, "1"))
                s->act = KILN_ACT_Q8;
            else
                return kiln_fail(e, KILN_E_INVALID, "shape '%s': act '%s' is not f32 or q8", spec, v);
            continue;
        }
        /* whole numbers in range: 4294967328 must not wrap to group 32 */
        int wide = !strcmp(f, "m") || !strcmp(f, "k") || !strcmp(f, "n");
        long long n;
        char what[96];
        snprintf(what, sizeof what, "shape '%s': field '%s'", spec, f);
        if (kiln_num_int(what, v, 0, wide ? (1LL << 40) : (1LL << 30), &n, e))
            return KILN_E_INVALID;
        if (!strcmp(f, "m")) s->m = n;
        else if (!strcmp(f, "k")) s->k = n;
        else if (!strcmp(f, "n")) s->n = n;
        else if (!strcmp(f, "group")) s->group = (int32_t)n;
        else if (!strcmp(f, "heads")) s->heads = (int32_t)n;
        else if (!strcmp(f, "kv_heads")) s->kv_heads = (int32_t)n;
        else if (!strcmp(f, "head_dim")) s->head_dim = (int32_t)n;
        else if (!strcmp(f, "page_size")) s->page_size = (int32_t)n;
        else if (!strcmp(f, "ctx")) s->ctx = (int32_t)n;
        else if (!strcmp(f, "op")) s->op = (int32_t)n;
        else if (!strcmp(f, "ilv")) s->ilv = (int32_t)n;
        else
            return kiln_fail(e, KILN_E_INVALID,
                             "shape '%s': unknown field '%s' (m k n quant group heads kv_heads head_dim page_size ctx op act ilv)",
                             spec, f);
    }
    return 0;
}
