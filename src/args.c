/* src/args.c - see args.h. */
#include "src/args.h"

#include <stdarg.h>
#include <string.h>

#include "src/commands.h"
#include "util/num.h"

static const kiln_opt *find(const kiln_opt *const *tables, const char *name, size_t n)
{
    for (int t = 0; tables[t]; t++)
        for (const kiln_opt *o = tables[t]; o->name; o++)
            if ((strlen(o->name) == n && !strncmp(o->name, name, n)) ||
                (o->alias && strlen(o->alias) == n && !strncmp(o->alias, name, n)))
                return o;
    return NULL;
}

void kiln_args_help(FILE *f, const char *usage, const kiln_opt *const *tables)
{
    fputs(usage, f);
    if (usage[0] && usage[strlen(usage) - 1] != '\n')
        fputc('\n', f);
    for (int t = 0; tables[t]; t++)
        for (const kiln_opt *o = tables[t]; o->name; o++) {
            /* an earlier table's option of the same name wins (a command's own -n over the engine's) */
            const kiln_opt *const *shadow = tables;
            int shadowed = 0;
            for (int u = 0; u < t && !shadowed; u++) {
                const kiln_opt *const one[] = {shadow[u], NULL};
                shadowed = find(one, o->name, strlen(o->name)) != NULL ||
                           (o->alias && find(one, o->alias, strlen(o->alias)) != NULL);
            }
            if (shadowed)
                continue;
            char head[96];
            snprintf(head, sizeof head, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
                     o->arg ? " " : "", o->arg ? o->arg : "");
            fprintf(f, "  %-24s", head);
            if (strlen(head) > 24)
                fprintf(f, "\n  %-24s", "");
            for (const char *h = o->help ? o->help : ""; *h;) {
                const char *nl = strchr(h, '\n');
                int n = nl ? (int)(nl - h) : (int)strlen(h);
                fprintf(f, " %.*s\n", n, h);
                h += n + (nl != NULL);
                if (*h)
                    fprintf(f, "  %-24s", "");
            }
            if (!o->help || !o->help[0])
                fputc('\n', f);
        }
}

int kiln_args_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(%s --help for the options)\n", cmd);
    return KILN_EXIT_USAGE;
}

/* `as`: the option as typed (-n or --n-predict), for the message */
static int take(const kiln_opt *o, const char *as, const char *v, kiln_err *e)
{
    long long ll;
    double d;
    switch (o->kind) {
    case KILN_OPT_FLAG: *(int *)o->dst = 1; return 0;
    case KILN_OPT_STR: *(const char **)o->dst = v; return 0;
    case KILN_OPT_INT:
        if (kiln_num_int(as, v, (long long)o->lo, (long long)o->hi, &ll, e))
            return -1;
        *(int *)o->dst = (int)ll;
        return 0;
    case KILN_OPT_LLONG: return kiln_num_int(as, v, (long long)o->lo, (long long)o->hi, (long long *)o->dst, e);
    case KILN_OPT_DOUBLE: return kiln_num_double(as, v, o->lo, o->hi, (double *)o->dst, e);
    case KILN_OPT_FLOAT:
        if (kiln_num_double(as, v, o->lo, o->hi, &d, e))
            return -1;
        *(float *)o->dst = (float)d;
        return 0;
    case KILN_OPT_U64: return kiln_num_u64(as, v, (uint64_t *)o->dst, e);
    case KILN_OPT_LIST:
        if (*o->count >= o->max)
            return kiln_fail(e, KILN_E_INVALID, "%s: at most %d", as, o->max);
        ((const char **)o->dst)[(*o->count)++] = v;
        return 0;
    case KILN_OPT_FN: return o->fn(o->dst, as, v, e);
    }
    return kiln_fail(e, KILN_E_INVALID, "%s: unknown option kind", as);
}

int kiln_args_one(const char *cmd, const kiln_opt *const *tables, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (a[0] != '-' || !a[1] || !strcmp(a, "--"))
        return 0;
    const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    const kiln_opt *o = find(tables, a, eq ? (size_t)(eq - a) : strlen(a));
    if (!o)
        return 0;
    const char *v = NULL;
    if (o->kind == KILN_OPT_FLAG) {
        if (eq) {
            kiln_args_usage_error(cmd, "%s takes no value (got '%s')", o->name, a);
            return -1;
        }
    } else if (eq) {
        v = eq + 1;
    } else if (*i + 1 < argc) {
        v = argv[++*i];
    } else {
        kiln_args_usage_error(cmd, "%s needs a value%s%s", o->name, o->arg ? ": " : "", o->arg ? o->arg : "");
        return -1;
    }
    char as[64];
    snprintf(as, sizeof as, "%.*s", (int)(eq ? (size_t)(eq - a) : strlen(a)), a);
    kiln_err e = {0};
    if (take(o, as, v, &e)) {
        kiln_args_usage_error(cmd, "%s", e.msg);
        return -1;
    }
    return 1;
}

int kiln_args_parse(const char *cmd, const char *usage, const kiln_opt *const *tables, int argc, char **argv,
                    int first, const char **pos, int max_pos, int *n_pos)
{
    int np = 0, only_operands = 0;
    if (n_pos)
        *n_pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (only_operands || a[0] != '-' || !a[1]) {
            if (!pos || np >= max_pos)
                return kiln_args_usage_error(cmd, pos ? "too many arguments at '%s'" : "unexpected argument '%s'",
                                             a);
            pos[np++] = a;
            if (n_pos)
                *n_pos = np;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_operands = 1;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            kiln_args_help(stdout, usage, tables);
            return KILN_ARGS_HELP;
        }
        int r = kiln_args_one(cmd, tables, argc, argv, &i);
        if (r < 0)
            return KILN_EXIT_USAGE;
        if (r == 0)
            return kiln_args_usage_error(cmd, "unknown option '%s'", a);
    }
    return 0;
}
