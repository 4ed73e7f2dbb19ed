/* UDP sockets of the public API on lwIP's raw UDP. */
#include <stdlib.h>

#include "lwip/udp.h"

#include "abi.h"
#include "buf.h"
#include "trace.h"
#include "worker.h"

static void lw_udp_recv(void *arg, struct udp_pcb *pcb, struct pbuf *p, const ip_addr_t *addr,
                        u16_t port) {
    struct dpn_udp *u = arg;
    (void)pcb;
    if (u == NULL || u->recv == NULL) {
        pbuf_free(p);
        return;
    }
    DPN_TRACE(u->w, DPN_T_APP_IN);
    u->recv(u->ctx, u, (struct dpn_buf *)p, lwip_ntohl(ip4_addr_get_u32(ip_2_ip4(addr))), port);
    DPN_TRACE(u->w, DPN_T_APP_OUT);
}

int dpn_udp_bind(struct dpn_worker *w, uint16_t port, dpn_udp_recv_fn recv, void *ctx,
                 struct dpn_udp **up) {
    if (w == NULL || up == NULL)
        return -DPN_EINVAL;
    struct dpn_udp *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return -DPN_ENOMEM;
    u->pcb = udp_new_ip_type(IPADDR_TYPE_V4);
    if (u->pcb == NULL) {
        free(u);
        return -DPN_ENOMEM;
    }
    err_t e = ERR_USE;
    if (port == 0 && w->att != NULL) /* our slice of the ephemeral ports, steered to us */
        for (unsigned i = 0; i < DPN_EPH_PER_SLOT && e == ERR_USE; i++)
            e = udp_bind(u->pcb, IP4_ADDR_ANY, dpn_eph_port(w));
    else
        e = udp_bind(u->pcb, IP4_ADDR_ANY, port);
    int rc = e == ERR_OK ? 0 : e == ERR_USE ? -DPN_EADDRINUSE : -DPN_EINVAL;
    if (rc == 0 && port != 0)
        rc = dpn_ctl_bind(w, DPN_PROTO_UDP, port, false);
    if (rc != 0) {
        udp_remove(u->pcb);
        free(u);
        return rc;
    }
    u->w = w;
    u->ctl_port = w->att != NULL ? port : 0;
    u->recv = recv;
    u->ctx = ctx;
    udp_recv(u->pcb, lw_udp_recv, u);
    *up = u;
    return 0;
}

static int max_payload(const struct dpn_udp *u) {
    return u->w->netif.mtu - 20 - 8; /* no IP fragmentation (IP_FRAG 0) */
}

static int send_pbuf(struct dpn_udp *u, struct pbuf *p, uint32_t ip, uint16_t port) {
    ip_addr_t dst;
    ip_addr_set_ip4_u32(&dst, lwip_htonl(ip));
    err_t e = udp_sendto(u->pcb, p, &dst, port);
    switch (e) {
    case ERR_OK:
        return 0;
    case ERR_MEM:
    case ERR_BUF:
        return -DPN_ENOMEM;
    case ERR_RTE:
        return -DPN_EHOSTUNREACH;
    default:
        return -DPN_EIO;
    }
}

int dpn_udp_sendto(struct dpn_udp *u, const void *data, size_t len, uint32_t ip, uint16_t port) {
    if (u == NULL || (data == NULL && len > 0) || ip == 0 || port == 0)
        return -DPN_EINVAL;
    if (len > (size_t)max_payload(u))
        return -DPN_EMSGSIZE;
    /* PBUF_TRANSPORT leaves room for the headers: one pbuf, one copy into
     * the frame later. */
    struct pbuf *p = pbuf_alloc(PBUF_TRANSPORT, (u16_t)len, PBUF_RAM);
    if (p == NULL)
        return -DPN_ENOMEM;
    if (len > 0)
        pbuf_take(p, data, (u16_t)len);
    int rc = send_pbuf(u, p, ip, port);
    pbuf_free(p);
    return rc;
}

int dpn_udp_sendto_buf(struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    struct pbuf *p = (struct pbuf *)b;
    if (u == NULL || p == NULL || ip == 0 || port == 0)
        return -DPN_EINVAL;
    if (p->tot_len > max_payload(u))
        return -DPN_EMSGSIZE;
    int rc = send_pbuf(u, p, ip, port);
    if (rc == 0)
        pbuf_free(p); /* the frame was built (copied) synchronously */
    return rc;
}

void dpn_udp_close(struct dpn_udp *u) {
    if (u == NULL)
        return;
    if (u->ctl_port != 0)
        dpn_ctl_unbind(u->w, DPN_PROTO_UDP, u->ctl_port);
    udp_remove(u->pcb);
    free(u);
}
