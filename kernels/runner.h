/* kernels/runner.h - turn (device, kernel, shape, config) into compiled
 * programs, run them, and verify them against the reference.
 *
 * This is the shared machinery of `kiln check`, the tuner, the benchmarks and
 * the engine. A variant owns its programs and scratch buffers; slot buffers
 * are bound per run, so one variant can run over rotating input copies (tuner)
 * or over the engine's weights. A program cache (owned by the caller) lets many
 * variants with the same source+defines share one compiled program. */
#ifndef KILN_KERNELS_RUNNER_H
#define KILN_KERNELS_RUNNER_H

#include "kernels/kernel.h"

typedef struct kiln_progcache kiln_progcache;

kiln_progcache *kiln_progcache_new(kiln_device *d);
void kiln_progcache_free(kiln_progcache *c); /* releases every program */

typedef struct kiln_variant {
    kiln_device *dev;
    const kiln_kernel *kernel;
    kiln_shape shape;
    kiln_config cfg;
    kiln_plan plan;
    kiln_program *prog[KILN_MAX_STEPS];
    kiln_buffer *scratch[KILN_MAX_SCRATCH];
    size_t scratch_cap[KILN_MAX_SCRATCH];
    kiln_progcache *cache;   /* not owned; programs owned by it when set */
} kiln_variant;

/* Flags for kiln_variant_build. */
enum {
    KILN_BUILD_TEST_BREAK = 1 << 0, /* add KILN_TEST_BREAK=1: sources plant a wrong index (tests only) */
    KILN_BUILD_TEST_CRASH = 1 << 1, /* add KILN_TEST_CRASH=1: sources crash (tests only) */
    KILN_BUILD_TEST_HANG = 1 << 2,  /* add KILN_TEST_HANG=1: sources never finish (tests only) */
};

/* Validates the config against the device, plans and compiles. Errors name
 * the kernel, device, shape and config. cache may be NULL. */
int kiln_variant_build(kiln_variant *v, kiln_device *d, const kiln_kernel *k, const kiln_shape *s,
                       const kiln_config *c, unsigned flags, kiln_progcache *cache, kiln_err *e);
void kiln_variant_release(kiln_variant *v);

/* Re-plans an existing variant for another shape with the same config (the
 * engine: context length and token counts change every step). Programs come
 * from the cache (a compile only when the defines change), scratch grows when
 * needed. Fails (variant unchanged) if the config is not valid there. */
int kiln_variant_reshape(kiln_variant *v, const kiln_shape *s, kiln_err *e);

/* Queue all steps with slots[i] bound to slot i. ns != NULL: each step runs
 * synchronously and *ns is the sum of their device times. */
int kiln_variant_run(kiln_variant *v, kiln_buffer *const *slots, double *ns, kiln_err *e);
/* Same, slot i bound from byte offset offs[i] (offs may be NULL). */
int kiln_variant_run_at(kiln_variant *v, kiln_buffer *const *slots, const size_t *offs, double *ns, kiln_err *e);

/* Device copies of a problem's buffers (one per slot). */
typedef struct kiln_problem_dev {
    kiln_device *dev;
    int n;
    kiln_buffer *buf[KILN_MAX_BUFS];
} kiln_problem_dev;

/* Allocates and uploads IN/INOUT contents; OUT buffers are poisoned (0xFF). */
int kiln_problem_upload(kiln_device *d, const kiln_problem *p, kiln_problem_dev *pd, kiln_err *e);
/* Re-uploads inputs and re-poisons outputs (before each verification run). */
int kiln_problem_reset(const kiln_problem *p, kiln_problem_dev *pd, kiln_err *e);
void kiln_problem_dev_free(kiln_problem_dev *pd);

typedef struct kiln_verify_result {
    int ok;              /* every output within budget and fully written */
    double err;          /* worst normalized error over the outputs */
    double budget;       /* the budget of the worst output */
    int worst_buf;       /* slot with the worst error, -1 if none */
    size_t unwritten;    /* output elements still holding the poison */
    size_t mismatches;   /* KILN_CMP_EXACT bytes/elements that differ */
    size_t first_bad;    /* element index of the first wrong element */
    char detail[256];    /* human readable: "y[17]: got 1.5 want 0.25" */
} kiln_verify_result;

/* Compares downloaded outputs with the reference (host side only). */
void kiln_compare_outputs(const kiln_problem *p, void *const *got, kiln_verify_result *r);

/* Resets pd, runs v, downloads and compares. Returns 0 when the run itself
 * worked (r->ok tells correctness), or the error of the failed run. */
int kiln_verify(kiln_variant *v, const kiln_problem *p, kiln_problem_dev *pd, kiln_verify_result *r, kiln_err *e);

/* Config c for shape s, checked on d before it is trusted (a winner borrowed
 * from a similar device): valid here, builds, and one run on the kernel's
 * random problem (seed) matches the reference. 1 verified; 0 not, why says
 * what failed; < 0 (minus a KILN_E_* code) when the device itself failed. */
int kiln_config_verify_on(kiln_device *d, const kiln_kernel *k, const kiln_shape *s, const kiln_config *c,
                          uint64_t seed, char *why, size_t n, kiln_err *e);

#endif
