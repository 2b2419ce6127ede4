/* engine/chat_template.h - the common chat prompt formats, rendered in C (no Jinja).
 *
 * Families (recognised from GGUF tokenizer.chat_template or named by --chat-template):
 *  - KILN_CHAT_CHATML ("chatml"): "<|im_start|>{role}\n{content}<|im_end|>\n" per message;
 *    generation prompt "<|im_start|>assistant\n". Content is not trimmed. Any role name
 *    without a newline is accepted (system, user, assistant, tool, ...).
 *  - KILN_CHAT_LLAMA3 ("llama3"): "<|start_header_id|>{role}<|end_header_id|>\n\n{trimmed
 *    content}<|eot_id|>"; generation prompt "<|start_header_id|>assistant<|end_header_id|>\n\n".
 *    The template's leading "<|begin_of_text|>" is NOT emitted: it is the BOS token, which
 *    the caller adds by tokenizing with add_bos = 1.
 *  - KILN_CHAT_LLAMA2 ("llama2"): Meta's format. System messages fold into the next user
 *    turn: "[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST]"; assistant turns are
 *    " {assistant} </s>"; every user turn after the first starts with "<s>". The first
 *    turn's "<s>" is NOT emitted (it is BOS: tokenize with add_bos = 1); the later "<s>"
 *    and "</s>" are text, so tokenize with parse_special = 1. Contents are trimmed. The
 *    generation prompt adds nothing (the model answers right after "[/INST]").
 *  - KILN_CHAT_RAW ("raw"): the contents concatenated as they are; nothing else.
 *
 * Prefix property, for keeping a KV cache across turns: for 0 <= n_prev <= n,
 *     format(msgs, n, gen) == format(msgs, n_prev, 0) + format_suffix(msgs, n_prev, n, gen)
 * because message i renders from msgs[0..i] only. After generating with
 * format(msgs, n_prev, 1), the cache holds format(msgs, n_prev, 0) + generation prompt +
 * the reply; for ChatML and Llama 3 the generation prompt is exactly the start of the
 * assistant message, so appending the reply as msgs[n_prev] and rendering the suffix from
 * n_prev + 1 continues the cache once the reply's end marker ("<|im_end|>\n",
 * "<|eot_id|>") is in it too. */
#ifndef KILN_ENGINE_CHAT_TEMPLATE_H
#define KILN_ENGINE_CHAT_TEMPLATE_H

#include <stddef.h>

#include "util/err.h"

typedef enum kiln_chat_kind {
    KILN_CHAT_CHATML = 0,
    KILN_CHAT_LLAMA2 = 1,
    KILN_CHAT_LLAMA3 = 2,
    KILN_CHAT_RAW = 3,
} kiln_chat_kind;

typedef struct kiln_chat_msg {
    const char *role;    /* "system", "user", "assistant" (ChatML/Llama 3: any role) */
    const char *content; /* NUL-terminated */
} kiln_chat_msg;

/* Family of a Jinja chat template by its markers: "<|start_header_id|>" -> LLAMA3,
 * "<|im_start|>" -> CHATML, "[INST]" -> LLAMA2; -1 when none is found (NULL/empty too). */
int kiln_chat_detect(const char *tmpl, size_t len);

/* "chatml" | "llama2" | "llama3" | "raw" -> kind; KILN_E_INVALID naming the choices otherwise. */
int kiln_chat_parse_name(const char *name, kiln_chat_kind *out, kiln_err *e);
const char *kiln_chat_name(kiln_chat_kind kind);

/* A ChatML template that inserts a fixed system message when the conversation has none
 * (SmolLM2's does: "You are a helpful AI assistant named SmolLM, trained by Hugging Face"):
 * text and text_len get that literal (pointing into tmpl) and 1 is returned; 0 if there is none. */
int kiln_chat_default_system(const char *tmpl, size_t len, const char **text, size_t *text_len);

/* Render msgs[0..n) (+ the generation prompt when add_generation_prompt) into a new
 * NUL-terminated string *out (free() it), *len its length. KILN_E_INVALID for a role the
 * family cannot render. */
int kiln_chat_format(kiln_chat_kind kind, const kiln_chat_msg *msgs, int n, int add_generation_prompt, char **out,
                     size_t *len, kiln_err *e);

/* Render only msgs[n_prev..n) (+ the generation prompt), with msgs[0..n_prev) as context,
 * so that format(all) == format(first n_prev, no prompt) + this. */
int kiln_chat_format_suffix(kiln_chat_kind kind, const kiln_chat_msg *msgs, int n_prev, int n,
                            int add_generation_prompt, char **out, size_t *len, kiln_err *e);

#endif
