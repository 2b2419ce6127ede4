/* engine/tune_shapes.c - placeholder until the GGUF loader lands: `tune
 * --model` says plainly that it cannot read models yet. */
#include "engine/tune_shapes.h"

int kiln_model_tune_shapes(const char *gguf_path, const char **kernels, kiln_shape *shapes, int max, int *n,
                           kiln_err *e)
{
    (void)kernels;
    (void)shapes;
    (void)max;
    *n = 0;
    return kiln_fail(e, KILN_E_UNAVAILABLE, "%s: tune --model needs the GGUF loader, which is not built yet",
                     gguf_path);
}
