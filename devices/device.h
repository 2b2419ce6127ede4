/* devices/device.h - one interface over the cpu, opencl, vulkan and cuda backends.
 *
 * A backend finds its driver at run time (dlopen), so the same binary runs on
 * any machine and reports which backends are unavailable and why. A device is
 * a struct with a vtable (kiln_device_ops) in the style of ggml-backend: each
 * backend fills the table; callers never see backend types.
 *
 * Execution model (CUDA-like, the same on every backend):
 *   - a program is one entry point built from source + integer defines
 *     (schedule parameters) with a workgroup size fixed at build time;
 *   - launch(grid) runs grid[0]*grid[1]*grid[2] workgroups of desc.local
 *     threads; arguments follow the program's signature string;
 *   - launches are queued in order; each launch sees the results of the
 *     previous one (backends insert barriers); finish() waits for all;
 *   - launch(..., &ns) is synchronous and returns the device time of that
 *     launch in ns from the device's own timer (CUDA events, Vulkan timestamp
 *     queries, OpenCL profiling events, CPU monotonic clock).
 *
 * Invariants: buffers and programs belong to the device that made them and
 * are released before it is closed. Nothing here is global: two devices of
 * the same backend are independent. */
#ifndef KILN_DEVICES_DEVICE_H
#define KILN_DEVICES_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

typedef enum kiln_backend_kind {
    KILN_CPU = 0,
    KILN_OPENCL = 1,
    KILN_VULKAN = 2,
    KILN_CUDA = 3,
    KILN_BACKEND_COUNT
} kiln_backend_kind;

const char *kiln_backend_name(kiln_backend_kind k); /* "cpu", "opencl", ... */
/* Parse "cpu" | "opencl" | "vulkan" | "cuda"; returns 0 or KILN_E_INVALID. */
int kiln_backend_parse(const char *s, kiln_backend_kind *out);

/* What identifies a device for tuning results. Strings are NUL-terminated,
 * truncated if needed. Zero means "unknown" for numeric fields. */
typedef struct kiln_fingerprint {
    kiln_backend_kind backend;
    char vendor[64];           /* "NVIDIA", "Mesa", "Portable Computing Language", "GenuineIntel" */
    uint32_t vendor_id;        /* PCI vendor id where known */
    uint32_t device_id;        /* PCI device id where known */
    char name[128];            /* "llvmpipe (LLVM 15.0.6, 256 bits)" */
    char arch[64];             /* architecture family: "sm_90", "avx512", "llvmpipe" */
    char driver_version[64];
    char compiler_version[64]; /* NVRTC, shaderc, OpenCL C, cc versions */
    uint32_t compute_units;
    uint32_t subgroup_size;    /* preferred / default; 1 if none */
    uint32_t subgroup_min;     /* supported range (== subgroup_size if fixed) */
    uint32_t subgroup_max;
    uint32_t has_subgroup_ops; /* arithmetic subgroup reductions usable from kernels */
    uint32_t has_int64;        /* 64-bit integers usable from kernels (Vulkan: shaderInt64, enabled when present) */
    uint64_t local_mem_bytes;  /* shared / local memory per workgroup */
    uint32_t max_workgroup;    /* max threads per workgroup */
    uint64_t memory_bytes;     /* global memory */
    uint64_t max_buffer_bytes; /* largest buffer one allocation may hold (Vulkan: maxStorageBufferRange and
                                * maxMemoryAllocationSize, OpenCL: CL_DEVICE_MAX_MEM_ALLOC_SIZE); 0: no limit */
    uint64_t llc_bytes;        /* last-level cache size if known (for buffer rotation) */
    uint32_t offset_align;     /* byte offsets of buffer arguments (kiln_arg.off) must be multiples of this */
    uint32_t cpu_device;       /* the driver runs kernels on CPU cores (lavapipe, PoCL; the cpu backend):
                                * invocations share SIMD lanes, so schedules that suit GPUs may not */
    uint32_t no_f16;           /* 1: no half-precision arithmetic (a limits override, devices/limits.h); no config
                                * needs it so far: f16 data is read with vload_half / unpackHalf2x16 */
    uint32_t no_int8;          /* 1: no int8 dot products: configs that quantize activations (act 1) are invalid */
    double copy_gbps;          /* measured device-to-device copy bandwidth, 0 until measured */
    double read_gbps;          /* measured read bandwidth (a reduction: what a gemv's weight stream can reach),
                                * 0 until measured */
} kiln_fingerprint;

/* One line, stable order, used as the database identity of a device. */
void kiln_fingerprint_key(const kiln_fingerprint *fp, char *buf, size_t n);

typedef struct kiln_buffer kiln_buffer;   /* backend-defined */
typedef struct kiln_program kiln_program; /* backend-defined */

typedef enum kiln_arg_kind {
    KILN_ARG_BUF = 'b',
    KILN_ARG_I32 = 'i',
    KILN_ARG_U32 = 'u',
    KILN_ARG_F32 = 'f',
} kiln_arg_kind;

typedef struct kiln_arg {
    kiln_arg_kind kind;
    union {
        kiln_buffer *buf;
        int32_t i32;
        uint32_t u32;
        float f32;
    };
    /* KILN_ARG_BUF: the kernel sees the buffer from this byte offset on (a
     * multiple of fp.offset_align), so one token's rows of a batch can be
     * bound without copies. */
    size_t off;
} kiln_arg;

#define KILN_MAX_ARGS 16
#define KILN_MAX_DEFINES 32

typedef struct kiln_define {
    const char *name; /* a C identifier, e.g. "WG_SIZE" */
    long long value;
} kiln_define;

/* Looks a define up by name; returns fallback when absent. */
long long kiln_define_get(const kiln_define *defs, int n, const char *name, long long fallback);

/* What the CPU backend passes to a CPU kernel. Buffers are host pointers. */
typedef struct kiln_cpu_launch {
    void *ptr[KILN_MAX_ARGS];       /* KILN_ARG_BUF args, by argument position */
    kiln_arg arg[KILN_MAX_ARGS];    /* every arg as passed (scalars read here) */
    int n_args;
    const kiln_define *defines;
    int n_defines;
    uint32_t grid[3];
    uint32_t local[3];
    uint32_t thread;                /* index of the worker thread running this chunk */
    uint32_t n_threads;
    unsigned isa;                   /* KILN_ISA_* bits the kernel may use (devices/cpu/cpu_isa.h) */
} kiln_cpu_launch;

/* A CPU kernel runs workgroups [wg_begin, wg_end) of the flattened grid
 * (x fastest). The CPU backend splits the grid over its worker threads. */
typedef void (*kiln_cpu_fn)(const kiln_cpu_launch *l, uint32_t wg_begin, uint32_t wg_end);

typedef struct kiln_program_desc {
    const char *kernel;    /* for messages: "gemv_int4" */
    const char *entry;     /* OpenCL/CUDA function name; GLSL always uses main() */
    const char *source;    /* backend source text (OpenCL C, GLSL 450, CUDA C); NULL for cpu */
    kiln_cpu_fn cpu_fn;    /* cpu backend only */
    const char *signature; /* one char per argument: 'b' buffer, 'i' i32, 'u' u32, 'f' f32 */
    const kiln_define *defines;
    int n_defines;
    uint32_t local[3];     /* workgroup size; also defined as LOCAL_X/LOCAL_Y/LOCAL_Z */
    uint32_t subgroup;     /* required subgroup size, 0 = device default (Vulkan/CUDA hints) */
    uint32_t cpu_threads;  /* cpu: worker threads to use, 0 = all */
} kiln_program_desc;

typedef struct kiln_device kiln_device;

typedef struct kiln_device_ops {
    void (*destroy)(kiln_device *d);                                        /* free impl (buffers/programs already released) */
    kiln_buffer *(*alloc)(kiln_device *d, size_t bytes, kiln_err *e);       /* device memory, contents undefined */
    void (*free)(kiln_device *d, kiln_buffer *b);                           /* NULL is a no-op */
    int (*write)(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e); /* host -> device, blocking */
    int (*read)(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e);        /* device -> host, blocking, after queued work */
    int (*fill)(kiln_device *d, kiln_buffer *b, uint8_t byte, size_t n, kiln_err *e);                 /* memset n bytes, blocking */
    int (*copy)(kiln_device *d, kiln_buffer *dst, kiln_buffer *src, size_t n, double *ns, kiln_err *e); /* device copy; ns != NULL: synchronous, device-timed */
    kiln_program *(*build)(kiln_device *d, const kiln_program_desc *desc, kiln_err *e); /* compile; the log goes into e */
    void (*release)(kiln_device *d, kiln_program *p);                       /* NULL is a no-op */
    int (*launch)(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args,
                  double *ns, kiln_err *e);                                 /* queue; ns != NULL: wait and time it */
    int (*finish)(kiln_device *d, kiln_err *e);                             /* wait for all queued work */
    int (*set_threads)(kiln_device *d, uint32_t n, kiln_err *e);            /* (optional) host threads later launches may use, 0 = all (cpu) */
    void *(*host_ptr)(kiln_device *d, kiln_buffer *b);                      /* (optional) the buffer's bytes, for the
                                                                             * host to fill in place (cpu: no copy) */
} kiln_device_ops;

struct kiln_device {
    const kiln_device_ops *ops;
    kiln_backend_kind backend;
    int index;              /* within its backend */
    kiln_fingerprint fp;
    void *impl;             /* backend state */
};

/* What a backend says about itself on this machine. */
typedef struct kiln_backend_status {
    kiln_backend_kind kind;
    int compiled;           /* built into this binary (meson option) */
    int available;          /* driver found and at least one device */
    int n_devices;
    char reason[512];       /* why unavailable ("libOpenCL.so.1: cannot open shared object file") */
} kiln_backend_status;

/* Each backend exports one of these (devices/<backend>/). */
typedef struct kiln_backend_impl {
    kiln_backend_kind kind;
    int (*probe)(kiln_backend_status *st);                            /* dlopen + count; never fails hard */
    int (*open)(int index, kiln_device **out, kiln_err *e);           /* opens device `index` */
    /* (optional) compile a program without a device, e.g. NVRTC or shaderc,
     * for CI compile checks; writes the target code size into *out_bytes */
    int (*compile_only)(const kiln_program_desc *desc, const char *arch, size_t *out_bytes, kiln_err *e);
} kiln_backend_impl;

/* The table of backends compiled into this binary (NULL where not built). */
const kiln_backend_impl *kiln_backend_get(kiln_backend_kind k);

void kiln_backend_probe(kiln_backend_kind k, kiln_backend_status *st);
int kiln_device_open(kiln_backend_kind k, int index, kiln_device **out, kiln_err *e);
void kiln_device_close(kiln_device *d);

/* Select by spec: "vulkan" (first device), "vulkan:1", or a case-insensitive
 * substring of "backend name" ("llvmpipe", "pocl"). */
int kiln_device_select(const char *spec, kiln_device **out, kiln_err *e);

/* Measures device-to-device copy bandwidth (GB/s, counting read+write bytes)
 * with the device timer: buffer pairs holding twice the LLC in all (split
 * where one buffer cannot be that large), warm-up, median of 9 passes.
 * Stores it in d->fp.copy_gbps and returns it via *gbps. */
int kiln_measure_copy_bandwidth(kiln_device *d, double *gbps, kiln_err *e);

/* Measures read bandwidth (GB/s of bytes read) with the device timer: a
 * reduction kernel (devices/read_bw.{cl,comp,cu}, the cpu backend's AVX-512 /
 * AVX2 sum on its pool) over buffers holding twice the LLC in all (as the
 * copy measurement), each thread summing 16-byte loads and each workgroup
 * writing one value; the sums are checked against the host's, so a probe
 * that skips data cannot look fast. GPU-style backends screen the access
 * patterns (kiln_read_bw_program) and time the fastest: median of 9 passes.
 * Stores it in d->fp.read_gbps, returns it via *gbps (may be NULL) and, when
 * how != NULL, which pattern and geometry won ("runs of 8 lanes, 16 x 256 over
 * 4 x 128 MiB"). */
int kiln_measure_read_bandwidth(kiln_device *d, double *gbps, char *how, size_t how_n, kiln_err *e);

/* The read probe's program for a backend (compile checks, tests). layout 0:
 * consecutive threads on consecutive 16-byte vectors, grid-strided (GPU
 * coalescing); 1: each workgroup a contiguous block split into runs, one per
 * `lanes` consecutive threads reading it interleaved (1: a run per thread,
 * what PoCL streams; the SIMD width: what lavapipe streams). local and lanes
 * are powers of two, lanes <= local; the cpu backend ignores all three (its
 * workgroups sum contiguous blocks). defs must hold 2 entries.
 * KILN_E_UNAVAILABLE where the backend has no source. */
int kiln_read_bw_program(kiln_backend_kind k, int layout, uint32_t lanes, uint32_t local, kiln_program_desc *desc,
                         kiln_define *defs, kiln_err *e);

/* Convenience wrappers that keep call sites short. */
static inline kiln_buffer *kiln_alloc(kiln_device *d, size_t n, kiln_err *e) { return d->ops->alloc(d, n, e); }
static inline void kiln_free(kiln_device *d, kiln_buffer *b) { if (b) d->ops->free(d, b); }
static inline int kiln_write(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e)
{ return d->ops->write(d, b, off, src, n, e); }
static inline int kiln_read(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e)
{ return d->ops->read(d, b, off, dst, n, e); }
static inline int kiln_finish(kiln_device *d, kiln_err *e) { return d->ops->finish(d, e); }
/* The buffer's bytes if the host may write them directly (the cpu backend), else NULL: use kiln_write. */
static inline void *kiln_host_ptr(kiln_device *d, kiln_buffer *b) { return d->ops->host_ptr ? d->ops->host_ptr(d, b) : NULL; }

/* Caps the host threads the device's launches use (the cpu backend; a
 * program's own cap still applies). KILN_E_INVALID on backends whose threads
 * are not the host's. */
int kiln_device_set_threads(kiln_device *d, uint32_t n, kiln_err *e);

#endif
