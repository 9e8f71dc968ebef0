/* A companion of libfaketime, preloaded just before it into every process of the lab (see clock.py).
 *
 * The lab clock fakes CLOCK_REALTIME only (FAKETIME_DONT_FAKE_MONOTONIC=1), but libfaketime 0.9.10, the
 * version Debian 12 ships, still rewrites an absolute clock_nanosleep() on CLOCK_MONOTONIC as if it were a
 * faked realtime instant: the kernel answers EINVAL, so Python 3.11's time.sleep() raises
 * "OSError: [Errno 22] Invalid argument" (fixed upstream after 0.9.10, wolfcw/libfaketime#426). Here a sleep
 * on any clock but CLOCK_REALTIME goes straight to the kernel, untouched, as a fixed libfaketime does;
 * realtime sleeps go on to libfaketime, which converts the lab instant to the real one.
 * Built by `make setup` with cc.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

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
