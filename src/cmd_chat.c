/* src/cmd_chat.c - placeholder: `kiln chat` is not implemented yet. */
#include <stdio.h>

#include "src/commands.h"

int cmd_chat(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "kiln chat: not implemented yet\n");
    return KILN_EXIT_UNAVAILABLE;
}
