/* devices/vulkan/vk_launch.c - command recording, barriers, descriptor sets,
 * push constants, dispatch, submission and timestamps.
 *
 * Owns: the command pool and its one command buffer, the fence, the growing
 * list of descriptor pools and the timestamp query pool. Invariants: at
 * most one submission is in flight and it is always waited for before the
 * next one is recorded into (vk_submit_wait), so descriptor pools can be
 * reset right after the wait; every recorded command is preceded by a
 * global memory barrier (vk_barrier), and every submission ends with a
 * barrier to the host, so launches see each other's writes and read() sees
 * them all. */
#include <string.h>
#include <time.h>

#include "devices/vulkan/vk_internal.h"

int vk_launch_init(vk_dev *vk, kiln_err *e)
{
    const vk_fns *f = &vk->fn;
    VkCommandPoolCreateInfo cpci = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
        .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
        .queueFamilyIndex = vk->queue_family,
    };
    VkResult r = f->vkCreateCommandPool(vk->dev, &cpci, NULL, &vk->cmd_pool);
    if (r != VK_SUCCESS) {
        vk->cmd_pool = VK_NULL_HANDLE;
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateCommandPool");
    }
    VkCommandBufferAllocateInfo cbai = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
        .commandPool = vk->cmd_pool,
        .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
        .commandBufferCount = 1,
    };
    r = f->vkAllocateCommandBuffers(vk->dev, &cbai, &vk->cmd);
    if (r != VK_SUCCESS)
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkAllocateCommandBuffers");
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    r = f->vkCreateFence(vk->dev, &fci, NULL, &vk->fence);
    if (r != VK_SUCCESS) {
        vk->fence = VK_NULL_HANDLE;
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateFence");
    }
    if (!vk->host_timer) {
        VkQueryPoolCreateInfo qpci = {
            .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
            .queryType = VK_QUERY_TYPE_TIMESTAMP,
            .queryCount = 2,
        };
        r = f->vkCreateQueryPool(vk->dev, &qpci, NULL, &vk->timestamps);
        if (r != VK_SUCCESS) {
            vk->timestamps = VK_NULL_HANDLE;
            return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateQueryPool(timestamps)");
        }
    }
    return 0;
}

void vk_launch_destroy(vk_dev *vk)
{
    const vk_fns *f = &vk->fn;
    for (int i = 0; i < vk->n_pools; i++)
        f->vkDestroyDescriptorPool(vk->dev, vk->pools[i], NULL);
    vk->n_pools = 0;
    if (vk->timestamps != VK_NULL_HANDLE)
        f->vkDestroyQueryPool(vk->dev, vk->timestamps, NULL);
    if (vk->fence != VK_NULL_HANDLE)
        f->vkDestroyFence(vk->dev, vk->fence, NULL);
    if (vk->cmd_pool != VK_NULL_HANDLE)
        f->vkDestroyCommandPool(vk->dev, vk->cmd_pool, NULL); /* frees vk->cmd */
    vk->timestamps = VK_NULL_HANDLE;
    vk->fence = VK_NULL_HANDLE;
    vk->cmd_pool = VK_NULL_HANDLE;
    vk->cmd = VK_NULL_HANDLE;
}

int vk_begin(vk_dev *vk, kiln_err *e)
{
    if (vk->recording)
        return 0;
    VkCommandBufferBeginInfo bi = {
        .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
        .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
    };
    VkResult r = vk->fn.vkBeginCommandBuffer(vk->cmd, &bi);
    if (r != VK_SUCCESS)
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkBeginCommandBuffer");
    vk->recording = 1;
    vk->n_recorded = 0;
    return 0;
}

static void barrier(vk_dev *vk, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access)
{
    VkMemoryBarrier mb = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
        .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
        .dstAccessMask = dst_access,
    };
    vk->fn.vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                                dst_stage, 0, 1, &mb, 0, NULL, 0, NULL);
}

void vk_barrier(vk_dev *vk)
{
    barrier(vk, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                VK_ACCESS_TRANSFER_WRITE_BIT);
}

int vk_submit_wait(vk_dev *vk, kiln_err *e)
{
    if (!vk->recording || vk->n_recorded == 0)
        return 0; /* nothing recorded: keep the open command buffer (and its descriptor sets) */
    const vk_fns *f = &vk->fn;
    vk->recording = 0;
    barrier(vk, VK_PIPELINE_STAGE_HOST_BIT, VK_ACCESS_HOST_READ_BIT);
    VkResult r = f->vkEndCommandBuffer(vk->cmd);
    if (r != VK_SUCCESS) {
        f->vkResetCommandBuffer(vk->cmd, 0);
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkEndCommandBuffer (%u commands)", vk->n_recorded);
    }
    VkSubmitInfo si = {
        .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
        .commandBufferCount = 1,
        .pCommandBuffers = &vk->cmd,
    };
    r = f->vkQueueSubmit(vk->queue, 1, &si, vk->fence);
    if (r != VK_SUCCESS) {
        f->vkResetCommandBuffer(vk->cmd, 0);
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkQueueSubmit (%u commands)", vk->n_recorded);
    }
    r = f->vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS)
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkWaitForFences (%u commands)", vk->n_recorded);
    f->vkResetFences(vk->dev, 1, &vk->fence);
    f->vkResetCommandBuffer(vk->cmd, 0);
    for (int i = 0; i < vk->n_pools; i++)
        f->vkResetDescriptorPool(vk->dev, vk->pools[i], 0);
    vk->cur_pool = 0;
    vk->n_recorded = 0;
    return 0;
}

int vk_finish(kiln_device *d, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    if (vk->cmd == VK_NULL_HANDLE)
        return 0;
    if (vk_submit_wait(vk, e))
        return kiln_err_wrap(e, "finish");
    return 0;
}

static double host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int vk_timed(vk_dev *vk, void (*record)(vk_dev *vk, void *ctx), void *ctx, double *ns, kiln_err *e)
{
    const vk_fns *f = &vk->fn;
    *ns = 0;
    /* earlier work must not be counted */
    if (vk_submit_wait(vk, e) || vk_begin(vk, e))
        return KILN_E_DEVICE;
    if (!vk->host_timer)
        f->vkCmdResetQueryPool(vk->cmd, vk->timestamps, 0, 2);
    vk_barrier(vk);
    if (!vk->host_timer)
        f->vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, vk->timestamps, 0);
    record(vk, ctx);
    vk->n_recorded++;
    if (!vk->host_timer)
        f->vkCmdWriteTimestamp(vk->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, vk->timestamps, 1);
    double t0 = host_now_ns();
    if (vk_submit_wait(vk, e))
        return KILN_E_DEVICE;
    double t1 = host_now_ns();
    if (vk->host_timer) {
        *ns = t1 - t0;
        return 0;
    }
    uint64_t ts[2];
    VkResult r = f->vkGetQueryPoolResults(vk->dev, vk->timestamps, 0, 2, sizeof ts, ts, sizeof ts[0],
                                          VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    if (r != VK_SUCCESS)
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkGetQueryPoolResults(timestamps)");
    uint64_t ticks = ((ts[1] & vk->ts_mask) - (ts[0] & vk->ts_mask)) & vk->ts_mask;
    *ns = (double)ticks * vk->ts_period;
    return 0;
}

/* A descriptor set for p from the pools, growing the list when all are full. */
static int alloc_set(vk_dev *vk, kiln_program *p, VkDescriptorSet *set, kiln_err *e)
{
    const vk_fns *f = &vk->fn;
    for (;;) {
        if (vk->cur_pool == vk->n_pools) {
            if (vk->n_pools == VK_MAX_POOLS) {
                /* all pools in use by recorded work: drain and start over */
                if (vk_submit_wait(vk, e) || vk_begin(vk, e))
                    return KILN_E_DEVICE;
                continue;
            }
            VkDescriptorPoolSize ps = {
                .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                .descriptorCount = VK_SETS_PER_POOL * KILN_MAX_ARGS,
            };
            VkDescriptorPoolCreateInfo dpci = {
                .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                .maxSets = VK_SETS_PER_POOL,
                .poolSizeCount = 1,
                .pPoolSizes = &ps,
            };
            VkResult r = f->vkCreateDescriptorPool(vk->dev, &dpci, NULL, &vk->pools[vk->n_pools]);
            if (r != VK_SUCCESS)
                return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateDescriptorPool (pool %d)", vk->n_pools);
            vk->n_pools++;
        }
        VkDescriptorSetAllocateInfo ai = {
            .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
            .descriptorPool = vk->pools[vk->cur_pool],
            .descriptorSetCount = 1,
            .pSetLayouts = &p->set_layout,
        };
        VkResult r = f->vkAllocateDescriptorSets(vk->dev, &ai, set);
        if (r == VK_SUCCESS)
            return 0;
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL)
            return vk_fail(vk, e, KILN_E_DEVICE, r, "vkAllocateDescriptorSets (kernel '%s')", p->kernel);
        vk->cur_pool++;
    }
}

typedef struct dispatch_ctx {
    kiln_program *p;
    VkDescriptorSet set;
    uint32_t pc[KILN_MAX_ARGS];
    const uint32_t *grid;
} dispatch_ctx;

static void record_dispatch(vk_dev *vk, void *ctx)
{
    const vk_fns *f = &vk->fn;
    dispatch_ctx *c = ctx;
    f->vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->p->pipeline);
    f->vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->p->layout, 0, 1, &c->set, 0, NULL);
    if (c->p->n_scalars)
        f->vkCmdPushConstants(vk->cmd, c->p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (uint32_t)c->p->n_scalars * 4,
                              c->pc);
    f->vkCmdDispatch(vk->cmd, c->grid[0], c->grid[1], c->grid[2]);
}

int vk_launch(kiln_device *d, kiln_program *p, const uint32_t grid[3], const kiln_arg *args, int n_args, double *ns,
              kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    const vk_fns *f = &vk->fn;
    if (ns)
        *ns = 0;
    if (!p)
        return kiln_fail(e, KILN_E_INVALID, "%s: launch: program is NULL", vk->who);
    if (p->owner != vk)
        return kiln_fail(e, KILN_E_INVALID, "%s: launch of '%s': program belongs to %s", vk->who, p->kernel,
                         p->owner->who);
    int want = (int)strlen(p->signature);
    if (n_args != want)
        return kiln_fail(e, KILN_E_INVALID, "%s: launch of '%s': %d args given, signature \"%s\" wants %d", vk->who,
                         p->kernel, n_args, p->signature, want);
    for (int i = 0; i < 3; i++)
        if (grid[i] > vk->limits.maxComputeWorkGroupCount[i])
            return kiln_fail(e, KILN_E_INVALID, "%s: launch of '%s': grid[%d] = %u exceeds maxComputeWorkGroupCount[%d] "
                             "= %u", vk->who, p->kernel, i, grid[i], i, vk->limits.maxComputeWorkGroupCount[i]);

    dispatch_ctx c = {.p = p, .grid = grid};
    VkDescriptorBufferInfo bi[KILN_MAX_ARGS];
    int nb = 0, nsc = 0;
    for (int i = 0; i < n_args; i++) {
        if ((char)args[i].kind != p->signature[i])
            return kiln_fail(e, KILN_E_INVALID, "%s: launch of '%s': argument %d is '%c', signature \"%s\" wants '%c'",
                             vk->who, p->kernel, i, (char)args[i].kind, p->signature, p->signature[i]);
        if (args[i].kind == KILN_ARG_BUF) {
            kiln_buffer *b = args[i].buf;
            if (!b || b->owner != vk)
                return kiln_fail(e, KILN_E_INVALID, "%s: launch of '%s': argument %d: %s", vk->who, p->kernel, i,
                                 b ? "buffer belongs to another device" : "buffer is NULL");
            VkDeviceSize align = vk->limits.minStorageBufferOffsetAlignment ? vk->limits.minStorageBufferOffsetAlignment : 1;
            if (args[i].off % align)
                return kiln_fail(e, KILN_E_INVALID, "%s: launch of '%s': argument %d: offset %zu is not a multiple of "
                                 "minStorageBufferOffsetAlignment %llu", vk->who, p->kernel, i, args[i].off,
                                 (unsigned long long)align);
            bi[nb++] = (VkDescriptorBufferInfo){.buffer = b->buf, .offset = args[i].off, .range = VK_WHOLE_SIZE};
        } else {
            /* i32/u32/f32 share the 4 bytes of the union */
            memcpy(&c.pc[nsc++], &args[i].u32, 4);
        }
    }
    if (grid[0] == 0 || grid[1] == 0 || grid[2] == 0)
        return 0; /* nothing to run */

    if (ns && vk_submit_wait(vk, e)) /* before taking a set: the drain resets the pools */
        return kiln_err_wrap(e, "launch of '%s'", p->kernel);
    if (vk_begin(vk, e))
        return kiln_err_wrap(e, "launch of '%s'", p->kernel);
    if (alloc_set(vk, p, &c.set, e))
        return kiln_err_wrap(e, "launch of '%s'", p->kernel);
    VkWriteDescriptorSet w[KILN_MAX_ARGS];
    for (int i = 0; i < nb; i++)
        w[i] = (VkWriteDescriptorSet){
            .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
            .dstSet = c.set,
            .dstBinding = (uint32_t)i,
            .descriptorCount = 1,
            .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
            .pBufferInfo = &bi[i],
        };
    if (nb)
        f->vkUpdateDescriptorSets(vk->dev, (uint32_t)nb, w, 0, NULL);

    if (ns) {
        if (vk_timed(vk, record_dispatch, &c, ns, e))
            return kiln_err_wrap(e, "timed launch of '%s' (grid %ux%ux%u)", p->kernel, grid[0], grid[1], grid[2]);
        return 0;
    }
    vk_barrier(vk);
    record_dispatch(vk, &c);
    if (++vk->n_recorded >= VK_AUTO_FLUSH && vk_submit_wait(vk, e))
        return kiln_err_wrap(e, "launch of '%s'", p->kernel);
    return 0;
}
