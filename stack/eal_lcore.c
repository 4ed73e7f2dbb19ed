/* An attached worker's lcore id, from dpnetd, before rte_eal_init (set-up
 * only). Mempool caches are indexed by lcore id and shared by every process
 * of a file prefix: two workers on one id would corrupt them. So dpnetd
 * hands the ids out (DPN_REQ_LCORE) and the user never picks one: the EAL
 * options that choose lcores (-l, --lcores, -c, --main-lcore) become one
 * --lcores=ID@(CPUS), CPUS being the CPUs they named, or the process's
 * affinity when none did. The connection stays open for the attach, and
 * dpnetd holds the id for it until then. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "abi.h"
#include "eal_lcore.h"

#define ASK_TIMEOUT_MS 2000

static int pre_fd = -1;

int dpn_eal_lcore_conn(void) {
    int fd = pre_fd;
    pre_fd = -1;
    return fd;
}

/* The value of option name in v[i] ("--name=V", "--name V", "-xV", "-x V"):
 * NULL when v[i] is not it; *skip: how many entries it takes. */
static const char *opt_value(char **v, int n, int i, const char *name, int *skip) {
    size_t len = strlen(name);
    if (strncmp(v[i], name, len) != 0)
        return NULL;
    const char *rest = v[i] + len;
    *skip = 1;
    if (rest[0] == '=' && name[1] == '-')
        return rest + 1;
    if (rest[0] != '\0')
        return name[1] != '-' ? rest : NULL; /* "-l1"; "--lcoresX" is another option */
    if (i + 1 >= n)
        return NULL;
    *skip = 2;
    return v[i + 1];
}

/* DPDK's runtime directory for prefix, as eal_create_runtime_dir makes it. */
void dpn_eal_runtime_dir(const char *prefix, char *buf, size_t n) {
    const char *dir = getenv("RUNTIME_DIRECTORY");
    if (dir == NULL)
        dir = getuid() == 0 ? "/var/run" : getenv("XDG_RUNTIME_DIR");
    if (dir == NULL)
        dir = "/tmp";
    snprintf(buf, n, "%s/dpdk/%s", dir, prefix);
}

/* Ask dpnetd (its control socket in dir) for an lcore id: the id, or -1 with
 * why (nothing when there is no dpnetd to ask: the attach says so later). */
static int ask(const char *dir, char *why, size_t n) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, DPN_CTL_SOCKET) >=
        sizeof(sa.sun_path))
        return -1;
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct dpn_req rq = {.abi = DPN_ABI_VERSION, .type = DPN_REQ_LCORE, .seq = 1};
    struct dpn_rep rep;
    memset(&rep, 0, sizeof(rep));
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (send(fd, &rq, sizeof(rq), MSG_NOSIGNAL) != sizeof(rq) || poll(&p, 1, ASK_TIMEOUT_MS) <= 0 ||
        recv(fd, &rep, sizeof(rep), MSG_DONTWAIT) != sizeof(rep) || rep.seq != rq.seq) {
        snprintf(why, n, "dpnetd did not answer");
        close(fd);
        return -1;
    }
    rep.msg[sizeof(rep.msg) - 1] = '\0';
    if (rep.err != 0 || rep.lcore < 0) {
        snprintf(why, n, "%s", rep.msg[0] ? rep.msg : strerror(rep.err));
        close(fd);
        return -1;
    }
    pre_fd = fd;
    return rep.lcore;
}

/* "0x..." or hex digits: the CPUs of a core mask, as a list ("0,3"). */
static void mask_cpus(const char *mask, char *buf, size_t n) {
    if (mask[0] == '0' && (mask[1] == 'x' || mask[1] == 'X'))
        mask += 2;
    size_t len = strlen(mask), k = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < len; i++) {
        char c = mask[len - 1 - i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : 0;
        for (int b = 0; b < 4; b++)
            if (d & (1 << b))
                k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%zu", k ? "," : "", i * 4 + b);
    }
}

/* --lcores's CPU part: after the first '@' up to the end of its group
 * ("5@(0,1),6@2" -> "(0,1)"); without '@' the lcores are the CPUs. */
static void lcores_cpus(const char *spec, char *buf, size_t n) {
    const char *at = strchr(spec, '@');
    const char *s = at != NULL ? at + 1 : spec;
    size_t k = 0;
    int depth = 0;
    for (; s[k] != '\0' && (depth > 0 || s[k] != ',' || at == NULL); k++)
        depth += s[k] == '(' ? 1 : s[k] == ')' ? -1 : 0;
    snprintf(buf, n, "%.*s", (int)k, s);
}

static void affinity_cpus(char *buf, size_t n) {
    cpu_set_t set;
    size_t k = 0;
    buf[0] = '\0';
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%d", k ? "," : "", c);
}

int dpn_eal_lcore_rewrite(char **v, int *nv, int cap, const char *prog) {
    int n = *nv, skip = 1;
    const char *prefix = "rte", *val;
    bool secondary = false;
    char cpus[512] = "";
    for (int i = 1; i < n; i += skip) {
        skip = 1;
        if ((val = opt_value(v, n, i, "--file-prefix", &skip)) != NULL)
            prefix = val;
        else if ((val = opt_value(v, n, i, "--proc-type", &skip)) != NULL)
            secondary = strcmp(val, "secondary") == 0;
    }
    if (!secondary || n + 1 > cap)
        return -1;
    char dir[256], why[160] = "";
    dpn_eal_runtime_dir(prefix, dir, sizeof(dir));
    int id = ask(dir, why, sizeof(why));
    if (id < 0) {
        if (why[0] != '\0')
            fprintf(stderr, "%s: dpnetd gave no lcore id (%s): keeping the EAL's lcore options\n",
                    prog, why);
        return -1;
    }
    /* Drop every lcore option, noting the CPUs the first one named. */
    int k = 1;
    for (int i = 1; i < n; i += skip) {
        skip = 1;
        if ((val = opt_value(v, n, i, "-l", &skip)) != NULL ||
            (val = opt_value(v, n, i, "--lcores", &skip)) != NULL ||
            (val = opt_value(v, n, i, "-c", &skip)) != NULL) {
            if (cpus[0] == '\0' && strncmp(v[i], "-c", 2) == 0)
                mask_cpus(val, cpus, sizeof(cpus));
            else if (cpus[0] == '\0' && strncmp(v[i], "--lcores", 8) == 0)
                lcores_cpus(val, cpus, sizeof(cpus));
            else if (cpus[0] == '\0')
                snprintf(cpus, sizeof(cpus), "%s", val);
            continue;
        }
        if (opt_value(v, n, i, "--main-lcore", &skip) != NULL ||
            opt_value(v, n, i, "--master-lcore", &skip) != NULL)
            continue;
        for (int j = 0; j < skip; j++)
            v[k++] = v[i + j];
    }
    if (cpus[0] == '\0')
        affinity_cpus(cpus, sizeof(cpus));
    /* "(0,1)" and "0,1" alike: one group of CPUs. */
    size_t len = strlen(cpus);
    bool paren = len > 1 && cpus[0] == '(' && cpus[len - 1] == ')';
    static char arg[600];
    snprintf(arg, sizeof(arg), "--lcores=%d@(%.*s)", id, (int)(paren ? len - 2 : len),
             cpus + (paren ? 1 : 0));
    v[k++] = arg;
    v[k] = NULL;
    *nv = k;
    return id;
}
