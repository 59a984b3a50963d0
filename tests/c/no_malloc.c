/*
 * Acceptance: the C ABI calls malloc zero times from session init through freeze, thaw and
 * cleanup. Linked with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (and the aligned
 * allocators), so every call the library makes lands in the counters below.
 *
 *   no_malloc MOUNT...    exit 0: frozen, thawed, consistent, 0 allocations
 *   no_malloc --disk=DISK... --targets=N
 *                         the same, selecting by disk (N: the filesystems expected on them)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quiesce.h"

static volatile int counting;
static volatile unsigned long calls;

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
int __real_posix_memalign(void **p, size_t a, size_t n);
void *__real_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
int __wrap_posix_memalign(void **p, size_t a, size_t n);
void *__wrap_aligned_alloc(size_t a, size_t n);

void *__wrap_malloc(size_t n) {
    if (counting) calls++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
    if (counting) calls++;
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
    if (counting) calls++;
    return __real_realloc(p, n);
}
int __wrap_posix_memalign(void **p, size_t a, size_t n) {
    if (counting) calls++;
    return __real_posix_memalign(p, a, n);
}
void *__wrap_aligned_alloc(size_t a, size_t n) {
    if (counting) calls++;
    return __real_aligned_alloc(a, n);
}

static quiesce_session session;

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: no_malloc MOUNT...\n");
        return 2;
    }
    /* The counters work: a malloc of our own is seen. */
    counting = 1;
    free(malloc(16));
    counting = 0;
    if (calls != 1) {
        fprintf(stderr, "the malloc wrapper is not in effect (%lu calls seen)\n", calls);
        return 3;
    }
    calls = 0;

    const char *mounts[64];
    const char *disks[16];
    size_t mount_count = 0, disk_count = 0;
    unsigned long expected = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--disk=", 7) == 0 && disk_count < 16) {
            disks[disk_count++] = argv[i] + 7;
        } else if (strncmp(argv[i], "--targets=", 10) == 0) {
            expected = strtoul(argv[i] + 10, NULL, 10);
        } else if (mount_count < 64) {
            mounts[mount_count++] = argv[i];
        }
    }
    if (disk_count == 0) expected = mount_count;

    quiesce_config cfg;
    quiesce_config_init(&cfg);
    cfg.mounts = mounts;
    cfg.mount_count = mount_count;
    cfg.disks = disks;
    cfg.disk_count = disk_count;
    cfg.timeout_ms = 20000;

    counting = 1;
    uint32_t init = quiesce_session_init(&session, sizeof session, &cfg);
    uint32_t frozen = init == QUIESCE_OK ? quiesce_freeze(&session) : init;
    uint32_t thawed = frozen == QUIESCE_OK ? quiesce_thaw(&session, 1) : frozen;
    quiesce_report_info r;
    r.size = sizeof r;
    uint32_t rep = quiesce_report(&session, &r);
    quiesce_target_info t;
    t.size = sizeof t;
    uint32_t tgt = quiesce_target(&session, 0, &t);
    quiesce_error_info e;
    e.size = sizeof e;
    quiesce_error(&session, &e);
    const char *message = e.message;
    quiesce_session_cleanup(&session);
    counting = 0;

    printf("init %s, freeze %s, thaw %s; consistency %s; targets %u; allocations %lu\n",
           quiesce_status_name(init), quiesce_status_name(frozen), quiesce_status_name(thawed),
           rep == QUIESCE_OK ? quiesce_consistency_name(r.consistency) : "?",
           rep == QUIESCE_OK ? r.target_count : 0, calls);
    if (thawed != QUIESCE_OK) {
        fprintf(stderr, "session failed: %s\n", message ? message : "?");
        return 4;
    }
    if (rep != QUIESCE_OK || tgt != QUIESCE_OK || r.consistency != QUIESCE_CONSISTENCY_FILESYSTEM ||
        r.target_count != (uint32_t)expected || t.outcome != QUIESCE_OUTCOME_THAWED) {
        fprintf(stderr, "unexpected report\n");
        return 5;
    }
    return calls == 0 ? 0 : 1;
}
