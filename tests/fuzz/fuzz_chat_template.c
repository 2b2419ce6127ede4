/* tests/fuzz/fuzz_chat_template.c - the chat-template renderer.
 *
 * Input: byte 0 picks the family (bits 0-1: chatml, llama2, llama3, raw) and
 * the generation prompt (bit 2); the rest is split at NUL bytes into
 * role, content, role, content, ... (up to 16 messages). The whole input is
 * also given to the template detector and the default-system extractor as
 * if it were a GGUF tokenizer.chat_template.
 * Promises checked (engine/chat_template.h):
 *   - format succeeds, or fails with KILN_E_INVALID exactly when a role is
 *     one the family cannot render (empty, has a newline, or not
 *     system/user/assistant for llama2/raw);
 *   - the prefix property, for every split point n_prev:
 *     format(msgs, n, gen) == format(msgs, n_prev, 0) + format_suffix(msgs, n_prev, n, gen);
 *   - a default system text lies inside the template. */
#include "engine/chat_template.h"
#include "tests/fuzz/fuzz.h"

#define MAX_MSGS 16

static int role_renderable(kiln_chat_kind kind, const char *r)
{
    if (!*r || strchr(r, '\n'))
        return 0;
    if (kind == KILN_CHAT_CHATML || kind == KILN_CHAT_LLAMA3)
        return 1;
    return !strcmp(r, "system") || !strcmp(r, "user") || !strcmp(r, "assistant");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    kiln_chat_kind kind = (kiln_chat_kind)(data[0] & 3);
    int gen = (data[0] >> 2) & 1;

    /* the input as a template string */
    kiln_chat_detect((const char *)data, size);
    const char *sys;
    size_t sys_len;
    if (kiln_chat_default_system((const char *)data, size, &sys, &sys_len))
        FUZZ_ASSERT(sys >= (const char *)data && sys + sys_len <= (const char *)data + size && sys_len > 0,
                    "default system text outside the template");

    char *buf = fuzz_cstr(data + 1, size - 1);
    if (!buf)
        return 0;
    kiln_chat_msg msgs[MAX_MSGS];
    int n = 0, renderable = 1;
    char *p = buf, *end = buf + (size - 1);
    while (p < end && n < MAX_MSGS) {
        msgs[n].role = p;
        p += strlen(p) + 1;
        msgs[n].content = p < end ? p : "";
        if (p < end)
            p += strlen(p) + 1;
        renderable &= role_renderable(kind, msgs[n].role);
        n++;
    }

    kiln_err e = {0};
    char *all = NULL;
    size_t all_len = 0;
    int rc = kiln_chat_format(kind, msgs, n, gen, &all, &all_len, &e);
    FUZZ_ASSERT(rc == (renderable ? 0 : KILN_E_INVALID), "format returned %d (expected %s): %s", rc,
                renderable ? "success" : "KILN_E_INVALID", e.msg);
    if (!rc) {
        FUZZ_ASSERT(strlen(all) == all_len, "length %zu but the string has %zu bytes", all_len, strlen(all));
        for (int n_prev = 0; n_prev <= n; n_prev++) {
            char *head = NULL, *tail = NULL;
            size_t hl = 0, tl = 0;
            FUZZ_ASSERT(!kiln_chat_format(kind, msgs, n_prev, 0, &head, &hl, &e), "head %d: %s", n_prev, e.msg);
            FUZZ_ASSERT(!kiln_chat_format_suffix(kind, msgs, n_prev, n, gen, &tail, &tl, &e), "suffix %d: %s",
                        n_prev, e.msg);
            FUZZ_ASSERT(hl + tl == all_len && !memcmp(head, all, hl) && !memcmp(tail, all + hl, tl),
                        "prefix property broken at n_prev %d of %d (family %s)", n_prev, n, kiln_chat_name(kind));
            free(head);
            free(tail);
        }
    }
    free(all);
    free(buf);
    return 0;
}
