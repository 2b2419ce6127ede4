/* kernels/norm_rope/norm_rope.c - placeholder until the kernel lands: declares no shapes,
 * so kiln check reports it as missing (never as passed). */
#include "kernels/kernel.h"
#include "kernels/sources.h"

const kiln_kernel kiln_kernel_rmsnorm = {.name = "rmsnorm", .doc = "not implemented yet"};
const kiln_kernel kiln_kernel_rope = {.name = "rope", .doc = "not implemented yet"};
const kiln_cpu_entry kiln_cpu_entries_norm_rope[] = {{0, 0}};
