/* tuner/worker.c - see worker.h. */
#include "tuner/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/num.h"

#define KILN_WORKER_FD_ENV "KILN_WORKER_FD"
#define KILN_EXEC_WRAPPER_ENV "KILN_EXEC_WRAPPER"

static const char *const status_names[KILN_TRIAL_STATUS_COUNT] = {
    "ok", "invalid", "compile_error", "wrong_result", "crash", "timeout", "device_error"};

const char *kiln_trial_status_name(int s) { return s >= 0 && s < KILN_TRIAL_STATUS_COUNT ? status_names[s] : "?"; }

/* ---- the device side: used inside the child (or in process) ---- */

typedef struct session {
    kiln_device *dev;
    int cls;           /* data class of prob and copies (kiln_data_class) */
    kiln_problem prob;
    kiln_problem_dev copies[KILN_ROTATION_MAX];
    int n_copies;
    kiln_progcache *cache;
} session;

static void session_drop_problem(session *s)
{
    for (int i = 0; i < s->n_copies; i++)
        kiln_problem_dev_free(&s->copies[i]);
    s->n_copies = 0;
    kiln_problem_free(&s->prob);
}

static void session_close(session *s)
{
    session_drop_problem(s);
    kiln_progcache_free(s->cache);
    s->cache = NULL;
    kiln_device_close(s->dev);
    s->dev = NULL;
}

/* The problem of data class cls and its rotation copies on the device (the
 * inputs a config of that class reads: a weight layout, quantized x). */
static int session_load_problem(session *s, const kiln_worker_opts *o, int cls, kiln_err *e)
{
    session_drop_problem(s);
    s->cls = cls;
    int rc = kiln_problem_make(o->kernel, &s->prob, &o->shape, cls, o->seed, e);
    if (rc)
        return rc;
    double bytes = 0;
    for (int i = 0; i < s->prob.n_bufs; i++)
        bytes += (double)s->prob.bufs[i].bytes;
    int want = o->measure.copies > 0 ? o->measure.copies : kiln_rotation_count(&s->dev->fp, bytes);
    if (want > KILN_ROTATION_MAX)
        want = KILN_ROTATION_MAX;
    for (int i = 0; i < want; i++) {
        if ((rc = kiln_problem_upload(s->dev, &s->prob, &s->copies[i], e))) {
            if (i == 0) {
                session_drop_problem(s);
                return rc;
            }
            break; /* fewer copies than wanted: still correct, maybe cache-warm */
        }
        s->n_copies++;
    }
    return 0;
}

static int trial_status_of(int code)
{
    switch (code) {
    case KILN_E_INVALID: return KILN_TRIAL_INVALID;
    case KILN_E_COMPILE:
    case KILN_E_UNAVAILABLE: return KILN_TRIAL_COMPILE;
    case KILN_E_VERIFY: return KILN_TRIAL_WRONG;
    default: return KILN_TRIAL_DEVICE;
    }
}

static void run_trial(session *s, const kiln_worker_opts *o, const kiln_config *c, unsigned flags, kiln_trial *t)
{
    kiln_err e = {0};
    double t0 = kiln_now_s();
    memset(t, 0, sizeof *t);
    t->cfg = *c;
    kiln_variant v;
    int rc = kiln_variant_build(&v, s->dev, o->kernel, &o->shape, c, flags, s->cache, &e);
    if (rc) {
        t->status = trial_status_of(rc);
        snprintf(t->reason, sizeof t->reason, "%s", e.msg);
        goto out;
    }
    int cls = kiln_data_class(o->kernel, &o->shape, c);
    if ((cls != s->cls || !s->n_copies) && (rc = session_load_problem(s, o, cls, &e))) {
        t->status = KILN_TRIAL_DEVICE;
        snprintf(t->reason, sizeof t->reason, "problem data (class %d): %s", cls, e.msg);
        kiln_variant_release(&v);
        goto out;
    }
    if (flags & KILN_BUILD_TEST_CRASH && s->dev->backend != KILN_CPU)
        raise(SIGSEGV); /* the cpu sources crash by themselves; elsewhere simulate it */
    kiln_verify_result vr;
    rc = kiln_verify(&v, &s->prob, &s->copies[0], &vr, &e);
    if (rc) {
        t->status = KILN_TRIAL_DEVICE;
        snprintf(t->reason, sizeof t->reason, "%s", e.msg);
    } else if (!vr.ok) {
        t->status = KILN_TRIAL_WRONG;
        t->err = vr.err;
        t->budget = vr.budget;
        snprintf(t->reason, sizeof t->reason, "%s", vr.detail);
    } else {
        t->err = vr.err;
        t->budget = vr.budget;
        kiln_measurement m;
        rc = kiln_measure_variant(&v, s->copies, s->n_copies, &o->measure, &m, &e);
        if (rc) {
            t->status = KILN_TRIAL_DEVICE;
            snprintf(t->reason, sizeof t->reason, "measuring: %s", e.msg);
        } else {
            t->median_ns = m.median_ns;
            t->spread = m.spread;
            t->min_ns = m.min_ns;
            t->n_samples = m.n;
        }
    }
    kiln_variant_release(&v);
out:
    t->seconds = kiln_now_s() - t0;
}

/* Opens the device, builds the problem and copies, checks the default. */
static int session_open(session *s, const kiln_worker_opts *o, kiln_err *e)
{
    memset(s, 0, sizeof *s);
    int rc = kiln_device_select(o->device, &s->dev, e);
    if (rc)
        return rc;
    if (o->measure_bandwidth) {
        double gbps;
        if (kiln_measure_copy_bandwidth(s->dev, &gbps, e))
            s->dev->fp.copy_gbps = 0; /* reported as unknown; not fatal */
    }
    if (!(s->cache = kiln_progcache_new(s->dev))) {
        session_close(s);
        return kiln_fail(e, KILN_E_NOMEM, "worker: no memory");
    }
    kiln_config def;
    kiln_config_default_for(o->kernel, &s->dev->fp, &o->shape, &def);
    if ((rc = session_load_problem(s, o, kiln_data_class(o->kernel, &o->shape, &def), e))) {
        session_close(s);
        return rc;
    }
    kiln_trial t;
    run_trial(s, o, &def, 0, &t);
    if (t.status != KILN_TRIAL_OK && t.status != KILN_TRIAL_INVALID) {
        rc = kiln_fail(e, KILN_E_DEVICE, "device health check (default config of %s) failed: %s: %s", o->kernel->name,
                       kiln_trial_status_name(t.status), t.reason);
        session_close(s);
        return rc;
    }
    return 0;
}

/* ---- the parent side ---- */

typedef struct hello {
    int rc;
    char msg[1024];
    kiln_fingerprint fp;
    int n_copies;
} hello;

typedef struct request {
    kiln_config cfg;
    unsigned flags;
} request;

struct kiln_worker {
    kiln_worker_opts opts;
    pid_t pid;
    int fd;
    kiln_fingerprint fp;
    int n_copies;
    int restarts;
    session local; /* in_process mode */
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads n bytes; deadline < 0 waits forever. Returns 0, -1 EOF/error, -2 timeout. */
static int read_all(int fd, void *p, size_t n, double deadline)
{
    char *c = p;
    while (n) {
        if (deadline >= 0) {
            double left = deadline - kiln_now_s();
            if (left <= 0)
                return -2;
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            int pr = poll(&pfd, 1, (int)(left * 1000) + 1);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0)
                return -2;
        }
        ssize_t r = read(fd, c, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c += r;
        n -= (size_t)r;
    }
    return 0;
}

/* What the parent sends the re-executed child first: the options, by value
 * (the kernel by name; the child has the same registry). */
typedef struct child_opts {
    char device[256];
    char kernel[64];
    kiln_shape shape;
    uint64_t seed;
    kiln_measure_opts measure;
    int measure_bandwidth;
} child_opts;

static void child_serve(int fd, const kiln_worker_opts *o)
{
    session s;
    hello h = {0};
    kiln_err e = {0};
    h.rc = session_open(&s, o, &e);
    snprintf(h.msg, sizeof h.msg, "%s", e.msg);
    if (!h.rc) {
        h.fp = s.dev->fp;
        h.n_copies = s.n_copies;
    }
    if (write_all(fd, &h, sizeof h) || h.rc)
        _exit(h.rc ? 1 : 2);
    request rq;
    while (read_all(fd, &rq, sizeof rq, -1) == 0) {
        kiln_trial t;
        run_trial(&s, o, &rq.cfg, rq.flags, &t);
        if (write_all(fd, &t, sizeof t))
            break;
    }
    session_close(&s);
    _exit(0);
}

/* Runs before main() in any program that links the worker: when this
 * process is a re-executed worker (KILN_WORKER_FD set by spawn), it serves
 * trials and exits instead of running the program. */
__attribute__((constructor)) static void worker_entry(void)
{
    const char *fds = getenv(KILN_WORKER_FD_ENV);
    if (!fds)
        return;
    long long fdv;
    kiln_err fe = {0};
    if (kiln_num_int("environment variable " KILN_WORKER_FD_ENV, fds, 0, 1 << 20, &fdv, &fe)) {
        fprintf(stderr, "kiln worker: %s\n", fe.msg);
        _exit(2);
    }
    int fd = (int)fdv;
    unsetenv(KILN_WORKER_FD_ENV); /* the worker's own children are not workers */
    child_opts co;
    hello h = {0};
    if (read_all(fd, &co, sizeof co, kiln_now_s() + 30)) {
        _exit(3);
    }
    co.device[sizeof co.device - 1] = 0;
    co.kernel[sizeof co.kernel - 1] = 0;
    kiln_worker_opts o = {.device = co.device, .shape = co.shape, .seed = co.seed, .measure = co.measure,
                          .measure_bandwidth = co.measure_bandwidth};
    if (!(o.kernel = kiln_kernel_find(co.kernel))) {
        h.rc = KILN_E_INVALID;
        snprintf(h.msg, sizeof h.msg, "worker: unknown kernel '%s'", co.kernel);
        write_all(fd, &h, sizeof h);
        _exit(1);
    }
    child_serve(fd, &o);
}

static void reap(kiln_worker *w, int kill_it, char *why, size_t n)
{
    if (w->pid <= 0)
        return;
    if (kill_it)
        kill(w->pid, SIGKILL);
    int st = 0;
    while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (why) {
        if (WIFSIGNALED(st))
            snprintf(why, n, "worker killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
        else if (WIFEXITED(st))
            snprintf(why, n, "worker exited with status %d", WEXITSTATUS(st));
    }
    close(w->fd);
    w->fd = -1;
    w->pid = -1;
}

/* $KILN_EXEC_WRAPPER split into words (no quoting: emulator command lines
 * need none), before fork: the child of a threaded process only execs. */
typedef struct exec_wrapper {
    char buf[1024];
    char *argv[32];
    int n;
} exec_wrapper;

static int wrapper_parse(exec_wrapper *x, kiln_err *e)
{
    x->n = 0;
    const char *v = getenv(KILN_EXEC_WRAPPER_ENV);
    if (!v)
        return 0;
    if (strlen(v) >= sizeof x->buf)
        return kiln_fail(e, KILN_E_INVALID, "$%s: longer than %zu characters", KILN_EXEC_WRAPPER_ENV,
                         sizeof x->buf - 1);
    snprintf(x->buf, sizeof x->buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(x->buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (x->n >= (int)(sizeof x->argv / sizeof x->argv[0]) - 2) /* room for the executable and NULL */
            return kiln_fail(e, KILN_E_INVALID, "$%s: more than %d words", KILN_EXEC_WRAPPER_ENV, x->n);
        x->argv[x->n++] = t;
    }
    return 0;
}

/* What the child tried to exec, for the parent's message. */
static void exec_what(const exec_wrapper *x, const char *exe, char *out, size_t n)
{
    if (!x->n) {
        snprintf(out, n, "%s (this executable, also tried as /proc/self/exe)", exe);
        return;
    }
    size_t at = (size_t)snprintf(out, n, "$%s:", KILN_EXEC_WRAPPER_ENV);
    for (int i = 0; i < x->n && at < n; i++)
        at += (size_t)snprintf(out + at, n - at, " %s", x->argv[i]);
    if (at < n)
        snprintf(out + at, n - at, " %s", exe);
}

/* In the forked child: become the worker, or report errno on the
 * close-on-exec pipe errfd (closed by a successful exec) and exit 127. Only
 * async-signal-safe calls (plus execvp's PATH search) after fork. */
static void child_exec(int sock, int errfd, exec_wrapper *x, char *exe)
{
    int fd = dup(sock); /* without CLOEXEC, so it survives exec */
    char num[16];
    snprintf(num, sizeof num, "%d", fd);
    int err = 0;
    if (fd < 0 || setenv(KILN_WORKER_FD_ENV, num, 1)) {
        err = errno ? errno : ENOMEM;
    } else if (x->n) {
        /* an emulator (qemu-user without binfmt_misc) cannot exec a
         * foreign binary itself: the wrapper runs it. The path, not
         * /proc/self/exe, which would name the emulator there. */
        x->argv[x->n] = exe;
        x->argv[x->n + 1] = NULL;
        execvp(x->argv[0], x->argv);
        err = errno;
    } else {
        char *argv[] = {exe, NULL};
        /* the running binary itself, not the path it was started from: a
         * rebuild replacing that file during a long tune made every later
         * worker fail to start (exit 127) */
        execv("/proc/self/exe", argv);
        execv(exe, argv);
        err = errno;
    }
    ssize_t wr = write(errfd, &err, sizeof err);
    (void)wr; /* nothing more to do when even this fails: the parent sees EOF and exit 127 */
    _exit(127);
}

static int spawn(kiln_worker *w, kiln_err *e)
{
    exec_wrapper xw;
    if (wrapper_parse(&xw, e))
        return kiln_err_wrap(e, "worker for %s on '%s'", w->opts.kernel->name, w->opts.device);
    int sv[2], ep[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
        return kiln_fail(e, KILN_E_IO, "worker: socketpair: %s", strerror(errno));
    if (pipe2(ep, O_CLOEXEC)) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        return kiln_fail(e, KILN_E_IO, "worker: pipe: %s", strerror(err));
    }
    /* fork + exec of this same executable, not a bare fork: drivers that
     * run threads (PoCL's pool, some Vulkan ICDs) deadlock in a forked
     * child of a process that already initialized them. The child's
     * constructor (worker_entry) recognises the environment variable. */
    char exe[4096];
    ssize_t nexe = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (nexe <= 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        close(ep[0]);
        close(ep[1]);
        return kiln_fail(e, KILN_E_IO, "worker: cannot find this executable (/proc/self/exe): %s", strerror(err));
    }
    exe[nexe] = 0;
    child_opts co = {.shape = w->opts.shape, .seed = w->opts.seed, .measure = w->opts.measure,
                     .measure_bandwidth = w->opts.measure_bandwidth};
    snprintf(co.device, sizeof co.device, "%s", w->opts.device);
    snprintf(co.kernel, sizeof co.kernel, "%s", w->opts.kernel->name);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        int err = errno;
        close(sv[0]);
        close(sv[1]);
        close(ep[0]);
        close(ep[1]);
        return kiln_fail(e, KILN_E_IO, "worker: fork: %s", strerror(err));
    }
    if (pid == 0) {
        close(sv[0]);
        close(ep[0]);
        child_exec(sv[1], ep[1], &xw, exe);
    }
    close(ep[1]);
    /* EOF: the exec succeeded (the pipe closed with it); an int: its errno */
    int cerr = 0;
    ssize_t got;
    while ((got = read(ep[0], &cerr, sizeof cerr)) < 0 && errno == EINTR)
        ;
    close(ep[0]);
    if (got == (ssize_t)sizeof cerr) {
        char what[1200];
        exec_what(&xw, exe, what, sizeof what);
        w->pid = pid;
        w->fd = sv[0];
        close(sv[1]);
        reap(w, 0, NULL, 0);
        return kiln_fail(e, KILN_E_IO, "worker for %s on '%s': cannot exec %s: %s%s", w->opts.kernel->name,
                         w->opts.device, what, strerror(cerr),
                         cerr == ENOEXEC && !xw.n
                             ? " (under an emulator without binfmt_misc, set $" KILN_EXEC_WRAPPER_ENV
                               ", e.g. 'qemu-aarch64-static -cpu max')"
                             : "");
    }
    close(sv[1]);
    w->pid = pid;
    w->fd = sv[0];
    if (write_all(w->fd, &co, sizeof co)) {
        char why[256] = "no answer";
        reap(w, 1, why, sizeof why);
        return kiln_fail(e, KILN_E_DEVICE, "worker for %s on '%s' failed to start: %s", w->opts.kernel->name,
                         w->opts.device, why);
    }
    hello h;
    /* opening a device, building the reference and the health check */
    int rr = read_all(w->fd, &h, sizeof h, kiln_now_s() + 300);
    if (rr) {
        char why[256] = "no answer";
        reap(w, 1, why, sizeof why);
        return kiln_fail(e, KILN_E_DEVICE, "worker for %s on '%s' failed to start: %s", w->opts.kernel->name,
                         w->opts.device, rr == -2 ? "timed out" : why);
    }
    if (h.rc) {
        reap(w, 0, NULL, 0);
        return kiln_fail(e, h.rc, "%s", h.msg);
    }
    w->fp = h.fp;
    w->n_copies = h.n_copies;
    return 0;
}

kiln_worker *kiln_worker_start(const kiln_worker_opts *o, kiln_err *e)
{
    kiln_worker *w = calloc(1, sizeof *w);
    if (!w) {
        kiln_fail(e, KILN_E_NOMEM, "worker: no memory");
        return NULL;
    }
    w->opts = *o;
    w->pid = -1;
    w->fd = -1;
    int rc;
    if (o->in_process) {
        rc = session_open(&w->local, o, e);
        if (!rc) {
            w->fp = w->local.dev->fp;
            w->n_copies = w->local.n_copies;
        }
    } else {
        rc = spawn(w, e);
    }
    if (rc) {
        free(w);
        return NULL;
    }
    w->opts.measure_bandwidth = 0; /* restarts keep the first measurement */
    return w;
}

void kiln_worker_stop(kiln_worker *w)
{
    if (!w)
        return;
    if (w->opts.in_process)
        session_close(&w->local);
    else if (w->pid > 0) {
        shutdown(w->fd, SHUT_WR); /* the child's read sees EOF and exits */
        double deadline = kiln_now_s() + 5;
        int st;
        while (waitpid(w->pid, &st, WNOHANG) == 0 && kiln_now_s() < deadline)
            usleep(10000);
        reap(w, 1, NULL, 0);
    }
    free(w);
}

const kiln_fingerprint *kiln_worker_fingerprint(const kiln_worker *w) { return &w->fp; }
int kiln_worker_rotation(const kiln_worker *w) { return w->n_copies; }
int kiln_worker_restarts(const kiln_worker *w) { return w->restarts; }

int kiln_worker_trial(kiln_worker *w, const kiln_config *c, unsigned flags, double timeout_s, kiln_trial *t,
                      kiln_err *e)
{
    if (w->opts.in_process) {
        run_trial(&w->local, &w->opts, c, flags, t);
        return 0;
    }
    double t0 = kiln_now_s();
    request rq = {.cfg = *c, .flags = flags};
    int rr = write_all(w->fd, &rq, sizeof rq) ? -1 : read_all(w->fd, t, sizeof *t, t0 + timeout_s);
    if (rr == 0)
        return 0;
    memset(t, 0, sizeof *t);
    t->cfg = *c;
    t->seconds = kiln_now_s() - t0;
    char why[256] = "";
    reap(w, 1, why, sizeof why);
    if (rr == -2) {
        t->status = KILN_TRIAL_TIMEOUT;
        snprintf(t->reason, sizeof t->reason, "no result after %.1f s (limit %.1f s); worker killed", t->seconds,
                 timeout_s);
    } else {
        t->status = KILN_TRIAL_CRASH;
        snprintf(t->reason, sizeof t->reason, "%s", why[0] ? why : "worker died");
    }
    /* A fresh worker, health-checked on the default config, before going on. */
    w->restarts++;
    int rc = spawn(w, e);
    if (rc)
        return kiln_err_wrap(e, "restarting the worker after a %s", kiln_trial_status_name(t->status));
    return 0;
}
