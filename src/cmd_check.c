/* src/cmd_check.c - placeholder: `kiln check` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln check: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
