/* tests/link_whole.c - libkiln links on its own: this program pulls in every
 * object of the library (meson link_whole), so a symbol that only the `kiln`
 * executable defines (a command's helper, the embedded database table) fails
 * the build here. At run time it checks the registry is reachable. */
#include "engine/session.h"
#include "tests/test.h"

int main(void)
{
    CHECK(kiln_kernel_count() > 0, "no kernels registered");
    CHECK(kiln_kernel_find("gemv_int4") != NULL, "gemv_int4 missing from the registry");
    kiln_session s;
    kiln_session_opts o = {.device = "cpu"}; /* no model: refused before anything opens */
    kiln_err e = {0};
    CHECK(kiln_session_open(&s, &o, &e) == KILN_E_INVALID && strstr(e.msg, "model"), "open without a model: %s",
          e.msg);
    return test_result();
}
