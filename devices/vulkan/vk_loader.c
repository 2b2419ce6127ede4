/* devices/vulkan/vk_loader.c - finds the Vulkan loader at run time.
 *
 * Owns: the dlopen handle and the function table (vk_fns) of one device or
 * probe. Nothing is linked against libvulkan; every entry point comes from
 * vkGetInstanceProcAddr / vkGetDeviceProcAddr. Invariant: after a stage
 * returns 0 every pointer of that stage is non-NULL. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include "devices/vulkan/vk_internal.h"

int vk_loader_open(vk_fns *f, char *why, size_t n)
{
    memset(f, 0, sizeof *f);
    static const char *const names[] = {"libvulkan.so.1", "libvulkan.so"};
    char first_err[256] = "";
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !f->lib; i++) {
        /* RTLD_NODELETE: drivers keep state (ICD lists, atexit hooks) that must
         * outlive our handle; unmapping them on close turns it into leaks and
         * dangling callbacks. The refcount still drops on close. */
        f->lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!f->lib && i == 0) {
            const char *de = dlerror();
            snprintf(first_err, sizeof first_err, "%s", de ? de : "dlopen failed");
        }
    }
    if (!f->lib) {
        snprintf(why, n, "%s (install the Vulkan loader, e.g. libvulkan1, and a driver)", first_err);
        return -1;
    }
    void *sym = dlsym(f->lib, "vkGetInstanceProcAddr");
    if (!sym) {
        snprintf(why, n, "libvulkan.so.1 has no vkGetInstanceProcAddr");
        vk_loader_close(f);
        return -1;
    }
    /* function pointer from void* (POSIX guarantees this works) */
    memcpy(&f->vkGetInstanceProcAddr, &sym, sizeof sym);
    f->vkEnumerateInstanceVersion =
        (PFN_vkEnumerateInstanceVersion)f->vkGetInstanceProcAddr(VK_NULL_HANDLE, "vkEnumerateInstanceVersion");
#define VK_LOAD_GLOBAL(name)                                                                                 \
    f->name = (PFN_##name)f->vkGetInstanceProcAddr(VK_NULL_HANDLE, #name);                                   \
    if (!f->name) {                                                                                          \
        snprintf(why, n, "the Vulkan loader does not export " #name);                                        \
        vk_loader_close(f);                                                                                  \
        return -1;                                                                                           \
    }
    VK_GLOBAL_FNS(VK_LOAD_GLOBAL)
#undef VK_LOAD_GLOBAL
    return 0;
}

int vk_loader_instance(vk_fns *f, VkInstance inst, char *why, size_t n)
{
#define VK_LOAD_INSTANCE(name)                                                                               \
    f->name = (PFN_##name)f->vkGetInstanceProcAddr(inst, #name);                                             \
    if (!f->name) {                                                                                          \
        snprintf(why, n, "vkGetInstanceProcAddr(" #name ") returned NULL (Vulkan 1.1 instance required)");   \
        return -1;                                                                                           \
    }
    VK_INSTANCE_FNS(VK_LOAD_INSTANCE)
#undef VK_LOAD_INSTANCE
    return 0;
}

int vk_loader_device(vk_fns *f, VkDevice dev, char *why, size_t n)
{
#define VK_LOAD_DEVICE(name)                                                                                 \
    f->name = (PFN_##name)f->vkGetDeviceProcAddr(dev, #name);                                                \
    if (!f->name) {                                                                                          \
        snprintf(why, n, "vkGetDeviceProcAddr(" #name ") returned NULL");                                    \
        return -1;                                                                                           \
    }
    VK_DEVICE_FNS(VK_LOAD_DEVICE)
#undef VK_LOAD_DEVICE
    return 0;
}

void vk_loader_close(vk_fns *f)
{
    if (f->lib)
        dlclose(f->lib);
    memset(f, 0, sizeof *f);
}

const char *vk_result_name(VkResult r)
{
    switch (r) {
#define R(x) case x: return #x;
        R(VK_SUCCESS)
        R(VK_NOT_READY)
        R(VK_TIMEOUT)
        R(VK_EVENT_SET)
        R(VK_EVENT_RESET)
        R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY)
        R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED)
        R(VK_ERROR_DEVICE_LOST)
        R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT)
        R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT)
        R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS)
        R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL)
        R(VK_ERROR_UNKNOWN)
        R(VK_ERROR_OUT_OF_POOL_MEMORY)
        R(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        R(VK_ERROR_FRAGMENTATION)
        R(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        R(VK_PIPELINE_COMPILE_REQUIRED)
        R(VK_ERROR_INVALID_SHADER_NV)
#undef R
    default: return "VK_RESULT_UNKNOWN";
    }
}
