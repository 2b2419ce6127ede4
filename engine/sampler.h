/* engine/sampler.h - next-token choice from logits: greedy, temperature,
 * top-k, top-p, min-p, repetition penalty, seeded. Order (as llama.cpp's
 * default chain): repetition penalty -> top-k -> softmax with temperature ->
 * top-p -> min-p -> draw. temp <= 0 is greedy (ties to the lowest id). */
#ifndef KILN_ENGINE_SAMPLER_H
#define KILN_ENGINE_SAMPLER_H

#include <stdint.h>

#include "util/err.h"
#include "util/rng.h"

typedef struct kiln_sampling {
    float temp;            /* 0: greedy */
    int top_k;             /* 0: off */
    float top_p;           /* 1: off */
    float min_p;           /* 0: off */
    float repeat_penalty;  /* 1: off; > 1 divides positive logits of recent tokens (multiplies negative) */
    int repeat_last_n;     /* how many recent tokens the penalty looks at */
    uint64_t seed;
} kiln_sampling;

void kiln_sampling_default(kiln_sampling *s); /* greedy, penalties off */
/* Checks ranges; the error names the flag. */
int kiln_sampling_check(const kiln_sampling *s, kiln_err *e);
/* 1 if the logits are needed on the host (anything but plain greedy). */
int kiln_sampling_needs_logits(const kiln_sampling *s);

typedef struct kiln_sampler {
    kiln_sampling p;
    kiln_rng rng;
    int n_vocab;
    float *work;           /* n_vocab: logits copy */
    int32_t *idx;          /* n_vocab: candidate ids */
} kiln_sampler;

int kiln_sampler_init(kiln_sampler *s, const kiln_sampling *p, int n_vocab, kiln_err *e);
void kiln_sampler_free(kiln_sampler *s);
/* recent: the last n_recent tokens (prompt + generated). logits untouched. */
int32_t kiln_sample(kiln_sampler *s, const float *logits, const int32_t *recent, int n_recent);

#endif
