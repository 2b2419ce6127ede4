/* kernels/config.c - configs of a schedule space: defaults, JSON, corners. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernel.h"

void kiln_config_default(const kiln_kernel *k, kiln_config *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < k->n_params; i++)
        c->v[i] = k->params[i].def;
}

void kiln_config_default_for(const kiln_kernel *k, const kiln_fingerprint *fp, const kiln_shape *s,
                             kiln_config *c)
{
    kiln_config_default(k, c);
    if (!k->device_default)
        return;
    k->device_default(fp, s, c);
    char why[128];
    if (s && !k->config_valid(s, c, fp, why, sizeof why))
        kiln_config_default(k, c);
}

static int param_index(const kiln_kernel *k, const char *name)
{
    for (int i = 0; i < k->n_params; i++)
        if (strcmp(k->params[i].name, name) == 0)
            return i;
    return -1;
}

int kiln_config_get(const kiln_kernel *k, const kiln_config *c, const char *param, int fallback)
{
    int i = param_index(k, param);
    return i < 0 ? fallback : c->v[i];
}

void kiln_config_set(const kiln_kernel *k, kiln_config *c, const char *param, int value)
{
    int i = param_index(k, param);
    if (i >= 0)
        c->v[i] = value;
}

int kiln_config_equal(const kiln_kernel *k, const kiln_config *a, const kiln_config *b)
{
    for (int i = 0; i < k->n_params; i++)
        if (a->v[i] != b->v[i])
            return 0;
    return 1;
}

void kiln_config_to_json(const kiln_kernel *k, const kiln_config *c, char *buf, size_t n)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "{");
    for (int i = 0; i < k->n_params && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, "%s\"%s\":%d", i ? "," : "", k->params[i].name, c->v[i]);
    if (used < n)
        snprintf(buf + used, n - used, "}");
}

static int value_allowed(const kiln_param *p, int v)
{
    for (int i = 0; i < p->n_values; i++)
        if (p->values[i] == v)
            return 1;
    return 0;
}

int kiln_config_from_json(const kiln_kernel *k, const char *json, kiln_config *c, kiln_err *e)
{
    kiln_config_default(k, c);
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kiln_fail(e, KILN_E_FORMAT, "%s: config is not a JSON object: %.200s", k->name, json);
    }
    int rc = 0;
    for (cJSON *it = root->child; it; it = it->next) {
        int i = param_index(k, it->string);
        if (i < 0) {
            rc = kiln_fail(e, KILN_E_INVALID, "%s: unknown parameter '%s' in config %.200s", k->name, it->string, json);
            break;
        }
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble) {
            rc = kiln_fail(e, KILN_E_INVALID, "%s: parameter '%s' must be an integer", k->name, it->string);
            break;
        }
        int v = (int)it->valuedouble;
        if (!value_allowed(&k->params[i], v)) {
            rc = kiln_fail(e, KILN_E_INVALID, "%s: value %d is not in the space of '%s'", k->name, v, it->string);
            break;
        }
        c->v[i] = v;
    }
    cJSON_Delete(root);
    return rc;
}

int kiln_config_corners(const kiln_kernel *k, kiln_config *out, int max)
{
    int n = 0;
    kiln_config base;
    kiln_config_default(k, &base);
    for (int i = 0; i < k->n_params; i++) {
        const kiln_param *p = &k->params[i];
        int lo = p->values[0], hi = p->values[0];
        for (int j = 1; j < p->n_values; j++) {
            lo = p->values[j] < lo ? p->values[j] : lo;
            hi = p->values[j] > hi ? p->values[j] : hi;
        }
        int ends[2] = {lo, hi};
        for (int t = 0; t < 2; t++) {
            kiln_config c = base;
            c.v[i] = ends[t];
            int dup = kiln_config_equal(k, &c, &base);
            for (int j = 0; j < n && !dup; j++)
                dup = kiln_config_equal(k, &c, &out[j]);
            if (!dup && n < max)
                out[n++] = c;
        }
    }
    return n;
}

double kiln_config_space_size(const kiln_kernel *k)
{
    double s = 1;
    for (int i = 0; i < k->n_params; i++)
        s *= k->params[i].n_values;
    return s;
}

void kiln_plan_config_defines(kiln_plan_step *s, const kiln_kernel *k, const kiln_config *c)
{
    for (int i = 0; i < k->n_params; i++)
        kiln_plan_define(s, k->params[i].define, c->v[i]);
}

/* Config number i of the cartesian space (mixed radix over the parameters). */
static void config_at(const kiln_kernel *k, long long i, kiln_config *c)
{
    kiln_config_default(k, c);
    for (int p = 0; p < k->n_params; p++) {
        int nv = k->params[p].n_values;
        c->v[p] = k->params[p].values[i % nv];
        i /= nv;
    }
}

static int add_unique(const kiln_kernel *k, const kiln_config *c, kiln_config *out, int n)
{
    for (int j = 0; j < n; j++)
        if (kiln_config_equal(k, c, &out[j]))
            return n;
    out[n] = *c;
    return n + 1;
}

/* The random draws are uniform over the valid configs: spaces up to
 * ENUMERATE_MAX are enumerated first, because a backend that uses few
 * parameters (the cpu) makes blind draws almost always invalid. */
#define ENUMERATE_MAX 2000000 /* ~10 ms of config_valid calls; gemv_int4 has 138240 */
int kiln_config_pick(const kiln_kernel *k, const kiln_shape *s0, const kiln_fingerprint *fp, int n_random,
                     kiln_rng *rng, kiln_config *out, int max)
{
    int n = 0;
    kiln_config_default_for(k, fp, s0, &out[n]); /* the device's default, and the space's if it differs */
    kiln_config_default(k, &out[n + 1]);
    n += kiln_config_equal(k, &out[n], &out[n + 1]) ? 1 : 2;
    n += kiln_config_corners(k, out + n, max - n - n_random);
    char why[128];
    kiln_config c;
    double total = kiln_config_space_size(k);
    if (total <= ENUMERATE_MAX) {
        long long *valid = malloc(sizeof *valid * (size_t)total);
        long long nv = 0;
        for (long long i = 0; valid && i < (long long)total; i++) {
            config_at(k, i, &c);
            if (k->config_valid(s0, &c, fp, why, sizeof why))
                valid[nv++] = i;
        }
        for (int got = 0; valid && got < n_random && nv > 0 && n < max; got++) {
            long long j = (long long)kiln_rng_below(rng, (uint32_t)nv); /* draw without replacement */
            config_at(k, valid[j], &c);
            valid[j] = valid[--nv];
            n = add_unique(k, &c, out, n);
        }
        if (valid) {
            free(valid);
            return n;
        }
    }
    for (int tries = 0, got = 0; got < n_random && tries < 200 && n < max; tries++) {
        kiln_config_default(k, &c);
        for (int p = 0; p < k->n_params; p++)
            c.v[p] = k->params[p].values[kiln_rng_below(rng, (uint32_t)k->params[p].n_values)];
        if (!k->config_valid(s0, &c, fp, why, sizeof why))
            continue;
        int before = n;
        n = add_unique(k, &c, out, n);
        got += n > before;
    }
    return n;
}
