/* kernels/gemv_int4/gemv_int4.c - placeholder until the kernel lands: declares no shapes,
 * so kiln check reports it as missing (never as passed). */
#include "kernels/kernel.h"
#include "kernels/sources.h"

const kiln_kernel kiln_kernel_gemv_int4 = {.name = "gemv_int4", .doc = "not implemented yet"};
const kiln_cpu_entry kiln_cpu_entries_gemv_int4[] = {{0, 0}};
