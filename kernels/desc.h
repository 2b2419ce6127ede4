/* kernels/desc.h - declarative kernel descriptors.
 *
 * A kernel's host file used to write the same four functions every time:
 * shape lists (a put() per shape), config validity (the "GPU only" and
 * "wg <= device max" checks), problem setup (allocate each buffer, free on
 * failure) and the plan (source, entry, defines, grid, then the arguments
 * one kiln_plan_* call at a time). A descriptor states those as tables and
 * leaves the kernel only what is its own:
 *   - shapes: static lists per purpose (KILN_SHAPE_LIST);
 *   - parameters: kiln_param.flags (KILN_P_GPU, KILN_P_CPU, KILN_P_WG) for
 *     the common constraints, `check` for the kernel's own;
 *   - slots: name, role, comparison and budget per buffer, `sizes` for the
 *     bytes a shape needs (and which trailing slots it uses; a random layout
 *     drawn from the seed may decide them, as the batch kernels' page tables
 *     do), `fill` for the random inputs and the reference;
 *   - steps: source, entry, signature, constant defines and the arguments
 *     (slots, scratch, shape fields, constants, values computed by
 *     `launch`), `launch` for the grid, scratch sizes, any derived scalars
 *     and defines, and how many of the steps run (a combine step that only
 *     some configs need).
 * KILN_KERNEL_FROM_DESC turns a descriptor into the kiln_kernel every caller
 * uses (the callbacks become thin calls of the generic code in desc.c). */
#ifndef KILN_KERNELS_DESC_H
#define KILN_KERNELS_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"

/* A buffer slot as the problem declares it; bytes are set per shape. */
typedef struct kiln_slot {
    const char *name;
    kiln_buf_role role;
    kiln_cmp cmp;
    double tol;   /* budget for KILN_CMP_F32/F16 (fill may refine it per problem) */
    size_t bytes; /* 0 in the table; `sizes` sets it for a shape */
} kiln_slot;

/* Fields of kiln_shape an argument can pass (as i32). */
typedef enum kiln_shape_field {
    KILN_SF_M = 1, KILN_SF_K, KILN_SF_N, KILN_SF_QUANT, KILN_SF_GROUP, KILN_SF_HEADS, KILN_SF_KV_HEADS,
    KILN_SF_HEAD_DIM, KILN_SF_PAGE_SIZE, KILN_SF_CTX, KILN_SF_OP, KILN_SF_ACT, KILN_SF_ILV,
} kiln_shape_field;
int64_t kiln_shape_field_get(const kiln_shape *s, kiln_shape_field f);

typedef enum kiln_arg_src {
    KILN_A_END = 0,  /* end of the list */
    KILN_A_SLOT,     /* buffer slot a */
    KILN_A_SLOT_OR,  /* slot a where the shape uses it, else slot b (an unused binding) */
    KILN_A_SCRATCH,  /* scratch buffer a of the plan */
    KILN_A_SCRATCH_OR, /* scratch buffer a where the plan has it (launch set n_scratch > a), else slot b */
    KILN_A_SHAPE,    /* i32: shape field a */
    KILN_A_VAL,      /* i32: launch value a */
    KILN_A_FVAL,     /* f32: launch value a */
    KILN_A_F32,      /* f32: the constant f */
    KILN_A_I32,      /* i32: the constant a */
} kiln_arg_src;

typedef struct kiln_arg_desc {
    kiln_arg_src src;
    int a, b;
    float f;
} kiln_arg_desc;

#define KA_SLOT(i) {KILN_A_SLOT, (i), 0, 0}
#define KA_SLOT_OR(i, j) {KILN_A_SLOT_OR, (i), (j), 0}
#define KA_SCRATCH(i) {KILN_A_SCRATCH, (i), 0, 0}
#define KA_SCRATCH_OR(i, slot) {KILN_A_SCRATCH_OR, (i), (slot), 0}
#define KA_SHAPE(field) {KILN_A_SHAPE, KILN_SF_##field, 0, 0}
#define KA_VAL(i) {KILN_A_VAL, (i), 0, 0}
#define KA_FVAL(i) {KILN_A_FVAL, (i), 0, 0}
#define KA_F32(x) {KILN_A_F32, 0, 0, (x)}
#define KA_I32(x) {KILN_A_I32, (x), 0, 0}

#define KILN_STEP_DEFINES 4

/* One launch of the plan. entry runs on GPU backends, cpu_entry on the cpu
 * backend (KILN_ENTRY("x") names both: "x" and "x_cpu"). */
typedef struct kiln_step_desc {
    const char *source;
    const char *entry;
    const char *cpu_entry;
    const char *signature;
    /* Defines the step always has (variants of one source: BATCH=1), after
     * the config's; they end at the first NULL name. */
    kiln_define defines[KILN_STEP_DEFINES];
    kiln_arg_desc args[KILN_MAX_ARGS]; /* ends at the first KILN_A_END */
} kiln_step_desc;
#define KILN_ENTRY(name) .entry = name, .cpu_entry = name "_cpu"

/* What `launch` computes for the arguments besides the shape's own fields. */
typedef struct kiln_launch {
    int32_t val[8];
    float fval[4];
} kiln_launch;

typedef struct kiln_shape_list {
    const kiln_shape *v;
    int n;
} kiln_shape_list;
#define KILN_SHAPE_LIST(arr) {(arr), (int)(sizeof(arr) / sizeof((arr)[0]))}
/* kiln_kernel_desc.shapes from the arrays p_check, p_tune and p_quick */
#define KILN_SHAPES(p) {KILN_SHAPE_LIST(p##_check), KILN_SHAPE_LIST(p##_tune), KILN_SHAPE_LIST(p##_quick)}

typedef struct kiln_kernel_desc {
    const kiln_kernel *kernel; /* name, params (with their flags), n_slots */
    /* indexed by KILN_SHAPES_CHECK / _TUNE / _QUICK */
    kiln_shape_list shapes[3];
    /* 1 if the kernel handles shape s; else 0 and why. */
    int (*shape_ok)(const kiln_shape *s, char *why, size_t n);
    /* Optional: constraints between config, shape and device beyond the
     * parameter flags (checked after them). */
    int (*check)(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n);

    const kiln_slot *slots; /* kernel->n_slots of them, in problem order */
    /* Sets slot[i].bytes for shape s and data class cls (slot[] is a copy
     * of the table, whose role/cmp/tol it may adjust) and returns how many
     * slots s uses (the first ones; kernel->n_slots when all), or -1 when
     * it ran out of memory. Most kernels' sizes follow from the shape; where
     * they follow from a random layout (how many sequences a batch holds,
     * and so how long their page tables are), `sizes` draws it from `seed`
     * as `fill` will. The plan asks for `used` only (KA_SLOT_OR), seed 0. */
    int (*sizes)(const kiln_shape *s, int cls, uint64_t seed, kiln_slot *slot);
    /* The inputs (random, seeded) and the reference outputs of data class
     * cls into the allocated buffers. */
    int (*fill)(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e);

    /* Optional: what a plan needs of (s, c) where it is less than shape_ok
     * (NULL: shape_ok). */
    int (*plan_ok)(const kiln_shape *s, const kiln_config *c, char *why, size_t n);
    const kiln_step_desc *steps;
    int n_steps;
    /* Grid and local size of each step (source, entry, signature, the
     * config's and the step's defines are already set), scratch buffers,
     * extra defines, the values KA_VAL/KA_FVAL read; may lower out->n_steps
     * (the steps past it do not run: a combine step that only a split
     * config needs). */
    void (*launch)(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_launch *v);
    /* Optional, instead of steps + launch: a plan written by hand, for
     * kernels whose steps, entries and defines change with the config and
     * backend beyond what a step table says (gemv's layouts and int8 path). */
    int (*plan)(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e);
} kiln_kernel_desc;

/* The generic kernel callbacks over a descriptor. */
int kiln_desc_shapes(const kiln_kernel_desc *d, int which, kiln_shape *out, int max);
int kiln_desc_valid(const kiln_kernel_desc *d, const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp,
                    char *why, size_t n);
int kiln_desc_problem(const kiln_kernel_desc *d, kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed,
                      kiln_err *e);
int kiln_desc_plan(const kiln_kernel_desc *d, const kiln_shape *s, const kiln_config *c, kiln_backend_kind be,
                   kiln_plan *out, kiln_err *e);

/* For `check` hooks: whether a config's subgroup (warp) reduction with wg
 * threads per workgroup can run: subgroup ops, wg a multiple of the subgroup
 * size, not OpenCL (its C 1.2 sources have none), warps of 32 on CUDA (the
 * sources' shuffles assume them). 1 if so, else 0 and why. */
int kiln_subgroup_reduce_ok(const kiln_fingerprint *fp, int wg, char *why, size_t n);

/* A plan_ok for kernels whose plan checks nothing beyond config_valid. */
int kiln_plan_unchecked(const kiln_shape *s, const kiln_config *c, char *why, size_t n);

/* Grid helpers for launch hooks. 1D over `threads` in workgroups of wg,
 * folded into a 2D grid of at most 32768 wide (y/z limits are smaller than
 * x on CUDA/Vulkan; keep both modest). */
void kiln_grid_1d(kiln_plan_step *st, int64_t threads, int wg);
/* n workgroups of `local` threads along x. */
void kiln_grid_n(kiln_plan_step *st, int64_t n, uint32_t local);

/* Defines kiln_kernel_<id> over descriptor `desc` (declared before, static
 * const kiln_kernel_desc) with the other kiln_kernel fields given after it:
 *   KILN_KERNEL_FROM_DESC(silu_mul, silu_desc, .doc = "...", .params = ...); */
#define KILN_KERNEL_FROM_DESC(id, desc, ...)                                                                         \
    static int id##_shapes_(int which, kiln_shape *out, int max) { return kiln_desc_shapes(&desc, which, out, max); } \
    static int id##_valid_(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why,       \
                           size_t n)                                                                                 \
    {                                                                                                                \
        return kiln_desc_valid(&desc, s, c, fp, why, n);                                                             \
    }                                                                                                                \
    static int id##_problem_(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e)                      \
    {                                                                                                                \
        return kiln_desc_problem(&desc, p, s, 0, seed, e);                                                           \
    }                                                                                                                \
    static int id##_class_(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e)               \
    {                                                                                                                \
        return kiln_desc_problem(&desc, p, s, cls, seed, e);                                                         \
    }                                                                                                                \
    static int id##_plan_(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out,          \
                          kiln_err *e)                                                                               \
    {                                                                                                                \
        return kiln_desc_plan(&desc, s, c, be, out, e);                                                              \
    }                                                                                                                \
    const kiln_kernel kiln_kernel_##id = {.name = #id,                                                              \
                                          .shapes = id##_shapes_,                                                    \
                                          .config_valid = id##_valid_,                                               \
                                          .problem_init = id##_problem_,                                             \
                                          .problem_class = id##_class_,                                              \
                                          .plan = id##_plan_,                                                        \
                                          __VA_ARGS__}

#endif
