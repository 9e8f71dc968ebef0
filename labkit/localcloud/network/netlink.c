/* The local cloud's network hook, preloaded (LD_PRELOAD) into every process the cloud starts.
 *
 * connect(): a connection to an address of the lab's loopback block (LABKIT_NET_BLOCK, e.g. 127.77.12.0/24:
 * RDS endpoints, service endpoints, instances' public IPs) is not made as asked: the hook asks the cloud's
 * network model (unix socket LABKIT_NET_SOCK, owner-only) where this process (LABKIT_NET_WHO) may go, and
 * connects there instead: to the real server when the VPC carries the path, to a black hole that never
 * answers the SYN when it does not. In an instance's processes (LABKIT_NET_BIND set) a connection to
 * 127.0.0.1 is asked about too: the instance's own services are on its own address.
 * Answers are kept per (address, port) while the model's generation (a counter the model publishes in the
 * file LABKIT_NET_GEN, mapped read-only here) is unchanged: any change of the VPC bumps it, so the next
 * connection follows the new state, and the common case costs no round trip.
 *
 * bind()/listen(): in an instance's processes a socket bound to the wildcard address (0.0.0.0, or :: on a
 * dual-stack socket) is bound to the instance's own address (LABKIT_NET_BIND) instead, and the model is told
 * of each port the instance listens on, so that it can open that port at the instance's public IP (or keep
 * it closed) as the instance's security groups say. A socket bound to the instance's loopback (127.0.0.1,
 * ::1) is bound to its own address too, so it is not on the machine's shared loopback, and the model is told
 * the port is the instance's loopback only: its own 127.0.0.1 reaches it, nothing outside the instance does.
 * Connections to ::1 from an instance's processes are asked about as 127.0.0.1. Everything else is untouched.
 * A port that a program outside the lab holds on the machine's wildcard address (0.0.0.0:5000: no address of
 * the block can bind it then) is remapped: the model picks a free port of the instance's own address, the
 * socket is bound there, and the model is told the instance listens on the port it asked for, which still
 * leads there for the instance itself and the rest of the lab.
 *
 * Who may reach an instance's own address: any process on the machine can connect to any loopback address,
 * so without more the instance's own address would let a process the cloud did not start (your computer)
 * past the security groups. So a socket listening on it gets a classic BPF socket filter (SO_ATTACH_FILTER,
 * no privilege needed) that drops every packet whose source is not an address of the lab's block (for a port
 * on the instance's loopback only: not the instance's own address): a stranger's SYN goes unanswered and its
 * connect() times out, as a packet to a private address from the internet is dropped on AWS. The cloud's
 * own peers come from the block: the fronts' forwarders bind their connections to the public IP, and a hooked
 * process connecting to an address of the block binds its socket to its own source first (LABKIT_NET_SRC:
 * an instance's own address, the Lambda workers' address), unless it is bound already. Accepted connections
 * inherit the filter. See docs/localcloud.md for what this cannot stop.
 * Built by `make setup` with cc; see labkit/localcloud/network.py for the design.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);
typedef int (*listen_fn)(int, int);

#define CACHE_SIZE 64
#define LOCALHOST 0x7f000001u
#define MAX_FDS 65536

struct entry {
    uint64_t generation;
    uint32_t ip;
    uint16_t port;
    int used;
    struct sockaddr_in dest;
};

static struct {
    connect_fn connect;
    bind_fn bind;
    listen_fn listen;
    int has_block;
    uint32_t net, mask;
    int has_bind;
    struct in_addr bind_addr;
    int has_src;
    struct in_addr src_addr; /* the source of this process's connections into the block */
    const volatile uint64_t *generation; /* NULL: no cache */
} hook;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct entry cache[CACHE_SIZE];
static unsigned next_slot;
static unsigned char loopback_fd[MAX_FDS]; /* 1: this socket asked for the instance's loopback */
static uint16_t asked_port[MAX_FDS]; /* the port a remapped socket asked for; 0: not remapped */

static void mark(int fd, unsigned char loopback) {
    if (fd >= 0 && fd < MAX_FDS) loopback_fd[fd] = loopback;
}

/* ::1 or ::ffff:127.0.0.1 */
static int is_loopback6(const struct in6_addr *a) {
    if (IN6_IS_ADDR_LOOPBACK(a)) return 1;
    uint32_t v4;
    memcpy(&v4, &a->s6_addr[12], 4);
    return IN6_IS_ADDR_V4MAPPED(a) && ntohl(v4) == LOCALHOST;
}

/* The lab's block from LABKIT_NET_BLOCK ("a.b.c.d/n"); 0 when unset or malformed. */
static int parse_block(uint32_t *net, uint32_t *mask) {
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

static void init(void) {
    hook.connect = (connect_fn)dlsym(RTLD_NEXT, "connect");
    hook.bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
    hook.listen = (listen_fn)dlsym(RTLD_NEXT, "listen");
    hook.has_block = parse_block(&hook.net, &hook.mask);
    const char *own = getenv("LABKIT_NET_BIND");
    hook.has_bind = own && inet_pton(AF_INET, own, &hook.bind_addr) == 1;
    const char *src = getenv("LABKIT_NET_SRC");
    hook.has_src = hook.has_block && src && inet_pton(AF_INET, src, &hook.src_addr) == 1;
    const char *gen = getenv("LABKIT_NET_GEN");
    if (gen && hook.has_block) {
        int fd = open(gen, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            void *map = mmap(NULL, sizeof(uint64_t), PROT_READ, MAP_SHARED, fd, 0);
            close(fd);
            if (map != MAP_FAILED) hook.generation = (const volatile uint64_t *)map;
        }
    }
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

/* One request line to the model, its one-line answer into ``answer``. 0 on an answer. */
static int exchange(const char *request, char *answer, size_t size) {
    const char *path = getenv("LABKIT_NET_SOCK");
    if (!path || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_un un;
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, path);
    int rc = -1;
    if (hook.connect(fd, (struct sockaddr *)&un, sizeof un) == 0 && write_all(fd, request, strlen(request)) == 0) {
        size_t got = 0;
        while (got < size - 1) {
            ssize_t r = read(fd, answer + got, size - 1 - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) break;
            got += (size_t)r;
            if (memchr(answer, '\n', got)) break;
        }
        answer[got] = '\0';
        rc = got > 0 ? 0 : -1;
    }
    close(fd);
    return rc;
}

/* Where (ip, port) leads for this process: from the cache while the generation holds, else from the model. */
static int ask(const struct sockaddr_in *wanted, struct sockaddr_in *out) {
    const char *who = getenv("LABKIT_NET_WHO");
    if (!who) return -1;
    uint32_t ip = ntohl(wanted->sin_addr.s_addr);
    uint16_t port = ntohs(wanted->sin_port);
    uint64_t generation = hook.generation ? *hook.generation : 0;
    /* trylock: a lock held by a thread that did not survive fork() must never block the child */
    if (hook.generation && pthread_mutex_trylock(&cache_lock) == 0) {
        int found = 0;
        for (int i = 0; i < CACHE_SIZE; i++) {
            if (cache[i].used && cache[i].ip == ip && cache[i].port == port && cache[i].generation == generation) {
                *out = cache[i].dest;
                found = 1;
                break;
            }
        }
        pthread_mutex_unlock(&cache_lock);
        if (found) return 0;
    }
    char line[512], ipbuf[INET_ADDRSTRLEN], to_ip[64];
    unsigned to_port;
    if (!inet_ntop(AF_INET, &wanted->sin_addr, ipbuf, sizeof ipbuf)) return -1;
    int n = snprintf(line, sizeof line, "connect %s %s %u\n", who, ipbuf, (unsigned)port);
    if (n <= 0 || (size_t)n >= sizeof line || exchange(line, line, sizeof line) != 0) return -1;
    if (sscanf(line, "%63s %u", to_ip, &to_port) != 2 || to_port == 0 || to_port > 65535) return -1;
    memset(out, 0, sizeof *out);
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)to_port);
    if (inet_pton(AF_INET, to_ip, &out->sin_addr) != 1) return -1;
    if (hook.generation && pthread_mutex_trylock(&cache_lock) == 0) {
        struct entry *slot = NULL;
        for (int i = 0; i < CACHE_SIZE && !slot; i++)
            if (cache[i].used && cache[i].ip == ip && cache[i].port == port) slot = &cache[i];
        if (!slot) slot = &cache[next_slot++ % CACHE_SIZE];
        slot->ip = ip;
        slot->port = port;
        slot->generation = generation; /* read before asking: a change meanwhile makes it stale, never wrong */
        slot->dest = *out;
        slot->used = 1;
        pthread_mutex_unlock(&cache_lock);
    }
    return 0;
}

static void put_v4(struct in6_addr *six, struct in_addr v4) {
    memset(six, 0, sizeof *six);
    six->s6_addr[10] = six->s6_addr[11] = 0xff;
    memcpy(&six->s6_addr[12], &v4, 4);
}

/* Bind a socket about to connect into the block to this process's source address (the instance's own address,
 * the Lambda workers' one), so that the filter of the instance it reaches lets it in; a bound socket is left. */
static void bind_source(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!hook.has_src || getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return;
    int one = 1, saved = errno;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        if (sin->sin_addr.s_addr != INADDR_ANY || sin->sin_port) return;
        sin->sin_addr = hook.src_addr;
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *six = (struct sockaddr_in6 *)&ss;
        if (!IN6_IS_ADDR_UNSPECIFIED(&six->sin6_addr) || six->sin6_port) return;
        put_v4(&six->sin6_addr, hook.src_addr);
    } else {
        return;
    }
    /* the port is chosen at connect() with the destination known, as for an unbound socket */
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    hook.bind(fd, (struct sockaddr *)&ss, len);
    errno = saved;
}

static int in_block(uint32_t ip) {
    return hook.has_block && (ip & hook.mask) == hook.net;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    pthread_once(&once, init);
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        uint32_t ip = ntohl(sin->sin_addr.s_addr);
        int own_local = hook.has_bind && (ip == LOCALHOST || ip == 0);
        if (in_block(ip) || own_local) {
            int saved = errno;
            struct sockaddr_in dest;
            if (ask(sin, &dest) != 0) {
                if (own_local) return hook.connect(fd, addr, len); /* the model is gone: localhost as it is */
                errno = EHOSTUNREACH; /* the network model is gone: nothing in the lab is reachable */
                return -1;
            }
            if (in_block(ntohl(dest.sin_addr.s_addr))) bind_source(fd);
            errno = saved;
            return hook.connect(fd, (const struct sockaddr *)&dest, sizeof dest);
        }
    }
    if (hook.has_bind && addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6) &&
        is_loopback6(&((const struct sockaddr_in6 *)addr)->sin6_addr)) {
        /* the instance's ::1 is its loopback as 127.0.0.1 is: its own services are on its own address */
        const struct sockaddr_in6 *six = (const struct sockaddr_in6 *)addr;
        struct sockaddr_in wanted, dest;
        memset(&wanted, 0, sizeof wanted);
        wanted.sin_family = AF_INET;
        wanted.sin_port = six->sin6_port;
        wanted.sin_addr.s_addr = htonl(LOCALHOST);
        int saved = errno;
        if (ask(&wanted, &dest) == 0 && ntohl(dest.sin_addr.s_addr) != LOCALHOST) {
            struct sockaddr_in6 mapped = *six;
            put_v4(&mapped.sin6_addr, dest.sin_addr);
            mapped.sin6_port = dest.sin_port;
            if (in_block(ntohl(dest.sin_addr.s_addr))) bind_source(fd);
            errno = saved;
            return hook.connect(fd, (const struct sockaddr *)&mapped, sizeof mapped);
        }
        errno = saved;
    }
    return hook.connect(fd, addr, len);
}

/* The port of the instance's own address to bind instead of ``port``, which a program outside the lab holds on
 * the machine's wildcard address: the model picks and records it. 0 when the instance itself holds the port
 * (the bind fails with EADDRINUSE, as on AWS). */
static unsigned remapped(unsigned port) {
    const char *who = getenv("LABKIT_NET_WHO");
    char line[512];
    unsigned to = 0;
    if (!who || !port) return 0;
    int n = snprintf(line, sizeof line, "remap %s %u\n", who, port);
    if (n <= 0 || (size_t)n >= sizeof line || exchange(line, line, sizeof line) != 0) return 0;
    return sscanf(line, "%u", &to) == 1 && to < 65536 ? to : 0;
}

/* bind() on the instance's own address, ``port`` pointing into ``addr``; a port held outside the lab is
 * remapped (see remapped()). */
static int bind_own(int fd, const struct sockaddr *addr, socklen_t len, in_port_t *port) {
    int rc = hook.bind(fd, addr, len);
    if (rc == 0 || errno != EADDRINUSE) return rc;
    int saved = errno;
    unsigned asked = ntohs(*port), to = remapped(asked);
    errno = saved;
    if (!to) return rc;
    *port = htons((uint16_t)to);
    rc = hook.bind(fd, addr, len);
    if (rc == 0 && fd >= 0 && fd < MAX_FDS) asked_port[fd] = (uint16_t)asked;
    return rc;
}

int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    pthread_once(&once, init);
    if (fd >= 0 && fd < MAX_FDS) asked_port[fd] = 0;
    if (hook.has_bind && addr && addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        uint32_t ip = ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr);
        if (ip == INADDR_ANY || ip == LOCALHOST) {
            struct sockaddr_in own = *(const struct sockaddr_in *)addr;
            own.sin_addr = hook.bind_addr;
            mark(fd, ip == LOCALHOST);
            return bind_own(fd, (const struct sockaddr *)&own, sizeof own, &own.sin_port);
        }
    }
    if (hook.has_bind && addr && addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *six = (const struct sockaddr_in6 *)addr;
        int v6only = 0, off = 0;
        socklen_t optlen = sizeof v6only;
        int wildcard = IN6_IS_ADDR_UNSPECIFIED(&six->sin6_addr) &&
                       getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &optlen) == 0 && !v6only;
        /* ::1: the instance's loopback, on its own address (an IPv6-only socket is made dual-stack for it) */
        int loopback = is_loopback6(&six->sin6_addr) &&
                       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) == 0;
        if (wildcard || loopback) {
            /* the instance's own address, as an IPv4-mapped one */
            struct sockaddr_in6 own = *six;
            put_v4(&own.sin6_addr, hook.bind_addr);
            own.sin6_scope_id = 0;
            mark(fd, (unsigned char)loopback);
            return bind_own(fd, (const struct sockaddr *)&own, sizeof own, &own.sin6_port);
        }
    }
    return hook.bind(fd, addr, len);
}

/* Drop every packet to this listening socket (and the connections it accepts) whose source is not an address of
 * the lab's block, or, for a port on the instance's loopback only, not the instance's own address. */
static void guard(int fd, int loopback) {
    uint32_t own = ntohl(hook.bind_addr.s_addr);
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, (uint32_t)(SKF_NET_OFF + 12)), /* the IPv4 source address */
        BPF_STMT(BPF_ALU | BPF_AND | BPF_K, loopback ? 0xffffffffu : hook.mask),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, loopback ? own : hook.net, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),
        BPF_STMT(BPF_RET | BPF_K, 0),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    int saved = errno;
    setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog);
    errno = saved;
}

/* The port of a socket bound to the instance's own address; 0 for any other socket. */
static unsigned own_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET && ((struct sockaddr_in *)&ss)->sin_addr.s_addr == hook.bind_addr.s_addr)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *six = (struct sockaddr_in6 *)&ss;
        if (IN6_IS_ADDR_V4MAPPED(&six->sin6_addr) && !memcmp(&six->sin6_addr.s6_addr[12], &hook.bind_addr, 4))
            return ntohs(six->sin6_port);
    }
    return 0;
}

int listen(int fd, int backlog) {
    pthread_once(&once, init);
    unsigned port = hook.has_bind && hook.has_block ? own_port(fd) : 0;
    int loopback = fd >= 0 && fd < MAX_FDS && loopback_fd[fd];
    if (port) guard(fd, loopback); /* before the first SYN can arrive */
    int rc = hook.listen(fd, backlog);
    const char *who = getenv("LABKIT_NET_WHO");
    if (rc == 0 && port && who) {
        int saved = errno;
        char line[512];
        unsigned asked = fd >= 0 && fd < MAX_FDS ? asked_port[fd] : 0;
        char at[16] = "";
        if (asked) snprintf(at, sizeof at, " at %u", port); /* the port it asked for leads here */
        int n = snprintf(line, sizeof line, "listen %s %u%s%s\n", who, asked ? asked : port,
                         loopback ? " loopback" : "", at);
        if (n > 0 && (size_t)n < sizeof line) exchange(line, line, sizeof line); /* answered once it is open */
        errno = saved;
    }
    return rc;
}

/* Not a hook: the fronts' relay (labkit/localcloud/network/listeners.py), called by the daemon through ctypes,
 * which lets go of the GIL for the call. One direction of a forwarded connection: bytes from src to dst until src
 * ends, then the end passed on (shutdown of dst's sending side); 0 then, -1 (errno set) on an error, on which the
 * caller resets both sockets. The same as the Python loop it replaces, without a Python round per chunk: the
 * order path's bytes cross a front twice per order. Both sockets must be blocking. */
int labkit_relay(int src, int dst) {
    char buf[65536];
    for (;;) {
        ssize_t got = recv(src, buf, sizeof buf, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0)
            return shutdown(dst, SHUT_WR);
        for (ssize_t sent = 0; sent < got;) {
            ssize_t n = send(dst, buf + sent, (size_t)(got - sent), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return -1;
            }
            sent += n;
        }
    }
}
