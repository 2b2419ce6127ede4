/* engine/chat_template.c - ChatML, Llama 2, Llama 3 and raw prompt rendering. */
#include "engine/chat_template.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n + 1)
            c *= 2;
        char *np = realloc(b->p, c);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = c;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static int is_ws(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Content with ASCII whitespace trimmed at both ends (Jinja's trim / Python's strip). */
static void put_trimmed(sbuf *b, const char *s)
{
    size_t n = strlen(s), a = 0;
    while (a < n && is_ws(s[a]))
        a++;
    while (n > a && is_ws(s[n - 1]))
        n--;
    put(b, s + a, n - a);
}

int kiln_chat_detect(const char *tmpl, size_t len)
{
    if (!tmpl || !len)
        return -1;
    if (memmem(tmpl, len, "<|start_header_id|>", 19))
        return KILN_CHAT_LLAMA3;
    if (memmem(tmpl, len, "<|im_start|>", 12))
        return KILN_CHAT_CHATML;
    if (memmem(tmpl, len, "[INST]", 6))
        return KILN_CHAT_LLAMA2;
    return -1;
}

static const char *const names[] = {"chatml", "llama2", "llama3", "raw"};

int kiln_chat_parse_name(const char *name, kiln_chat_kind *out, kiln_err *e)
{
    for (int i = 0; i < 4; i++)
        if (name && !strcmp(name, names[i])) {
            *out = (kiln_chat_kind)i;
            return 0;
        }
    return kiln_fail(e, KILN_E_INVALID, "chat template '%s' is not one of chatml, llama2, llama3, raw",
                     name ? name : "(null)");
}

const char *kiln_chat_name(kiln_chat_kind kind)
{
    return (unsigned)kind < 4 ? names[kind] : "?";
}

int kiln_chat_default_system(const char *tmpl, size_t len, const char **text, size_t *text_len)
{
    static const char open[] = "<|im_start|>system\n";
    const char *p = tmpl ? memmem(tmpl, len, open, sizeof open - 1) : NULL;
    if (!p)
        return 0;
    p += sizeof open - 1;
    const char *end = memmem(p, len - (size_t)(p - tmpl), "<|im_end|>", 10);
    if (!end || end == p)
        return 0;
    /* only a literal: no Jinja expression or string concatenation inside */
    for (const char *q = p; q < end; q++)
        if (*q == '{' || *q == '}' || *q == '\'' || *q == '"' || *q == '+')
            return 0;
    *text = p;
    *text_len = (size_t)(end - p);
    return 1;
}

static int role_ok(kiln_chat_kind kind, const char *role)
{
    if (!role || !*role || strchr(role, '\n'))
        return 0;
    if (kind == KILN_CHAT_CHATML || kind == KILN_CHAT_LLAMA3)
        return 1;
    return !strcmp(role, "system") || !strcmp(role, "user") || !strcmp(role, "assistant");
}

/* Message i, which may look back at msgs[0..i) but never ahead. */
static void render(kiln_chat_kind kind, const kiln_chat_msg *m, int i, sbuf *b)
{
    const char *role = m[i].role, *c = m[i].content ? m[i].content : "";
    switch (kind) {
    case KILN_CHAT_CHATML:
        puts_(b, "<|im_start|>");
        puts_(b, role);
        puts_(b, "\n");
        puts_(b, c);
        puts_(b, "<|im_end|>\n");
        break;
    case KILN_CHAT_LLAMA3:
        puts_(b, "<|start_header_id|>");
        puts_(b, role);
        puts_(b, "<|end_header_id|>\n\n");
        put_trimmed(b, c);
        puts_(b, "<|eot_id|>");
        break;
    case KILN_CHAT_LLAMA2:
        if (!strcmp(role, "system"))
            break; /* folded into the next user turn */
        if (!strcmp(role, "assistant")) {
            puts_(b, " ");
            put_trimmed(b, c);
            puts_(b, " </s>");
            break;
        }
        {
            int first_user = 1, sys_from = i;
            for (int k = 0; k < i; k++)
                if (!strcmp(m[k].role, "user"))
                    first_user = 0;
            while (sys_from > 0 && !strcmp(m[sys_from - 1].role, "system"))
                sys_from--;
            if (!first_user)
                puts_(b, "<s>");
            puts_(b, "[INST] ");
            for (int k = sys_from; k < i; k++) {
                puts_(b, "<<SYS>>\n");
                put_trimmed(b, m[k].content ? m[k].content : "");
                puts_(b, "\n<</SYS>>\n\n");
            }
            put_trimmed(b, c);
            puts_(b, " [/INST]");
        }
        break;
    case KILN_CHAT_RAW:
        puts_(b, c);
        break;
    }
}

int kiln_chat_format_suffix(kiln_chat_kind kind, const kiln_chat_msg *msgs, int n_prev, int n,
                            int add_generation_prompt, char **out, size_t *len, kiln_err *e)
{
    *out = NULL;
    if (len)
        *len = 0;
    if ((unsigned)kind > KILN_CHAT_RAW)
        return kiln_fail(e, KILN_E_INVALID, "chat template kind %d is unknown", (int)kind);
    if (n < 0 || n_prev < 0 || n_prev > n)
        return kiln_fail(e, KILN_E_INVALID, "chat: messages %d..%d is not a range", n_prev, n);
    for (int i = 0; i < n; i++)
        if (!role_ok(kind, msgs[i].role))
            return kiln_fail(e, KILN_E_INVALID, "chat: message %d has role '%s', which %s cannot render", i,
                             msgs[i].role ? msgs[i].role : "(null)", names[kind]);
    sbuf b = {0};
    put(&b, "", 0);
    for (int i = n_prev; i < n; i++)
        render(kind, msgs, i, &b);
    if (add_generation_prompt) {
        if (kind == KILN_CHAT_CHATML)
            puts_(&b, "<|im_start|>assistant\n");
        else if (kind == KILN_CHAT_LLAMA3)
            puts_(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    }
    if (b.oom) {
        free(b.p);
        return kiln_fail(e, KILN_E_NOMEM, "chat: out of memory");
    }
    *out = b.p;
    if (len)
        *len = b.n;
    return 0;
}

int kiln_chat_format(kiln_chat_kind kind, const kiln_chat_msg *msgs, int n, int add_generation_prompt, char **out,
                     size_t *len, kiln_err *e)
{
    return kiln_chat_format_suffix(kind, msgs, 0, n, add_generation_prompt, out, len, e);
}
