/*
 * The hooks through the C ABI, in the cases the agent (examples/c/agent.c) does not reach:
 *
 *   hooks old-config    --hook-dir=DIR MOUNT   a caller of the first quiesce_config (32 bytes) whose
 *                                        memory after those bytes holds a hook_dir: it is not
 *                                        read; the session freezes and thaws without hooks;
 *                                        a first-version quiesce_report_info (64 bytes) works
 *   hooks cleanup-frozen --hook-dir=DIR MOUNT  freeze with hooks, print "frozen", wait for a line
 *                                        on stdin, then quiesce_session_cleanup() without
 *                                        quiesce_thaw() (twice)
 *   hooks failed-freeze --hook-dir=DIR MOUNT   MOUNT is frozen by someone else: the freeze fails
 *                                        (QUIESCE_FROZEN_BY_OTHER); then thaw and cleanup
 *   hooks deadline      --hook-dir=DIR MOUNT   freeze with a 300 ms deadline, sleep 1.5 s (the
 *                                        guardian thaws), then cleanup without thaw
 *   hooks run           --hook-dir=DIR MOUNT   quiesce_run() with a callback
 *
 * Each prints what happened ("init ok", "freeze frozen-by-other", "report: ..."); the Rust
 * side (tests/c_abi.rs) checks those lines and the hooks' call log. Exit status 0 when this
 * program's own checks passed.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "quiesce.h"

static quiesce_session session;

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "hooks.c:%d: check failed: %s\n", __LINE__, #cond);      \
            failures++;                                                              \
        }                                                                            \
    } while (0)

static void print_error(const char *step, uint32_t st) {
    quiesce_error_info e;
    e.size = sizeof e;
    printf("%s %s\n", step, quiesce_status_name(st));
    if (st != QUIESCE_OK && quiesce_error(&session, &e) == QUIESCE_OK) {
        printf("%s message: %s\n", step, e.message);
    }
}

static quiesce_report_info print_report(void) {
    quiesce_report_info r;
    memset(&r, 0, sizeof r);
    r.size = sizeof r;
    uint32_t st = quiesce_report(&session, &r);
    CHECK(st == QUIESCE_OK);
    CHECK(r.size == sizeof r);
    printf("report: status %s; %s; reason %s; hooks %u calls, %u failed\n",
           quiesce_status_name(r.status), quiesce_consistency_name(r.consistency),
           r.consistency_reason ? r.consistency_reason : "(none)", r.hook_calls,
           r.hook_failures);
    return r;
}

/* Every hook call's result (quiesce_hook_call), one line each; returns how many. */
static unsigned print_hook_calls(void) {
    unsigned i = 0;
    for (;; i++) {
        quiesce_hook_call_info h;
        memset(&h, 0, sizeof h);
        h.size = sizeof h;
        if (quiesce_hook_call(&session, i, &h) != QUIESCE_OK) break;
        CHECK(h.size == sizeof h);
        CHECK(h.output != NULL && h.output[h.output_len] == '\0');
        printf("hook call %u: %s %s %s %s exit %d signal %d errno %d succeeded %u timed_out %u "
               "(%s) %llu us, %zu output bytes: %s",
               i, h.name, h.source, h.phase, h.end, h.exit_status, h.signal, h.os_error,
               h.succeeded, h.timed_out, h.result, (unsigned long long)h.duration_us,
               h.output_len, h.output);
        if (h.output_len == 0 || h.output[h.output_len - 1] != '\n') printf("\n");
    }
    /* A too small struct is refused. */
    quiesce_hook_call_info small;
    small.size = 8;
    CHECK(quiesce_hook_call(&session, 0, &small) == QUIESCE_USAGE);
    return i;
}

/* quiesce_phases(): the size convention, and one line "phases: plan N arm N ..." (1 for a
 * phase that ran, 0 for one that did not: the times themselves differ from run to run). */
static quiesce_phases_info print_phases(void) {
    /* Too small: refused, nothing written. */
    quiesce_phases_info p;
    memset(&p, 0x5a, sizeof p);
    p.size = offsetof(quiesce_phases_info, finish_ns);
    CHECK(quiesce_phases(&session, &p) == QUIESCE_USAGE);
    CHECK(p.size == offsetof(quiesce_phases_info, finish_ns));
    CHECK(p.plan_ns == 0x5a5a5a5a5a5a5a5aULL);
    p.size = 0;
    CHECK(quiesce_phases(&session, &p) == QUIESCE_USAGE);
    CHECK(quiesce_phases(&session, NULL) == QUIESCE_USAGE);
    /* A caller built against a later, larger version gets this one, and its size back;
     * nothing after it is written. */
    struct {
        quiesce_phases_info p;
        uint64_t later;
    } wide;
    memset(&wide, 0x5a, sizeof wide);
    wide.p.size = sizeof wide;
    CHECK(quiesce_phases(&session, &wide.p) == QUIESCE_OK);
    CHECK(wide.p.size == sizeof(quiesce_phases_info));
    CHECK(wide.later == 0x5a5a5a5a5a5a5a5aULL);
    /* This version. */
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    CHECK(quiesce_phases(&session, &p) == QUIESCE_OK);
    CHECK(p.size == sizeof p);
    CHECK(sizeof p == 72);
    CHECK(memcmp(&p, &wide.p, sizeof p) == 0);
    printf("phases: plan %d arm %d hooks %d presync %d freeze %d wait %d thaw %d finish %d\n",
           p.plan_ns != 0, p.arm_ns != 0, p.hooks_ns != 0, p.presync_ns != 0, p.freeze_ns != 0,
           p.wait_ns != 0, p.thaw_ns != 0, p.finish_ns != 0);
    return p;
}

/* quiesce_cancel() from a signal handler (async-signal-safe). */
static void on_alarm(int sig) {
    (void)sig;
    quiesce_cancel(&session);
}

static int on_frozen(quiesce_session *s, void *user) {
    (void)s;
    (void)user;
    printf("callback: frozen\n");
    return 0;
}

static void setup(quiesce_config *cfg, const char *const *mount, const char *hook_dir) {
    quiesce_config_init(cfg);
    cfg->mounts = mount;
    cfg->mount_count = 1;
    cfg->timeout_ms = 30000;
    cfg->hook_dir = hook_dir;
}

static int old_config(const char *const *mount, const char *hook_dir) {
    quiesce_config cfg;
    setup(&cfg, mount, hook_dir);
    /* Built against the first version: the struct ended before hook_dir. Whatever lies
     * after it in memory (here a hook directory that would be refused, or run) is not the
     * caller's and must not be read. */
    cfg.size = offsetof(quiesce_config, hook_dir);
    CHECK(cfg.size == 32);
    uint32_t st = quiesce_session_init(&session, sizeof session, &cfg);
    print_error("init", st);
    CHECK(st == QUIESCE_OK);
    if (st == QUIESCE_OK) {
        st = quiesce_freeze(&session);
        print_error("freeze", st);
        CHECK(st == QUIESCE_OK);
        st = quiesce_thaw(&session, 1);
        print_error("thaw", st);
        CHECK(st == QUIESCE_OK);
    }
    quiesce_report_info r = print_report();
    CHECK(r.consistency == QUIESCE_CONSISTENCY_FILESYSTEM);
    CHECK(r.hook_calls == 0);
    CHECK(r.consistency_reason != NULL &&
          strcmp(r.consistency_reason, "no application hooks were configured") == 0);
    /* A first-version report struct: 64 bytes, filled; nothing after it is written. */
    struct {
        quiesce_report_info r;
    } wide;
    memset(&wide, 0x5a, sizeof wide);
    wide.r.size = offsetof(quiesce_report_info, consistency_reason);
    CHECK(wide.r.size == 64);
    CHECK(quiesce_report(&session, &wide.r) == QUIESCE_OK);
    CHECK(wide.r.size == 64);
    CHECK(wide.r.status == QUIESCE_OK);
    CHECK(wide.r.consistency == QUIESCE_CONSISTENCY_FILESYSTEM);
    CHECK(wide.r.hook_calls == 0x5a5a5a5a);
    wide.r.size = 63;
    CHECK(quiesce_report(&session, &wide.r) == QUIESCE_USAGE);
    /* No hook configured for this caller: the hooks' phase did not run. */
    quiesce_phases_info p = print_phases();
    CHECK(p.hooks_ns == 0);
    quiesce_session_cleanup(&session);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: hooks MODE --hook-dir=DIR MOUNT\n");
        return 2;
    }
    const char *mode = argv[1];
    if (strncmp(argv[2], "--hook-dir=", 11) != 0) {
        fprintf(stderr, "usage: hooks MODE --hook-dir=DIR MOUNT\n");
        return 2;
    }
    const char *hook_dir = argv[2] + 11;
    const char *const *mount = (const char *const *)&argv[3];
    quiesce_config cfg;
    uint32_t st;
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (strcmp(mode, "old-config") == 0) {
        old_config(mount, hook_dir);
    } else if (strcmp(mode, "cleanup-frozen") == 0) {
        setup(&cfg, mount, hook_dir);
        st = quiesce_session_init(&session, sizeof session, &cfg);
        print_error("init", st);
        CHECK(st == QUIESCE_OK);
        st = quiesce_freeze(&session);
        print_error("freeze", st);
        CHECK(st == QUIESCE_OK);
        if (st == QUIESCE_OK) {
            quiesce_report_info r = print_report();
            CHECK(r.hook_calls == 1 && r.hook_failures == 0);
            printf("frozen\n");
            char line[64];
            if (fgets(line, sizeof line, stdin) == NULL) printf("stdin closed\n");
        }
        /* No quiesce_thaw(): cleanup thaws (not acknowledged) and runs the after calls. */
        quiesce_session_cleanup(&session);
        quiesce_session_cleanup(&session);
        printf("cleaned up\n");
    } else if (strcmp(mode, "failed-freeze") == 0) {
        setup(&cfg, mount, hook_dir);
        st = quiesce_session_init(&session, sizeof session, &cfg);
        print_error("init", st);
        CHECK(st == QUIESCE_OK);
        st = quiesce_freeze(&session);
        print_error("freeze", st);
        CHECK(st == QUIESCE_FROZEN_BY_OTHER);
        quiesce_report_info r = print_report();
        CHECK(r.consistency == QUIESCE_CONSISTENCY_NONE && r.consistency_reason == NULL);
        CHECK(r.hook_calls == 2);
        st = quiesce_thaw(&session, 1);
        print_error("thaw", st);
        CHECK(st == QUIESCE_FROZEN_BY_OTHER);
        quiesce_session_cleanup(&session);
        printf("cleaned up\n");
    } else if (strcmp(mode, "deadline") == 0) {
        setup(&cfg, mount, hook_dir);
        cfg.timeout_ms = 300;
        st = quiesce_session_init(&session, sizeof session, &cfg);
        print_error("init", st);
        CHECK(st == QUIESCE_OK);
        st = quiesce_freeze(&session);
        print_error("freeze", st);
        CHECK(st == QUIESCE_OK);
        usleep(1500 * 1000);
        quiesce_report_info r = print_report();
        CHECK(r.hook_calls == 1);
        quiesce_session_cleanup(&session);
        printf("cleaned up\n");
    } else if (strcmp(mode, "cancel-from-signal") == 0) {
        /* A hook hangs before the freeze; SIGALRM's handler cancels after 1 s. */
        setup(&cfg, mount, hook_dir);
        cfg.hook_timeout_ms = 60000;
        st = quiesce_session_init(&session, sizeof session, &cfg);
        print_error("init", st);
        CHECK(st == QUIESCE_OK);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_alarm;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        alarm(1);
        st = quiesce_freeze(&session);
        print_error("freeze", st);
        CHECK(st == QUIESCE_CANCELLED);
        quiesce_report_info r = print_report();
        CHECK(r.status == QUIESCE_CANCELLED && r.consistency == QUIESCE_CONSISTENCY_NONE);
        CHECK(r.hook_calls == 2);
        CHECK(print_hook_calls() == 2);
        /* Cancelled for good: a second freeze says so at once. */
        CHECK(quiesce_cancel(&session) == QUIESCE_OK);
        quiesce_session_cleanup(&session);
        CHECK(quiesce_cancel(&session) == QUIESCE_USAGE);
        printf("cleaned up\n");
    } else if (strcmp(mode, "run") == 0) {
        setup(&cfg, mount, hook_dir);
        st = quiesce_run(&session, sizeof session, &cfg, on_frozen, NULL);
        print_error("run", st);
        CHECK(st == QUIESCE_OK);
        quiesce_report_info r = print_report();
        CHECK(r.consistency == QUIESCE_CONSISTENCY_APPLICATION);
        CHECK(r.consistency_reason == NULL);
        CHECK(print_hook_calls() == r.hook_calls);
        quiesce_phases_info p = print_phases();
        CHECK(p.plan_ns != 0 && p.hooks_ns != 0 && p.freeze_ns != 0 && p.thaw_ns != 0);
        quiesce_session_cleanup(&session);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    return failures == 0 ? 0 : 1;
}
