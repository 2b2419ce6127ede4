/* devices/vulkan/vk_internal.h - private to the Vulkan backend.
 *
 * The backend is split by concern:
 *   vk_loader.c    dlopen("libvulkan.so.1"), vkGetInstanceProcAddr, the function table, VkResult names
 *   vk_device.c    instance, physical devices, fingerprint, queue, probe/open/destroy, the ops table
 *   vk_memory.c    buffers, staging, write/read/fill/copy
 *   vk_pipeline.c  shaderc GLSL -> SPIR-V, shader modules, layouts, compute pipelines, compile_only
 *   vk_launch.c    command buffer, barriers, descriptor pools, push constants, dispatch, timestamps
 *
 * Kernel convention (every GLSL source for this backend follows it)
 * -----------------------------------------------------------------
 *   - The source arrives with kernels/common/prelude.comp already prepended
 *     (#version 450, the subgroup extensions, and
 *     `layout(local_size_x = LOCAL_X, local_size_y = LOCAL_Y, local_size_z = LOCAL_Z) in;`).
 *     The entry point is always main().
 *   - Every desc->defines[i] becomes a preprocessor macro (`#define NAME value`,
 *     value as a decimal integer). LOCAL_X/LOCAL_Y/LOCAL_Z come from desc->local
 *     (0 counts as 1) unless the defines already name them.
 *   - Arguments follow the program's signature string. The i-th 'b' argument
 *     (counting buffers only, from 0) is bound to
 *         layout(std430, set = 0, binding = i) buffer ...;
 *     Scalars ('i' int, 'u' uint, 'f' float, 4 bytes each) are packed in
 *     signature order, with no gaps, into one push-constant block:
 *         layout(push_constant) uniform PC { uint m; uint k; float eps; } pc;
 *     e.g. signature "bbuf" = buffer binding 0, buffer binding 1,
 *     push constants { uint n; float alpha; }.
 *   - desc->subgroup != 0 requests that subgroup size (VK_EXT_subgroup_size_control
 *     or Vulkan 1.3); when the workgroup's x size is a multiple of it and the
 *     device supports computeFullSubgroups, subgroups are also required to be full.
 *     A size the device cannot guarantee is an error (KILN_E_INVALID).
 *   - Device features enabled when the device has them: shaderInt16/Int64/Float64,
 *     16-bit storage; on Vulkan 1.2 devices also 8-bit storage, shaderFloat16,
 *     shaderInt8 and the Vulkan memory model. SPIR-V targets Vulkan 1.2 on 1.2+
 *     devices, Vulkan 1.1 otherwise.
 *
 * Execution invariants
 *   - One queue, one command buffer being recorded at a time. launch() and
 *     copy() without a timer only record; a global compute|transfer memory
 *     barrier precedes every recorded command, so each command sees the
 *     previous one's writes (also across submissions: submission order).
 *   - vk_submit_wait() ends the command buffer with a barrier to the host,
 *     submits it, waits on the fence, and recycles descriptor pools. finish(),
 *     read(), write(), fill() and every timed call go through it first, so a
 *     host access never races queued work.
 *   - Timed calls (ns != NULL) run alone in their own submission between two
 *     vkCmdWriteTimestamp; on a queue without timestamps (timestampValidBits
 *     == 0) the host monotonic clock around submit+wait is used instead
 *     (vk_dev.host_timer says so).
 *   - Buffers are sized <= maxStorageBufferRange so they can always be bound
 *     whole; alloc() refuses larger ones with a clear message.
 *   - Nothing is global: the dlopen handle and every function pointer live in
 *     the vk_dev of each open device. Not thread-safe: one thread per device.
 */
#ifndef KILN_DEVICES_VULKAN_VK_INTERNAL_H
#define KILN_DEVICES_VULKAN_VK_INTERNAL_H

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan.h>

#include <shaderc/shaderc.h>

#include "devices/device.h"

/* Functions fetched with vkGetInstanceProcAddr(NULL, ...). */
#define VK_GLOBAL_FNS(X)                                                                                     \
    X(vkCreateInstance)                                                                                      \
    X(vkEnumerateInstanceExtensionProperties)

/* Functions fetched with vkGetInstanceProcAddr(instance, ...). */
#define VK_INSTANCE_FNS(X)                                                                                   \
    X(vkDestroyInstance)                                                                                     \
    X(vkEnumeratePhysicalDevices)                                                                            \
    X(vkGetPhysicalDeviceProperties)                                                                         \
    X(vkGetPhysicalDeviceProperties2)                                                                        \
    X(vkGetPhysicalDeviceFeatures2)                                                                          \
    X(vkGetPhysicalDeviceQueueFamilyProperties)                                                              \
    X(vkGetPhysicalDeviceMemoryProperties)                                                                   \
    X(vkEnumerateDeviceExtensionProperties)                                                                  \
    X(vkCreateDevice)                                                                                        \
    X(vkGetDeviceProcAddr)

/* Functions fetched with vkGetDeviceProcAddr(device, ...). */
#define VK_DEVICE_FNS(X)                                                                                     \
    X(vkDestroyDevice)                                                                                       \
    X(vkGetDeviceQueue)                                                                                      \
    X(vkDeviceWaitIdle)                                                                                      \
    X(vkQueueSubmit)                                                                                         \
    X(vkCreateBuffer)                                                                                        \
    X(vkDestroyBuffer)                                                                                       \
    X(vkGetBufferMemoryRequirements)                                                                         \
    X(vkAllocateMemory)                                                                                      \
    X(vkFreeMemory)                                                                                          \
    X(vkBindBufferMemory)                                                                                    \
    X(vkMapMemory)                                                                                           \
    X(vkUnmapMemory)                                                                                         \
    X(vkInvalidateMappedMemoryRanges)                                                                        \
    X(vkCreateShaderModule)                                                                                  \
    X(vkDestroyShaderModule)                                                                                 \
    X(vkCreateDescriptorSetLayout)                                                                           \
    X(vkDestroyDescriptorSetLayout)                                                                          \
    X(vkCreatePipelineLayout)                                                                                \
    X(vkDestroyPipelineLayout)                                                                               \
    X(vkCreateComputePipelines)                                                                              \
    X(vkDestroyPipeline)                                                                                     \
    X(vkCreateDescriptorPool)                                                                                \
    X(vkDestroyDescriptorPool)                                                                               \
    X(vkResetDescriptorPool)                                                                                 \
    X(vkAllocateDescriptorSets)                                                                              \
    X(vkUpdateDescriptorSets)                                                                                \
    X(vkCreateCommandPool)                                                                                   \
    X(vkDestroyCommandPool)                                                                                  \
    X(vkAllocateCommandBuffers)                                                                              \
    X(vkBeginCommandBuffer)                                                                                  \
    X(vkEndCommandBuffer)                                                                                    \
    X(vkResetCommandBuffer)                                                                                  \
    X(vkCreateFence)                                                                                         \
    X(vkDestroyFence)                                                                                        \
    X(vkWaitForFences)                                                                                       \
    X(vkResetFences)                                                                                         \
    X(vkCreateQueryPool)                                                                                     \
    X(vkDestroyQueryPool)                                                                                    \
    X(vkGetQueryPoolResults)                                                                                 \
    X(vkCmdBindPipeline)                                                                                     \
    X(vkCmdBindDescriptorSets)                                                                               \
    X(vkCmdPushConstants)                                                                                    \
    X(vkCmdDispatch)                                                                                         \
    X(vkCmdPipelineBarrier)                                                                                  \
    X(vkCmdCopyBuffer)                                                                                       \
    X(vkCmdFillBuffer)                                                                                       \
    X(vkCmdWriteTimestamp)                                                                                   \
    X(vkCmdResetQueryPool)

/* The loader and every entry point we call. Filled in three stages:
 * vk_loader_open (global), vk_loader_instance, vk_loader_device. */
typedef struct vk_fns {
    void *lib; /* dlopen handle */
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    PFN_vkEnumerateInstanceVersion vkEnumerateInstanceVersion; /* NULL on a Vulkan 1.0 loader */
#define VK_FN_FIELD(name) PFN_##name name;
    VK_GLOBAL_FNS(VK_FN_FIELD)
    VK_INSTANCE_FNS(VK_FN_FIELD)
    VK_DEVICE_FNS(VK_FN_FIELD)
#undef VK_FN_FIELD
} vk_fns;

/* vk_loader.c */
int vk_loader_open(vk_fns *f, char *why, size_t n);                      /* 0, or fills why */
int vk_loader_instance(vk_fns *f, VkInstance inst, char *why, size_t n);  /* 0, or fills why */
int vk_loader_device(vk_fns *f, VkDevice dev, char *why, size_t n);       /* 0, or fills why */
void vk_loader_close(vk_fns *f);
const char *vk_result_name(VkResult r);

#define VK_MAX_POOLS 64        /* descriptor pools, each VK_SETS_PER_POOL sets */
#define VK_SETS_PER_POOL 256
#define VK_AUTO_FLUSH 4096     /* recorded commands before an automatic submit */
#define VK_STAGING_MAX ((VkDeviceSize)64 << 20)

/* One open device (d->impl). base comes first so a kiln_device* is a vk_dev*. */
typedef struct vk_dev {
    kiln_device base;
    char who[160];             /* "vulkan:0 (llvmpipe (LLVM 15.0.6, 256 bits))", for messages */
    vk_fns fn;
    VkInstance instance;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t queue_family;
    uint32_t api_version;      /* the device's apiVersion */
    shaderc_env_version target_env;
    shaderc_compiler_t compiler;

    VkPhysicalDeviceLimits limits;
    VkPhysicalDeviceMemoryProperties mem_props;
    VkDeviceSize max_alloc;    /* maxMemoryAllocationSize (0: unknown) */
    uint32_t sg_control;       /* subgroupSizeControl enabled */
    uint32_t sg_full;          /* computeFullSubgroups enabled */
    uint32_t sg_min, sg_max, sg_stages;
    uint32_t sg_max_wg_subgroups; /* maxComputeWorkgroupSubgroups (0: unknown) */

    uint32_t storage_type;     /* memory type for storage buffers */
    int direct;                /* storage_type is HOST_VISIBLE|HOST_COHERENT: map and memcpy
                                  ($KILN_VK_FORCE_STAGING=1 turns it off, so tests cover staging) */
    uint32_t staging_type;     /* HOST_VISIBLE|HOST_COHERENT, preferably CACHED */
    VkBuffer staging;
    VkDeviceMemory staging_mem;
    VkDeviceSize staging_size;
    VkDeviceSize staging_max;  /* VK_STAGING_MAX, or $KILN_VK_STAGING_MAX (tests: force chunking) */
    void *staging_map;

    VkCommandPool cmd_pool;
    VkCommandBuffer cmd;
    VkFence fence;
    int recording;             /* cmd is between begin and end */
    uint32_t n_recorded;       /* commands recorded since the last submit */

    VkDescriptorPool pools[VK_MAX_POOLS];
    int n_pools;
    int cur_pool;

    VkQueryPool timestamps;    /* 2 queries; VK_NULL_HANDLE when host_timer */
    int host_timer;            /* queue has no timestamps: timed calls use the host clock */
    uint64_t ts_mask;          /* timestampValidBits mask */
    double ts_period;          /* ns per tick */

    int n_buffers;             /* live buffers and programs (leak check at destroy) */
    int n_programs;
} vk_dev;

struct kiln_buffer {
    vk_dev *owner;
    VkBuffer buf;
    VkDeviceMemory mem;
    size_t size;               /* bytes asked for */
    VkDeviceSize alloc_size;   /* size of the VkBuffer (>= size, multiple of 4) */
    void *map;                 /* direct path: persistent mapping */
};

struct kiln_program {
    vk_dev *owner;
    char kernel[64];
    char signature[KILN_MAX_ARGS + 1];
    int n_bufs, n_scalars;
    uint32_t local[3];
    size_t spv_bytes;
    VkShaderModule module;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
};

static inline vk_dev *vk_of(kiln_device *d) { return (vk_dev *)d->impl; }

/* Fails with a VkResult: "vulkan:0 (name): <what>: VK_ERROR_...". Maps
 * out-of-memory results to KILN_E_NOMEM, everything else to `code`. */
int vk_fail(vk_dev *vk, kiln_err *e, int code, VkResult r, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* vk_memory.c */
kiln_buffer *vk_alloc(kiln_device *d, size_t bytes, kiln_err *e);
void vk_free(kiln_device *d, kiln_buffer *b);
int vk_write(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e);
int vk_read(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e);
int vk_fill(kiln_device *d, kiln_buffer *b, uint8_t byte, size_t n, kiln_err *e);
int vk_copy(kiln_device *d, kiln_buffer *dst, kiln_buffer *src, size_t n, double *ns, kiln_err *e);
int vk_memory_init(vk_dev *vk, kiln_err *e);  /* picks memory types */
void vk_memory_destroy(vk_dev *vk);           /* frees the staging buffer */

/* vk_pipeline.c */
kiln_program *vk_build(kiln_device *d, const kiln_program_desc *desc, kiln_err *e);
void vk_release(kiln_device *d, kiln_program *p);
int vk_compile_only(const kiln_program_desc *desc, const char *arch, size_t *out_bytes, kiln_err *e);

/* vk_launch.c */
int vk_launch(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args, double *ns,
              kiln_err *e);
int vk_finish(kiln_device *d, kiln_err *e);
int vk_launch_init(vk_dev *vk, kiln_err *e);    /* command pool, fence, query pool */
void vk_launch_destroy(vk_dev *vk);
int vk_begin(vk_dev *vk, kiln_err *e);          /* make sure cmd is recording */
void vk_barrier(vk_dev *vk);                    /* compute|transfer -> compute|transfer */
int vk_submit_wait(vk_dev *vk, kiln_err *e);    /* submit what is recorded (if anything) and wait */
/* Runs `record` alone in one submission and returns its device time (ns). */
int vk_timed(vk_dev *vk, void (*record)(vk_dev *vk, void *ctx), void *ctx, double *ns, kiln_err *e);

#endif
