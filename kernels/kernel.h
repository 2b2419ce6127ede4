/* kernels/kernel.h - what a kernel is: a reference, a schedule space and
 * per-backend sources, specialized by a config.
 *
 * A kernel (kiln_kernel) declares
 *   - its schedule space: typed parameters with discrete values and a default,
 *     plus a validity function that encodes the constraints between them and
 *     the limits read from the device fingerprint;
 *   - how to build a test problem for a shape: random inputs (never zeros),
 *     the reference outputs computed by plain C, and how to compare;
 *   - how to run on a backend: a plan of 1..KILN_MAX_STEPS launches (e.g.
 *     split-K = partial sums + reduce), each naming a source, the defines
 *     that specialize it, the grid, and its arguments as buffer slots and
 *     scalars.
 * Buffer slots are the kernel's documented buffer order (the problem's
 * bufs[] order); the engine binds its own buffers to the same slots.
 * Shape values reach sources as scalar arguments where possible, config
 * values as defines, so one compiled program serves many shapes. */
#ifndef KILN_KERNELS_KERNEL_H
#define KILN_KERNELS_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "devices/device.h"
#include "util/rng.h"

#define KILN_MAX_PARAMS 16
#define KILN_MAX_VALUES 16
#define KILN_MAX_BUFS 10
#define KILN_MAX_STEPS 4
#define KILN_MAX_SCRATCH 4

/* Weight/data formats (DESIGN section 4). Group size is separate. */
typedef enum kiln_quant {
    KILN_Q4F16_1 = 0, /* symmetric, w = (q - 7) * s, q in 0..14 */
    KILN_Q4_0 = 1,    /* w = (q - 8) * d */
    KILN_Q4_1 = 2,    /* w = q * d + m */
    KILN_Q8_0 = 3,    /* w = int8 * d */
    KILN_F16 = 4,
    KILN_F32 = 5,
    KILN_QUANT_COUNT
} kiln_quant;

const char *kiln_quant_name(int q);          /* "q4f16_1" ... */
int kiln_quant_parse(const char *s, int *q); /* 0 or KILN_E_INVALID */

typedef struct kiln_param {
    const char *name;   /* JSON / CLI name: "wg" */
    const char *define; /* the source's define: "WG" */
    const char *doc;
    int n_values;
    int values[KILN_MAX_VALUES];
    int def;           /* default value (one of values) */
    int flags;         /* KILN_P_*: constraints the generic validity check (kernels/desc.h) enforces */
} kiln_param;

/* kiln_param.flags */
enum {
    KILN_P_GPU = 1, /* a GPU schedule knob: the cpu backend keeps the default */
    KILN_P_CPU = 2, /* a cpu knob: GPU backends keep the default */
    KILN_P_WG = 4,  /* threads per workgroup: at most the device's max_workgroup (GPU) */
};

/* A config: v[i] is the value of kernel->params[i]. */
typedef struct kiln_config {
    int v[KILN_MAX_PARAMS];
} kiln_config;

/* A problem shape. Fields a kernel does not use stay 0. */
typedef struct kiln_shape {
    int64_t m;         /* gemv/gemm/dequant: output rows; elementwise: element count; norm/rope: rows (tokens) */
    int64_t k;         /* reduction dim (gemv, gemm, dequant columns); norm/rope: row width */
    int64_t n;         /* gemm: tokens in the batch */
    int32_t quant;     /* kiln_quant of the weights */
    int32_t group;     /* quantization group size (32 or 128) */
    int32_t heads, kv_heads, head_dim;
    int32_t page_size; /* paged KV cache page size (tokens) */
    int32_t ctx;       /* attention: context length (tokens already in the cache) */
    int32_t op;        /* kernel-specific operation selector (documented per kernel) */
    int32_t act;       /* gemv/gemm: activation precision the caller allows (kiln_act) */
    int32_t ilv;       /* matrix kernels: the weight layout the data is in (kernels/quant_ilv.h; 0 or 1
                        * row-major). gemv: 0 leaves it to the config (tuning), R > 0 requires ilv R */
} kiln_shape;

/* What a matrix kernel may do to its f32 activations (the user's --precision).
 * KILN_ACT_F32: x stays f32 (exact: greedy output equals a float64 forward).
 * KILN_ACT_Q8: configs may quantize x to int8 per block of 32 (one f32 scale
 * per block, round to nearest) and use integer dot products; their reference
 * quantizes x the same way. Which configs do is their `act` parameter. */
enum kiln_act { KILN_ACT_F32 = 0, KILN_ACT_Q8 = 1 };

typedef enum kiln_buf_role { KILN_IN = 0, KILN_OUT = 1, KILN_INOUT = 2 } kiln_buf_role;

typedef enum kiln_cmp {
    KILN_CMP_NONE = 0,  /* input only */
    KILN_CMP_F32,       /* normalized error: max|y-r| / max(rms(r), 1e-30) <= tol */
    KILN_CMP_F16,       /* same, elements are f16 */
    KILN_CMP_EXACT,     /* bytes must match exactly (int outputs, bit-exact dequant) */
} kiln_cmp;

typedef struct kiln_problem_buf {
    char name[32];
    kiln_buf_role role;
    size_t bytes;
    void *host;         /* IN/INOUT: initial contents (malloc'd, owned) */
    void *expect;       /* OUT/INOUT: reference result (malloc'd, owned) */
    kiln_cmp cmp;
    double tol;         /* budget for KILN_CMP_F32/F16 */
} kiln_problem_buf;

typedef struct kiln_problem {
    kiln_shape shape;
    int n_bufs;
    kiln_problem_buf bufs[KILN_MAX_BUFS];
} kiln_problem;

void kiln_problem_free(kiln_problem *p);
/* Adds a buffer; host/expect are allocated (uninitialized) per role. */
kiln_problem_buf *kiln_problem_add(kiln_problem *p, const char *name, kiln_buf_role role, size_t bytes,
                                   kiln_cmp cmp, double tol, kiln_err *e);

typedef enum kiln_plan_arg_kind {
    KILN_PA_SLOT = 's',    /* a kernel buffer slot */
    KILN_PA_SCRATCH = 'x', /* a scratch buffer of the plan */
    KILN_PA_I32 = 'i',
    KILN_PA_U32 = 'u',
    KILN_PA_F32 = 'f',
} kiln_plan_arg_kind;

typedef struct kiln_plan_arg {
    kiln_plan_arg_kind kind;
    union {
        int index; /* slot or scratch index */
        int32_t i32;
        uint32_t u32;
        float f32;
    };
} kiln_plan_arg;

typedef struct kiln_plan_step {
    const char *source;     /* source name: "gemv_int4" -> kernels/gemv_int4/gemv_int4.cl (OpenCL and CUDA) */
    const char *entry;      /* entry function (OpenCL/CUDA); Vulkan: the shader kernels/<k>/<entry>.comp;
                             * for the cpu backend: name in the cpu registry */
    const char *signature;  /* as kiln_program_desc.signature */
    kiln_define defines[KILN_MAX_DEFINES];
    int n_defines;
    uint32_t local[3];
    uint32_t grid[3];
    uint32_t cpu_threads;
    kiln_plan_arg args[KILN_MAX_ARGS];
    int n_args;
} kiln_plan_step;

typedef struct kiln_plan {
    int n_steps;
    kiln_plan_step steps[KILN_MAX_STEPS];
    int n_scratch;
    size_t scratch_bytes[KILN_MAX_SCRATCH];
} kiln_plan;

/* Helpers for plan writers. */
void kiln_plan_define(kiln_plan_step *s, const char *name, long long value);
void kiln_plan_slot(kiln_plan_step *s, int slot);
void kiln_plan_scratch(kiln_plan_step *s, int index);
void kiln_plan_i32(kiln_plan_step *s, int32_t v);
void kiln_plan_u32(kiln_plan_step *s, uint32_t v);
void kiln_plan_f32(kiln_plan_step *s, float v);

/* Which shape list to return. */
enum { KILN_SHAPES_CHECK = 0, /* real Llama shapes + odd ones, for kiln check */
       KILN_SHAPES_TUNE = 1,  /* default Llama decode shapes for tune */
       KILN_SHAPES_QUICK = 2  /* small shapes for fast tests */ };

typedef struct kiln_kernel {
    const char *name;
    const char *doc;
    const kiln_param *params;
    int n_params;
    int n_slots;                 /* buffer slots, in problem order */

    /* Shapes for a purpose; returns how many written (<= max). */
    int (*shapes)(int which, kiln_shape *out, int max);
    /* Canonical key for the database: "m4096.k4096.q4f16_1.g32". */
    void (*shape_key)(const kiln_shape *s, char *buf, size_t n);
    /* 1 if valid; else 0 and a reason in why ("wg 1024 > device max 256"). */
    int (*config_valid)(const kiln_shape *s, const kiln_config *c, const kiln_fingerprint *fp, char *why, size_t n);
    /* Random inputs (seeded), reference outputs, comparison budgets: the
     * problem every config of data class 0 is verified and timed on. */
    int (*problem_init)(kiln_problem *p, const kiln_shape *s, uint64_t seed, kiln_err *e);
    /* Optional: configs whose problem data differ (weights in another
     * layout, a reference that quantizes x as the kernel does) map to a
     * data class > 0 and get problem_class(cls) instead; the inputs are the
     * same random values, only their encoding and the reference differ.
     * NULL: one class. Use kiln_problem_make, not these hooks directly. */
    int (*data_class)(const kiln_shape *s, const kiln_config *c);
    int (*problem_class)(kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed, kiln_err *e);
    /* How to run config c for shape s on backend be. */
    int (*plan)(const kiln_shape *s, const kiln_config *c, kiln_backend_kind be, kiln_plan *out, kiln_err *e);
    /* Bytes the kernel must move (for GB/s) and useful flops. */
    double (*bytes)(const kiln_shape *s);
    double (*flops)(const kiln_shape *s);
    /* Optional: the default schedule on this device for shape s (NULL: any
     * shape), written over the space's defaults (gemv's row-per-invocation
     * layout on CPU drivers; the layout a matrix is already in). Where it
     * is not valid for a shape, the space's default is used. NULL: the
     * space's defaults everywhere. */
    void (*device_default)(const kiln_fingerprint *fp, const kiln_shape *s, kiln_config *c);
} kiln_kernel;

/* The data class of config c for shape s (0 when the kernel has one). */
int kiln_data_class(const kiln_kernel *k, const kiln_shape *s, const kiln_config *c);
/* The problem of data class cls: problem_init for 0, else problem_class. */
int kiln_problem_make(const kiln_kernel *k, kiln_problem *p, const kiln_shape *s, int cls, uint64_t seed,
                      kiln_err *e);

/* Parses "m=4096,k=4096,quant=q4f16_1,group=32" (fields: m k n quant group
 * heads kv_heads head_dim page_size ctx op) on top of *s. */
int kiln_shape_parse(const char *spec, kiln_shape *s, kiln_err *e);
/* kiln_shape_parse, then every field spec names must change k's shape key
 * (a field the kernel does not use is refused, naming it). */
int kiln_shape_parse_for(const struct kiln_kernel *k, const char *spec, kiln_shape *s, kiln_err *e);

/* Registry (kernels/registry.c). */
int kiln_kernel_count(void);
const kiln_kernel *kiln_kernel_at(int i);
const kiln_kernel *kiln_kernel_find(const char *name);

/* Config helpers (kernels/config.c). */
void kiln_config_default(const kiln_kernel *k, kiln_config *c);
/* The default schedule on a device for shape s: the baseline tuned speedups
 * are measured against, and what the engine runs when nothing tuned
 * matches. The kernel's device default where it is valid for s (s NULL: not
 * checked), else the space's default. */
void kiln_config_default_for(const kiln_kernel *k, const kiln_fingerprint *fp, const kiln_shape *s,
                             kiln_config *c);
int kiln_config_get(const kiln_kernel *k, const kiln_config *c, const char *param, int fallback);
void kiln_config_set(const kiln_kernel *k, kiln_config *c, const char *param, int value);
int kiln_config_equal(const kiln_kernel *k, const kiln_config *a, const kiln_config *b);
/* {"wg":64,"rows":4} - keys in parameter order. */
void kiln_config_to_json(const kiln_kernel *k, const kiln_config *c, char *buf, size_t n);
/* Missing keys take defaults; unknown keys or values outside the space fail. */
int kiln_config_from_json(const kiln_kernel *k, const char *json, kiln_config *c, kiln_err *e);
/* The space's corners: for each parameter its min and max with the others at
 * default. Returns how many distinct configs were written. */
int kiln_config_corners(const kiln_kernel *k, kiln_config *out, int max);
/* The configs `kiln check` verifies: the default, the corners, then
 * n_random valid configs drawn uniformly; duplicates and configs invalid for
 * (shape, device) removed. Writes at most max; returns how many. */
int kiln_config_pick(const kiln_kernel *k, const kiln_shape *s, const kiln_fingerprint *fp, int n_random,
                     kiln_rng *rng, kiln_config *out, int max);
/* Number of configs in the full cartesian space (before constraints). */
double kiln_config_space_size(const kiln_kernel *k);
/* Adds every parameter's define (param->define = value) to a plan step. */
void kiln_plan_config_defines(kiln_plan_step *s, const kiln_kernel *k, const kiln_config *c);

/* Embedded kernel sources (generated at build time from kernels/ *.cl, the one
 * source for OpenCL and CUDA, and *.comp, prefixed with kernels/common/prelude.<ext>).
 * NULL if the kernel has no source for that backend. The cpu backend resolves
 * entries in the cpu registry. */
const char *kiln_source_get(const char *source, kiln_backend_kind be);

/* Identity of a kernel's implementation on a backend, for the database:
 * a 64-bit FNV-1a hash (16 hex digits) of its schedule space (names, values,
 * defaults) and of every backend source its default plan uses (for the cpu
 * backend: the hash of its compiled-in sources, kernels/sources.h
 * kiln_cpu_source_hashes). A winner stored under another
 * hash is stale and is not used silently. */
void kiln_kernel_source_hash(const kiln_kernel *k, kiln_backend_kind be, char out[17]);
kiln_cpu_fn kiln_cpu_kernel_find(const char *entry);

#endif
