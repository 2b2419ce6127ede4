/* src/cmd_report.c - placeholder: `kiln report` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_report(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln report: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
