/* devices/opencl/cl_api.c - see cl_api.h. */
#include "devices/opencl/cl_api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int cl_api_load(cl_api *api, char *why, size_t n)
{
    memset(api, 0, sizeof *api);
    /* RTLD_NODELETE: drivers keep state (ICD lists, atexit hooks) that must
     * outlive our handle; unmapping them on close turns it into leaks and
     * dangling callbacks. The refcount still drops on close. */
    api->lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!api->lib)
        api->lib = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!api->lib) {
        snprintf(why, n, "%s (install ocl-icd-libopencl1 and a driver, e.g. pocl-opencl-icd)", dlerror());
        return -1;
    }
#define SYM(name)                                                                                                   \
    do {                                                                                                            \
        *(void **)&api->name = dlsym(api->lib, "cl" #name);                                                         \
        if (!api->name) {                                                                                           \
            snprintf(why, n, "libOpenCL lacks cl" #name);                                                           \
            cl_api_unload(api);                                                                                     \
            return -1;                                                                                              \
        }                                                                                                           \
    } while (0)
    SYM(GetPlatformIDs);
    SYM(GetPlatformInfo);
    SYM(GetDeviceIDs);
    SYM(GetDeviceInfo);
    SYM(CreateContext);
    SYM(ReleaseContext);
    SYM(CreateCommandQueue);
    SYM(ReleaseCommandQueue);
    SYM(CreateBuffer);
    SYM(CreateSubBuffer);
    SYM(ReleaseMemObject);
    SYM(EnqueueWriteBuffer);
    SYM(EnqueueReadBuffer);
    SYM(EnqueueCopyBuffer);
    SYM(EnqueueFillBuffer);
    SYM(CreateProgramWithSource);
    SYM(BuildProgram);
    SYM(GetProgramBuildInfo);
    SYM(ReleaseProgram);
    SYM(CreateKernel);
    SYM(ReleaseKernel);
    SYM(SetKernelArg);
    SYM(EnqueueNDRangeKernel);
    SYM(Finish);
    SYM(WaitForEvents);
    SYM(GetEventProfilingInfo);
    SYM(ReleaseEvent);
#undef SYM
    return 0;
}

void cl_api_unload(cl_api *api)
{
    if (api->lib)
        dlclose(api->lib);
    memset(api, 0, sizeof *api);
}

const char *cl_error_name(cl_int e)
{
    switch (e) {
#define E(x)                                                                                                        \
    case x: return #x;
        E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_DEVICE_NOT_AVAILABLE) E(CL_COMPILER_NOT_AVAILABLE)
        E(CL_MEM_OBJECT_ALLOCATION_FAILURE) E(CL_OUT_OF_RESOURCES) E(CL_OUT_OF_HOST_MEMORY)
        E(CL_PROFILING_INFO_NOT_AVAILABLE) E(CL_BUILD_PROGRAM_FAILURE) E(CL_INVALID_VALUE)
        E(CL_INVALID_DEVICE_TYPE) E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE) E(CL_INVALID_CONTEXT)
        E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_MEM_OBJECT) E(CL_INVALID_BUILD_OPTIONS) E(CL_INVALID_PROGRAM)
        E(CL_INVALID_PROGRAM_EXECUTABLE) E(CL_INVALID_KERNEL_NAME) E(CL_INVALID_KERNEL) E(CL_INVALID_ARG_INDEX)
        E(CL_INVALID_ARG_VALUE) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_WORK_DIMENSION)
        E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_WORK_ITEM_SIZE) E(CL_INVALID_GLOBAL_OFFSET)
        E(CL_INVALID_EVENT) E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_GLOBAL_WORK_SIZE)
#undef E
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)";
    }
    return "CL_UNKNOWN_ERROR";
}
