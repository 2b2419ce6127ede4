/* kernels/quant.c - placeholder; the gemv_int4 work implements quant.h. */
#include "kernels/quant.h"
