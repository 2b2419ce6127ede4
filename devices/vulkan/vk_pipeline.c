/* devices/vulkan/vk_pipeline.c - GLSL -> SPIR-V (shaderc) -> compute pipeline.
 *
 * Owns: kiln_program objects (shader module, descriptor set layout with one
 * storage buffer per 'b' argument, pipeline layout with one push-constant
 * range holding the scalars, the compute pipeline). The binding and
 * push-constant convention is documented in vk_internal.h. Compile errors
 * are KILN_E_COMPILE and carry shaderc's message with kernel and entry names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/vulkan/vk_internal.h"

static const char *status_name(shaderc_compilation_status s)
{
    switch (s) {
    case shaderc_compilation_status_success: return "success";
    case shaderc_compilation_status_invalid_stage: return "invalid stage";
    case shaderc_compilation_status_compilation_error: return "compilation error";
    case shaderc_compilation_status_internal_error: return "internal error";
    case shaderc_compilation_status_null_result_object: return "null result";
    case shaderc_compilation_status_invalid_assembly: return "invalid assembly";
    case shaderc_compilation_status_validation_error: return "validation error";
    case shaderc_compilation_status_transformation_error: return "transformation error";
    case shaderc_compilation_status_configuration_error: return "configuration error";
    default: return "unknown status";
    }
}

/* Counts 'b' and scalar arguments; KILN_E_INVALID on a bad signature. */
static int parse_signature(const char *who, const kiln_program_desc *desc, int *n_bufs, int *n_scalars, kiln_err *e)
{
    const char *sig = desc->signature ? desc->signature : "";
    *n_bufs = *n_scalars = 0;
    size_t len = strlen(sig);
    if (len > KILN_MAX_ARGS)
        return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': signature \"%s\" has %zu args (max %d)", who,
                         desc->kernel ? desc->kernel : "?", sig, len, KILN_MAX_ARGS);
    for (size_t i = 0; i < len; i++) {
        if (sig[i] == 'b')
            (*n_bufs)++;
        else if (sig[i] == 'i' || sig[i] == 'u' || sig[i] == 'f')
            (*n_scalars)++;
        else
            return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': signature \"%s\": argument %zu is '%c' (expected b, i, u "
                             "or f)", who, desc->kernel ? desc->kernel : "?", sig, i, sig[i]);
    }
    return 0;
}

/* Compiles desc->source to SPIR-V for `env`. On success *out holds the result
 * (release with shaderc_result_release). */
static int compile_glsl(shaderc_compiler_t compiler, const kiln_program_desc *desc, shaderc_env_version env,
                        const char *who, shaderc_compilation_result_t *out, kiln_err *e)
{
    *out = NULL;
    const char *kernel = desc->kernel ? desc->kernel : "?";
    if (!desc->source)
        return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s' has no GLSL source", who, kernel);
    shaderc_compile_options_t opt = shaderc_compile_options_initialize();
    if (!opt)
        return kiln_fail(e, KILN_E_NOMEM, "%s: shaderc_compile_options_initialize failed", who);
    shaderc_compile_options_set_target_env(opt, shaderc_target_env_vulkan, env);
    shaderc_compile_options_set_optimization_level(opt, shaderc_optimization_level_performance);
    char val[32];
    for (int i = 0; i < desc->n_defines; i++) {
        if (!desc->defines[i].name || !desc->defines[i].name[0]) {
            shaderc_compile_options_release(opt);
            return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': define %d has no name", who, kernel, i);
        }
        int n = snprintf(val, sizeof val, "%lld", desc->defines[i].value);
        shaderc_compile_options_add_macro_definition(opt, desc->defines[i].name, strlen(desc->defines[i].name), val,
                                                     (size_t)n);
    }
    static const char *const lnames[3] = {"LOCAL_X", "LOCAL_Y", "LOCAL_Z"};
    for (int i = 0; i < 3; i++) {
        if (kiln_define_get(desc->defines, desc->n_defines, lnames[i], -1) != -1)
            continue;
        int n = snprintf(val, sizeof val, "%u", desc->local[i] ? desc->local[i] : 1);
        shaderc_compile_options_add_macro_definition(opt, lnames[i], 7, val, (size_t)n);
    }
    char file[96];
    snprintf(file, sizeof file, "%s.comp", kernel);
    shaderc_compilation_result_t res =
        shaderc_compile_into_spv(compiler, desc->source, strlen(desc->source), shaderc_compute_shader, file, "main", opt);
    shaderc_compile_options_release(opt);
    shaderc_compilation_status s = shaderc_result_get_compilation_status(res);
    if (s != shaderc_compilation_status_success) {
        const char *msg = res ? shaderc_result_get_error_message(res) : NULL;
        kiln_fail(e, KILN_E_COMPILE, "%s: kernel '%s' (entry main%s%s): shaderc %s: %s", who, kernel,
                  desc->entry ? ", desc entry " : "", desc->entry ? desc->entry : "", status_name(s),
                  msg && msg[0] ? msg : "(no message)");
        if (res)
            shaderc_result_release(res);
        return KILN_E_COMPILE;
    }
    *out = res;
    return 0;
}

int vk_compile_only(const kiln_program_desc *desc, const char *arch, size_t *out_bytes, kiln_err *e)
{
    *out_bytes = 0;
    shaderc_env_version env = shaderc_env_version_vulkan_1_2;
    if (arch && arch[0]) {
        const char *v = strncmp(arch, "vulkan", 6) == 0 ? arch + 6 : arch;
        if (strcmp(v, "1.1") == 0)
            env = shaderc_env_version_vulkan_1_1;
        else if (strcmp(v, "1.2") == 0)
            env = shaderc_env_version_vulkan_1_2;
        else if (strcmp(v, "1.3") == 0)
            env = shaderc_env_version_vulkan_1_3;
        else
            return kiln_fail(e, KILN_E_INVALID, "vulkan compile_only: arch '%s' (expected vulkan1.1, vulkan1.2 or "
                             "vulkan1.3)", arch);
    }
    int nb, ns;
    if (parse_signature("vulkan compile_only", desc, &nb, &ns, e))
        return KILN_E_INVALID;
    shaderc_compiler_t c = shaderc_compiler_initialize();
    if (!c)
        return kiln_fail(e, KILN_E_NOMEM, "vulkan compile_only: shaderc_compiler_initialize failed");
    shaderc_compilation_result_t res;
    int rc = compile_glsl(c, desc, env, "vulkan compile_only", &res, e);
    if (!rc) {
        *out_bytes = shaderc_result_get_length(res);
        shaderc_result_release(res);
    }
    shaderc_compiler_release(c);
    return rc;
}

static void program_destroy(vk_dev *vk, kiln_program *p)
{
    const vk_fns *f = &vk->fn;
    if (p->pipeline != VK_NULL_HANDLE)
        f->vkDestroyPipeline(vk->dev, p->pipeline, NULL);
    if (p->layout != VK_NULL_HANDLE)
        f->vkDestroyPipelineLayout(vk->dev, p->layout, NULL);
    if (p->set_layout != VK_NULL_HANDLE)
        f->vkDestroyDescriptorSetLayout(vk->dev, p->set_layout, NULL);
    if (p->module != VK_NULL_HANDLE)
        f->vkDestroyShaderModule(vk->dev, p->module, NULL);
    free(p);
}

/* Checks the workgroup and subgroup request against the device limits. */
static int check_limits(vk_dev *vk, const kiln_program_desc *desc, const uint32_t local[3], kiln_err *e)
{
    const VkPhysicalDeviceLimits *l = &vk->limits;
    const char *kernel = desc->kernel ? desc->kernel : "?";
    uint64_t threads = (uint64_t)local[0] * local[1] * local[2];
    for (int i = 0; i < 3; i++)
        if (local[i] > l->maxComputeWorkGroupSize[i])
            return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': local[%d] = %u exceeds maxComputeWorkGroupSize[%d] = %u",
                             vk->who, kernel, i, local[i], i, l->maxComputeWorkGroupSize[i]);
    if (threads > l->maxComputeWorkGroupInvocations)
        return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': workgroup of %llu threads exceeds "
                         "maxComputeWorkGroupInvocations = %u", vk->who, kernel, (unsigned long long)threads,
                         l->maxComputeWorkGroupInvocations);
    uint32_t sg = desc->subgroup;
    if (sg) {
        int can_require = vk->sg_control && (vk->sg_stages & VK_SHADER_STAGE_COMPUTE_BIT);
        if (!can_require && sg != vk->base.fp.subgroup_size)
            return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': subgroup size %u requested but the device cannot "
                             "require one (no subgroupSizeControl for compute) and its subgroup size is %u",
                             vk->who, kernel, sg, vk->base.fp.subgroup_size);
        if (can_require && (sg < vk->sg_min || sg > vk->sg_max || (sg & (sg - 1))))
            return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': subgroup size %u outside the supported range [%u, %u] "
                             "(or not a power of two)", vk->who, kernel, sg, vk->sg_min, vk->sg_max);
        if (can_require && vk->sg_max_wg_subgroups && threads > (uint64_t)sg * vk->sg_max_wg_subgroups)
            return kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': %llu threads with subgroup size %u exceed "
                             "maxComputeWorkgroupSubgroups = %u", vk->who, kernel, (unsigned long long)threads, sg,
                             vk->sg_max_wg_subgroups);
    }
    return 0;
}

kiln_program *vk_build(kiln_device *d, const kiln_program_desc *desc, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    const vk_fns *f = &vk->fn;
    const char *kernel = desc->kernel ? desc->kernel : "?";
    int n_bufs, n_scalars;
    if (parse_signature(vk->who, desc, &n_bufs, &n_scalars, e))
        return NULL;
    uint32_t local[3];
    for (int i = 0; i < 3; i++) {
        static const char *const ln[3] = {"LOCAL_X", "LOCAL_Y", "LOCAL_Z"};
        long long v = kiln_define_get(desc->defines, desc->n_defines, ln[i], desc->local[i] ? desc->local[i] : 1);
        local[i] = v > 0 && v <= 0xffffffffLL ? (uint32_t)v : 0;
        if (!local[i]) {
            kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': %s = %lld is not a valid workgroup size", vk->who, kernel,
                      ln[i], v);
            return NULL;
        }
    }
    if (check_limits(vk, desc, local, e))
        return NULL;
    if ((uint32_t)n_scalars * 4 > vk->limits.maxPushConstantsSize) {
        kiln_fail(e, KILN_E_INVALID, "%s: kernel '%s': %d scalars need %d push-constant bytes (device max %u)", vk->who,
                  kernel, n_scalars, n_scalars * 4, vk->limits.maxPushConstantsSize);
        return NULL;
    }

    shaderc_compilation_result_t res;
    if (compile_glsl(vk->compiler, desc, vk->target_env, vk->who, &res, e))
        return NULL;

    kiln_program *p = calloc(1, sizeof *p);
    if (!p) {
        shaderc_result_release(res);
        kiln_fail(e, KILN_E_NOMEM, "%s: out of host memory", vk->who);
        return NULL;
    }
    p->owner = vk;
    snprintf(p->kernel, sizeof p->kernel, "%s", kernel);
    snprintf(p->signature, sizeof p->signature, "%s", desc->signature ? desc->signature : "");
    p->n_bufs = n_bufs;
    p->n_scalars = n_scalars;
    memcpy(p->local, local, sizeof local);
    p->spv_bytes = shaderc_result_get_length(res);

    VkShaderModuleCreateInfo smci = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
        .codeSize = p->spv_bytes,
        .pCode = (const uint32_t *)(const void *)shaderc_result_get_bytes(res),
    };
    VkResult r = f->vkCreateShaderModule(vk->dev, &smci, NULL, &p->module);
    shaderc_result_release(res);
    if (r != VK_SUCCESS) {
        p->module = VK_NULL_HANDLE;
        vk_fail(vk, e, KILN_E_COMPILE, r, "kernel '%s': vkCreateShaderModule (%zu bytes of SPIR-V)", kernel,
                p->spv_bytes);
        program_destroy(vk, p);
        return NULL;
    }

    VkDescriptorSetLayoutBinding binds[KILN_MAX_ARGS];
    for (int i = 0; i < n_bufs; i++)
        binds[i] = (VkDescriptorSetLayoutBinding){
            .binding = (uint32_t)i,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .descriptorCount = 1,
            .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        };
    VkDescriptorSetLayoutCreateInfo dslci = {
        .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
        .bindingCount = (uint32_t)n_bufs,
        .pBindings = binds,
    };
    r = f->vkCreateDescriptorSetLayout(vk->dev, &dslci, NULL, &p->set_layout);
    if (r != VK_SUCCESS) {
        p->set_layout = VK_NULL_HANDLE;
        vk_fail(vk, e, KILN_E_DEVICE, r, "kernel '%s': vkCreateDescriptorSetLayout (%d buffers)", kernel, n_bufs);
        program_destroy(vk, p);
        return NULL;
    }
    VkPushConstantRange pcr = {
        .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
        .offset = 0,
        .size = (uint32_t)n_scalars * 4,
    };
    VkPipelineLayoutCreateInfo plci = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
        .setLayoutCount = 1,
        .pSetLayouts = &p->set_layout,
        .pushConstantRangeCount = n_scalars ? 1 : 0,
        .pPushConstantRanges = n_scalars ? &pcr : NULL,
    };
    r = f->vkCreatePipelineLayout(vk->dev, &plci, NULL, &p->layout);
    if (r != VK_SUCCESS) {
        p->layout = VK_NULL_HANDLE;
        vk_fail(vk, e, KILN_E_DEVICE, r, "kernel '%s': vkCreatePipelineLayout", kernel);
        program_destroy(vk, p);
        return NULL;
    }

    VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
        .requiredSubgroupSize = desc->subgroup,
    };
    VkPipelineShaderStageCreateInfo stage = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
        .stage = VK_SHADER_STAGE_COMPUTE_BIT,
        .module = p->module,
        .pName = "main",
    };
    if (desc->subgroup && vk->sg_control && (vk->sg_stages & VK_SHADER_STAGE_COMPUTE_BIT)) {
        stage.pNext = &rss;
        if (vk->sg_full && local[0] % desc->subgroup == 0)
            stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT_EXT;
    }
    VkComputePipelineCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = stage,
        .layout = p->layout,
        .basePipelineIndex = -1,
    };
    r = f->vkCreateComputePipelines(vk->dev, VK_NULL_HANDLE, 1, &cpci, NULL, &p->pipeline);
    if (r != VK_SUCCESS) {
        p->pipeline = VK_NULL_HANDLE;
        vk_fail(vk, e, KILN_E_COMPILE, r, "kernel '%s': vkCreateComputePipelines (local %ux%ux%u, subgroup %u)", kernel,
                local[0], local[1], local[2], desc->subgroup);
        program_destroy(vk, p);
        return NULL;
    }
    vk->n_programs++;
    return p;
}

void vk_release(kiln_device *d, kiln_program *p)
{
    if (!p)
        return;
    vk_dev *vk = vk_of(d);
    if (vk->recording) /* queued dispatches may still use the pipeline */
        vk_submit_wait(vk, NULL);
    program_destroy(vk, p);
    vk->n_programs--;
}
