/* kernels/dequant/dequant.c - placeholder until the kernel lands: declares no shapes,
 * so kiln check reports it as missing (never as passed). */
#include "kernels/kernel.h"
#include "kernels/sources.h"

const kiln_kernel kiln_kernel_dequant = {.name = "dequant", .doc = "not implemented yet"};
const kiln_cpu_entry kiln_cpu_entries_dequant[] = {{0, 0}};
