/* The local cloud's connect() hook, preloaded (LD_PRELOAD) into every process the cloud starts.
 *
 * A connection to an address of the lab's loopback block (LABKIT_NET_BLOCK, e.g. 127.77.12.0/24: RDS
 * endpoints, service endpoints, public IPs) is not made as asked: the hook asks the cloud's network model
 * (unix socket LABKIT_NET_SOCK, owner-only) where this process (LABKIT_NET_WHO) may go, and connects
 * there instead: to the real server when the VPC carries the path, to a black hole that never answers
 * the SYN when it does not. Everything else (the Runtime API, DNS, other hosts) is untouched.
 * Built by `make setup` with cc; see labkit/localcloud/network.py for the design.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

static connect_fn real_connect_fn(void) {
    static connect_fn real;
    if (!real) real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    return real;
}

/* The lab's block from LABKIT_NET_BLOCK ("a.b.c.d/n"); 0 when unset or malformed. */
static int lab_block(uint32_t *net, uint32_t *mask) {
    const char *spec = getenv("LABKIT_NET_BLOCK");
    char buf[32];
    if (!spec || strlen(spec) >= sizeof buf) return 0;
    strcpy(buf, spec);
    char *slash = strchr(buf, '/');
    if (!slash) return 0;
    *slash = '\0';
    int bits = atoi(slash + 1);
    struct in_addr addr;
    if (bits <= 0 || bits > 32 || inet_pton(AF_INET, buf, &addr) != 1) return 0;
    *mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
    *net = ntohl(addr.s_addr) & *mask;
    return 1;
}

static int write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Ask the network model where (ip, port) leads for this process. 0 and *out set on an answer. */
static int ask(const struct sockaddr_in *wanted, struct sockaddr_in *out) {
    const char *path = getenv("LABKIT_NET_SOCK");
    const char *who = getenv("LABKIT_NET_WHO");
    if (!path || !who || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, path);
    char line[512], ip[INET_ADDRSTRLEN];
    int rc = -1;
    if (real_connect_fn()(fd, (struct sockaddr *)&un, sizeof un) == 0 &&
        inet_ntop(AF_INET, &wanted->sin_addr, ip, sizeof ip)) {
        int n = snprintf(line, sizeof line, "%s %s %u\n", who, ip, (unsigned)ntohs(wanted->sin_port));
        if (n > 0 && (size_t)n < sizeof line && write_all(fd, line, (size_t)n) == 0) {
            size_t got = 0;
            while (got < sizeof line - 1) {
                ssize_t r = read(fd, line + got, sizeof line - 1 - got);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) break;
                got += (size_t)r;
                if (memchr(line, '\n', got)) break;
            }
            line[got] = '\0';
            char to_ip[64];
            unsigned to_port;
            if (sscanf(line, "%63s %u", to_ip, &to_port) == 2 && to_port > 0 && to_port < 65536) {
                memset(out, 0, sizeof *out);
                out->sin_family = AF_INET;
                out->sin_port = htons((uint16_t)to_port);
                if (inet_pton(AF_INET, to_ip, &out->sin_addr) == 1) rc = 0;
            }
        }
    }
    close(fd);
    return rc;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    uint32_t net, mask;
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in) &&
        lab_block(&net, &mask)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        if ((ntohl(sin->sin_addr.s_addr) & mask) == net) {
            int saved = errno;
            struct sockaddr_in dest;
            if (ask(sin, &dest) != 0) {
                errno = EHOSTUNREACH; /* the network model is gone: nothing in the lab is reachable */
                return -1;
            }
            errno = saved;
            return real_connect_fn()(fd, (const struct sockaddr *)&dest, sizeof dest);
        }
    }
    return real_connect_fn()(fd, addr, len);
}
