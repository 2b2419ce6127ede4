/* devices/vulkan/vk_memory.c - buffers, staging, write/read/fill/copy.
 *
 * Owns: one VkDeviceMemory per kiln_buffer (storage + transfer usage) and
 * the device's staging buffer. Storage buffers use the first DEVICE_LOCAL
 * memory type the buffer accepts; when that type is also HOST_VISIBLE |
 * HOST_COHERENT (integrated GPUs, lavapipe) every buffer stays mapped and
 * write/read are a memcpy after the queue drained ("direct" path).
 * Otherwise transfers go through a HOST_VISIBLE|HOST_COHERENT staging buffer
 * (CACHED preferred, grown on demand up to staging_max, larger transfers
 * chunked). Invariants: a buffer's size never exceeds maxStorageBufferRange;
 * write/read/fill drain queued work first so they are ordered with launches. */
#include <stdlib.h>
#include <string.h>

#include "devices/vulkan/vk_internal.h"
#include "util/num.h"

/* First memory type in `bits` with all of `need` (and `want` if possible). */
static int find_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags need,
                     VkMemoryPropertyFlags want)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
            VkMemoryPropertyFlags fl = mp->memoryTypes[i].propertyFlags;
            if (!(bits & (1u << i)) || (fl & need) != need)
                continue;
            if (pass == 0 && (fl & want) != want)
                continue;
            return (int)i;
        }
    return -1;
}

static const VkBufferUsageFlags usage_storage =
    VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;

/* Creates buf+mem of `size` bytes with memory type `type`. */
static int make_buffer(vk_dev *vk, VkDeviceSize size, VkBufferUsageFlags usage, uint32_t type, VkBuffer *buf,
                       VkDeviceMemory *mem, kiln_err *e)
{
    const vk_fns *f = &vk->fn;
    *buf = VK_NULL_HANDLE;
    *mem = VK_NULL_HANDLE;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = size,
        .usage = usage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkResult r = f->vkCreateBuffer(vk->dev, &bci, NULL, buf);
    if (r != VK_SUCCESS) {
        *buf = VK_NULL_HANDLE;
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateBuffer(%llu bytes)", (unsigned long long)size);
    }
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(vk->dev, *buf, &req);
    if (!(req.memoryTypeBits & (1u << type))) {
        f->vkDestroyBuffer(vk->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        return kiln_fail(e, KILN_E_DEVICE, "%s: buffer of %llu bytes cannot use memory type %u (allowed mask 0x%x)",
                         vk->who, (unsigned long long)size, type, req.memoryTypeBits);
    }
    VkMemoryAllocateInfo mai = {
        .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
        .allocationSize = req.size,
        .memoryTypeIndex = type,
    };
    r = f->vkAllocateMemory(vk->dev, &mai, NULL, mem);
    if (r != VK_SUCCESS) {
        f->vkDestroyBuffer(vk->dev, *buf, NULL);
        *buf = VK_NULL_HANDLE;
        *mem = VK_NULL_HANDLE;
        return vk_fail(vk, e, KILN_E_NOMEM, r, "vkAllocateMemory(%llu bytes, type %u)", (unsigned long long)req.size,
                       type);
    }
    r = f->vkBindBufferMemory(vk->dev, *buf, *mem, 0);
    if (r != VK_SUCCESS) {
        f->vkDestroyBuffer(vk->dev, *buf, NULL);
        f->vkFreeMemory(vk->dev, *mem, NULL);
        *buf = VK_NULL_HANDLE;
        *mem = VK_NULL_HANDLE;
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkBindBufferMemory");
    }
    return 0;
}

int vk_memory_init(vk_dev *vk, kiln_err *e)
{
    /* Ask a 4-byte probe buffer which types storage/staging buffers accept. */
    const vk_fns *f = &vk->fn;
    VkBufferCreateInfo bci = {
        .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
        .size = 4,
        .usage = usage_storage,
        .sharingMode = VK_SHARING_MODE_EXCLUSIVE,
    };
    VkBuffer probe;
    VkResult r = f->vkCreateBuffer(vk->dev, &bci, NULL, &probe);
    if (r != VK_SUCCESS)
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkCreateBuffer(probe)");
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(vk->dev, probe, &req);
    f->vkDestroyBuffer(vk->dev, probe, NULL);

    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int st = find_type(&vk->mem_props, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (st < 0)
        st = find_type(&vk->mem_props, req.memoryTypeBits, 0, 0);
    int sg = find_type(&vk->mem_props, req.memoryTypeBits, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    if (st < 0 || sg < 0)
        return kiln_fail(e, KILN_E_DEVICE, "%s: no usable memory type for %s buffers (type mask 0x%x)", vk->who,
                         st < 0 ? "storage" : "host-visible staging", req.memoryTypeBits);
    vk->storage_type = (uint32_t)st;
    vk->staging_type = (uint32_t)sg;
    vk->direct = (vk->mem_props.memoryTypes[st].propertyFlags & hv) == hv;
    long long force, smax;
    int rc;
    if ((rc = kiln_env_int("KILN_VK_FORCE_STAGING", 0, 1, 0, &force, e)) ||
        (rc = kiln_env_int("KILN_VK_STAGING_MAX", 4096, 1LL << 40, (long long)VK_STAGING_MAX, &smax, e)))
        return kiln_err_wrap(e, "%s", vk->who);
    if (force)
        vk->direct = 0;
    vk->staging_max = (VkDeviceSize)smax;
    return 0;
}

void vk_memory_destroy(vk_dev *vk)
{
    if (vk->staging != VK_NULL_HANDLE)
        vk->fn.vkDestroyBuffer(vk->dev, vk->staging, NULL);
    if (vk->staging_mem != VK_NULL_HANDLE)
        vk->fn.vkFreeMemory(vk->dev, vk->staging_mem, NULL); /* unmaps */
    vk->staging = VK_NULL_HANDLE;
    vk->staging_mem = VK_NULL_HANDLE;
    vk->staging_map = NULL;
    vk->staging_size = 0;
}

/* Makes the staging buffer at least min(want, staging_max) bytes. */
static int staging_reserve(vk_dev *vk, VkDeviceSize want, kiln_err *e)
{
    if (want > vk->staging_max)
        want = vk->staging_max;
    if (vk->staging_size >= want)
        return 0;
    VkDeviceSize size = vk->staging_size ? vk->staging_size : ((VkDeviceSize)1 << 20);
    while (size < want)
        size *= 2;
    if (size > vk->staging_max)
        size = vk->staging_max;
    vk_memory_destroy(vk);
    int rc = make_buffer(vk, size, VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                         vk->staging_type, &vk->staging, &vk->staging_mem, e);
    if (rc)
        return kiln_err_wrap(e, "staging buffer");
    VkResult r = vk->fn.vkMapMemory(vk->dev, vk->staging_mem, 0, VK_WHOLE_SIZE, 0, &vk->staging_map);
    if (r != VK_SUCCESS) {
        vk_memory_destroy(vk);
        return vk_fail(vk, e, KILN_E_DEVICE, r, "vkMapMemory(staging, %llu bytes)", (unsigned long long)size);
    }
    vk->staging_size = size;
    return 0;
}

kiln_buffer *vk_alloc(kiln_device *d, size_t bytes, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    VkDeviceSize size = ((VkDeviceSize)(bytes ? bytes : 4) + 3) & ~(VkDeviceSize)3;
    if (size > vk->limits.maxStorageBufferRange) {
        kiln_fail(e, KILN_E_INVALID,
                  "%s: buffer of %zu bytes exceeds maxStorageBufferRange (%u bytes, %.1f MiB): split it into smaller "
                  "buffers",
                  vk->who, bytes, vk->limits.maxStorageBufferRange, vk->limits.maxStorageBufferRange / 1048576.0);
        return NULL;
    }
    if (vk->max_alloc && size > vk->max_alloc) {
        kiln_fail(e, KILN_E_INVALID, "%s: buffer of %zu bytes exceeds maxMemoryAllocationSize (%llu bytes)", vk->who,
                  bytes, (unsigned long long)vk->max_alloc);
        return NULL;
    }
    kiln_buffer *b = calloc(1, sizeof *b);
    if (!b) {
        kiln_fail(e, KILN_E_NOMEM, "%s: out of host memory", vk->who);
        return NULL;
    }
    b->owner = vk;
    b->size = bytes;
    b->alloc_size = size;
    if (make_buffer(vk, size, usage_storage, vk->storage_type, &b->buf, &b->mem, e)) {
        kiln_err_wrap(e, "allocating a %zu-byte buffer", bytes);
        free(b);
        return NULL;
    }
    if (vk->direct) {
        VkResult r = vk->fn.vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map);
        if (r != VK_SUCCESS) {
            vk_fail(vk, e, KILN_E_DEVICE, r, "vkMapMemory(%zu-byte buffer)", bytes);
            vk->fn.vkDestroyBuffer(vk->dev, b->buf, NULL);
            vk->fn.vkFreeMemory(vk->dev, b->mem, NULL);
            free(b);
            return NULL;
        }
    }
    vk->n_buffers++;
    return b;
}

void vk_free(kiln_device *d, kiln_buffer *b)
{
    if (!b)
        return;
    vk_dev *vk = vk_of(d);
    /* queued commands may still use it */
    if (vk->recording)
        vk_submit_wait(vk, NULL);
    vk->fn.vkDestroyBuffer(vk->dev, b->buf, NULL);
    vk->fn.vkFreeMemory(vk->dev, b->mem, NULL);
    vk->n_buffers--;
    free(b);
}

static int check_range(vk_dev *vk, kiln_buffer *b, size_t off, size_t n, const char *op, kiln_err *e)
{
    if (!b)
        return kiln_fail(e, KILN_E_INVALID, "%s: %s: buffer is NULL", vk->who, op);
    if (b->owner != vk)
        return kiln_fail(e, KILN_E_INVALID, "%s: %s: buffer belongs to another device (%s)", vk->who, op,
                         b->owner->who);
    if (off > b->size || n > b->size - off)
        return kiln_fail(e, KILN_E_INVALID, "%s: %s of %zu bytes at offset %zu overruns a %zu-byte buffer", vk->who,
                         op, n, off, b->size);
    return 0;
}

int vk_write(kiln_device *d, kiln_buffer *b, size_t off, const void *src, size_t n, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    if (check_range(vk, b, off, n, "write", e))
        return KILN_E_INVALID;
    if (n == 0)
        return 0;
    if (vk_submit_wait(vk, e))
        return kiln_err_wrap(e, "write: waiting for queued work");
    if (b->map) {
        memcpy((char *)b->map + off, src, n);
        return 0;
    }
    if (staging_reserve(vk, n, e))
        return kiln_err_wrap(e, "write");
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < vk->staging_size ? n - done : (size_t)vk->staging_size;
        memcpy(vk->staging_map, (const char *)src + done, chunk);
        if (vk_begin(vk, e))
            return kiln_err_wrap(e, "write");
        vk_barrier(vk);
        VkBufferCopy region = {.srcOffset = 0, .dstOffset = off + done, .size = chunk};
        vk->fn.vkCmdCopyBuffer(vk->cmd, vk->staging, b->buf, 1, &region);
        vk->n_recorded++;
        if (vk_submit_wait(vk, e))
            return kiln_err_wrap(e, "write: staging copy");
        done += chunk;
    }
    return 0;
}

int vk_read(kiln_device *d, kiln_buffer *b, size_t off, void *dst, size_t n, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    if (check_range(vk, b, off, n, "read", e))
        return KILN_E_INVALID;
    if (n == 0)
        return 0;
    if (vk_submit_wait(vk, e))
        return kiln_err_wrap(e, "read: waiting for queued work");
    if (b->map) {
        memcpy(dst, (const char *)b->map + off, n);
        return 0;
    }
    if (staging_reserve(vk, n, e))
        return kiln_err_wrap(e, "read");
    for (size_t done = 0; done < n;) {
        size_t chunk = n - done < vk->staging_size ? n - done : (size_t)vk->staging_size;
        if (vk_begin(vk, e))
            return kiln_err_wrap(e, "read");
        vk_barrier(vk);
        VkBufferCopy region = {.srcOffset = off + done, .dstOffset = 0, .size = chunk};
        vk->fn.vkCmdCopyBuffer(vk->cmd, b->buf, vk->staging, 1, &region);
        vk->n_recorded++;
        if (vk_submit_wait(vk, e))
            return kiln_err_wrap(e, "read: staging copy");
        memcpy((char *)dst + done, vk->staging_map, chunk);
        done += chunk;
    }
    return 0;
}

int vk_fill(kiln_device *d, kiln_buffer *b, uint8_t byte, size_t n, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    if (check_range(vk, b, 0, n, "fill", e))
        return KILN_E_INVALID;
    size_t body = n & ~(size_t)3, tail = n - body;
    if (body) {
        if (vk_begin(vk, e))
            return kiln_err_wrap(e, "fill");
        vk_barrier(vk);
        uint32_t word = byte * 0x01010101u;
        vk->fn.vkCmdFillBuffer(vk->cmd, b->buf, 0, body, word);
        vk->n_recorded++;
    }
    if (vk_submit_wait(vk, e))
        return kiln_err_wrap(e, "fill of %zu bytes", n);
    if (tail) {
        uint8_t t[3];
        memset(t, byte, sizeof t);
        return vk_write(d, b, body, t, tail, e);
    }
    return 0;
}

typedef struct copy_ctx {
    kiln_buffer *dst, *src;
    size_t n;
} copy_ctx;

static void record_copy(vk_dev *vk, void *ctx)
{
    copy_ctx *c = ctx;
    VkBufferCopy region = {.srcOffset = 0, .dstOffset = 0, .size = c->n};
    vk->fn.vkCmdCopyBuffer(vk->cmd, c->src->buf, c->dst->buf, 1, &region);
}

int vk_copy(kiln_device *d, kiln_buffer *dst, kiln_buffer *src, size_t n, double *ns, kiln_err *e)
{
    vk_dev *vk = vk_of(d);
    if (check_range(vk, dst, 0, n, "copy (destination)", e) || check_range(vk, src, 0, n, "copy (source)", e))
        return KILN_E_INVALID;
    if (ns)
        *ns = 0;
    if (n == 0)
        return 0;
    if (dst == src)
        return kiln_fail(e, KILN_E_INVALID, "%s: copy: source and destination are the same buffer", vk->who);
    copy_ctx c = {dst, src, n};
    if (ns) {
        if (vk_timed(vk, record_copy, &c, ns, e))
            return kiln_err_wrap(e, "timed copy of %zu bytes", n);
        return 0;
    }
    if (vk_begin(vk, e))
        return kiln_err_wrap(e, "copy");
    vk_barrier(vk);
    record_copy(vk, &c);
    if (++vk->n_recorded >= VK_AUTO_FLUSH && vk_submit_wait(vk, e))
        return kiln_err_wrap(e, "copy");
    return 0;
}
