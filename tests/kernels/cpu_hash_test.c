/* tests/kernels/cpu_hash_test.c - the cpu kernels' source hash covers their
 * real sources (tools/hash_sources.c, run by meson), so editing a cpu kernel
 * invalidates the winners tuned for the old code (issue 9 item 11; the hash
 * used to cover only the schedule space and the Kiln version).
 * args: TOOL FILE... - kiln-hash-cpu and the files of the rmsnorm/rope group
 * in the order kernels/meson.build hashes them (the folder's, then the
 * shared cpu helpers).
 *   - the hash compiled in for rope and rmsnorm is the tool's hash of those
 *     files as they are now; gemv_int4's (another folder) differs;
 *   - copies of the files hash the same (base names, not paths), and a
 *     one-comment edit of the copy of norm_rope_cpu.c changes the hash;
 *   - kiln_kernel_source_hash(rope, cpu) is not the old space+version hash. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/kernel.h"
#include "kernels/sources.h"
#include "kiln_config.h"
#include "tests/test.h"

static unsigned long long tool_hash(const char *tool, char **files, int n)
{
    char cmd[8192];
    size_t k = (size_t)snprintf(cmd, sizeof cmd, "'%s' --print", tool);
    for (int i = 0; i < n && k < sizeof cmd; i++)
        k += (size_t)snprintf(cmd + k, sizeof cmd - k, " '%s'", files[i]);
    FILE *p = popen(cmd, "r");
    unsigned long long h = 0;
    if (!p || fscanf(p, "%llx", &h) != 1)
        CHECK(0, "running %s gave no hash", cmd);
    if (p)
        CHECK(pclose(p) == 0, "%s failed", cmd);
    return h;
}

static unsigned long long compiled(const char *kernel)
{
    for (int i = 0; i < kiln_cpu_source_hash_count; i++)
        if (!strcmp(kiln_cpu_source_hashes[i].kernel, kernel))
            return kiln_cpu_source_hashes[i].hash;
    CHECK(0, "no compiled-in cpu source hash for %s", kernel);
    return 0;
}

static void copy_file(const char *from, const char *to, const char *append)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    CHECK(a && b, "copying %s to %s", from, to);
    if (!a || !b)
        exit(1);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0)
        fwrite(buf, 1, n, b);
    if (append)
        fputs(append, b);
    fclose(a);
    CHECK(fclose(b) == 0, "writing %s", to);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *c = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KILN-HASH-CPU FILE...\n", argv[0]);
        return 2;
    }
    const char *tool = argv[1];
    char **files = argv + 2;
    int n = argc - 2;
    unsigned long long now = tool_hash(tool, files, n);
    CHECK(compiled("rope") == now && compiled("rmsnorm") == now,
          "compiled-in hashes rope %016llx, rmsnorm %016llx; the sources hash %016llx", compiled("rope"),
          compiled("rmsnorm"), now);
    CHECK(compiled("gemv_int4") != now, "gemv_int4 shares rope's hash %016llx", now);

    char dir[] = "/tmp/kiln-cpu-hash-XXXXXX";
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    char **copies = calloc((size_t)n, sizeof *copies), **edited = calloc((size_t)n, sizeof *edited);
    int found = 0;
    for (int i = 0; i < n; i++) {
        const char *base = strrchr(files[i], '/');
        base = base ? base + 1 : files[i];
        copies[i] = malloc(strlen(dir) + strlen(base) + 8);
        edited[i] = malloc(strlen(dir) + strlen(base) + 8);
        sprintf(copies[i], "%s/a/%s", dir, base);
        sprintf(edited[i], "%s/b/%s", dir, base);
        if (i == 0) {
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/a", dir), mkdir(sub, 0700);
            snprintf(sub, sizeof sub, "%s/b", dir), mkdir(sub, 0700);
        }
        int is_cpu = !strcmp(base, "norm_rope_cpu.c");
        found += is_cpu;
        copy_file(files[i], copies[i], NULL);
        copy_file(files[i], edited[i], is_cpu ? "/* an edit */\n" : NULL);
    }
    CHECK(found == 1, "norm_rope_cpu.c is %d times among the hashed files", found);
    unsigned long long same = tool_hash(tool, copies, n), changed = tool_hash(tool, edited, n);
    CHECK(same == now, "copies elsewhere hash %016llx, the sources %016llx", same, now);
    CHECK(changed != now, "editing norm_rope_cpu.c left the hash at %016llx", now);

    /* the old cpu hash: name, space, Kiln version */
    const kiln_kernel *k = kiln_kernel_find("rope");
    uint64_t h = fnv1a(0xcbf29ce484222325ull, k->name, strlen(k->name));
    for (int i = 0; i < k->n_params; i++) {
        h = fnv1a(h, k->params[i].name, strlen(k->params[i].name));
        h = fnv1a(h, k->params[i].values, sizeof(int) * (size_t)k->params[i].n_values);
        h = fnv1a(h, &k->params[i].def, sizeof k->params[i].def);
    }
    h = fnv1a(h, KILN_VERSION, strlen(KILN_VERSION));
    char old[17], cur[17];
    snprintf(old, sizeof old, "%016llx", (unsigned long long)h);
    kiln_kernel_source_hash(k, KILN_CPU, cur);
    CHECK(strcmp(old, cur), "rope's cpu hash %s is still the space+version hash", cur);
    printf("rope/rmsnorm cpu sources %016llx (edited: %016llx), kernel hash %s (old scheme %s), %d files\n", now,
           changed, cur, old, n);

    for (int i = 0; i < n; i++) {
        unlink(copies[i]), unlink(edited[i]);
        free(copies[i]), free(edited[i]);
    }
    free(copies), free(edited);
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/a", dir), rmdir(sub);
    snprintf(sub, sizeof sub, "%s/b", dir), rmdir(sub);
    rmdir(dir);
    return test_result();
}
