/* src/cmd_chat.c - `kiln chat`: a multi-turn terminal chat that keeps the
 * conversation's KV cache between turns.
 *
 * The cache always holds format(messages so far) (engine/chat_template.h,
 * prefix property): a turn tokenizes only kiln_chat_format_suffix of the new
 * user message plus the generation prompt, generates the reply (whose tokens
 * land in the cache as they are decoded), then runs the template's
 * end-of-turn text ("<|im_end|>\n" for ChatML) through kiln_forward so the
 * next turn continues from a complete assistant message.
 *
 * Input is read line by line from stdin (one line = one user message), so a
 * script can pipe a conversation in. Commands: /reset, /stats, /quit (and
 * EOF). Ctrl-C stops a reply. When the cache cannot hold the next message and
 * at least one reply token, the turn is refused with a message that offers
 * /reset; nothing in the cache changes (kiln_forward leaves a sequence as it
 * was on KILN_E_FULL). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/commands.h"
#include "src/engine_cli.h"

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

typedef struct text_buf {
    char *s;
    size_t n, cap;
    int oom;
} text_buf;

static void buf_add(text_buf *b, const char *t, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, t, n);
    b->n += n;
    b->s[b->n] = 0;
}

static int on_text(void *user, const char *t, size_t n)
{
    buf_add(user, t, n);
    fwrite(t, 1, n, stdout);
    fflush(stdout);
    return interrupted;
}

typedef struct chat {
    kiln_session s;
    const kiln_engine_cli *c;
    kiln_kv_seq seq;
    int seq_ok;
    kiln_chat_msg *msgs;       /* contents malloc'd */
    int n_msgs, cap_msgs;
    int n_cached;              /* the cache holds format(msgs[0..n_cached), no generation prompt) */
    const char *system;        /* NULL: none */
    char *end_marker;          /* the template's text after an assistant message's content */
    int turns, total_gen;
    char last_stats[512];
} chat;

static int push_msg(chat *ch, const char *role, const char *content, size_t len, kiln_err *e)
{
    if (ch->n_msgs == ch->cap_msgs) {
        int cap = ch->cap_msgs ? 2 * ch->cap_msgs : 16;
        kiln_chat_msg *m = realloc(ch->msgs, sizeof *m * (size_t)cap);
        if (!m)
            return kiln_fail(e, KILN_E_NOMEM, "out of memory");
        ch->msgs = m;
        ch->cap_msgs = cap;
    }
    char *c = strndup(content, len);
    if (!c)
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    ch->msgs[ch->n_msgs++] = (kiln_chat_msg){role, c};
    return 0;
}

static void pop_msgs(chat *ch, int n)
{
    while (ch->n_msgs > n)
        free((char *)ch->msgs[--ch->n_msgs].content);
}

/* Empty conversation, empty cache. */
static int reset(chat *ch, kiln_err *e)
{
    pop_msgs(ch, 0);
    ch->n_cached = 0;
    if (ch->seq_ok)
        kiln_kv_seq_free(&ch->seq);
    ch->seq_ok = 0;
    int rc = kiln_session_seq(&ch->s, &ch->seq, e);
    if (rc)
        return rc;
    ch->seq_ok = 1;
    if (ch->system)
        return push_msg(ch, "system", ch->system, strlen(ch->system), e);
    return 0;
}

/* The template's end-of-turn text: what follows an assistant message's
 * content (rendered with a sentinel content). */
static int find_end_marker(chat *ch, kiln_err *e)
{
    kiln_chat_msg m[2] = {{"user", "u"}, {"assistant", "\x01"}};
    char *out = NULL;
    size_t len = 0;
    int rc = kiln_chat_format_suffix(ch->s.model.chat, m, 1, 2, 0, &out, &len, e);
    if (rc)
        return rc;
    char *p = strchr(out, '\x01');
    ch->end_marker = strdup(p ? p + 1 : "");
    free(out);
    return ch->end_marker ? 0 : kiln_fail(e, KILN_E_NOMEM, "out of memory");
}

static int tokenize(const kiln_session *s, const char *text, size_t len, int add_bos, int32_t **ids, int *n,
                    kiln_err *e)
{
    return kiln_session_tokenize(s, text, len, add_bos, 1, ids, n, e);
}

static void print_stats(chat *ch)
{
    kiln_session *s = &ch->s;
    fprintf(stderr,
            "kiln chat: %d turn(s), %d messages, cache %d of %d tokens (%.0f%%), %d tokens generated, %s on %s:%d\n",
            ch->turns, ch->n_msgs, ch->seq.n_tokens, s->en.ctx, 100.0 * ch->seq.n_tokens / s->en.ctx,
            ch->total_gen, s->model.cfg.arch, kiln_backend_name(s->dev->backend), s->dev->index);
    if (ch->last_stats[0])
        fprintf(stderr, "last turn: %s\n", ch->last_stats);
}

static void say_full(chat *ch, int need)
{
    fprintf(stderr,
            "kiln chat: the KV cache is full: %d of %d tokens used, this message needs %d more (and room for a "
            "reply). The conversation is unchanged; type /reset to start over (or restart with a larger --ctx).\n",
            ch->seq.n_tokens, ch->s.en.ctx, need);
}

/* The tokens that complete the assistant message in the cache after a
 * reply: the generated tokens not yet decoded (the last one, unless the
 * reply ended with an end-of-generation token) and the end marker. A stop
 * string cut the text inside the tokens: then the cache goes back to the
 * prompt's end and the tail is the kept text plus the end marker,
 * tokenized. *tail malloc'd. */
static int reply_tail(chat *ch, const kiln_gen_stats *st, const text_buf *reply, const int32_t *out, int n_predict,
                      int prompt_end, const int32_t *end_ids, int n_end, int32_t **tail, int *n_tail, kiln_err *e)
{
    if (st->stop_reason == KILN_STOP_STRING) {
        kiln_kv_seq_truncate(&ch->seq, prompt_end);
        size_t rl = reply->n + strlen(ch->end_marker);
        char *text = malloc(rl + 1);
        if (!text)
            return kiln_fail(e, KILN_E_NOMEM, "out of memory");
        snprintf(text, rl + 1, "%s%s", reply->s ? reply->s : "", ch->end_marker);
        int rc = tokenize(&ch->s, text, rl, 0, tail, n_tail, e);
        free(text);
        return rc;
    }
    int done_gen = ch->seq.n_tokens - prompt_end, n_gen = st->n_gen < n_predict ? st->n_gen : n_predict;
    *n_tail = n_gen - done_gen + n_end;
    if (!(*tail = malloc(sizeof **tail * (size_t)(*n_tail + 1))))
        return kiln_fail(e, KILN_E_NOMEM, "out of memory");
    memcpy(*tail, out + done_gen, sizeof **tail * (size_t)(n_gen - done_gen));
    memcpy(*tail + n_gen - done_gen, end_ids, sizeof **tail * (size_t)n_end);
    return 0;
}

/* The stats line of a finished turn (kept for /stats), the cache check of
 * --verbose, and a warning when the cache cut the reply or is nearly full. */
static void after_turn(chat *ch, const kiln_gen_stats *st, int n_ids, int before, int n_predict)
{
    kiln_session *s = &ch->s;
    const kiln_engine_cli *c = ch->c;
    int cap = s->en.ctx;
    kiln_timings t;
    kiln_session_timings(s, st, &t);
    snprintf(ch->last_stats, sizeof ch->last_stats,
             "prefill %d new tokens, cache %d -> %d of %d | %d generated (%s) | prefill %.1f tok/s, decode %.1f "
             "tok/s, TTFT %.0f ms",
             n_ids, before, ch->seq.n_tokens, cap, st->n_gen, kiln_stop_name(st->stop_reason), t.prefill_tok_s,
             t.decode_tok_s, t.ttft_ms);
    fprintf(stderr, "[%s]\n", ch->last_stats);
    if (c->verbose) { /* the prefix property in practice: the cache vs the whole conversation tokenized afresh */
        char *all = NULL;
        size_t al = 0;
        int n_all = 0;
        if (!kiln_chat_format(s->model.chat, ch->msgs, ch->n_msgs, 0, &all, &al, NULL))
            kiln_tokenize(s->model.tok, all, al, -1, 1, NULL, 0, &n_all, NULL);
        fprintf(stderr, "kiln chat: cache holds %d tokens; the whole conversation tokenized afresh is %d\n",
                ch->seq.n_tokens, n_all);
        free(all);
    }
    if (st->n_gen >= n_predict && n_predict < c->n_predict)
        fprintf(stderr, "kiln chat: the reply was cut because the KV cache is full (%d of %d tokens); type /reset "
                        "to start over\n", ch->seq.n_tokens, cap);
    else if (ch->seq.n_tokens > cap * 9 / 10)
        fprintf(stderr, "kiln chat: the KV cache is %.0f%% full; /reset starts over\n",
                100.0 * ch->seq.n_tokens / cap);
}

/* One user message -> streamed reply. Errors other than a full cache are
 * fatal for the session (returned); a full cache is reported and 0 returned. */
static int turn(chat *ch, const char *line, size_t len, kiln_err *e)
{
    kiln_session *s = &ch->s;
    const kiln_engine_cli *c = ch->c;
    int n_before_msgs = ch->n_msgs, before = ch->seq.n_tokens;
    int rc = push_msg(ch, "user", line, len, e);
    char *text = NULL;
    size_t tlen = 0;
    int32_t *ids = NULL, *end_ids = NULL, *out = NULL, *tail = NULL;
    int n_ids = 0, n_end = 0, n_tail = 0, full = 0;
    text_buf reply = {0};
    kiln_gen_stats st = {0};
    if (!rc)
        rc = kiln_chat_format_suffix(s->model.chat, ch->msgs, ch->n_cached, ch->n_msgs, 1, &text, &tlen, e);
    if (!rc)
        rc = tokenize(s, text, tlen, before == 0 ? -1 : 0, &ids, &n_ids, e);
    if (!rc)
        rc = tokenize(s, ch->end_marker, strlen(ch->end_marker), 0, &end_ids, &n_end, e);
    if (rc)
        goto fail;
    /* prompt + reply + end marker must fit: before + n_ids + n_gen + n_end <= cap */
    int room = s->en.ctx - before - n_ids - n_end;
    if (room < 1) {
        full = n_ids + n_end;
        goto fail;
    }
    int n_predict = c->n_predict < room ? c->n_predict : room;
    if (!(out = malloc(sizeof *out * (size_t)n_predict))) {
        rc = kiln_fail(e, KILN_E_NOMEM, "out of memory");
        goto fail;
    }
    kiln_gen_opts go = {.n_predict = n_predict, .sampling = c->sampling, .stop = c->stop, .n_stop = c->n_stop,
                        .on_text = on_text, .user = &reply};
    interrupted = 0;
    rc = kiln_session_generate(s, &ch->seq, ids, n_ids, &go, &st, out, n_predict, e);
    interrupted = 0;
    printf("\n");
    fflush(stdout);
    if (rc == KILN_E_FULL && ch->seq.n_tokens == before) { /* cannot happen with the room check; be safe */
        full = n_ids + n_end;
        goto fail;
    }
    if (!rc && reply.oom)
        rc = kiln_fail(e, KILN_E_NOMEM, "out of memory");
    if (!rc)
        rc = reply_tail(ch, &st, &reply, out, n_predict, before + n_ids, end_ids, n_end, &tail, &n_tail, e);
    if (!rc && n_tail > 0 && (rc = kiln_session_prefill(s, &ch->seq, tail, n_tail, e)) == KILN_E_FULL)
        full = n_tail; /* only when a re-tokenized reply came out longer than its tokens */
    if (rc || (rc = push_msg(ch, "assistant", reply.s ? reply.s : "", reply.n, e)))
        goto fail;
    ch->n_cached = ch->n_msgs;
    ch->turns++;
    ch->total_gen += st.n_gen;
    after_turn(ch, &st, n_ids, before, n_predict);
done:
    kiln_gen_stats_free(&st);
    free(text);
    free(ids);
    free(end_ids);
    free(out);
    free(tail);
    free(reply.s);
    return rc;
fail:
    /* leave the conversation as it was before this message; a full cache is
     * reported, not an error */
    if (ch->seq_ok && ch->seq.n_tokens > before)
        kiln_kv_seq_truncate(&ch->seq, before);
    pop_msgs(ch, n_before_msgs);
    if (full) {
        say_full(ch, full);
        rc = 0;
    }
    goto done;
}

int cmd_chat(int argc, char **argv)
{
    kiln_engine_cli c;
    kiln_engine_cli_defaults(&c);
    c.n_predict = 256;
    const char *system = NULL;
    const kiln_opt own[] = {
        {"--system", NULL, KILN_OPT_STR, &system, .arg = "TEXT",
         .help = "system message (default: the chat template's own, if it has one)"},
        {0},
    };
    const kiln_opt *tables[] = {c.opts, own, NULL};
    int prc = kiln_args_parse("kiln chat",
                              "usage: kiln chat -m MODEL.gguf [options]   (-n defaults to 256 per reply)\n"
                              "Reads one user message per line from stdin; commands: /reset /stats /quit (EOF quits).\n"
                              "After each reply a stats line goes to stderr.\n"
                              "exit: 0 ok, 1 failed (a malformed model file), 2 usage, 3 device or file unavailable\n",
                              tables, argc, argv, 1, NULL, 0, NULL);
    if (prc)
        return prc == KILN_ARGS_HELP ? KILN_EXIT_OK : prc;
    if (!c.model)
        return kiln_args_usage_error("kiln chat", "-m MODEL is required");
    if (c.prompt) {
        fprintf(stderr, "kiln chat: -p is for `kiln run`; chat reads messages from stdin\n");
        return KILN_EXIT_USAGE;
    }
    kiln_err e = {0};
    chat ch;
    memset(&ch, 0, sizeof ch);
    ch.c = &c;
    kiln_session_opts so;
    if (kiln_engine_cli_session_opts(&c, &so, &e) || kiln_session_open(&ch.s, &so, &e)) {
        fprintf(stderr, "kiln chat: %s\n", e.msg);
        return kiln_exit_code(e.code);
    }
    kiln_model *m = &ch.s.model;
    ch.system = system ? system : ch.s.default_system;
    int rc = find_end_marker(&ch, &e);
    if (!rc)
        rc = reset(&ch, &e);
    int tty = isatty(0);
    if (!rc && tty)
        fprintf(stderr, "kiln chat: %s, %s template, context %d tokens. /reset /stats /quit; Ctrl-C stops a reply.\n",
                c.model, kiln_chat_name(m->chat), ch.s.en.ctx);
    struct sigaction sa = {.sa_handler = on_sigint}; /* no SA_RESTART: Ctrl-C at the prompt interrupts getline */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    char *line = NULL;
    size_t lcap = 0;
    while (!rc) {
        if (tty) {
            printf("> ");
            fflush(stdout);
        }
        errno = 0;
        ssize_t n = getline(&line, &lcap, stdin);
        if (n < 0) {
            if (errno == EINTR && interrupted) {
                interrupted = 0;
                clearerr(stdin);
                printf("\n");
                continue;
            }
            break; /* EOF */
        }
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        if (n == 0)
            continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit"))
            break;
        if (!strcmp(line, "/reset")) {
            rc = reset(&ch, &e);
            ch.turns = ch.total_gen = 0;
            ch.last_stats[0] = 0;
            if (!rc)
                fprintf(stderr, "kiln chat: conversation reset (cache %d of %d tokens)\n", ch.seq.n_tokens,
                        ch.s.en.ctx);
            continue;
        }
        if (!strcmp(line, "/stats")) {
            print_stats(&ch);
            continue;
        }
        if (line[0] == '/' && !strchr(line, ' ')) {
            fprintf(stderr, "kiln chat: unknown command '%s' (/reset /stats /quit)\n", line);
            continue;
        }
        rc = turn(&ch, line, (size_t)n, &e);
    }
    if (rc)
        fprintf(stderr, "kiln chat: %s\n", e.msg);
    else if (c.profile)
        kiln_session_print_profile(&ch.s, stderr);
    free(line);
    pop_msgs(&ch, 0);
    free(ch.msgs);
    free(ch.end_marker);
    if (ch.seq_ok)
        kiln_kv_seq_free(&ch.seq);
    kiln_session_close(&ch.s);
    return rc ? kiln_exit_code(e.code) : KILN_EXIT_OK;
}
