/*
 * quiesce-agent: a small snapshot agent over the quiesce C ABI.
 *
 *   quiesce-agent [-t TIMEOUT_MS] [-a] [HOOK OPTIONS] [--json] MOUNT... -- CMD [ARG...]
 *
 * Plans the freeze of MOUNT... (with -a: of every freezable filesystem except MOUNT...),
 * prints the plan's notes and the plan, freezes, prints "frozen", runs CMD (the snapshot; it must not write to the
 * frozen filesystems), acknowledges the snapshot if CMD exits 0, thaws, prints the report,
 * and exits with the session's status (0: consistent; see quiesce.h for the others).
 *
 * Hook options (application consistency; see quiesce_config.hook_dir in quiesce.h), as the
 * quiesce command's:
 *   --hook-dir=DIR            DIR's executables get `freeze` before the freeze, `thaw` or
 *                             `freeze-failed` after the thaw
 *   --pre-script=PATH         a script that gets `freeze` (before the directory's hooks)
 *   --post-script=PATH        a script that gets `thaw` or `freeze-failed` (after them)
 *   --hook-timeout-ms=MS      each hook call's limit (default 1800000: 30 minutes)
 *   --require-app-consistent  a hook failing before the freeze stops everything (exit 19)
 *
 * --json: at the end, one more line on stdout, the result for a machine: {"status": N,
 * "status_name": "...", "message": "...", "targets": [{"mount": "...", "outcome": "...",
 * "errno": N}, ...], "phases": {"plan_us": N, "arm_us": N, "hooks_us": N, "presync_us": N,
 * "freeze_us": N, "wait_us": N, "thaw_us": N, "finish_us": N}} (the message is
 * quiesce_error()'s: the same text as the quiesce command's report for the same outcome;
 * the phases are quiesce_phases()'s, in microseconds, as the quiesce command's `phases`).
 * tests/scenarios.rs reads it.
 *
 * Selection by disk (see quiesce_config.disks), instead of MOUNT...:
 *   --disk=DISK               freeze the filesystems on DISK (/dev/vdb, /dev/disk/by-id/...,
 *                             serial:VALUE); repeatable
 *   --exclude-disk=DISK       freeze the filesystems on every disk but DISK; repeatable
 *   --allow-partial-group     a filesystem only partly on the disks is left out (not
 *                             covered) instead of refusing the session (exit 8)
 *
 *   quiesce-agent --thaw MOUNT...     the rescue: thaw MOUNT... (quiesce_emergency_thaw)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quiesce.h"

_Static_assert(sizeof(quiesce_session) == QUIESCE_SESSION_SIZE, "session storage size");
_Static_assert(_Alignof(quiesce_session) == QUIESCE_SESSION_ALIGN, "session storage alignment");

/* Storage for the session: static here, so that it is not on the stack. */
static quiesce_session session;

/* --json: print the result line at the end. */
static int json;

static int usage(void) {
    fprintf(stderr,
            "usage: quiesce-agent [-t TIMEOUT_MS] [-a] [--hook-dir=DIR] [--pre-script=PATH]\n"
            "           [--post-script=PATH] [--hook-timeout-ms=MS] [--require-app-consistent]\n"
            "           [--json] [--disk=DISK]... [--exclude-disk=DISK]... [--allow-partial-group]\n"
            "           [MOUNT...] -- CMD [ARG...]\n"
            "       quiesce-agent --thaw MOUNT...\n");
    return QUIESCE_USAGE;
}

static void print_error(const char *step, uint32_t status) {
    quiesce_error_info e;
    e.size = sizeof e;
    if (quiesce_error(&session, &e) == QUIESCE_OK && e.status != QUIESCE_OK) {
        fprintf(stderr, "quiesce-agent: %s: %s [%s, errno %d]\n", step, e.message,
                quiesce_status_name(e.status), e.os_error);
    } else {
        fprintf(stderr, "quiesce-agent: %s: %s [%s]\n", step, quiesce_status_message(status),
                quiesce_status_name(status));
    }
}

static void print_plan(void) {
    quiesce_report_info r;
    r.size = sizeof r;
    if (quiesce_report(&session, &r) != QUIESCE_OK) return;
    for (uint32_t i = 0; i < r.target_count; i++) {
        quiesce_target_info t;
        t.size = sizeof t;
        if (quiesce_target(&session, i, &t) != QUIESCE_OK) continue;
        printf("freeze %u: %s (%s, %u:%u, %s)\n", i + 1, t.path, t.fs_type, t.dev_major,
               t.dev_minor, t.source);
    }
    for (uint32_t i = 0; i < r.skip_count; i++) {
        quiesce_skip_info s;
        s.size = sizeof s;
        if (quiesce_skip(&session, i, &s) != QUIESCE_OK) continue;
        printf("skip: %s (%s): %s\n", s.path, s.fs_type, s.reason);
    }
}

static void print_report(void) {
    quiesce_report_info r;
    r.size = sizeof r;
    if (quiesce_report(&session, &r) != QUIESCE_OK) return;
    for (uint32_t i = 0; i < r.target_count; i++) {
        quiesce_target_info t;
        t.size = sizeof t;
        if (quiesce_target(&session, i, &t) != QUIESCE_OK) continue;
        printf("target %s: %s (freeze %.3f ms, thaw %.3f ms", t.path,
               quiesce_outcome_name(t.outcome), t.freeze_ns / 1e6, t.thaw_ns / 1e6);
        if (t.os_error) printf(", %s", strerror(t.os_error));
        printf(")\n");
    }
    printf("status: %s; %s; window %.3f ms\n", quiesce_status_name(r.status),
           quiesce_consistency_name(r.consistency), r.window_ns / 1e6);
    printf("pre-sync: %.3f ms\n", r.presync_ns / 1e6);
    if (r.consistency_reason != NULL) printf("consistency reason: %s\n", r.consistency_reason);
    printf("hooks: %u calls, %u failed\n", r.hook_calls, r.hook_failures);
}

/* `s` as a JSON string. */
static void print_json_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            printf("\\%c", *p);
        } else if (*p < 0x20) {
            printf("\\u%04x", *p);
        } else {
            putchar(*p);
        }
    }
    putchar('"');
}

/* The --json line: the status, quiesce_error()'s message and each target's outcome. */
static void print_json(uint32_t status) {
    quiesce_error_info e;
    e.size = sizeof e;
    const char *message = quiesce_status_message(status);
    if (quiesce_error(&session, &e) == QUIESCE_OK && e.status == status) message = e.message;
    printf("{\"status\": %u, \"status_name\": ", status);
    print_json_string(quiesce_status_name(status));
    printf(", \"message\": ");
    print_json_string(message);
    printf(", \"targets\": [");
    quiesce_report_info r;
    r.size = sizeof r;
    uint32_t n = quiesce_report(&session, &r) == QUIESCE_OK ? r.target_count : 0;
    for (uint32_t i = 0; i < n; i++) {
        quiesce_target_info t;
        t.size = sizeof t;
        if (quiesce_target(&session, i, &t) != QUIESCE_OK) continue;
        printf("%s{\"mount\": ", i ? ", " : "");
        print_json_string(t.path);
        printf(", \"outcome\": ");
        print_json_string(quiesce_outcome_name(t.outcome));
        printf(", \"errno\": %d}", t.os_error);
    }
    printf("]");
    quiesce_phases_info p;
    p.size = sizeof p;
    if (quiesce_phases(&session, &p) == QUIESCE_OK) {
        const struct {
            const char *name;
            uint64_t ns;
        } phases[] = {{"plan", p.plan_ns},       {"arm", p.arm_ns},   {"hooks", p.hooks_ns},
                      {"presync", p.presync_ns}, {"freeze", p.freeze_ns}, {"wait", p.wait_ns},
                      {"thaw", p.thaw_ns},       {"finish", p.finish_ns}};
        printf(", \"phases\": {");
        for (size_t k = 0; k < sizeof phases / sizeof phases[0]; k++) {
            printf("%s\"%s_us\": %llu", k ? ", " : "", phases[k].name,
                   (unsigned long long)(phases[k].ns / 1000));
        }
        printf("}");
    }
    printf("}\n");
}

/* Ends the session: the --json line, cleanup; returns the exit status. */
static int finish(uint32_t status) {
    if (json) print_json(status);
    quiesce_session_cleanup(&session);
    return (int)status;
}

/* Runs the snapshot command; returns 1 if it exited 0. */
static int run_snapshot(char **argv) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("quiesce-agent: fork");
        return 0;
    }
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "quiesce-agent: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) return 0;
    }
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

#define MAX_DISKS 16

int main(int argc, char **argv) {
    const char *disks[MAX_DISKS];
    const char *exclude_disks[MAX_DISKS];
    size_t disk_count = 0, exclude_count = 0;
    quiesce_config cfg;
    quiesce_config_init(&cfg);
    if (argc >= 2 && strcmp(argv[1], "--thaw") == 0) {
        size_t thawed = 0;
        uint32_t st = quiesce_emergency_thaw((const char *const *)&argv[2], (size_t)(argc - 2),
                                             &thawed);
        printf("thawed %zu of %d: %s\n", thawed, argc - 2, quiesce_status_name(st));
        return (int)st;
    }
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
            char *end;
            unsigned long ms = strtoul(argv[++i], &end, 10);
            if (*end != '\0' || ms == 0 || ms > QUIESCE_MAX_TIMEOUT_MS) {
                fprintf(stderr, "quiesce-agent: -t %s: give milliseconds, 1 to %u\n", argv[i],
                        (unsigned)QUIESCE_MAX_TIMEOUT_MS);
                return QUIESCE_USAGE;
            }
            cfg.timeout_ms = (uint32_t)ms;
        } else if (strcmp(argv[i], "-a") == 0) {
            cfg.flags |= QUIESCE_FLAG_ALL;
        } else if (strncmp(argv[i], "--hook-dir=", 11) == 0) {
            cfg.hook_dir = argv[i] + 11;
        } else if (strncmp(argv[i], "--pre-script=", 13) == 0) {
            cfg.pre_script = argv[i] + 13;
        } else if (strncmp(argv[i], "--post-script=", 14) == 0) {
            cfg.post_script = argv[i] + 14;
        } else if (strncmp(argv[i], "--hook-timeout-ms=", 18) == 0) {
            char *end;
            unsigned long ms = strtoul(argv[i] + 18, &end, 10);
            if (*end != '\0' || ms == 0 || ms > QUIESCE_MAX_HOOK_TIMEOUT_MS) {
                fprintf(stderr, "quiesce-agent: %s: give milliseconds, 1 to %lu\n", argv[i],
                        (unsigned long)QUIESCE_MAX_HOOK_TIMEOUT_MS);
                return QUIESCE_USAGE;
            }
            cfg.hook_timeout_ms = (uint32_t)ms;
        } else if (strcmp(argv[i], "--require-app-consistent") == 0) {
            cfg.flags |= QUIESCE_FLAG_REQUIRE_APP_CONSISTENT;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (strncmp(argv[i], "--disk=", 7) == 0 && disk_count < MAX_DISKS) {
            disks[disk_count++] = argv[i] + 7;
        } else if (strncmp(argv[i], "--exclude-disk=", 15) == 0 && exclude_count < MAX_DISKS) {
            exclude_disks[exclude_count++] = argv[i] + 15;
        } else if (strcmp(argv[i], "--allow-partial-group") == 0) {
            cfg.flags |= QUIESCE_FLAG_ALLOW_PARTIAL_GROUP;
        } else {
            return usage();
        }
    }
    int first = i;
    while (i < argc && strcmp(argv[i], "--") != 0) i++;
    if (i >= argc - 1) return usage();
    argv[i] = NULL;
    cfg.mounts = (const char *const *)&argv[first];
    cfg.mount_count = (size_t)(i - first);
    cfg.disks = disks;
    cfg.disk_count = disk_count;
    cfg.exclude_disks = exclude_disks;
    cfg.exclude_disk_count = exclude_count;
    char **cmd = &argv[i + 1];

    uint32_t st = quiesce_session_init(&session, sizeof session, &cfg);
    if (st != QUIESCE_OK) {
        print_error("plan", st);
        return finish(st);
    }
    /* While nothing failed, the message holds the plan's notes (if any). */
    quiesce_error_info note;
    note.size = sizeof note;
    if (quiesce_error(&session, &note) == QUIESCE_OK && note.message[0] != '\0') {
        printf("%s\n", note.message);
    }
    print_plan();
    fflush(stdout); /* before the library forks its helper processes */
    st = quiesce_freeze(&session);
    if (st != QUIESCE_OK) {
        print_error("freeze", st);
        print_report();
        return finish(st);
    }
    printf("frozen\n");
    int taken = run_snapshot(cmd);
    st = quiesce_thaw(&session, taken);
    if (st != QUIESCE_OK) print_error("thaw", st);
    print_report();
    return finish(st);
}
