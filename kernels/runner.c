/* kernels/runner.c - placeholder, being written. */
#include "kernels/runner.h"
