/* engine/ops.c - see ops.h. Owns the op classes (one variant each) and the
 * program cache of the engine's device. */
#include "engine/ops.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

typedef struct op_class {
    const kiln_kernel *kernel;
    kiln_shape look;      /* the lookup shape (identity: compared as bytes, no key formatting per call) */
    int32_t ilv;          /* and the layout of the matrix it runs on */
    char key[192];        /* kernel name + lookup shape key (messages) */
    kiln_variant v;       /* built; re-planned per call */
    int level;            /* kiln_match_level of its config */
    int is_default;       /* running the default config */
} op_class;

struct kiln_ops {
    kiln_device *dev;
    kiln_db *db;
    FILE *log;
    kiln_progcache *cache;
    op_class *cls;
    int n, cap;
    kiln_profile *prof;   /* not owned; NULL: ops are not timed */
};

int kiln_ops_new(kiln_ops **out, kiln_device *dev, kiln_db *db, FILE *log, kiln_err *e)
{
    kiln_ops *o = calloc(1, sizeof *o);
    *out = NULL;
    if (!o || !(o->cache = kiln_progcache_new(dev))) {
        free(o);
        return kiln_fail(e, KILN_E_NOMEM, "engine ops: out of memory");
    }
    o->dev = dev;
    o->db = db;
    o->log = log;
    *out = o;
    return 0;
}

void kiln_ops_set_profile(kiln_ops *o, kiln_profile *prof) { o->prof = prof; }

void kiln_ops_free(kiln_ops *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->n; i++)
        kiln_variant_release(&o->cls[i].v);
    free(o->cls);
    kiln_progcache_free(o->cache);
    free(o);
}

static int shape_equal(const kiln_shape *a, const kiln_shape *b) { return memcmp(a, b, sizeof *a) == 0; }

/* The tuned config for (k, lookup) on this device, or the default. */
static void lookup_config(const kiln_fingerprint *fp, kiln_db *db, const kiln_kernel *k, const kiln_shape *lookup,
                          kiln_config *c, int *level, char *note, size_t n)
{
    kiln_config_default_for(k, fp, lookup, c);
    *level = KILN_MATCH_DEFAULT;
    snprintf(note, n, "no database");
    if (!db)
        return;
    char hash[17], key[128];
    kiln_kernel_source_hash(k, fp->backend, hash);
    k->shape_key(lookup, key, sizeof key);
    kiln_db_match m;
    kiln_err e = {0};
    if (kiln_db_lookup(db, fp, k->name, hash, key, &m, &e)) {
        snprintf(note, n, "lookup failed: %s", e.msg);
        return;
    }
    *level = m.level;
    if (m.level == KILN_MATCH_SIMILAR)
        snprintf(note, n, "similar to %.150s (distance %.2f)", m.device, m.distance);
    else
        snprintf(note, n, "%s%s", m.level == KILN_MATCH_DEFAULT ? "not tuned" : m.shape_key,
                 m.stale ? ", stale winner skipped" : "");
    if (m.level == KILN_MATCH_DEFAULT)
        return;
    if (kiln_config_from_json(k, m.config_json, c, &e)) {
        kiln_config_default_for(k, fp, lookup, c);
        *level = KILN_MATCH_DEFAULT;
        snprintf(note, n, "stored config unreadable (%s)", e.msg);
    }
}

static void choose_config(kiln_ops *o, const kiln_kernel *k, const kiln_shape *lookup, kiln_config *c, int *level,
                          char *note, size_t n)
{
    lookup_config(&o->dev->fp, o->db, k, lookup, c, level, note, n);
}

int kiln_engine_layout(void *ctx, const kiln_shape *s, int *gemv_f32)
{
    kiln_layout_ctx *lc = ctx;
    const kiln_kernel *k = kiln_kernel_find("gemv_int4");
    if (gemv_f32)
        *gemv_f32 = 0;
    if (!k || !lc || !lc->fp)
        return 1;
    kiln_config c;
    int level;
    char note[256], why[256];
    lookup_config(lc->fp, lc->db, k, s, &c, &level, note, sizeof note);
    if (!k->config_valid(s, &c, lc->fp, why, sizeof why))
        kiln_config_default_for(k, lc->fp, s, &c);
    int ilv = kiln_config_get(k, &c, "ilv", 1);
    if (gemv_f32) /* only the cpu has int8 paths: elsewhere every kernel keeps x in f32 and the keys stay */
        *gemv_f32 = lc->fp->backend == KILN_CPU && s->act == KILN_ACT_Q8 && kiln_config_get(k, &c, "act", 0) == 0;
    if (lc->log) {
        char key[128];
        k->shape_key(s, key, sizeof key);
        uint64_t h = 1469598103934665603ull; /* say each shape once */
        for (const char *p = key; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ull;
        int seen = 0;
        for (int i = 0; i < lc->n_logged && !seen; i++)
            seen = lc->logged[i] == h;
        if (!seen) {
            if (lc->n_logged < (int)(sizeof lc->logged / sizeof lc->logged[0]))
                lc->logged[lc->n_logged++] = h;
            fprintf(lc->log, "kiln: weights %-32s stored in layout ilv %d (%s)\n", key, ilv,
                    kiln_match_name(level));
        }
    }
    return ilv;
}

/* The op class of (k, lookup) in *out, built at shape s the first time. */
static int find_class(kiln_ops *o, const kiln_kernel *k, const kiln_shape *s, const kiln_shape *lookup,
                      op_class **out, kiln_err *e)
{
    /* ~450 calls per decode step: compare shapes, format the key only for a new class */
    for (int i = 0; i < o->n; i++)
        if (o->cls[i].kernel == k && o->cls[i].ilv == s->ilv && !memcmp(&o->cls[i].look, lookup, sizeof *lookup)) {
            *out = &o->cls[i];
            return 0;
        }
    char skey[128], key[192];
    k->shape_key(lookup, skey, sizeof skey);
    snprintf(key, sizeof key, "%s/%s", k->name, skey);
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 32;
        op_class *c = realloc(o->cls, (size_t)cap * sizeof *c);
        if (!c)
            return kiln_fail(e, KILN_E_NOMEM, "engine ops: out of memory");
        o->cls = c;
        o->cap = cap;
    }
    op_class *c = &o->cls[o->n];
    memset(c, 0, sizeof *c);
    c->kernel = k;
    c->look = *lookup;
    c->ilv = s->ilv;
    snprintf(c->key, sizeof c->key, "%s", key);
    kiln_config cfg;
    char note[256];
    choose_config(o, k, lookup, &cfg, &c->level, note, sizeof note);
    if (c->level == KILN_MATCH_SIMILAR) {
        /* borrowed from another device: verified here, on the lookup
         * shape's random problem, before any token depends on it */
        char why[256];
        kiln_err ve = {0};
        int ok = kiln_config_verify_on(o->dev, k, lookup, &cfg, 1, why, sizeof why, &ve);
        if (ok != 1) {
            char was[256];
            snprintf(was, sizeof was, "%s", note);
            snprintf(note, sizeof note, "%.110s %.130s: default", was, ok < 0 ? ve.msg : why);
            kiln_config_default_for(k, &o->dev->fp, lookup, &cfg);
            c->level = KILN_MATCH_DEFAULT;
        } else {
            size_t l = strlen(note);
            snprintf(note + l, sizeof note - l, ", verified here");
        }
    }
    kiln_err e2 = {0};
    int rc = kiln_variant_build(&c->v, o->dev, k, s, &cfg, 0, o->cache, &e2);
    kiln_config def;
    kiln_config_default_for(k, &o->dev->fp, s, &def);
    if (rc == KILN_E_INVALID && !kiln_config_equal(k, &cfg, &def)) {
        /* a tuned config, or the default of the lookup shape, that does not
         * fit s. The reason comes from the kernel's own check: e2.msg leads
         * with kernel, device, shape and config JSON, and the note's 200
         * characters cut off the reason itself ("...config not vali"). */
        char why[200];
        if (k->config_valid(s, &cfg, &o->dev->fp, why, sizeof why))
            snprintf(why, sizeof why, "%s", e2.msg); /* invalid for another cause (plan): the whole message */
        snprintf(note, sizeof note, "%s not valid here (%s)", c->level != KILN_MATCH_DEFAULT ? "tuned config" : "default",
                 why);
        cfg = def;
        c->level = KILN_MATCH_DEFAULT;
        rc = kiln_variant_build(&c->v, o->dev, k, s, &cfg, 0, o->cache, e);
    } else if (rc && e) {
        *e = e2;
    }
    if (rc)
        return rc;
    c->is_default = kiln_config_equal(k, &cfg, &def);
    if (o->log) {
        char js[512];
        kiln_config_to_json(k, &cfg, js, sizeof js);
        fprintf(o->log, "kiln: %-16s %-32s %-7s %s (%s)\n", k->name, skey, kiln_match_name(c->level), js, note);
    }
    o->n++;
    *out = c;
    return 0;
}

/* With a profile: the op runs synchronously (a device time requested makes
 * the backend wait for it) between two reads of the host clock. */
static int run_timed(kiln_ops *o, const char *label, op_class *c, kiln_buffer *const *slots, const size_t *offs,
                     kiln_err *e)
{
    double ns = -1, t0 = kiln_now_s();
    int rc = kiln_variant_run_at(&c->v, slots, offs, &ns, e);
    double t1 = kiln_now_s();
    if (!rc)
        kiln_profile_op(o->prof, label ? label : c->kernel->name, t0, t1, ns,
                        c->kernel->bytes ? c->kernel->bytes(&c->v.shape) : 0);
    return rc;
}

int kiln_op(kiln_ops *o, const char *label, const kiln_kernel *k, const kiln_shape *s, const kiln_shape *lookup,
            kiln_buffer *const *slots, const size_t *offs, kiln_err *e)
{
    op_class *c = NULL;
    int frc = find_class(o, k, s, lookup ? lookup : s, &c, e);
    if (frc)
        return frc;
    if (!shape_equal(&c->v.shape, s)) {
        kiln_err e2 = {0};
        int rc = kiln_variant_reshape(&c->v, s, &e2);
        kiln_config def;
        kiln_config_default_for(k, &o->dev->fp, s, &def);
        if (rc == KILN_E_INVALID && !kiln_config_equal(k, &c->v.cfg, &def)) {
            /* the tuned config (or the device default of another shape) does
             * not fit this shape: this shape's default from now on */
            c->v.cfg = def;
            c->is_default = 1;
            c->level = KILN_MATCH_DEFAULT;
            rc = kiln_variant_reshape(&c->v, s, e);
        } else if (rc && e) {
            *e = e2;
        }
        if (rc)
            return rc;
    }
    if (o->prof)
        return run_timed(o, label, c, slots, offs, e);
    return kiln_variant_run_at(&c->v, slots, offs, NULL, e);
}

void kiln_ops_match_counts(const kiln_ops *o, int counts[KILN_MATCH_DEFAULT + 1])
{
    memset(counts, 0, sizeof(int) * (KILN_MATCH_DEFAULT + 1));
    for (int i = 0; i < o->n; i++)
        counts[o->cls[i].level]++;
}
