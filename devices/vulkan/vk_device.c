/* devices/vulkan/vk_device.c - instance, physical devices, fingerprint, queue,
 * probe/open/destroy, and the backend's ops table.
 *
 * Owns: the VkInstance and VkDevice of each open device, and the rule for
 * which physical devices count: Vulkan 1.1+ with a compute queue, numbered
 * in enumeration order (probe and open agree on the numbering). probe()
 * creates and destroys its own instance and never fails hard. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "devices/vulkan/vk_internal.h"
#include "kiln_config.h"

#define VK_MAX_PHYS 16

int vk_fail(vk_dev *vk, kiln_err *e, int code, VkResult r, const char *fmt, ...)
{
    char what[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY)
        code = KILN_E_NOMEM;
    return kiln_fail(e, code, "%s: %s: %s", vk ? vk->who : "vulkan", what, vk_result_name(r));
}

/* ---- instance and physical devices --------------------------------------- */

static int has_ext(const VkExtensionProperties *ext, uint32_t n, const char *name)
{
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(ext[i].extensionName, name) == 0)
            return 1;
    return 0;
}

/* Loads the loader and creates a 1.1+ instance. 0, or fills why. */
static int instance_create(vk_fns *f, VkInstance *inst, char *why, size_t n)
{
    *inst = VK_NULL_HANDLE;
    if (vk_loader_open(f, why, n))
        return -1;
    uint32_t loader_version = VK_API_VERSION_1_0;
    if (f->vkEnumerateInstanceVersion)
        f->vkEnumerateInstanceVersion(&loader_version);
    if (loader_version < VK_API_VERSION_1_1) {
        snprintf(why, n, "the Vulkan loader is version %u.%u; Kiln needs 1.1 or newer",
                 VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));
        vk_loader_close(f);
        return -1;
    }
    /* MoltenVK and other portability drivers only enumerate when asked. */
    uint32_t n_ext = 0;
    VkExtensionProperties *ext = NULL;
    if (f->vkEnumerateInstanceExtensionProperties(NULL, &n_ext, NULL) == VK_SUCCESS && n_ext) {
        ext = calloc(n_ext, sizeof *ext);
        if (ext && f->vkEnumerateInstanceExtensionProperties(NULL, &n_ext, ext) != VK_SUCCESS)
            n_ext = 0;
    }
    const char *enable[1];
    uint32_t n_enable = 0;
    VkInstanceCreateFlags flags = 0;
    if (ext && has_ext(ext, n_ext, "VK_KHR_portability_enumeration")) {
        enable[n_enable++] = "VK_KHR_portability_enumeration";
        flags |= 0x00000001; /* VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR */
    }
    free(ext);

    VkApplicationInfo app = {
        .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
        .pApplicationName = "kiln",
        .applicationVersion = 1,
        .pEngineName = "kiln",
        .engineVersion = 1,
        .apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : loader_version,
    };
    VkInstanceCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
        .flags = flags,
        .pApplicationInfo = &app,
        .enabledExtensionCount = n_enable,
        .ppEnabledExtensionNames = enable,
    };
    VkResult r = f->vkCreateInstance(&ci, NULL, inst);
    if (r != VK_SUCCESS) {
        snprintf(why, n, "vkCreateInstance (API %u.%u): %s%s", VK_API_VERSION_MAJOR(app.apiVersion),
                 VK_API_VERSION_MINOR(app.apiVersion), vk_result_name(r),
                 r == VK_ERROR_INCOMPATIBLE_DRIVER ? " (the loader found no Vulkan driver: install a GPU driver or "
                                                     "mesa-vulkan-drivers for lavapipe; check VK_DRIVER_FILES)"
                                                   : "");
        *inst = VK_NULL_HANDLE;
        vk_loader_close(f);
        return -1;
    }
    if (vk_loader_instance(f, *inst, why, n)) {
        PFN_vkDestroyInstance destroy = (PFN_vkDestroyInstance)f->vkGetInstanceProcAddr(*inst, "vkDestroyInstance");
        if (destroy)
            destroy(*inst, NULL);
        *inst = VK_NULL_HANDLE;
        vk_loader_close(f);
        return -1;
    }
    return 0;
}

static void instance_destroy(vk_fns *f, VkInstance inst)
{
    if (inst != VK_NULL_HANDLE && f->vkDestroyInstance)
        f->vkDestroyInstance(inst, NULL);
    vk_loader_close(f);
}

/* Index of a compute queue family (one with timestamps preferred), or -1. */
static int compute_family(const vk_fns *f, VkPhysicalDevice pd)
{
    VkQueueFamilyProperties qf[32];
    uint32_t n = 32;
    f->vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, qf);
    int best = -1;
    for (uint32_t i = 0; i < n; i++) {
        if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) || qf[i].queueCount == 0)
            continue;
        if (best < 0 || (qf[best].timestampValidBits == 0 && qf[i].timestampValidBits > 0))
            best = (int)i;
    }
    return best;
}

/* Usable physical devices (1.1+, compute queue) in enumeration order.
 * Returns the count (<= max) or -1 with why filled. */
static int usable_devices(const vk_fns *f, VkInstance inst, VkPhysicalDevice *out, int max, char *why, size_t n)
{
    VkPhysicalDevice all[VK_MAX_PHYS];
    uint32_t n_all = VK_MAX_PHYS;
    VkResult r = f->vkEnumeratePhysicalDevices(inst, &n_all, all);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
        snprintf(why, n, "vkEnumeratePhysicalDevices: %s", vk_result_name(r));
        return -1;
    }
    int count = 0;
    char skipped[256] = "";
    for (uint32_t i = 0; i < n_all; i++) {
        VkPhysicalDeviceProperties p;
        f->vkGetPhysicalDeviceProperties(all[i], &p);
        const char *bad = p.apiVersion < VK_API_VERSION_1_1 ? "Vulkan 1.0 only"
                          : compute_family(f, all[i]) < 0  ? "no compute queue"
                                                           : NULL;
        if (bad) {
            size_t l = strlen(skipped);
            snprintf(skipped + l, sizeof skipped - l, "%s%s: %s", l ? "; " : "", p.deviceName, bad);
            continue;
        }
        if (count < max)
            out[count] = all[i];
        count++;
    }
    if (count == 0)
        snprintf(why, n, "%s", n_all == 0 ? "the Vulkan loader found no physical device (no ICD installed?)" : skipped);
    return count < max ? count : max;
}

static int probe(kiln_backend_status *st)
{
    vk_fns f;
    VkInstance inst;
    if (instance_create(&f, &inst, st->reason, sizeof st->reason))
        return 0;
    VkPhysicalDevice pd[VK_MAX_PHYS];
    int n = usable_devices(&f, inst, pd, VK_MAX_PHYS, st->reason, sizeof st->reason);
    instance_destroy(&f, inst);
    st->n_devices = n > 0 ? n : 0;
    st->available = n > 0;
    return 0;
}

/* ---- fingerprint ---------------------------------------------------------- */

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x10DE: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x1022: return "AMD";
    case 0x8086: return "Intel";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x1010: return "Imagination";
    case 0x14E4: return "Broadcom";
    case 0x106B: return "Apple";
    case 0x19E5: return "Huawei";
    case 0x1AE0: return "Google";
    case 0x10001: return "Vivante";
    case 0x10002: return "VeriSilicon";
    case 0x10003: return "Kazan";
    case 0x10004: return "Codeplay";
    case 0x10005: return "Mesa";
    case 0x10006: return "PoCL";
    case 0x10007: return "MobileEye";
    default: return NULL;
    }
}

static const char *type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static void decode_driver_version(uint32_t vendor, uint32_t v, char *buf, size_t n)
{
    if (vendor == 0x10DE)
        snprintf(buf, n, "%u.%u.%u.%u", (v >> 22) & 0x3ff, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
    else if (vendor == 0x8086)
        snprintf(buf, n, "%u.%u", v >> 14, v & 0x3fff);
    else
        snprintf(buf, n, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

/* Fills vk->base.fp and the limits vk keeps; needs the instance functions. */
static void fingerprint(vk_dev *vk, int has_sg_ext, int has_driver_props)
{
    const vk_fns *f = &vk->fn;
    kiln_fingerprint *fp = &vk->base.fp;
    memset(fp, 0, sizeof *fp);
    fp->backend = KILN_VULKAN;

    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sgc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    sg.pNext = &m3;
    void **tail = &m3.pNext;
    if (has_sg_ext) {
        *tail = &sgc;
        tail = &sgc.pNext;
    }
    if (has_driver_props)
        *tail = &drv;
    f->vkGetPhysicalDeviceProperties2(vk->phys, &p2);
    const VkPhysicalDeviceProperties *p = &p2.properties;

    vk->api_version = p->apiVersion;
    vk->limits = p->limits;
    vk->max_alloc = m3.maxMemoryAllocationSize;
    f->vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->mem_props);

    const char *vn = vendor_name(p->vendorID);
    if (vn)
        snprintf(fp->vendor, sizeof fp->vendor, "%s", vn);
    else
        snprintf(fp->vendor, sizeof fp->vendor, "0x%04x", p->vendorID);
    fp->vendor_id = p->vendorID;
    fp->device_id = p->deviceID;
    snprintf(fp->name, sizeof fp->name, "%s", p->deviceName);
    if (has_driver_props && drv.driverName[0]) {
        snprintf(fp->arch, sizeof fp->arch, "%s/%s", type_name(p->deviceType), drv.driverName);
        snprintf(fp->driver_version, sizeof fp->driver_version, "%s %s", drv.driverName, drv.driverInfo);
    } else {
        char dv[48];
        decode_driver_version(p->vendorID, p->driverVersion, dv, sizeof dv);
        snprintf(fp->arch, sizeof fp->arch, "%s/%s", type_name(p->deviceType), vn ? vn : fp->vendor);
        snprintf(fp->driver_version, sizeof fp->driver_version, "%s", dv);
    }
    unsigned spv = 0, spv_rev = 0;
    shaderc_get_spv_version(&spv, &spv_rev);
#ifdef KILN_SHADERC_VERSION
    snprintf(fp->compiler_version, sizeof fp->compiler_version, "shaderc %s (SPIR-V %u.%u, %s)", KILN_SHADERC_VERSION,
             (spv >> 16) & 0xff, (spv >> 8) & 0xff, vk->target_env == shaderc_env_version_vulkan_1_2 ? "vk1.2" : "vk1.1");
#else
    snprintf(fp->compiler_version, sizeof fp->compiler_version, "shaderc (SPIR-V %u.%u rev %u, %s)", (spv >> 16) & 0xff,
             (spv >> 8) & 0xff, spv_rev, vk->target_env == shaderc_env_version_vulkan_1_2 ? "vk1.2" : "vk1.1");
#endif

    if (p->deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
        fp->cpu_device = 1;
        /* lavapipe/SwiftShader: one worker per CPU by default */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        fp->compute_units = cpus > 0 ? (uint32_t)cpus : 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
        long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
        long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
        fp->llc_bytes = l3 > 0 ? (uint64_t)l3 : l2 > 0 ? (uint64_t)l2 : 0;
#endif
    }
    VkPhysicalDeviceFeatures2 feat = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f->vkGetPhysicalDeviceFeatures2(vk->phys, &feat);
    fp->has_int64 = feat.features.shaderInt64 ? 1 : 0; /* create_device enables it */
    fp->subgroup_size = sg.subgroupSize ? sg.subgroupSize : 1;
    fp->subgroup_min = fp->subgroup_max = fp->subgroup_size;
    if (has_sg_ext && sgc.minSubgroupSize && sgc.maxSubgroupSize) {
        fp->subgroup_min = sgc.minSubgroupSize;
        fp->subgroup_max = sgc.maxSubgroupSize;
        vk->sg_stages = sgc.requiredSubgroupSizeStages;
        vk->sg_max_wg_subgroups = sgc.maxComputeWorkgroupSubgroups;
    }
    vk->sg_min = fp->subgroup_min;
    vk->sg_max = fp->subgroup_max;
    fp->has_subgroup_ops = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                           (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) ? 1 : 0;
    fp->local_mem_bytes = p->limits.maxComputeSharedMemorySize;
    fp->max_workgroup = p->limits.maxComputeWorkGroupInvocations;
    fp->offset_align = (uint32_t)(p->limits.minStorageBufferOffsetAlignment ? p->limits.minStorageBufferOffsetAlignment : 1);
    uint64_t best = 0, any = 0;
    for (uint32_t i = 0; i < vk->mem_props.memoryHeapCount; i++) {
        const VkMemoryHeap *h = &vk->mem_props.memoryHeaps[i];
        if (h->size > any)
            any = h->size;
        if ((h->flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && h->size > best)
            best = h->size;
    }
    fp->memory_bytes = best ? best : any;
    fp->max_buffer_bytes = vk->limits.maxStorageBufferRange;
    if (vk->max_alloc && vk->max_alloc < fp->max_buffer_bytes)
        fp->max_buffer_bytes = vk->max_alloc;
}

/* ---- open / destroy ------------------------------------------------------- */

static void destroy(kiln_device *d);

static const kiln_device_ops vk_ops = {
    .destroy = destroy,
    .alloc = vk_alloc,
    .free = vk_free,
    .write = vk_write,
    .read = vk_read,
    .fill = vk_fill,
    .copy = vk_copy,
    .build = vk_build,
    .release = vk_release,
    .launch = vk_launch,
    .finish = vk_finish,
};

static int create_device(vk_dev *vk, int has_sg_ext, kiln_err *e)
{
    vk_fns *f = &vk->fn;
    int fam = compute_family(f, vk->phys);
    vk->queue_family = (uint32_t)fam;

    /* features kernels may use, enabled when present */
    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sgc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDevice16BitStorageFeatures s16 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s16};
    void **tail = &s16.pNext;
    int v12 = vk->api_version >= VK_API_VERSION_1_2;
    if (v12) {
        *tail = &f12;
        tail = &f12.pNext;
    }
    if (has_sg_ext)
        *tail = &sgc;
    f->vkGetPhysicalDeviceFeatures2(vk->phys, &f2);

    VkPhysicalDeviceSubgroupSizeControlFeaturesEXT en_sgc = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
        .subgroupSizeControl = sgc.subgroupSizeControl,
        .computeFullSubgroups = sgc.computeFullSubgroups,
    };
    VkPhysicalDeviceVulkan12Features en12 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES,
        .storageBuffer8BitAccess = f12.storageBuffer8BitAccess,
        .uniformAndStorageBuffer8BitAccess = f12.uniformAndStorageBuffer8BitAccess,
        .shaderFloat16 = f12.shaderFloat16,
        .shaderInt8 = f12.shaderInt8,
        .shaderBufferInt64Atomics = f12.shaderBufferInt64Atomics,
        .vulkanMemoryModel = f12.vulkanMemoryModel,
        .vulkanMemoryModelDeviceScope = f12.vulkanMemoryModelDeviceScope,
    };
    VkPhysicalDevice16BitStorageFeatures en16 = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
        .storageBuffer16BitAccess = s16.storageBuffer16BitAccess,
        .uniformAndStorageBuffer16BitAccess = s16.uniformAndStorageBuffer16BitAccess,
    };
    VkPhysicalDeviceFeatures2 en2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &en16};
    en2.features.shaderInt16 = f2.features.shaderInt16;
    en2.features.shaderInt64 = f2.features.shaderInt64;
    en2.features.shaderFloat64 = f2.features.shaderFloat64;
    tail = &en16.pNext;
    if (v12) {
        *tail = &en12;
        tail = &en12.pNext;
    }
    const char *exts[2];
    uint32_t n_exts = 0;
    if (has_sg_ext && (sgc.subgroupSizeControl || sgc.computeFullSubgroups)) {
        *tail = &en_sgc;
        if (vk->api_version < VK_API_VERSION_1_3)
            exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
        vk->sg_control = sgc.subgroupSizeControl;
        vk->sg_full = sgc.computeFullSubgroups;
    }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
        .queueFamilyIndex = vk->queue_family,
        .queueCount = 1,
        .pQueuePriorities = &prio,
    };
    VkDeviceCreateInfo dci = {
        .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
        .pNext = &en2,
        .queueCreateInfoCount = 1,
        .pQueueCreateInfos = &qci,
        .enabledExtensionCount = n_exts,
        .ppEnabledExtensionNames = exts,
    };
    VkResult r = f->vkCreateDevice(vk->phys, &dci, NULL, &vk->dev);
    if (r != VK_SUCCESS) {
        vk->dev = VK_NULL_HANDLE;
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateDevice (queue family %d)", fam);
    }
    char why[256];
    if (vk_loader_device(f, vk->dev, why, sizeof why)) {
        PFN_vkDestroyDevice dd = (PFN_vkDestroyDevice)f->vkGetDeviceProcAddr(vk->dev, "vkDestroyDevice");
        if (dd)
            dd(vk->dev, NULL);
        vk->dev = VK_NULL_HANDLE;
        return kiln_fail(e, KILN_E_DEVICE, "%s: %s", vk->who, why);
    }
    f->vkGetDeviceQueue(vk->dev, vk->queue_family, 0, &vk->queue);

    VkQueueFamilyProperties qf[32];
    uint32_t nq = 32;
    f->vkGetPhysicalDeviceQueueFamilyProperties(vk->phys, &nq, qf);
    uint32_t bits = qf[vk->queue_family].timestampValidBits;
    vk->host_timer = bits == 0 || vk->limits.timestampPeriod <= 0;
    vk->ts_mask = bits >= 64 ? ~(uint64_t)0 : bits ? (((uint64_t)1 << bits) - 1) : 0;
    vk->ts_period = vk->limits.timestampPeriod;
    return 0;
}

static int open_dev(int index, kiln_device **out, kiln_err *e)
{
    *out = NULL;
    vk_dev *vk = calloc(1, sizeof *vk);
    if (!vk)
        return kiln_fail(e, KILN_E_NOMEM, "vulkan:%d: out of host memory", index);
    vk->base.ops = &vk_ops;
    vk->base.backend = KILN_VULKAN;
    vk->base.index = index;
    vk->base.impl = vk;
    snprintf(vk->who, sizeof vk->who, "vulkan:%d", index);

    char why[512];
    if (instance_create(&vk->fn, &vk->instance, why, sizeof why)) {
        free(vk);
        return kiln_fail(e, KILN_E_UNAVAILABLE, "vulkan:%d: %s", index, why);
    }
    VkPhysicalDevice pd[VK_MAX_PHYS];
    int n = usable_devices(&vk->fn, vk->instance, pd, VK_MAX_PHYS, why, sizeof why);
    if (n <= index) {
        instance_destroy(&vk->fn, vk->instance);
        free(vk);
        if (n <= 0)
            return kiln_fail(e, KILN_E_UNAVAILABLE, "vulkan:%d: %s", index, why);
        return kiln_fail(e, KILN_E_INVALID, "vulkan:%d: only %d usable Vulkan device(s)", index, n);
    }
    vk->phys = pd[index];

    /* which optional extensions the device has */
    uint32_t n_ext = 0;
    VkExtensionProperties *ext = NULL;
    if (vk->fn.vkEnumerateDeviceExtensionProperties(vk->phys, NULL, &n_ext, NULL) == VK_SUCCESS && n_ext) {
        ext = calloc(n_ext, sizeof *ext);
        if (!ext || vk->fn.vkEnumerateDeviceExtensionProperties(vk->phys, NULL, &n_ext, ext) != VK_SUCCESS)
            n_ext = 0;
    }
    VkPhysicalDeviceProperties pp;
    vk->fn.vkGetPhysicalDeviceProperties(vk->phys, &pp);
    int v13 = pp.apiVersion >= VK_API_VERSION_1_3;
    int has_sg_ext = v13 || has_ext(ext, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    int has_drv = pp.apiVersion >= VK_API_VERSION_1_2 || has_ext(ext, n_ext, "VK_KHR_driver_properties");
    free(ext);

    vk->target_env = pp.apiVersion >= VK_API_VERSION_1_2 ? shaderc_env_version_vulkan_1_2 : shaderc_env_version_vulkan_1_1;
    fingerprint(vk, has_sg_ext, has_drv);
    snprintf(vk->who, sizeof vk->who, "vulkan:%d (%s)", index, vk->base.fp.name);

    int rc = create_device(vk, has_sg_ext, e);
    if (!rc) {
        vk->compiler = shaderc_compiler_initialize();
        if (!vk->compiler)
            rc = kiln_fail(e, KILN_E_NOMEM, "%s: shaderc_compiler_initialize failed", vk->who);
    }
    if (!rc)
        rc = vk_memory_init(vk, e);
    if (!rc)
        rc = vk_launch_init(vk, e);
    if (rc) {
        destroy(&vk->base);
        return rc;
    }
    *out = &vk->base;
    return 0;
}

static void destroy(kiln_device *d)
{
    if (!d)
        return;
    vk_dev *vk = vk_of(d);
    if (vk->dev != VK_NULL_HANDLE) {
        vk_finish(d, NULL);
        vk->fn.vkDeviceWaitIdle(vk->dev);
        if (vk->n_buffers || vk->n_programs)
            fprintf(stderr, "kiln: %s closed with %d buffer(s) and %d program(s) still alive (leaked)\n", vk->who,
                    vk->n_buffers, vk->n_programs);
        vk_launch_destroy(vk);
        vk_memory_destroy(vk);
        vk->fn.vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->compiler)
        shaderc_compiler_release(vk->compiler);
    instance_destroy(&vk->fn, vk->instance);
    free(vk);
}

const kiln_backend_impl kiln_backend_impl_vulkan = {
    .kind = KILN_VULKAN,
    .probe = probe,
    .open = open_dev,
    .compile_only = vk_compile_only,
};
