/* kernels/small/small.c - placeholder until the kernel lands: declares no shapes,
 * so kiln check reports it as missing (never as passed). */
#include "kernels/kernel.h"
#include "kernels/sources.h"

const kiln_kernel kiln_kernel_embed_gather = {.name = "embed_gather", .doc = "not implemented yet"};
const kiln_kernel kiln_kernel_silu_mul = {.name = "silu_mul", .doc = "not implemented yet"};
const kiln_kernel kiln_kernel_residual_add = {.name = "residual_add", .doc = "not implemented yet"};
const kiln_kernel kiln_kernel_argmax = {.name = "argmax", .doc = "not implemented yet"};
const kiln_cpu_entry kiln_cpu_entries_small[] = {{0, 0}};
