/* src/cmd_db.c - placeholder: `kiln db` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_db(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln db: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
