/* engine/generate.c - see generate.h. */
#include "engine/generate.h"

#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

const char *kiln_stop_name(int r)
{
    static const char *const names[] = {"length", "eos", "stop", "kv_full", "caller"};
    return r >= 0 && r <= KILN_STOP_CALLER ? names[r] : "?";
}

void kiln_gen_stats_free(kiln_gen_stats *st)
{
    free(st->token_s);
    st->token_s = NULL;
}

static int emit(const kiln_gen_opts *o, const char *t, size_t n)
{
    return n && o->on_text ? o->on_text(o->user, t, n) : 0;
}

int kiln_text_push(kiln_text_stream *b, const kiln_gen_opts *o, const char *t, size_t n)
{
    if (!o->n_stop)
        return emit(o, t, n) ? 2 : 0;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s)
            return -1;
        b->s = s;
        b->cap = cap;
    }
    memcpy(b->s + b->n, t, n);
    b->n += n;
    b->s[b->n] = 0;
    for (int i = 0; i < o->n_stop; i++) {
        const char *hit = o->stop[i][0] ? strstr(b->s, o->stop[i]) : NULL;
        if (hit) {
            emit(o, b->s, (size_t)(hit - b->s));
            b->n = 0;
            return 1;
        }
    }
    /* keep the longest tail that is a prefix of a stop string */
    size_t keep = 0;
    for (int i = 0; i < o->n_stop; i++) {
        size_t sl = strlen(o->stop[i]);
        for (size_t k = sl - 1 < b->n ? sl - 1 : b->n; k > keep; k--)
            if (!memcmp(b->s + b->n - k, o->stop[i], k)) {
                keep = k;
                break;
            }
    }
    int rc = emit(o, b->s, b->n - keep) ? 2 : 0;
    memmove(b->s, b->s + b->n - keep, keep);
    b->n = keep;
    return rc;
}

void kiln_text_flush(kiln_text_stream *b, const kiln_gen_opts *o)
{
    emit(o, b->s, b->n);
    b->n = 0;
}

void kiln_text_stream_free(kiln_text_stream *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

int kiln_generate(kiln_engine *en, kiln_kv_seq *seq, const int32_t *prompt, int n_prompt, const kiln_gen_opts *o,
                  kiln_gen_stats *st, int32_t *out_tokens, int max_out, kiln_err *e)
{
    memset(st, 0, sizeof *st);
    st->n_prompt = n_prompt;
    kiln_model *m = en->m;
    int V = m->cfg.n_vocab, rc;
    kiln_sampler smp;
    if ((rc = kiln_sampler_init(&smp, &o->sampling, V, e)))
        return rc;
    int host_logits = kiln_sampling_needs_logits(&o->sampling);
    int cap_recent = n_prompt + o->n_predict + 1;
    int32_t *recent = malloc(sizeof *recent * (size_t)cap_recent);
    st->token_s = calloc((size_t)(o->n_predict > 0 ? o->n_predict : 1), sizeof *st->token_s);
    if (!recent || !st->token_s) {
        free(recent);
        kiln_sampler_free(&smp);
        return kiln_fail(e, KILN_E_NOMEM, "generate: out of memory");
    }
    memcpy(recent, prompt, sizeof *recent * (size_t)n_prompt);
    int n_recent = n_prompt;
    kiln_detok_stream ds;
    kiln_detok_stream_init(&ds, m->tok, 0);
    kiln_text_stream sb = {0};

    double t0 = kiln_now_s();
    kiln_profile_phase(en->prof, KILN_PHASE_PREFILL, t0); /* the profile's phases are these timing marks */
    rc = n_prompt > 0 ? kiln_forward(en, seq, prompt, n_prompt, e) : kiln_fail(e, KILN_E_INVALID, "empty prompt");
    double t_prev = t0;
    for (int i = 0; !rc && i < o->n_predict; i++) {
        int32_t id;
        if (host_logits) {
            if ((rc = kiln_engine_logits(en, e)))
                break;
            id = kiln_sample(&smp, en->logits_host, recent, n_recent);
        } else if ((rc = kiln_engine_argmax(en, &id, e))) {
            break;
        }
        double now = kiln_now_s();
        if (i == 0) {
            st->prefill_s = now - t0; /* includes reading the first token: the prefill's own sync */
            st->ttft_s = now - t0;
        } else {
            st->token_s[st->n_decode++] = now - t_prev;
        }
        kiln_profile_phase(en->prof, KILN_PHASE_DECODE, now);
        t_prev = now;
        if (!o->ignore_eos && kiln_token_is_eog(m->tok, id)) {
            st->stop_reason = KILN_STOP_EOG;
            break;
        }
        if (out_tokens && st->n_gen < max_out)
            out_tokens[st->n_gen] = id;
        st->n_gen++;
        recent[n_recent++] = id;
        const char *txt;
        size_t tl;
        if ((rc = kiln_detok_stream_push(&ds, id, &txt, &tl, e)))
            break;
        int pr = kiln_text_push(&sb, o, txt, tl);
        if (pr < 0) {
            rc = kiln_fail(e, KILN_E_NOMEM, "generate: out of memory");
            break;
        }
        if (pr) {
            st->stop_reason = pr == 1 ? KILN_STOP_STRING : KILN_STOP_CALLER;
            break;
        }
        if (i + 1 == o->n_predict) {
            st->stop_reason = KILN_STOP_LIMIT;
            break;
        }
        /* decode the token just produced (its logits give the next one) */
        kiln_err fe = {0};
        int frc = kiln_forward(en, seq, &id, 1, &fe);
        if (frc == KILN_E_FULL) {
            st->stop_reason = KILN_STOP_FULL;
            break;
        }
        if (frc) {
            rc = frc;
            if (e)
                *e = fe;
        }
    }
    if (!rc && st->stop_reason != KILN_STOP_STRING && st->stop_reason != KILN_STOP_CALLER) {
        const char *txt;
        size_t tl;
        if (!kiln_detok_stream_finish(&ds, &txt, &tl, NULL))
            kiln_text_push(&sb, o, txt, tl);
        kiln_text_flush(&sb, o); /* a held-back partial stop string that never completed */
    }
    /* decode ends at the last token's mark (prefill at the end when no token came) */
    kiln_profile_phase(en->prof, KILN_PHASE_NONE, t_prev > t0 ? t_prev : kiln_now_s());
    st->total_s = kiln_now_s() - t0;
    st->decode_s = 0;
    for (int i = 0; i < st->n_decode; i++)
        st->decode_s += st->token_s[i];
    kiln_detok_stream_free(&ds);
    free(sb.s);
    free(recent);
    kiln_sampler_free(&smp);
    return rc;
}
