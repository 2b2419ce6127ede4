/* src/cmd_tune.c - placeholder: `kiln tune` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_tune(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln tune: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
