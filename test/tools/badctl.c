/* A deliberately broken worker: attaches to dpnetd as a DPDK secondary and
 * sends malformed, out-of-bounds and unauthorised control requests. Every
 * one must be rejected with the expected error, and dpnetd must keep
 * answering. Prints "ok - ..." / "not ok - ..." lines.
 *
 *   badctl <EAL options> -- TAKEN_PORT   (a TCP port another application holds) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_lcore.h>
#include <rte_random.h>

#include "abi.h"
#include "dpnet.h"

static int failures;

/* Send raw bytes; returns the reply's err, or -1 when nothing came back. */
static int send_raw(const void *param, int len, struct dpn_rep *rep) {
    struct rte_mp_msg msg;
    struct rte_mp_reply reply;
    struct timespec ts = {.tv_sec = 2};
    memset(&msg, 0, sizeof(msg));
    snprintf(msg.name, sizeof(msg.name), "%s", DPN_MP_ACTION);
    msg.len_param = len;
    memcpy(msg.param, param, (size_t)len);
    memset(rep, 0, sizeof(*rep));
    if (rte_mp_request_sync(&msg, &reply, &ts) != 0 || reply.nb_received != 1) {
        if (reply.nb_received > 0)
            free(reply.msgs);
        return -1;
    }
    memcpy(rep, reply.msgs[0].param, sizeof(*rep));
    rep->msg[sizeof(rep->msg) - 1] = '\0';
    free(reply.msgs);
    return rep->err;
}

static int send_req(const struct dpn_req *rq, struct dpn_rep *rep) {
    return send_raw(rq, sizeof(*rq), rep);
}

static void expect(const char *name, int got, int want, const struct dpn_rep *rep) {
    bool ok = got == want;
    printf("%s - control request: %s -> %d (want %d)%s%s\n", ok ? "ok" : "not ok", name, got, want,
           rep->msg[0] ? ": " : "", rep->msg);
    failures += !ok;
}

static struct dpn_req base(uint16_t type) {
    struct dpn_req rq;
    memset(&rq, 0, sizeof(rq));
    rq.abi = DPN_ABI_VERSION;
    rq.type = type;
    return rq;
}

static struct dpn_req attach_req(void) {
    struct dpn_req rq = base(DPN_REQ_ATTACH);
    rq.attach.pid = getpid();
    rq.attach.lcore = (int32_t)rte_lcore_id();
    snprintf(rq.attach.app, sizeof(rq.attach.app), "badctl");
    snprintf(rq.attach.version, sizeof(rq.attach.version), "%s", DPN_VERSION);
    return rq;
}

int main(int argc, char **argv) {
    int n = rte_eal_init(argc, argv);
    if (n < 0) {
        fprintf(stderr, "badctl: EAL init failed\n");
        return 1;
    }
    if (argc - n < 2) { /* EAL leaves argv[n] = program name, "--" consumed */
        fprintf(stderr, "usage: badctl <EAL> -- TAKEN_PORT\n");
        return 2;
    }
    uint16_t taken = (uint16_t)atoi(argv[n + 1]);
    struct dpn_rep rep;
    struct dpn_req rq = base(DPN_REQ_BIND);
    char junk[256];

    expect("a 10-byte request", send_raw(&rq, 10, &rep), EINVAL, &rep);
    expect("an empty request", send_raw(&rq, 0, &rep), EINVAL, &rep);
    rq.abi = 999;
    expect("another ABI version", send_req(&rq, &rep), EPROTONOSUPPORT, &rep);
    rq = base(0);
    expect("request type 0", send_req(&rq, &rep), EINVAL, &rep);
    rq = base(200);
    expect("request type 200", send_req(&rq, &rep), EINVAL, &rep);
    rq = base(DPN_REQ_BIND);
    rq.slot = 1;
    rq.bind.proto = DPN_PROTO_TCP;
    rq.bind.port = 7;
    expect("bind before attach", send_req(&rq, &rep), EPERM, &rep);
    rq.slot = 60000;
    rq.token = 1;
    expect("slot 60000", send_req(&rq, &rep), EPERM, &rep);
    rq = base(DPN_REQ_DETACH);
    rq.slot = 1;
    rq.token = 0x1234567;
    expect("detach of another worker's slot", send_req(&rq, &rep), EPERM, &rep);

    rq = attach_req();
    rq.attach.pid = 1;
    expect("attach claiming pid 1", send_req(&rq, &rep), EPERM, &rep);
    rq = attach_req();
    memset(rq.attach.app, 'A', sizeof(rq.attach.app));
    expect("an unterminated application name", send_req(&rq, &rep), EINVAL, &rep);
    rq = attach_req();
    snprintf(rq.attach.version, sizeof(rq.attach.version), "9.9.9");
    expect("a mismatched library version", send_req(&rq, &rep), EPROTONOSUPPORT, &rep);
    rq = attach_req();
    rq.attach.lcore = -5;
    expect("lcore -5", send_req(&rq, &rep), EINVAL, &rep);
    rq.attach.lcore = 1 << 20;
    expect("lcore 1048576", send_req(&rq, &rep), EINVAL, &rep);

    /* Random garbage, many times: all rejected, nothing crashes. */
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        int len = (int)(rte_rand() % sizeof(junk));
        for (size_t k = 0; k < sizeof(junk); k++)
            junk[k] = (char)rte_rand();
        if (i % 2 == 0 && len >= (int)sizeof(uint32_t)) { /* half get past the ABI check */
            uint32_t abi = DPN_ABI_VERSION;
            memcpy(junk, &abi, sizeof(abi));
            len = sizeof(struct dpn_req);
        }
        int got = send_raw(junk, len, &rep);
        bad += got == 0 || got == -1;
    }
    memset(&rep, 0, sizeof(rep));
    expect("2000 random requests (count accepted or unanswered)", bad, 0, &rep);

    /* Now attached for real: the requests of a worker, with wrong values. */
    rq = attach_req();
    int rc = send_req(&rq, &rep);
    printf("%s - a well-formed attach still works (%d%s%s)\n", rc == 0 ? "ok" : "not ok", rc,
           rep.msg[0] ? ": " : "", rep.msg);
    failures += rc != 0;
    if (rc != 0)
        return 1;
    uint16_t slot = rep.slot;
    uint64_t token = rep.token;
    expect("a second attach of one process", send_req(&rq, &rep), EEXIST, &rep);
    struct dpn_req b = base(DPN_REQ_BIND);
    b.slot = slot;
    b.token = token ^ 2;
    b.bind.proto = DPN_PROTO_TCP;
    b.bind.port = 4000;
    expect("a wrong token", send_req(&b, &rep), EPERM, &rep);
    b.token = token;
    b.bind.proto = 99;
    expect("protocol 99", send_req(&b, &rep), EINVAL, &rep);
    b.bind.proto = DPN_PROTO_TCP;
    b.bind.port = 0;
    expect("port 0", send_req(&b, &rep), EINVAL, &rep);
    b.bind.port = 60000;
    expect("a port in the ephemeral range", send_req(&b, &rep), EACCES, &rep);
    b.bind.port = taken;
    rc = send_req(&b, &rep);
    expect("a port another application holds", rc, EADDRINUSE, &rep);
    bool names = strstr(rep.msg, "held by application") != NULL;
    printf("%s - the refusal names the holder (%s)\n", names ? "ok" : "not ok", rep.msg);
    failures += !names;
    b.type = DPN_REQ_UNBIND;
    b.bind.port = 4001;
    expect("unbind of a port never bound", send_req(&b, &rep), ENOENT, &rep);
    b.type = DPN_REQ_CONNECT;
    b.bind.port = 80;
    expect("connect from outside the worker's range", send_req(&b, &rep), EACCES, &rep);
    b.type = DPN_REQ_BIND;
    b.bind.port = 4000;
    expect("a free port binds", send_req(&b, &rep), 0, &rep);
    b.type = DPN_REQ_STATS;
    rc = send_req(&b, &rep);
    bool stats = rc == 0 && strstr(rep.msg, "frames steered to it") != NULL;
    printf("%s - the stats request answers (%s)\n", stats ? "ok" : "not ok", rep.msg);
    failures += !stats;
    struct dpn_req d = base(DPN_REQ_DETACH);
    d.slot = slot;
    d.token = token;
    expect("detach", send_req(&d, &rep), 0, &rep);
    rte_eal_cleanup();
    return failures == 0 ? 0 : 1;
}
