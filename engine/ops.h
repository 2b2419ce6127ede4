/* engine/ops.h - the engine's door to the kernel set: one call per op.
 *
 * An op call names a kernel, the shape it runs at and the shape to look its
 * config up by (the tuned shape class: attention's context bucket, a
 * prefill chunk size), and binds slot buffers with optional byte offsets.
 * The first call of a (kernel, lookup shape) pair looks the config up in the
 * tuning database for this device (falling back to the kernel's default),
 * builds the variant and remembers it; later calls re-plan it for the actual
 * shape (kernels/runner.h kiln_variant_reshape: no recompile unless the
 * defines change). A config that is not valid at the actual shape falls back
 * to the default config for that call class, and says so when verbose. */
#ifndef KILN_ENGINE_OPS_H
#define KILN_ENGINE_OPS_H

#include <stdio.h>

#include "db/db.h"
#include "engine/profile.h"
#include "kernels/runner.h"

typedef struct kiln_ops kiln_ops;

/* db may be NULL (defaults only); log != NULL prints one line per op class
 * (kernel, shape, matched level, config). */
int kiln_ops_new(kiln_ops **out, kiln_device *dev, kiln_db *db, FILE *log, kiln_err *e);
void kiln_ops_free(kiln_ops *o);
/* Times every later op into prof (NULL: off, the default). */
void kiln_ops_set_profile(kiln_ops *o, kiln_profile *prof);

/* Runs kernel k at shape s; lookup (may be NULL = s) picks the config.
 * label names the step for the profile ("attn_q", "rmsnorm"; NULL: the
 * kernel's name; static storage). offs may be NULL. Errors name the
 * kernel, shape and config. */
int kiln_op(kiln_ops *o, const char *label, const kiln_kernel *k, const kiln_shape *s, const kiln_shape *lookup,
            kiln_buffer *const *slots, const size_t *offs, kiln_err *e);

/* The row layout (gemv_int4's ilv) a matrix multiplied at gemv shape s should
 * be stored in: the ilv of the config the ops will choose for s on dev (the
 * database's winner where it is valid for s, else the device default), so
 * repacking at load and the kernel that later reads the matrix agree.
 * ctx: a kiln_layout_ctx. Signature of kiln_layout_fn (engine/model.h). */
typedef struct kiln_layout_ctx {
    const kiln_fingerprint *fp; /* the device the matrices go to */
    kiln_db *db;
    FILE *log;  /* --verbose: one line per matrix shape and the layout chosen */
    uint64_t logged[32]; /* shapes already logged (hashes of their keys) */
    int n_logged;
} kiln_layout_ctx;
int kiln_engine_layout(void *ctx, const kiln_shape *s, int *gemv_f32);

/* How the configs were chosen so far: counts per kiln_match_level. */
void kiln_ops_match_counts(const kiln_ops *o, int counts[KILN_MATCH_DEFAULT + 1]);

#endif
