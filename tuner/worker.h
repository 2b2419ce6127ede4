/* tuner/worker.h - runs variants in a child process so that a variant that
 * crashes or hangs never takes the tuning session down.
 *
 * The worker process opens the device, builds the problem (random inputs,
 * reference outputs) and its rotated buffer copies once, checks the default
 * config works (device health), and then serves trial requests over a
 * socketpair: build -> verify against the reference -> measure. A crash
 * (the child dies) or a hang (no answer within the timeout; the child is
 * killed) is reported as the trial's status, and a fresh worker is started
 * and health-checked before the next trial. The parent never touches the
 * device itself.
 *
 * The worker is this same executable re-executed (fork + exec): drivers that
 * run threads (PoCL) deadlock in a bare forked child of a process that has
 * already initialized them. A constructor in worker.c recognises the child
 * (KILN_WORKER_FD in its environment) and serves trials instead of main().
 *
 * $KILN_EXEC_WRAPPER (words split on blanks, no quoting), when set, is put
 * before the executable's path: for emulators only, e.g. "qemu-aarch64-static
 * -cpu max" where qemu-user runs an aarch64 kiln without binfmt_misc (there
 * the emulated exec of the aarch64 file fails: ENOEXEC, exit 127). Unset on a
 * real device. A failed exec is reported with what was exec'd and errno. */
#ifndef KILN_TUNER_WORKER_H
#define KILN_TUNER_WORKER_H

#include "tuner/measure.h"

typedef enum kiln_trial_status {
    KILN_TRIAL_OK = 0,
    KILN_TRIAL_INVALID,      /* config rejected by the space's constraints */
    KILN_TRIAL_COMPILE,      /* source failed to build */
    KILN_TRIAL_WRONG,        /* ran, wrong results */
    KILN_TRIAL_CRASH,        /* the worker process died */
    KILN_TRIAL_TIMEOUT,      /* no answer within the timeout */
    KILN_TRIAL_DEVICE,       /* a device call failed */
    KILN_TRIAL_STATUS_COUNT
} kiln_trial_status;

const char *kiln_trial_status_name(int s); /* "ok", "compile_error", "wrong_result", ... */

typedef struct kiln_trial {
    kiln_config cfg;
    int status;
    char reason[512];
    double median_ns, spread, min_ns;
    int n_samples;
    double err, budget;      /* normalized error of the verification run */
    double seconds;          /* wall time of the whole trial */
} kiln_trial;

typedef struct kiln_worker_opts {
    const char *device;      /* device spec for kiln_device_select */
    const kiln_kernel *kernel;
    kiln_shape shape;
    uint64_t seed;
    kiln_measure_opts measure;
    int in_process;          /* debugging: no child process (a crash ends the session) */
    int measure_bandwidth;   /* measure the copy bandwidth at start */
} kiln_worker_opts;

typedef struct kiln_worker kiln_worker;

/* Starts the worker; fails if the device cannot be opened or the default
 * config does not verify on it. */
kiln_worker *kiln_worker_start(const kiln_worker_opts *o, kiln_err *e);
void kiln_worker_stop(kiln_worker *w);
const kiln_fingerprint *kiln_worker_fingerprint(const kiln_worker *w);
int kiln_worker_rotation(const kiln_worker *w); /* buffer copies in rotation */
int kiln_worker_restarts(const kiln_worker *w);

/* One trial. flags: KILN_BUILD_TEST_* (tests only). Returns 0 with the
 * status in *t, or an error if no healthy worker could be restarted. */
int kiln_worker_trial(kiln_worker *w, const kiln_config *c, unsigned flags, double timeout_s, kiln_trial *t,
                      kiln_err *e);

#endif
