/* kernels/registry.c - every kernel Kiln knows, and every CPU entry point. */
#include <string.h>

#include "kernels/kernel.h"
#include "kernels/sources.h"

extern const kiln_kernel kiln_kernel_gemv_int4;
extern const kiln_kernel kiln_kernel_gemm_int4;
extern const kiln_kernel kiln_kernel_dequant;
extern const kiln_kernel kiln_kernel_rmsnorm;
extern const kiln_kernel kiln_kernel_rope;
extern const kiln_kernel kiln_kernel_attention_paged;
extern const kiln_kernel kiln_kernel_kv_append;
extern const kiln_kernel kiln_kernel_embed_gather;
extern const kiln_kernel kiln_kernel_silu_mul;
extern const kiln_kernel kiln_kernel_residual_add;
extern const kiln_kernel kiln_kernel_argmax;

static const kiln_kernel *const kernels[] = {
    &kiln_kernel_gemv_int4,
    &kiln_kernel_gemm_int4,
    &kiln_kernel_dequant,
    &kiln_kernel_rmsnorm,
    &kiln_kernel_rope,
    &kiln_kernel_attention_paged,
    &kiln_kernel_kv_append,
    &kiln_kernel_embed_gather,
    &kiln_kernel_silu_mul,
    &kiln_kernel_residual_add,
    &kiln_kernel_argmax,
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

extern const kiln_cpu_entry kiln_cpu_entries_gemv_int4[];
extern const kiln_cpu_entry kiln_cpu_entries_gemm_int4[];
extern const kiln_cpu_entry kiln_cpu_entries_dequant[];
extern const kiln_cpu_entry kiln_cpu_entries_norm_rope[];
extern const kiln_cpu_entry kiln_cpu_entries_attention_paged[];
extern const kiln_cpu_entry kiln_cpu_entries_small[];

static const kiln_cpu_entry *const cpu_tables[] = {
    kiln_cpu_entries_gemv_int4, kiln_cpu_entries_gemm_int4, kiln_cpu_entries_dequant,
    kiln_cpu_entries_norm_rope, kiln_cpu_entries_attention_paged, kiln_cpu_entries_small,
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
