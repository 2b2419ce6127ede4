/* src/cmd_devices.c - `kiln devices`: every backend, available or not (and
 * why), and every device with its fingerprint and measured copy and read
 * bandwidth (read: the roof of a kernel that streams its inputs, a gemv). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/args.h"
#include "src/commands.h"
#include "devices/device.h"

static void fp_json(cJSON *o, const kiln_device *d, const char *read_how)
{
    const kiln_fingerprint *fp = &d->fp;
    char key[512];
    kiln_fingerprint_key(fp, key, sizeof key);
    cJSON_AddStringToObject(o, "id", "");
    char id[32];
    snprintf(id, sizeof id, "%s:%d", kiln_backend_name(d->backend), d->index);
    cJSON_ReplaceItemInObject(o, "id", cJSON_CreateString(id));
    cJSON_AddStringToObject(o, "vendor", fp->vendor);
    cJSON_AddNumberToObject(o, "vendor_id", fp->vendor_id);
    cJSON_AddNumberToObject(o, "device_id", fp->device_id);
    cJSON_AddStringToObject(o, "name", fp->name);
    cJSON_AddStringToObject(o, "arch", fp->arch);
    cJSON_AddStringToObject(o, "driver_version", fp->driver_version);
    cJSON_AddStringToObject(o, "compiler_version", fp->compiler_version);
    cJSON_AddNumberToObject(o, "compute_units", fp->compute_units);
    cJSON_AddNumberToObject(o, "subgroup_size", fp->subgroup_size);
    cJSON_AddNumberToObject(o, "subgroup_min", fp->subgroup_min);
    cJSON_AddNumberToObject(o, "subgroup_max", fp->subgroup_max);
    cJSON_AddBoolToObject(o, "subgroup_ops", fp->has_subgroup_ops);
    cJSON_AddNumberToObject(o, "local_mem_bytes", (double)fp->local_mem_bytes);
    cJSON_AddNumberToObject(o, "max_workgroup", fp->max_workgroup);
    cJSON_AddNumberToObject(o, "memory_bytes", (double)fp->memory_bytes);
    cJSON_AddNumberToObject(o, "llc_bytes", (double)fp->llc_bytes);
    cJSON_AddNumberToObject(o, "copy_gbps", fp->copy_gbps);
    cJSON_AddNumberToObject(o, "read_gbps", fp->read_gbps);
    cJSON_AddStringToObject(o, "read_probe", read_how);
    cJSON_AddStringToObject(o, "fingerprint", key);
}

static void mib(char *buf, size_t n, uint64_t bytes)
{
    if (bytes >= (1ull << 30))
        snprintf(buf, n, "%.1f GiB", (double)bytes / (1ull << 30));
    else if (bytes >= (1ull << 20))
        snprintf(buf, n, "%.1f MiB", (double)bytes / (1ull << 20));
    else
        snprintf(buf, n, "%.0f KiB", (double)bytes / 1024);
}

static void print_device(const kiln_device *d, const char *bw_note, const char *read_note, const char *read_how)
{
    const kiln_fingerprint *fp = &d->fp;
    char local[32], mem[32], llc[32];
    mib(local, sizeof local, fp->local_mem_bytes);
    mib(mem, sizeof mem, fp->memory_bytes);
    mib(llc, sizeof llc, fp->llc_bytes);
    printf("%s:%d  %s\n", kiln_backend_name(d->backend), d->index, fp->name);
    printf("    vendor      %s (0x%04x), device 0x%04x, arch %s\n", fp->vendor, fp->vendor_id, fp->device_id, fp->arch);
    printf("    driver      %s\n", fp->driver_version);
    printf("    compiler    %s\n", fp->compiler_version);
    printf("    compute     %u units, subgroup %u (%u-%u)%s, max workgroup %u\n", fp->compute_units, fp->subgroup_size,
           fp->subgroup_min, fp->subgroup_max, fp->has_subgroup_ops ? " with subgroup ops" : "", fp->max_workgroup);
    printf("    memory      %s, local %s, last-level cache %s\n", mem, local, llc);
    if (bw_note)
        printf("    copy        %s\n", bw_note);
    else
        printf("    copy        %.1f GB/s (device-timed, read+write)\n", fp->copy_gbps);
    if (read_note)
        printf("    read        %s\n", read_note);
    else
        printf("    read        %.1f GB/s (device-timed, bytes read by a reduction: %s)\n", fp->read_gbps, read_how);
}

int cmd_devices(int argc, char **argv)
{
    int json = 0, no_bandwidth = 0, names_only = 0;
    const kiln_opt opts[] = {
        {"--json", NULL, KILN_OPT_FLAG, &json, .help = "one JSON object: backends, their status and devices"},
        {"--no-bandwidth", NULL, KILN_OPT_FLAG, &no_bandwidth, .help = "skip the copy and read bandwidth measurements"},
        {"--available", NULL, KILN_OPT_FLAG, &names_only,
         .help = "print backend:index of each usable device, one per line"},
        {0},
    };
    const kiln_opt *tables[] = {opts, NULL};
    int prc = kiln_args_parse("kiln devices",
                              "usage: kiln devices [--json] [--no-bandwidth] [--available]\n"
                              "exit: 0 ok, 2 usage\n",
                              tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    int bandwidth = !no_bandwidth;
    cJSON *root = json ? cJSON_CreateObject() : NULL, *backends = json ? cJSON_AddArrayToObject(root, "backends") : NULL;
    int listed = 0;
    for (int b = 0; b < KILN_BACKEND_COUNT; b++) {
        kiln_backend_status st;
        kiln_backend_probe((kiln_backend_kind)b, &st);
        const char *bn = kiln_backend_name((kiln_backend_kind)b);
        cJSON *jb = NULL, *jdevs = NULL;
        if (json) {
            jb = cJSON_CreateObject();
            cJSON_AddStringToObject(jb, "name", bn);
            cJSON_AddBoolToObject(jb, "compiled", st.compiled);
            cJSON_AddBoolToObject(jb, "available", st.available);
            cJSON_AddStringToObject(jb, "reason", st.available ? "" : st.reason);
            jdevs = cJSON_AddArrayToObject(jb, "devices");
            cJSON_AddItemToArray(backends, jb);
        } else if (!st.available && !names_only) {
            printf("%s: unavailable: %s\n\n", bn, st.reason);
        }
        for (int i = 0; st.available && i < st.n_devices; i++) {
            kiln_device *d;
            kiln_err e = {0};
            if (kiln_device_open((kiln_backend_kind)b, i, &d, &e)) {
                if (!names_only)
                    fprintf(stderr, "%s:%d: cannot open: %s\n", bn, i, e.msg);
                continue;
            }
            char note[600] = "", rnote[600] = "", how[128] = "";
            if (bandwidth && !names_only && kiln_measure_copy_bandwidth(d, NULL, &e))
                snprintf(note, sizeof note, "not measured: %.500s", e.msg);
            if (bandwidth && !names_only && kiln_measure_read_bandwidth(d, NULL, how, sizeof how, &e))
                snprintf(rnote, sizeof rnote, "not measured: %.500s", e.msg);
            if (names_only)
                printf("%s:%d\n", bn, i);
            else if (json) {
                cJSON *jd = cJSON_CreateObject();
                fp_json(jd, d, how);
                cJSON_AddItemToArray(jdevs, jd);
            } else {
                const char *off = !bandwidth ? "not measured (--no-bandwidth)" : NULL;
                print_device(d, note[0] ? note : off, rnote[0] ? rnote : off, how);
                printf("\n");
            }
            listed++;
            kiln_device_close(d);
        }
    }
    if (json) {
        char *s = cJSON_Print(root);
        puts(s ? s : "{}");
        free(s);
        cJSON_Delete(root);
    }
    return listed ? KILN_EXIT_OK : KILN_EXIT_UNAVAILABLE;
}
