/* tests/engine/chat_template_test.c - exact renderings of ChatML, Llama 2, Llama 3 and raw
 * prompts, family detection, and format(all) == format(prefix) + format_suffix(rest). */
#include <stdio.h>
#include <string.h>

#include "engine/chat_template.h"
#include "engine/gguf.h"
#include "tests/test.h"

static const kiln_chat_msg conv[] = {
    {"system", "You are terse."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "  2+2?\n"},
};
#define NCONV 4

static void expect(kiln_chat_kind k, const kiln_chat_msg *m, int n, int gen, const char *want, int line)
{
    char *s = NULL;
    size_t len = 0;
    kiln_err e = {0};
    int rc = kiln_chat_format(k, m, n, gen, &s, &len, &e);
    CHECK(rc == 0 && s && len == strlen(want) && !strcmp(s, want), "line %d (%s): rc %d %s\n got: [%s]\nwant: [%s]",
          line, kiln_chat_name(k), rc, e.msg, s ? s : "", want);
    free(s);
}

/* For every split point and both generation-prompt settings. */
static void check_prefix_property(kiln_chat_kind k, const kiln_chat_msg *m, int n)
{
    kiln_err e = {0};
    for (int gen = 0; gen < 2; gen++) {
        char *all = NULL;
        size_t la = 0;
        CHECK_OK(kiln_chat_format(k, m, n, gen, &all, &la, &e), &e);
        for (int p = 0; p <= n; p++) {
            char *pre = NULL, *suf = NULL;
            size_t lp = 0, ls = 0;
            CHECK_OK(kiln_chat_format(k, m, p, 0, &pre, &lp, &e), &e);
            CHECK_OK(kiln_chat_format_suffix(k, m, p, n, gen, &suf, &ls, &e), &e);
            int ok = all && pre && suf && lp + ls == la && !memcmp(all, pre, lp) && !memcmp(all + lp, suf, ls);
            CHECK(ok, "%s: format(all, gen %d) != format(first %d) + suffix", kiln_chat_name(k), gen, p);
            free(pre);
            free(suf);
        }
        free(all);
    }
}

int main(void)
{
    /* ChatML */
    expect(KILN_CHAT_CHATML, conv, NCONV, 1,
           "<|im_start|>system\nYou are terse.<|im_end|>\n"
           "<|im_start|>user\nHi<|im_end|>\n"
           "<|im_start|>assistant\nHello!<|im_end|>\n"
           "<|im_start|>user\n  2+2?\n<|im_end|>\n"
           "<|im_start|>assistant\n",
           __LINE__);
    expect(KILN_CHAT_CHATML, conv + 1, 1, 0, "<|im_start|>user\nHi<|im_end|>\n", __LINE__);
    expect(KILN_CHAT_CHATML, conv, 0, 1, "<|im_start|>assistant\n", __LINE__);
    expect(KILN_CHAT_CHATML, (const kiln_chat_msg[]){{"tool", "42"}}, 1, 0, "<|im_start|>tool\n42<|im_end|>\n",
           __LINE__);

    /* Llama 3 (no <|begin_of_text|>: the caller's BOS) */
    expect(KILN_CHAT_LLAMA3, conv, NCONV, 1,
           "<|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n",
           __LINE__);

    /* Llama 2 (no leading <s>: the caller's BOS) */
    expect(KILN_CHAT_LLAMA2, conv, NCONV, 1,
           "[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] 2+2? [/INST]", __LINE__);
    expect(KILN_CHAT_LLAMA2, conv + 1, 3, 0, "[INST] Hi [/INST] Hello! </s><s>[INST] 2+2? [/INST]", __LINE__);
    expect(KILN_CHAT_LLAMA2, conv, 1, 1, "", __LINE__);

    /* raw */
    expect(KILN_CHAT_RAW, conv + 1, 3, 1, "HiHello!  2+2?\n", __LINE__);

    for (int k = 0; k <= KILN_CHAT_RAW; k++)
        check_prefix_property((kiln_chat_kind)k, conv, NCONV);
    /* also a conversation without a system message and with two system messages (Llama 2 folding) */
    static const kiln_chat_msg conv2[] = {
        {"user", "a"}, {"assistant", "b"}, {"system", "s1"}, {"system", "s2"}, {"user", "c"}, {"assistant", "d"},
    };
    for (int k = 0; k <= KILN_CHAT_RAW; k++)
        check_prefix_property((kiln_chat_kind)k, conv2, 6);
    expect(KILN_CHAT_LLAMA2, conv2, 6, 0,
           "[INST] a [/INST] b </s><s>[INST] <<SYS>>\ns1\n<</SYS>>\n\n<<SYS>>\ns2\n<</SYS>>\n\nc [/INST] d </s>",
           __LINE__);

    /* errors */
    kiln_err e = {0};
    char *s = NULL;
    size_t len;
    CHECK(kiln_chat_format(KILN_CHAT_LLAMA2, (const kiln_chat_msg[]){{"tool", "x"}}, 1, 0, &s, &len, &e) ==
                  KILN_E_INVALID && !s && strstr(e.msg, "tool"),
          "llama2 cannot render a tool role: %s", e.msg);
    CHECK(kiln_chat_format(KILN_CHAT_CHATML, (const kiln_chat_msg[]){{"a\nb", "x"}}, 1, 0, &s, &len, &e) ==
              KILN_E_INVALID,
          "role with a newline");
    CHECK(kiln_chat_format_suffix(KILN_CHAT_CHATML, conv, 3, 2, 0, &s, &len, &e) == KILN_E_INVALID, "bad range");

    /* names and detection */
    kiln_chat_kind k;
    CHECK(kiln_chat_parse_name("llama3", &k, &e) == 0 && k == KILN_CHAT_LLAMA3, "parse llama3");
    CHECK(kiln_chat_parse_name("chatml", &k, &e) == 0 && k == KILN_CHAT_CHATML, "parse chatml");
    CHECK(kiln_chat_parse_name("llama2", &k, &e) == 0 && k == KILN_CHAT_LLAMA2, "parse llama2");
    CHECK(kiln_chat_parse_name("raw", &k, &e) == 0 && k == KILN_CHAT_RAW, "parse raw");
    CHECK(kiln_chat_parse_name("vicuna", &k, &e) == KILN_E_INVALID && strstr(e.msg, "chatml"), "parse unknown");
    static const char smol[] =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
        "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";
    static const char l3[] = "{{ bos_token }}{% for message in messages %}{{ '<|start_header_id|>' + message['role'] + "
                             "'<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}{% endfor %}";
    static const char l2[] = "{% for message in messages %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
                             "{% endfor %}";
    CHECK(kiln_chat_detect(smol, strlen(smol)) == KILN_CHAT_CHATML, "detect chatml");
    CHECK(kiln_chat_detect(l3, strlen(l3)) == KILN_CHAT_LLAMA3, "detect llama3");
    CHECK(kiln_chat_detect(l2, strlen(l2)) == KILN_CHAT_LLAMA2, "detect llama2");
    CHECK(kiln_chat_detect("{{ messages }}", 14) == -1 && kiln_chat_detect(NULL, 0) == -1, "detect none");
    const char *sys;
    size_t sl;
    CHECK(kiln_chat_default_system(smol, strlen(smol), &sys, &sl) == 1 && sl == 68 &&
              !memcmp(sys, "You are a helpful AI assistant named SmolLM, trained by Hugging Face", sl),
          "SmolLM2 default system (%zu)", sl);
    CHECK(kiln_chat_default_system(l3, strlen(l3), &sys, &sl) == 0, "no default system");

    /* the real file's template, when it is here (the tokenizer test covers the skip rules) */
    const char *path = getenv("KILN_SMOLLM2");
    kiln_gguf *g = NULL;
    if (path && *path && kiln_gguf_open(path, &g, &e) == 0) {
        const char *t;
        size_t tl;
        CHECK_OK(kiln_gguf_get_str(g, "tokenizer.chat_template", &t, &tl, &e), &e);
        CHECK(kiln_chat_detect(t, tl) == KILN_CHAT_CHATML, "SmolLM2 template is ChatML");
        CHECK(kiln_chat_default_system(t, tl, &sys, &sl) == 1 && sl == 68, "SmolLM2 file default system");
        kiln_gguf_close(g);
    }
    return test_result();
}
