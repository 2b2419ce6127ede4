/* devices/cpu/cpu_device.c - placeholder until the cpu backend lands. */
#include <stdio.h>

#include "devices/device.h"

static int probe(kiln_backend_status *st)
{
    snprintf(st->reason, sizeof st->reason, "cpu backend not implemented yet");
    return 0;
}

static int open_dev(int index, kiln_device **out, kiln_err *e)
{
    (void)index;
    *out = NULL;
    return kiln_fail(e, KILN_E_UNAVAILABLE, "cpu backend not implemented yet");
}

const kiln_backend_impl kiln_backend_impl_cpu = {.kind = KILN_CPU, .probe = probe, .open = open_dev};
