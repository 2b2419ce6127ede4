/* kernels/attention_paged/attention_paged.c - placeholder until the kernel lands: declares no shapes,
 * so kiln check reports it as missing (never as passed). */
#include "kernels/kernel.h"
#include "kernels/sources.h"

const kiln_kernel kiln_kernel_attention_paged = {.name = "attention_paged", .doc = "not implemented yet"};
const kiln_kernel kiln_kernel_kv_append = {.name = "kv_append", .doc = "not implemented yet"};
const kiln_cpu_entry kiln_cpu_entries_attention_paged[] = {{0, 0}};
