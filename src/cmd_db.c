/* src/cmd_db.c - `kiln db`: show, best, export, import, merge, diff, prune. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "kernels/kernel.h"
#include "src/args.h"
#include "src/commands.h"
#include "util/file.h"

static int fail(kiln_err *e)
{
    fprintf(stderr, "kiln db: %s\n", e->msg);
    return kiln_exit_code(e->code);
}

static const char *col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* One query of `show`, every step checked: a damaged database is an error
 * with SQLite's message (never an empty list and exit 0). */
static int query(kiln_db *db, const char *sql, const char *what, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(kiln_db_handle(db), sql, -1, st, NULL) == SQLITE_OK)
        return 0;
    fprintf(stderr, "kiln db show: %s: reading %s: %s\n", kiln_db_path(db), what, sqlite3_errmsg(kiln_db_handle(db)));
    return KILN_EXIT_FAIL;
}

static int finish(kiln_db *db, sqlite3_stmt *st, int r, const char *what)
{
    sqlite3_finalize(st);
    if (r == SQLITE_DONE)
        return 0;
    fprintf(stderr, "kiln db show: %s: reading %s: %s\n", kiln_db_path(db), what, sqlite3_errmsg(kiln_db_handle(db)));
    return KILN_EXIT_FAIL;
}

static int show(kiln_db *db, int json)
{
    sqlite3_stmt *st;
    int r, rc;
    cJSON *root = json ? cJSON_CreateObject() : NULL;
    cJSON *js = json ? cJSON_AddArrayToObject(root, "sessions") : NULL;
    cJSON *jw = json ? cJSON_AddArrayToObject(root, "winners") : NULL;
    if (!json)
        printf("database %s\n\nsessions:\n  %4s  %-34s %-10s %-20s %6s %6s  %s\n", kiln_db_path(db), "id", "device",
               "strategy", "started", "ok", "failed", "status");
    if ((rc = query(db,
                    "SELECT s.id, d.backend || ' ' || d.name, s.strategy, s.started, s.status,"
                    " (SELECT COUNT(*) FROM trials t WHERE t.session_id = s.id AND t.status = 'ok'),"
                    " (SELECT COUNT(*) FROM trials t WHERE t.session_id = s.id AND t.status != 'ok')"
                    " FROM sessions s JOIN devices d ON d.id = s.device_id ORDER BY s.id",
                    "sessions", &st)))
        goto out;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(st, 0));
            cJSON_AddStringToObject(o, "device", col(st, 1));
            cJSON_AddStringToObject(o, "strategy", col(st, 2));
            cJSON_AddStringToObject(o, "started", col(st, 3));
            cJSON_AddStringToObject(o, "status", col(st, 4));
            cJSON_AddNumberToObject(o, "ok", sqlite3_column_int(st, 5));
            cJSON_AddNumberToObject(o, "failed", sqlite3_column_int(st, 6));
            cJSON_AddItemToArray(js, o);
        } else {
            printf("  %4lld  %-34.34s %-10s %-20s %6d %6d  %s\n", (long long)sqlite3_column_int64(st, 0), col(st, 1),
                   col(st, 2), col(st, 3), sqlite3_column_int(st, 5), sqlite3_column_int(st, 6), col(st, 4));
        }
    }
    if ((rc = finish(db, st, r, "sessions")))
        goto out;
    if (!json)
        printf("\nwinners:\n  %-24s %-16s %-28s %10s %10s %7s %7s  %s\n", "device", "kernel", "shape", "time us",
               "default us", "speedup", "margin", "config");
    if ((rc = query(db,
                    "SELECT d.backend || ':' || d.name, k.name, w.shape_key, w.median_ns, w.default_ns, w.speedup,"
                    " w.margin, w.tie, w.config_json, k.source_hash FROM winners w JOIN devices d ON d.id ="
                    " w.device_id JOIN kernels k ON k.id = w.kernel_id ORDER BY d.id, k.name, w.shape_key",
                    "winners", &st)))
        goto out;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "device", col(st, 0));
            cJSON_AddStringToObject(o, "kernel", col(st, 1));
            cJSON_AddStringToObject(o, "shape", col(st, 2));
            cJSON_AddNumberToObject(o, "median_ns", sqlite3_column_double(st, 3));
            cJSON_AddNumberToObject(o, "default_ns", sqlite3_column_double(st, 4));
            cJSON_AddNumberToObject(o, "speedup", sqlite3_column_double(st, 5));
            cJSON_AddNumberToObject(o, "margin", sqlite3_column_double(st, 6));
            cJSON_AddBoolToObject(o, "tie", sqlite3_column_int(st, 7));
            /* a config that is not JSON (an old or foreign row) stays a string */
            cJSON *cfg = cJSON_Parse(col(st, 8));
            cJSON_AddItemToObject(o, "config", cfg ? cfg : cJSON_CreateString(col(st, 8)));
            cJSON_AddStringToObject(o, "source_hash", col(st, 9));
            cJSON_AddItemToArray(jw, o);
        } else {
            printf("  %-24.24s %-16s %-28s %10.1f %10.1f %6.2fx %6.1f%%%s %s\n", col(st, 0), col(st, 1), col(st, 2),
                   sqlite3_column_double(st, 3) / 1e3, sqlite3_column_double(st, 4) / 1e3,
                   sqlite3_column_double(st, 5), 100 * sqlite3_column_double(st, 6),
                   sqlite3_column_int(st, 7) ? " tie" : "    ", col(st, 8));
        }
    }
    if ((rc = finish(db, st, r, "winners")))
        goto out;
    if (!json)
        printf("\nper device:\n");
    if ((rc = query(db,
                    "SELECT d.backend || ':' || d.name, d.copy_gbps, (SELECT COUNT(*) FROM winners w WHERE"
                    " w.device_id = d.id), (SELECT COUNT(*) FROM trials t WHERE t.device_id = d.id),"
                    " (SELECT exp(avg(ln(w.speedup))) FROM winners w WHERE w.device_id = d.id AND w.speedup > 0),"
                    " d.read_gbps FROM devices d ORDER BY d.id",
                    "devices", &st)))
        goto out;
    cJSON *jd = json ? cJSON_AddArrayToObject(root, "devices") : NULL;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "device", col(st, 0));
            cJSON_AddNumberToObject(o, "copy_gbps", sqlite3_column_double(st, 1));
            cJSON_AddNumberToObject(o, "read_gbps", sqlite3_column_double(st, 5)); /* 0: not measured */
            cJSON_AddNumberToObject(o, "winners", sqlite3_column_int(st, 2));
            cJSON_AddNumberToObject(o, "trials", sqlite3_column_int(st, 3));
            cJSON_AddNumberToObject(o, "geomean_speedup", sqlite3_column_double(st, 4));
            cJSON_AddItemToArray(jd, o);
        } else {
            printf("  %-40.40s copy %6.1f GB/s  read %6.1f GB/s  %3d winners  %5d trials  geomean speedup %.2fx\n",
                   col(st, 0), sqlite3_column_double(st, 1), sqlite3_column_double(st, 5), sqlite3_column_int(st, 2),
                   sqlite3_column_int(st, 3), sqlite3_column_double(st, 4));
        }
    }
    if ((rc = finish(db, st, r, "devices")))
        goto out;
    if (json) {
        char *s = cJSON_Print(root);
        if (!s) {
            fprintf(stderr, "kiln db show: out of memory\n");
            rc = KILN_EXIT_FAIL;
        } else
            puts(s);
        free(s);
    }
out:
    cJSON_Delete(root);
    return rc;
}

static int best(kiln_db *db, const char *kernel, const char *shape, const char *device, int json)
{
    const kiln_kernel *k = kiln_kernel_find(kernel);
    if (!k)
        return kiln_args_usage_error("kiln db best", "unknown kernel '%s' (kiln check --list)", kernel);
    kiln_err e = {0};
    kiln_device *d;
    if (kiln_device_select(device ? device : "cpu", &d, &e))
        return fail(&e);
    char hash[17];
    kiln_kernel_source_hash(k, d->fp.backend, hash);
    kiln_db_match m;
    int rc = kiln_db_lookup(db, &d->fp, kernel, hash, shape, &m, &e);
    kiln_device_close(d);
    if (rc)
        return fail(&e);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kernel", kernel);
        cJSON_AddStringToObject(o, "shape", shape);
        cJSON_AddStringToObject(o, "level", kiln_match_name(m.level));
        cJSON *cfg = m.level == KILN_MATCH_DEFAULT ? NULL : cJSON_Parse(m.config_json);
        cJSON_AddItemToObject(o, "config",
                              m.level == KILN_MATCH_DEFAULT ? cJSON_CreateNull()
                              : cfg                         ? cfg
                                                            : cJSON_CreateString(m.config_json));
        cJSON_AddStringToObject(o, "tuned_shape", m.shape_key);
        cJSON_AddStringToObject(o, "tuned_on", m.device);
        cJSON_AddNumberToObject(o, "median_ns", m.median_ns);
        cJSON_AddBoolToObject(o, "stale_skipped", m.stale);
        if (m.level == KILN_MATCH_SIMILAR) {
            cJSON_AddStringToObject(o, "similar_to", m.device);
            cJSON_AddNumberToObject(o, "distance", m.distance);
        }
        char *txt = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!txt) {
            fprintf(stderr, "kiln db best: out of memory\n");
            return KILN_EXIT_FAIL;
        }
        puts(txt);
        free(txt);
    }
    else {
        printf("%s %s: %s", kernel, shape, kiln_match_name(m.level));
        if (m.level == KILN_MATCH_SIMILAR)
            printf(" -> %s (similar to %s (distance %.2f), %.1f us there; verify it here before use)", m.config_json,
                   m.device, m.distance, m.median_ns / 1e3);
        else if (m.level != KILN_MATCH_DEFAULT)
            printf(" -> %s (tuned on %s for %s, %.1f us)", m.config_json, m.device, m.shape_key, m.median_ns / 1e3);
        printf("\n");
        if (m.stale)
            printf("note: %s\n", m.note);
    }
    return 0;
}

static int diff(const char *a_path, const char *b_path)
{
    kiln_err e = {0};
    kiln_db *a, *b;
    /* both only read: B is checked to be a kiln database first (ATTACH
     * would create a missing file); attached to a read-only connection it
     * is read-only too */
    if (kiln_db_open_readonly(&b, b_path, &e))
        return fail(&e);
    kiln_db_close(b);
    if (kiln_db_open_readonly(&a, a_path, &e))
        return fail(&e);
    sqlite3 *h = kiln_db_handle(a);
    char *sql = sqlite3_mprintf("ATTACH %Q AS other", b_path);
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_free(sql);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "kiln db diff: cannot attach %s: %s\n", b_path, sqlite3_errmsg(h));
        kiln_db_close(a);
        return KILN_EXIT_UNAVAILABLE;
    }
    sqlite3_stmt *st;
    const char *q =
        "WITH wa AS (SELECT d.fingerprint f, k.name kn, w.shape_key s, w.config_json c, w.median_ns t FROM main.winners w"
        " JOIN main.devices d ON d.id = w.device_id JOIN main.kernels k ON k.id = w.kernel_id),"
        " wb AS (SELECT d.fingerprint f, k.name kn, w.shape_key s, w.config_json c, w.median_ns t FROM other.winners w"
        " JOIN other.devices d ON d.id = w.device_id JOIN other.kernels k ON k.id = w.kernel_id)"
        " SELECT wa.f, wa.kn, wa.s, wa.c, wa.t, wb.c, wb.t FROM wa LEFT JOIN wb USING(f, kn, s)"
        " WHERE wb.c IS NULL OR wb.c != wa.c"
        " UNION ALL SELECT wb.f, wb.kn, wb.s, NULL, NULL, wb.c, wb.t FROM wb LEFT JOIN wa USING(f, kn, s)"
        " WHERE wa.c IS NULL";
    if (sqlite3_prepare_v2(h, q, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "kiln db diff: %s\n", sqlite3_errmsg(h));
        kiln_db_close(a);
        return KILN_EXIT_FAIL;
    }
    int n = 0, r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        n++;
        /* fingerprint = backend|vendor|ids|name|driver|compiler: show backend, name, driver */
        char f[512];
        snprintf(f, sizeof f, "%s", col(st, 0));
        char *part[6] = {0}, *save = NULL;
        int np = 0;
        for (char *t = strtok_r(f, "|", &save); t && np < 6; t = strtok_r(NULL, "|", &save))
            part[np++] = t;
        printf("%s %s (%s)  %s  %s\n", part[0] ? part[0] : "", part[3] ? part[3] : "", part[4] ? part[4] : "",
               col(st, 1), col(st, 2));
        for (int side = 0; side < 2; side++) {
            int c = side ? 5 : 3, t = side ? 6 : 4;
            if (sqlite3_column_type(st, c) == SQLITE_NULL)
                printf("    %s: (no winner)\n", side ? "B" : "A");
            else
                printf("    %s: %s  %.1f us\n", side ? "B" : "A", col(st, c), sqlite3_column_double(st, t) / 1e3);
        }
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        fprintf(stderr, "kiln db diff: %s: %s\n", a_path, sqlite3_errmsg(h));
        kiln_db_close(a);
        return KILN_EXIT_FAIL;
    }
    printf("%d winner(s) differ\n", n);
    kiln_db_close(a);
    return 0;
}

typedef struct sub_cmd {
    const char *name, *usage;
    int min_files, max_files; /* operands */
    const char *opts;         /* which options: j=--json k=--kernel s=--shape d=--device o=-o t=--older-than K=--keep */
} sub_cmd;

static const sub_cmd subs[] = {
    {"show", "usage: kiln db [--db PATH] show [--json]\n  sessions, winners, per-device summary (read-only)\n", 0, 0, "j"},
    {"best", "usage: kiln db [--db PATH] best --kernel K --shape KEY [--device SPEC] [--json]\n"
             "  the config a consumer gets, and the level matched (read-only)\n", 0, 0, "jksd"},
    {"export", "usage: kiln db [--db PATH] export [-o FILE]\n  every table as JSON (stdout by default; read-only)\n", 0,
     0, "o"},
    {"import", "usage: kiln db [--db PATH] import FILE...\n"
               "  add exports (idempotent; only the tables' own columns; each file one transaction;\n"
               "  /dev/stdin reads a pipe)\n", 1, 32, ""},
    {"merge", "usage: kiln db [--db PATH] merge OTHER.db...\n"
              "  merge databases from other devices (no duplicates; the others are only read)\n", 1, 32, ""},
    {"diff", "usage: kiln db diff A.db B.db\n  winners that differ between two databases (both read-only)\n", 2, 2, ""},
    {"prune", "usage: kiln db [--db PATH] prune [--older-than DAYS] [--keep K]\n"
              "  drop old or slow trials (winners' trials stay)\n", 0, 0, "tK"},
};
#define N_SUBS ((int)(sizeof subs / sizeof subs[0]))

static void usage(FILE *f)
{
    fprintf(f, "usage: kiln db [--db PATH] <command> [options]   (kiln db <command> --help for its options)\n");
    for (int i = 0; i < N_SUBS; i++)
        fprintf(f, "%s", strchr(subs[i].usage, ' ') + 1);
    fprintf(f, "exit: 0 ok, 1 failed (a damaged database, another program's file, a bad import), 2 usage,\n"
               "3 database or file unavailable\n");
}

int cmd_db(int argc, char **argv)
{
    const char *path = NULL;
    int i = 1;
    if (i + 1 < argc && !strcmp(argv[i], "--db")) {
        path = argv[i + 1];
        i += 2;
    }
    if (i >= argc) {
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    const char *sub = argv[i++];
    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        usage(stdout);
        return 0;
    }
    const sub_cmd *sc = NULL;
    for (int k = 0; k < N_SUBS; k++)
        if (!strcmp(sub, subs[k].name))
            sc = &subs[k];
    if (!sc) {
        fprintf(stderr, "kiln db: unknown command '%s'\n", sub);
        usage(stderr);
        return KILN_EXIT_USAGE;
    }
    const char *kernel = NULL, *shape = NULL, *device = NULL, *out = NULL;
    int json = 0, days = 0, keep = 0;
    const kiln_opt all[] = {
        {"--json", NULL, KILN_OPT_FLAG, &json, .help = "JSON on stdout"},
        {"--kernel", NULL, KILN_OPT_STR, &kernel, .arg = "K", .help = "kernel name (kiln check --list)"},
        {"--shape", NULL, KILN_OPT_STR, &shape, .arg = "KEY", .help = "shape key as in `kiln db show` (m4096.k4096.q4_0.g32)"},
        {"--device", NULL, KILN_OPT_STR, &device, .arg = "SPEC", .help = "the device to look up for (default cpu)"},
        {"--output", "-o", KILN_OPT_STR, &out, .arg = "FILE", .help = "write to FILE instead of stdout"},
        {"--older-than", NULL, KILN_OPT_INT, &days, 1, 1000000, .arg = "DAYS",
         .help = "delete trials of ended sessions older than DAYS"},
        {"--keep", NULL, KILN_OPT_INT, &keep, 1, 1000000, .arg = "K",
         .help = "keep only the K fastest trials per device x kernel x shape"},
    };
    static const char letters[] = "jksdotK";
    kiln_opt mine[10];
    int n = 0;
    for (int k = 0; k < 7; k++)
        if (strchr(sc->opts, letters[k]))
            mine[n++] = all[k];
    if (strcmp(sub, "diff"))
        mine[n++] = (kiln_opt){"--db", NULL, KILN_OPT_STR, &path, .arg = "PATH",
                               .help = "the database (default $KILN_DB or ~/.local/share/kiln/kiln.db)"};
    mine[n] = (kiln_opt){0};
    const kiln_opt *tables[] = {mine, NULL};
    const char *files[32];
    int n_files = 0;
    char cmd[32];
    snprintf(cmd, sizeof cmd, "kiln db %s", sub);
    int prc = kiln_args_parse(cmd, sc->usage, tables, argc, argv, i, sc->max_files ? files : NULL, sc->max_files,
                              &n_files);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    if (n_files < sc->min_files)
        return kiln_args_usage_error(cmd, "needs %s", sc->min_files == 2 ? "two databases" : "at least one file");
    if (!strcmp(sub, "diff"))
        return diff(files[0], files[1]);
    if (!strcmp(sub, "prune") && !days && !keep)
        return kiln_args_usage_error(cmd, "give --older-than DAYS and/or --keep K");
    if (!strcmp(sub, "best") && (!kernel || !shape))
        return kiln_args_usage_error(cmd, "--kernel NAME and --shape KEY are required (keys as in `kiln db show`)");
    kiln_err e = {0};
    kiln_db *db;
    /* show, best and export only read: read-only, never created */
    int reads = !strcmp(sub, "show") || !strcmp(sub, "best") || !strcmp(sub, "export");
    if ((reads ? kiln_db_open_readonly : kiln_db_open)(&db, path, &e))
        return fail(&e);
    int rc = 0;
    if (!strcmp(sub, "show")) {
        rc = show(db, json);
    } else if (!strcmp(sub, "best")) {
        rc = best(db, kernel, shape, device, json);
    } else if (!strcmp(sub, "export")) {
        FILE *f = out ? fopen(out, "w") : stdout;
        if (!f) {
            fprintf(stderr, "kiln db export: cannot write %s\n", out);
            rc = KILN_EXIT_UNAVAILABLE;
        } else {
            if (kiln_db_export(db, f, &e))
                rc = fail(&e);
            if (out && fclose(f)) {
                fprintf(stderr, "kiln db export: writing %s failed\n", out);
                rc = KILN_EXIT_FAIL;
            }
        }
    } else if (!strcmp(sub, "import")) {
        for (int f = 0; f < n_files && !rc; f++) {
            char *text;
            if (kiln_read_file(files[f], (size_t)1 << 31, &text, NULL, &e)) {
                rc = fail(&e);
                break;
            }
            if (kiln_db_import(db, text, &e)) {
                kiln_err_wrap(&e, "%s", files[f]);
                rc = fail(&e);
            }
            free(text);
        }
    } else if (!strcmp(sub, "merge")) {
        for (int f = 0; f < n_files && !rc; f++)
            if (kiln_db_merge(db, files[f], &e))
                rc = fail(&e);
    } else if (!strcmp(sub, "prune")) {
        int deleted = 0;
        if (kiln_db_prune(db, days, keep, &deleted, &e))
            rc = fail(&e);
        else
            printf("pruned %d trial(s)\n", deleted);
    } else {
        fprintf(stderr, "kiln db: unknown command '%s'\n", sub);
        usage(stderr);
        rc = KILN_EXIT_USAGE;
    }
    kiln_db_close(db);
    return rc;
}
