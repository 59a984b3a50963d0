/*
 * How the library behaves inside a host process that does what real hosts do.
 *
 *   host atfork MOUNT     a multi-threaded host with pthread_atfork handlers: a session (init,
 *                         freeze, thaw) calls none of them (the helpers are forked with the raw
 *                         system call). Before that, a fork() of the host's own shows that the
 *                         handlers are registered and counted.
 *   host fork MOUNT       freezes, then forks a child that sleeps (a pre-forking server, or
 *                         Python multiprocessing with fork): prints "child PID", then "frozen",
 *                         and sleeps; the test kills this process with SIGKILL and checks that
 *                         the filesystem is writable long before the deadline (30 s).
 *   host reinit MOUNT     quiesce_session_init() on storage that holds a live session is refused
 *                         (QUIESCE_USAGE) and leaves that session intact (it still freezes and
 *                         thaws); storage that is zeroed, full of garbage, or cleaned up is
 *                         accepted.
 *
 * Exit 0 when every expectation held; otherwise the number of the failed check.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "quiesce.h"

static quiesce_session session;

#define CHECK(n, cond)                                                    \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "check %d failed: %s\n", n, #cond);          \
            return n;                                                     \
        }                                                                 \
    } while (0)

static volatile int prepared, in_parent, in_child;
static void on_prepare(void) { prepared++; }
static void on_parent(void) { in_parent++; }
static void on_child(void) { in_child++; }

static void *idle_thread(void *arg) {
    (void)arg;
    for (;;) pause();
    return NULL;
}

static void config(quiesce_config *cfg, const char **mounts, const char *mount) {
    quiesce_config_init(cfg);
    mounts[0] = mount;
    cfg->mounts = mounts;
    cfg->mount_count = 1;
    cfg->timeout_ms = 30000;
}

static int atfork(const char *mount) {
    pthread_t t;
    CHECK(1, pthread_create(&t, NULL, idle_thread, NULL) == 0);
    CHECK(2, pthread_atfork(on_prepare, on_parent, on_child) == 0);
    /* The handlers are in effect: the host's own fork() runs them. */
    pid_t pid = fork();
    if (pid == 0) _exit(in_child == 1 ? 0 : 1);
    CHECK(3, pid > 0);
    int status = 0;
    CHECK(4, waitpid(pid, &status, 0) == pid);
    CHECK(5, WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(6, prepared == 1 && in_parent == 1);
    prepared = in_parent = 0;

    const char *mounts[1];
    quiesce_config cfg;
    config(&cfg, mounts, mount);
    uint32_t init = quiesce_session_init(&session, sizeof session, &cfg);
    uint32_t frozen = init == QUIESCE_OK ? quiesce_freeze(&session) : init;
    uint32_t thawed = frozen == QUIESCE_OK ? quiesce_thaw(&session, 1) : frozen;
    quiesce_session_cleanup(&session);
    printf("session %s; atfork handlers called: prepare %d, parent %d\n",
           quiesce_status_name(thawed), prepared, in_parent);
    CHECK(7, thawed == QUIESCE_OK);
    CHECK(8, prepared == 0 && in_parent == 0);
    return 0;
}

static int fork_while_frozen(const char *mount) {
    const char *mounts[1];
    quiesce_config cfg;
    config(&cfg, mounts, mount);
    CHECK(20, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_OK);
    CHECK(21, quiesce_freeze(&session) == QUIESCE_OK);
    pid_t child = fork();
    if (child == 0) {
        /* A worker of a pre-forking host: it knows nothing of the session. */
        struct timespec ts = {60, 0};
        nanosleep(&ts, NULL);
        _exit(0);
    }
    CHECK(22, child > 0);
    printf("child %d\n", (int)child);
    printf("frozen\n");
    fflush(stdout);
    for (;;) pause();
}

static int reinit(const char *mount) {
    const char *mounts[1];
    quiesce_config cfg;
    config(&cfg, mounts, mount);
    /* Storage full of garbage (as from malloc or the stack) is accepted. */
    memset(&session, 0xA5, sizeof session);
    CHECK(30, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_OK);
    /* A second init on the live session is refused, and names the fix. */
    CHECK(31, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_USAGE);
    quiesce_error_info e;
    e.size = sizeof e;
    CHECK(32, quiesce_error(&session, &e) == QUIESCE_OK);
    fprintf(stderr, "second init: %s\n", e.message);
    CHECK(33, strstr(e.message, "quiesce_session_cleanup") != NULL);
    /* The first session is intact: it freezes and thaws. */
    CHECK(34, quiesce_freeze(&session) == QUIESCE_OK);
    CHECK(35, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_USAGE);
    CHECK(36, quiesce_thaw(&session, 1) == QUIESCE_OK);
    quiesce_target_info t;
    t.size = sizeof t;
    CHECK(37, quiesce_target(&session, 0, &t) == QUIESCE_OK && t.outcome == QUIESCE_OUTCOME_THAWED);
    /* Even a session that is over holds descriptors until cleanup. */
    CHECK(38, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_USAGE);
    quiesce_session_cleanup(&session);
    /* After cleanup, and on zeroed storage, init works again. */
    CHECK(39, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_OK);
    quiesce_session_cleanup(&session);
    memset(&session, 0, sizeof session);
    CHECK(40, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_OK);
    quiesce_session_cleanup(&session);
    /* A copy of a live session at another address is not taken for a live session. */
    static quiesce_session other;
    CHECK(41, quiesce_session_init(&session, sizeof session, &cfg) == QUIESCE_OK);
    memcpy(&other, &session, sizeof other);
    CHECK(42, quiesce_session_init(&other, sizeof other, &cfg) == QUIESCE_OK);
    quiesce_session_cleanup(&other);
    quiesce_session_cleanup(&session);
    printf("reinit refused on a live session; accepted on garbage, zeroed and cleaned-up storage\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: host atfork|fork|reinit MOUNT\n");
        return 100;
    }
    if (strcmp(argv[1], "atfork") == 0) return atfork(argv[2]);
    if (strcmp(argv[1], "fork") == 0) return fork_while_frozen(argv[2]);
    if (strcmp(argv[1], "reinit") == 0) return reinit(argv[2]);
    fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 100;
}
