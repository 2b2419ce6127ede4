/* engine/profile.h - where a token's time goes: time per op label, per
 * phase (prefill, decode), for `kiln run --profile` and `kiln bench model
 * --profile`.
 *
 * With a profile attached to the engine (kiln_engine_opts.profile) every op
 * runs synchronously (the backend waits for it and reports its device time,
 * kiln_variant_run_at's ns) between two host clock reads. Per label the
 * profile keeps the calls, the host time around them, the device time where
 * the backend gives one and the bytes the kernel moves (kernel->bytes).
 * Inside a forward chunk, the time between one op's end and the next one's
 * start is host work (token uploads, host gathers, re-planning a shape).
 * What the phase's wall time holds beyond ops and those gaps is "other":
 * reading logits, sampling, detokenizing, the loop itself.
 *
 * Phases are marked by the generation loop at the points its tok/s figures
 * are timed from (prefill: the prompt's forward and reading its first
 * token; decode: one step per generated token), so the profile's wall times
 * are the ones the throughput figures use.
 *
 * Invariant: per phase, the ops' host times plus the gaps never exceed the
 * wall time: ops and gaps are counted only while a phase is open, they do
 * not overlap, and they are read from the same clock.
 *
 * Owned by its creator (the session); the engine and its ops only write to
 * it. With no profile attached the engine pays one branch per op. */
#ifndef KILN_ENGINE_PROFILE_H
#define KILN_ENGINE_PROFILE_H

#include <stdio.h>

enum { KILN_PHASE_NONE = -1, KILN_PHASE_PREFILL = 0, KILN_PHASE_DECODE = 1, KILN_PHASE_COUNT = 2 };

#define KILN_PROFILE_MAX_LABELS 32

typedef struct kiln_profile_row {
    const char *label;         /* static storage (the forward pass's literals) */
    long calls;
    double host_s;             /* host clock around each synchronous op */
    double dev_s;              /* the backend's device time of the calls that had one */
    long dev_calls;            /* how many had one */
    double bytes;              /* kernel->bytes of every call (0: the kernel does not say) */
} kiln_profile_row;

typedef struct kiln_profile_phase_data {
    double wall_s;             /* time the phase was open */
    long chunks, tokens;       /* forward chunks run in it (decode: one per step) and their tokens */
    double gap_s;              /* host time between ops inside chunks */
    int n_rows;
    kiln_profile_row rows[KILN_PROFILE_MAX_LABELS]; /* in order of first use; the last slot takes any overflow */
} kiln_profile_phase_data;

typedef struct kiln_profile {
    kiln_profile_phase_data ph[KILN_PHASE_COUNT];
    int phase;                 /* the open phase, KILN_PHASE_NONE between generations */
    double since_s;            /* when it opened */
    double last_end_s;         /* end of the last op of the current chunk; 0 outside chunks */
} kiln_profile;

/* Empty, no phase open (also what resets it, after a warm-up). */
void kiln_profile_reset(kiln_profile *p);

/* Closes the open phase at now_s (its wall time grows by the time it was
 * open) and opens `phase` (KILN_PHASE_NONE: none). The hooks below take
 * p == NULL (profiling off) and do nothing. */
void kiln_profile_phase(kiln_profile *p, int phase, double now_s);
/* A forward chunk of `tokens` tokens starts now: the gap clock restarts. */
void kiln_profile_chunk(kiln_profile *p, int tokens, double now_s);
/* One op ran from t0_s to t1_s (host clock); dev_ns < 0: no device time. */
void kiln_profile_op(kiln_profile *p, const char *label, double t0_s, double t1_s, double dev_ns, double bytes);

/* The tables (prefill per chunk, decode per step), one line per label in
 * order of time, then "host between ops", "other (host, sampling, sync)"
 * and the wall time; a phase that never ran is left out. device: a name
 * for the header. */
void kiln_profile_print(const kiln_profile *p, const char *device, FILE *f);

#endif
