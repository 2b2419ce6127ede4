/* tools/embed_sources.c - build-time generator: embeds kernel sources into C.
 *
 * usage: kiln-embed OUT.c FILE...
 * Each FILE is kernels/<dir>/<name>; what it is follows from the name:
 *   prelude.cl, prelude.cu, prelude.comp
 *            put in front of every source of that backend (GLSL: the prelude
 *            holds #version, so it must come first)
 *   X.cl     the one source of X for OpenCL and CUDA, written against
 *            kernels/common/portable.h: emitted twice, as (X, "cl") after
 *            prelude.cl and as (X, "cu") after prelude.cu
 *   X.comp   a GLSL compute shader, one per entry point: (X, "comp")
 *   X.h, X.glsl
 *            headers: reach a source only through #include "X.h"
 * A line `#include "NAME"` (NAME the file name of a header given here, which
 * must be unique) is replaced by that header's text, so the embedded sources
 * need no include path at run time (NVRTC, clBuildProgram and shaderc get one
 * string). A header is inlined once per emitted source; a later include of it
 * becomes an empty line (it acts as #pragma once, so headers need no guards).
 * #line directives keep compiler messages pointing at the right file and line
 * (GLSL: prelude.comp enables GL_GOOGLE_cpp_style_line_directive for that).
 * Output: kiln_embedded_sources[] = { {stem, ext, text}, ... } and its count
 * (kernels/sources.h). Exit 1 with a message naming the file on any error. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILES 256
#define MAX_DEPTH 8

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kiln-embed: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static void put(buf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            die("out of memory");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void putf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        die("line directive too long");
    put(b, tmp, (size_t)n);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot open %s", path);
    buf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        put(&b, chunk, n);
    if (ferror(f))
        die("cannot read %s", path);
    fclose(f);
    if (!b.n || b.p[b.n - 1] != '\n')
        put(&b, "\n", 1); /* so that what follows an inlined header starts a line */
    return b.p;
}

typedef struct file {
    const char *path;
    char name[256]; /* file name: "gemv_int4.cl" */
    char stem[256]; /* "gemv_int4" */
    const char *ext; /* points into name: "cl" */
    char *text;
} file;

static file files[MAX_FILES];
static int n_files;

static const file *find_header(const char *name)
{
    for (int i = 0; i < n_files; i++) {
        const char *e = files[i].ext;
        if ((!strcmp(e, "h") || !strcmp(e, "glsl")) && !strcmp(files[i].name, name))
            return &files[i];
    }
    return NULL;
}

/* If line [s, end) is `#include "NAME"`, copies NAME into out and returns 1. */
static int include_name(const char *s, const char *end, char *out, size_t cap)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s == end || *s++ != '#')
        return 0;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if ((size_t)(end - s) < 7 || strncmp(s, "include", 7) != 0)
        return 0;
    s += 7;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    if (s == end || *s++ != '"')
        return 0;
    const char *q = memchr(s, '"', (size_t)(end - s));
    if (!q || (size_t)(q - s) >= cap)
        return 0;
    memcpy(out, s, (size_t)(q - s));
    out[q - s] = 0;
    return 1;
}

/* Appends f's text to out with its #include lines resolved; done[] marks the
 * headers already inlined into this output. */
static void expand(buf *out, const file *f, int done[], int depth)
{
    if (depth > MAX_DEPTH)
        die("%s: includes nested deeper than %d", f->path, MAX_DEPTH);
    int line = 1;
    for (const char *s = f->text; *s; line++) {
        const char *end = strchr(s, '\n');
        char name[256];
        if (include_name(s, end, name, sizeof name)) {
            const file *h = find_header(name);
            if (!h)
                die("%s:%d: #include \"%s\": no such header among the inputs (headers: kernels/**/*.h, *.glsl "
                    "listed in kernel_gpu_sources)", f->path, line, name);
            if (!done[h - files]) {
                done[h - files] = 1;
                putf(out, "#line 1 \"%s\"\n", h->name);
                expand(out, h, done, depth + 1);
                putf(out, "#line %d \"%s\"\n", line + 1, f->name);
            } else {
                put(out, "\n", 1);
            }
        } else {
            put(out, s, (size_t)(end - s) + 1);
        }
        s = end + 1;
    }
}

static void emit_string(FILE *o, const char *s)
{
    /* One C string literal per line; long sources would exceed the
     * 4095-char literal limit as a single literal in strict C11. */
    fputs("\"", o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs("\\n\"\n\"", o);
        else if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 32 || c > 126)
            fprintf(o, "\\%03o", c);
        else
            fputc(c, o);
    }
    fputs("\"", o);
}

/* Writes one table entry: backend be's prelude, then source f. */
static void emit(FILE *o, const file *f, const char *be, const file *prelude)
{
    int done[MAX_FILES] = {0};
    buf text = {0};
    if (prelude)
        expand(&text, prelude, done, 0);
    putf(&text, "#line 1 \"%s\"\n", f->name);
    expand(&text, f, done, 0);
    fprintf(o, "    {\"%s\", \"%s\",\n", f->stem, be);
    emit_string(o, text.p);
    fputs("},\n", o);
    free(text.p);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: kiln-embed OUT.c FILE...\n");
        return 2;
    }
    if (argc - 2 > MAX_FILES)
        die("more than %d input files", MAX_FILES);
    const char *backends[3] = {"cl", "cu", "comp"};
    const file *prelude[3] = {0};
    for (int i = 2; i < argc; i++) {
        file *f = &files[n_files++];
        f->path = argv[i];
        const char *base = strrchr(argv[i], '/');
        base = base ? base + 1 : argv[i];
        const char *dot = strrchr(base, '.');
        if (!dot || strlen(base) >= sizeof f->name)
            die("%s: expected NAME.cl, NAME.comp, NAME.h or NAME.glsl", argv[i]);
        strcpy(f->name, base);
        memcpy(f->stem, base, (size_t)(dot - base));
        f->stem[dot - base] = 0;
        f->ext = f->name + (dot - base) + 1;
        f->text = slurp(argv[i]);
        int known = !strcmp(f->ext, "cl") || !strcmp(f->ext, "comp") || !strcmp(f->ext, "h") ||
                    !strcmp(f->ext, "glsl") || (!strcmp(f->ext, "cu") && !strcmp(f->stem, "prelude"));
        if (!known)
            die("%s: unknown kind '.%s' (a kernel's OpenCL and CUDA code is one NAME.cl written against "
                "kernels/common/portable.h; GLSL is NAME.comp; headers NAME.h or NAME.glsl)", argv[i], f->ext);
        for (int j = 0; j < n_files - 1; j++)
            if (!strcmp(files[j].name, f->name))
                die("%s: a second file named %s (%s); stems and header names must be unique", argv[i], f->name,
                    files[j].path);
        if (!strcmp(f->stem, "prelude"))
            for (int b = 0; b < 3; b++)
                if (!strcmp(f->ext, backends[b]))
                    prelude[b] = f;
    }
    FILE *o = fopen(argv[1], "w");
    if (!o)
        die("cannot write %s", argv[1]);
    fputs("/* generated by tools/embed_sources.c - do not edit */\n"
          "#include \"kernels/sources.h\"\n\n"
          "const kiln_embedded_source kiln_embedded_sources[] = {\n", o);
    int count = 0;
    for (int i = 0; i < n_files; i++) {
        const file *f = &files[i];
        if (!strcmp(f->stem, "prelude"))
            continue;
        if (!strcmp(f->ext, "cl")) {
            emit(o, f, "cl", prelude[0]);
            emit(o, f, "cu", prelude[1]);
            count += 2;
        } else if (!strcmp(f->ext, "comp")) {
            emit(o, f, "comp", prelude[2]);
            count++;
        }
    }
    fprintf(o, "};\nconst int kiln_embedded_source_count = %d;\n", count);
    if (fclose(o) != 0)
        die("cannot write %s", argv[1]);
    return 0;
}
