/* src/cmd_devices.c - placeholder: `kiln devices` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_devices(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln devices: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
