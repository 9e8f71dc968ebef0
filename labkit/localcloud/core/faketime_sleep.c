/* A companion of libfaketime, preloaded just before it into every process of the lab (see clock.py).
 *
 * The lab clock fakes CLOCK_REALTIME only (FAKETIME_DONT_FAKE_MONOTONIC=1), but libfaketime 0.9.10, the
 * version Debian 12 ships, still treats two kinds of monotonic waits as if they were on the faked realtime
 * clock (both fixed upstream after 0.9.10). Here they go straight to glibc, untouched, as a fixed libfaketime
 * does; waits on CLOCK_REALTIME go on to libfaketime, which converts the lab instant to the real one.
 *
 * - clock_nanosleep() with an absolute CLOCK_MONOTONIC instant (Python 3.11's time.sleep) was rewritten into
 *   an invalid request: "OSError: [Errno 22] Invalid argument" (wolfcw/libfaketime#426).
 * - pthread_cond_timedwait() on a condition variable that waits on CLOCK_MONOTONIC took the instant's distance
 *   from the *faked monotonic* time, which in the lab's "+offset" mode is an epoch date: every such wait
 *   timed out at once (fixed upstream by a2e406c and 75e130c, 2025). CPython's GIL is such a condition
 *   variable (a thread waiting for the GIL waits 5 ms at a time, then asks the holder to let go): with the
 *   wait never waiting, every waiting thread spun and forced the running one to switch at once, so a
 *   threaded server (the app's hypercorn, with Flask in its thread pool) spent ten times the CPU it needs.
 *   Which clock a condition variable waits on is glibc's own record in the variable (bit 1 of __wrefs since
 *   glibc 2.25); where that bit lives is found once, by comparing a CLOCK_MONOTONIC condition variable with a
 *   CLOCK_REALTIME one, so no layout is assumed: when the probe does not find exactly one differing bit,
 *   every wait goes to libfaketime as before. Such a wait is handed to pthread_cond_clockwait(), which
 *   libfaketime 0.9.10 does not intercept.
 * Built by `make setup` with cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);
typedef int (*cond_timedwait_fn)(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
typedef int (*cond_clockwait_fn)(pthread_cond_t *, pthread_mutex_t *, clockid_t, const struct timespec *);
typedef int (*cond_init_fn)(pthread_cond_t *, const pthread_condattr_t *);
typedef int (*cond_destroy_fn)(pthread_cond_t *);

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *req, struct timespec *rem) {
    if (clock_id != CLOCK_REALTIME) {
        int saved = errno;
        long result = syscall(SYS_clock_nanosleep, clock_id, flags, req, rem);
        int error = result == -1 ? errno : 0;
        errno = saved;
        return error;
    }
    static clock_nanosleep_fn next;
    if (!next) next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    return next ? next(clock_id, flags, req, rem) : ENOSYS;
}

static struct {
    cond_timedwait_fn next;      /* libfaketime's pthread_cond_timedwait (or glibc's, without libfaketime) */
    cond_clockwait_fn clockwait; /* glibc's pthread_cond_clockwait (2.30+) */
    size_t byte;                 /* where a condition variable records CLOCK_MONOTONIC */
    unsigned char mask;          /* 0: not found, every wait goes to next */
} cond;

static pthread_once_t cond_once = PTHREAD_ONCE_INIT;

static void cond_setup(void) {
    cond.next = (cond_timedwait_fn)dlsym(RTLD_NEXT, "pthread_cond_timedwait");
    /* glibc's own functions, not whatever a preloaded library puts in front of them */
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (!libc) return;
    cond.clockwait = (cond_clockwait_fn)dlsym(libc, "pthread_cond_clockwait");
    cond_init_fn init = (cond_init_fn)dlvsym(libc, "pthread_cond_init", "GLIBC_2.3.2");
    cond_destroy_fn destroy = (cond_destroy_fn)dlvsym(libc, "pthread_cond_destroy", "GLIBC_2.3.2");
    dlclose(libc); /* RTLD_NOLOAD took a reference to the libc every process has loaded */
    if (!cond.next || !cond.clockwait || !init || !destroy) return;
    pthread_condattr_t attr;
    pthread_cond_t realtime, monotonic;
    memset(&realtime, 0, sizeof realtime);
    memset(&monotonic, 0, sizeof monotonic);
    if (pthread_condattr_init(&attr) != 0) return;
    int ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && init(&monotonic, &attr) == 0;
    pthread_condattr_destroy(&attr);
    if (!ok || init(&realtime, NULL) != 0) return;
    size_t found = 0, byte = 0;
    unsigned char mask = 0;
    const unsigned char *a = (const unsigned char *)&realtime, *b = (const unsigned char *)&monotonic;
    for (size_t i = 0; i < sizeof realtime; i++) {
        unsigned char diff = a[i] ^ b[i];
        if (!diff) continue;
        found += (size_t)__builtin_popcount(diff);
        byte = i;
        mask = diff;
    }
    destroy(&realtime);
    destroy(&monotonic);
    if (found == 1 && (b[byte] & mask)) {
        cond.byte = byte;
        cond.mask = mask;
    }
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *mutex, const struct timespec *abstime) {
    pthread_once(&cond_once, cond_setup);
    if (cond.mask && (((const volatile unsigned char *)c)[cond.byte] & cond.mask))
        return cond.clockwait(c, mutex, CLOCK_MONOTONIC, abstime);
    return cond.next ? cond.next(c, mutex, abstime) : ENOSYS;
}
