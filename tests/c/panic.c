/*
 * Acceptance: a panic inside an export (injected with the test-only quiesce_test_panic())
 * returns QUIESCE_INTERNAL, poisons the session, and quiesce_thaw() still thaws.
 *
 *   panic frozen|thaw MOUNT [--hook-dir=DIR]
 *
 * With a hook directory, its hooks get `freeze` before the freeze and, poisoned or not,
 * `freeze-failed` once the poisoned session is thawed (two calls per hook in the report).
 *
 * Prints "poisoned" once the panic was caught (the filesystem is still frozen then), waits for
 * a line on stdin (the test checks the filesystem is frozen meanwhile), then thaws and checks
 * the report. Exit 0 when every expectation held; otherwise the number of the failed check.
 */
#include <stdio.h>
#include <string.h>

#include "quiesce.h"

/* The test-only hook: exported only by a library built with the cargo feature `test-hooks`
 * (as the tests build it), never by a release build, and not in quiesce.h. */
void quiesce_test_panic(uint32_t point);
#define QUIESCE_TEST_PANIC_FROZEN 2
#define QUIESCE_TEST_PANIC_THAW 3

static quiesce_session session;

#define CHECK(n, cond)                                                    \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "check %d failed: %s\n", n, #cond);          \
            quiesce_session_cleanup(&session);                            \
            return n;                                                     \
        }                                                                 \
    } while (0)

int main(int argc, char **argv) {
    if (argc != 3 && !(argc == 4 && strncmp(argv[3], "--hook-dir=", 11) == 0)) {
        fprintf(stderr, "usage: panic frozen|thaw MOUNT [--hook-dir=DIR]\n");
        return 100;
    }
    int in_thaw = strcmp(argv[1], "thaw") == 0;
    quiesce_config cfg;
    quiesce_config_init(&cfg);
    const char *mounts[1] = {argv[2]};
    cfg.mounts = mounts;
    cfg.mount_count = 1;
    cfg.timeout_ms = 30000;
    if (argc == 4) cfg.hook_dir = argv[3] + 11;
    CHECK(1, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_OK);
    if (in_thaw) {
        CHECK(2, quiesce_freeze(&session) == QUIESCE_OK);
        quiesce_test_panic(QUIESCE_TEST_PANIC_THAW);
        CHECK(3, quiesce_thaw(&session, 1) == QUIESCE_INTERNAL);
    } else {
        quiesce_test_panic(QUIESCE_TEST_PANIC_FROZEN);
        CHECK(4, quiesce_freeze(&session) == QUIESCE_INTERNAL);
    }
    quiesce_error_info e;
    e.size = sizeof e;
    CHECK(5, quiesce_error(&session, &e) == QUIESCE_OK);
    CHECK(6, e.status == QUIESCE_INTERNAL && strstr(e.message, "panic") != NULL);
    fprintf(stderr, "caught: %s\n", e.message);
    printf("poisoned\n");
    fflush(stdout);
    char line[64];
    CHECK(7, fgets(line, sizeof line, stdin) != NULL);
    /* Poisoned: freezing again is refused, and says why. */
    CHECK(8, quiesce_freeze(&session) == QUIESCE_INTERNAL);
    CHECK(9, quiesce_error(&session, &e) == QUIESCE_OK && strstr(e.message, "poisoned") != NULL);
    /* Thaw still works. */
    uint32_t st = quiesce_thaw(&session, 1);
    CHECK(10, st == QUIESCE_INTERNAL);
    quiesce_report_info r;
    r.size = sizeof r;
    CHECK(11, quiesce_report(&session, &r) == QUIESCE_OK);
    CHECK(12, r.consistency == QUIESCE_CONSISTENCY_NONE && r.ended == 1);
    if (argc == 4) {
        CHECK(15, r.hook_calls == 2 && r.consistency_reason == NULL);
    } else {
        CHECK(16, r.hook_calls == 0);
    }
    quiesce_target_info t;
    t.size = sizeof t;
    CHECK(13, quiesce_target(&session, 0, &t) == QUIESCE_OK);
    /* Thawed by the guardian's rescue path, run in this process. */
    CHECK(14, t.outcome == QUIESCE_OUTCOME_THAWED || t.outcome == QUIESCE_OUTCOME_THAWED_BY_GUARDIAN);
    printf("thawed: %s\n", quiesce_outcome_name(t.outcome));
    quiesce_session_cleanup(&session);
    quiesce_session_cleanup(&session); /* twice is fine */
    return 0;
}
