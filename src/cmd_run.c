/* src/cmd_run.c - placeholder: `kiln run` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln run: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
