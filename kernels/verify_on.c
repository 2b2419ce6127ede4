/* kernels/verify_on.c - one config checked on one device before it is
 * trusted: what a consumer does with a winner borrowed from another device
 * (the similarity level of the database lookup). */
#include <stdio.h>
#include <string.h>

#include "kernels/runner.h"

int kiln_config_verify_on(kiln_device *d, const kiln_kernel *k, const kiln_shape *s, const kiln_config *c,
                          uint64_t seed, char *why, size_t n, kiln_err *e)
{
    char reason[256];
    if (!k->config_valid(s, c, &d->fp, reason, sizeof reason)) {
        snprintf(why, n, "not valid on this device: %s", reason);
        return 0;
    }
    kiln_problem p;
    memset(&p, 0, sizeof p);
    int rc = kiln_problem_make(k, &p, s, kiln_data_class(k, s, c), seed, e);
    if (rc)
        return rc < 0 ? rc : -rc;
    kiln_variant v;
    kiln_err be = {0};
    if ((rc = kiln_variant_build(&v, d, k, s, c, 0, NULL, &be))) {
        kiln_problem_free(&p);
        snprintf(why, n, "does not build here: %.200s", be.msg);
        return 0;
    }
    kiln_problem_dev pd;
    memset(&pd, 0, sizeof pd);
    int out = 0;
    kiln_verify_result vr;
    if ((rc = kiln_problem_upload(d, &p, &pd, e)) || (rc = kiln_verify(&v, &p, &pd, &vr, e))) {
        out = rc < 0 ? rc : -rc;
    } else if (!vr.ok) {
        snprintf(why, n, "wrong result here: %.200s", vr.detail);
    } else {
        out = 1;
    }
    kiln_problem_dev_free(&pd);
    kiln_variant_release(&v);
    kiln_problem_free(&p);
    return out;
}
