/* kernels/registry.c - every kernel Kiln knows, every CPU entry point, and
 * the embedded GPU sources. The lists are the build's: each kernel folder's
 * meson.build names its descriptors and cpu table, and kernels/meson.build
 * writes them to kernel_list.h as X-macro lists, expanded here. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernel.h"
#include "kernels/kernel_list.h"
#include "kernels/sources.h"
#include "kiln_config.h"

#define X(name) extern const kiln_kernel kiln_kernel_##name;
KILN_KERNEL_LIST
#undef X

static const kiln_kernel *const kernels[] = {
#define X(name) &kiln_kernel_##name,
    KILN_KERNEL_LIST
#undef X
};

int kiln_kernel_count(void) { return (int)(sizeof kernels / sizeof kernels[0]); }

const kiln_kernel *kiln_kernel_at(int i)
{
    return i >= 0 && i < kiln_kernel_count() ? kernels[i] : NULL;
}

const kiln_kernel *kiln_kernel_find(const char *name)
{
    for (int i = 0; i < kiln_kernel_count(); i++)
        if (strcmp(kernels[i]->name, name) == 0)
            return kernels[i];
    return NULL;
}

#define X(folder) extern const kiln_cpu_entry kiln_cpu_entries_##folder[];
KILN_CPU_TABLE_LIST
#undef X

static const kiln_cpu_entry *const cpu_tables[] = {
#define X(folder) kiln_cpu_entries_##folder,
    KILN_CPU_TABLE_LIST
#undef X
};

kiln_cpu_fn kiln_cpu_kernel_find(const char *entry)
{
    for (size_t t = 0; t < sizeof cpu_tables / sizeof cpu_tables[0]; t++)
        for (const kiln_cpu_entry *e = cpu_tables[t]; e->name; e++)
            if (strcmp(e->name, entry) == 0)
                return e->fn;
    return NULL;
}

const char *kiln_source_get(const char *source, kiln_backend_kind be)
{
    const char *ext = be == KILN_OPENCL ? "cl" : be == KILN_VULKAN ? "comp" : be == KILN_CUDA ? "cu" : NULL;
    if (!ext || !source)
        return NULL;
    for (int i = 0; i < kiln_embedded_source_count; i++)
        if (strcmp(kiln_embedded_sources[i].stem, source) == 0 && strcmp(kiln_embedded_sources[i].ext, ext) == 0)
            return kiln_embedded_sources[i].text;
    return NULL;
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

void kiln_kernel_source_hash(const kiln_kernel *k, kiln_backend_kind be, char out[17])
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv1a(h, k->name, strlen(k->name));
    for (int i = 0; i < k->n_params; i++) {
        const kiln_param *p = &k->params[i];
        h = fnv1a(h, p->name, strlen(p->name));
        h = fnv1a(h, p->values, sizeof(int) * (size_t)p->n_values);
        h = fnv1a(h, &p->def, sizeof p->def);
    }
    kiln_shape s;
    kiln_plan plan;
    if (be == KILN_CPU) {
        /* the cpu entries are compiled in: their sources' hash from the build
         * (tools/hash_sources.c); a kernel outside the lists keeps the version */
        int found = 0;
        for (int i = 0; i < kiln_cpu_source_hash_count && !found; i++)
            if (!strcmp(kiln_cpu_source_hashes[i].kernel, k->name)) {
                h = fnv1a(h, &kiln_cpu_source_hashes[i].hash, sizeof kiln_cpu_source_hashes[i].hash);
                found = 1;
            }
        if (!found)
            h = fnv1a(h, KILN_VERSION, strlen(KILN_VERSION));
    } else if (k->shapes && k->shapes(KILN_SHAPES_TUNE, &s, 1) == 1) {
        /* the sources of the default's plan and of every corner's (a corner
         * may switch to another source file: gemv's layout, a reduce step),
         * each file once */
        kiln_config cfgs[1 + 2 * KILN_MAX_PARAMS];
        kiln_config_default(k, &cfgs[0]);
        int n_cfg = 1 + kiln_config_corners(k, cfgs + 1, 2 * KILN_MAX_PARAMS);
        const char *seen[64];
        int n_seen = 0;
        for (int ci = 0; ci < n_cfg; ci++) {
            if (k->plan(&s, &cfgs[ci], be, &plan, NULL))
                continue;
            for (int i = 0; i < plan.n_steps; i++) {
                const char *name = be == KILN_VULKAN ? plan.steps[i].entry : plan.steps[i].source;
                int dup = 0;
                for (int j = 0; j < n_seen && !dup; j++)
                    dup = !strcmp(seen[j], name);
                const char *src = dup || n_seen == 64 ? NULL : kiln_source_get(name, be);
                if (src) {
                    seen[n_seen++] = name;
                    h = fnv1a(h, src, strlen(src));
                }
            }
        }
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

