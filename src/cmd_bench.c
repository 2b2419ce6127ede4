/* src/cmd_bench.c - placeholder: `kiln bench` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_bench(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln bench: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
