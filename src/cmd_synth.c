/* src/cmd_synth.c - placeholder: `kiln synth` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_synth(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln synth: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
