/* devices/vulkan/vulkan_device.c - placeholder until the vulkan backend lands. */
#include <stdio.h>

#include "devices/device.h"

static int probe(kiln_backend_status *st)
{
    snprintf(st->reason, sizeof st->reason, "vulkan backend not implemented yet");
    return 0;
}

static int open_dev(int index, kiln_device **out, kiln_err *e)
{
    (void)index;
    *out = NULL;
    return kiln_fail(e, KILN_E_UNAVAILABLE, "vulkan backend not implemented yet");
}

const kiln_backend_impl kiln_backend_impl_vulkan = {.kind = KILN_VULKAN, .probe = probe, .open = open_dev};
