/* kvd: a key-value server speaking a subset of memcached's text protocol,
 * written only against dpnet.h (the second embedding example, beside httpd).
 *
 *   kvd [EAL options] -- [dpnet options] [--port N] [--memory MB] [--no-udp]
 *
 * Commands: get/gets KEY..., set/add/replace KEY FLAGS EXPTIME BYTES
 * [noreply], delete KEY [noreply], version, quit; over TCP (pipelined:
 * requests are answered in order, and may span segments) and over UDP
 * (memcached's 8-byte frame header; one request per datagram, the answer
 * in as many datagrams as it needs).
 *
 * Workers: each keeps its own table (no locks, nothing shared). With N
 * workers of one application, worker i listens on port N + i (its place
 * from dpn_worker_index at start), so a client shards keys over them as
 * over N memcached servers (libmemcached's --servers=HOST:P,HOST:P+1...).
 *
 * Flow control: input is copied into a per-connection buffer (the largest
 * request: a 2 KiB line and a 1 MiB value); when that is full, or when an
 * answer does not fit the send buffer, reading stops (dpn_read_stop) and
 * resumes from the sent callback, so a client that pipelines faster than
 * it reads is held back by TCP's window. Bad input gets memcached's
 * answers: ERROR for an unknown command, CLIENT_ERROR for a malformed one
 * (a line over 2 KiB closes the connection), SERVER_ERROR for a value over
 * 1 MiB (its bytes are skipped) or past --memory. */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dpnet.h"

#define LINE_MAX_ 2048
#define VALUE_MAX (1u << 20)
#define KEY_MAX 250
#define IN_MAX (LINE_MAX_ + VALUE_MAX + 2 + 65536) /* a largest request and one more delivery */
#define TABLE_BITS 16
#define UDP_HDR 8
#define UDP_PAYLOAD 1400
#define TOK_MAX 128        /* words of a command line: get takes up to 127 keys */
#define OUT_MAX (4u << 20) /* the largest answer kept back for a slow reader */
#define VERSION_LINE "VERSION kvd-" DPN_VERSION "\r\n"

struct item {
    struct item *next;
    uint32_t flags;
    uint64_t expires; /* unix seconds, 0 = never */
    uint64_t cas;
    uint32_t klen, vlen;
    char data[]; /* key, then value */
};

static struct {
    struct dpn_worker *w;
    struct item *table[1u << TABLE_BITS];
    size_t bytes, max_bytes;
    uint64_t cas_next;
    uint64_t gets, hits, sets, deletes, errors;
} g;

/* ---- the table ---- */

static uint32_t hash(const char *k, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    while (n-- > 0)
        h = (h ^ (uint8_t)*k++) * 16777619u;
    return h;
}

static uint64_t now_s(void) {
    return (uint64_t)time(NULL);
}

static struct item **find(const char *k, size_t n) {
    struct item **pp = &g.table[hash(k, n) & ((1u << TABLE_BITS) - 1)];
    for (; *pp != NULL; pp = &(*pp)->next) {
        struct item *it = *pp;
        if (it->klen == n && memcmp(it->data, k, n) == 0) {
            if (it->expires != 0 && it->expires <= now_s()) { /* expired: gone */
                *pp = it->next;
                g.bytes -= sizeof(*it) + it->klen + it->vlen;
                free(it);
                break;
            }
            return pp;
        }
    }
    return pp; /* where a new one would go; *pp == NULL */
}

static void unlink_item(struct item **pp) {
    struct item *it = *pp;
    *pp = it->next;
    g.bytes -= sizeof(*it) + it->klen + it->vlen;
    free(it);
}

/* ---- output ---- */

struct kconn {
    struct dpn_conn *c;
    char *out; /* an answer larger than the send buffer's room: what is left */
    size_t out_len, out_off;
    size_t in_len;
    size_t skip;  /* bytes of a refused value still to discard (+ CRLF) */
    bool paused;  /* dpn_read_stop: input full or answer pending */
    bool closing; /* quit, or a fatal error: close once answered */
    char in[IN_MAX];
};

/* The reply to one request, gathered: at most a header, a value, a trailer
 * per key; a get of many keys is answered key by key. */
struct reply {
    struct dpn_iov iov[5 * (TOK_MAX - 1) + 1];
    unsigned n;
    size_t len;
    char scratch[TOK_MAX - 1][48];
    unsigned ns;
};

static void put(struct reply *r, const void *p, size_t n) {
    r->iov[r->n++] = (struct dpn_iov){p, n};
    r->len += n;
}

static void puts_(struct reply *r, const char *s) {
    put(r, s, strlen(s));
}

/* ---- requests ---- */

static bool key_ok(const char *k, size_t n) {
    if (n == 0 || n > KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (k[i] <= ' ' || k[i] == 0x7f)
            return false;
    return true;
}

static int split(char *line, char **tok, int max) {
    int n = 0;
    for (char *s = line; *s != '\0' && n < max;) {
        while (*s == ' ')
            s++;
        if (*s == '\0')
            break;
        tok[n++] = s;
        while (*s != ' ' && *s != '\0')
            s++;
        if (*s == ' ')
            *s++ = '\0';
    }
    return n;
}

static bool num(const char *s, uint64_t max, uint64_t *v) {
    char *end;
    if (!isdigit((unsigned char)s[0]))
        return false;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || x > max)
        return false;
    *v = x;
    return true;
}

enum verdict { DONE, NEED_MORE, CLOSE };

/* get/gets: every key found, then END. */
static enum verdict do_get(struct reply *r, char **tok, int nt, bool cas) {
    for (int i = 1; i < nt; i++) {
        size_t kn = strlen(tok[i]);
        g.gets++;
        if (!key_ok(tok[i], kn))
            continue;
        struct item *it = *find(tok[i], kn);
        if (it == NULL)
            continue;
        g.hits++;
        char *h = r->scratch[r->ns++];
        int hn = cas ? snprintf(h, 48, " %u %u %" PRIu64 "\r\n", it->flags, it->vlen, it->cas)
                     : snprintf(h, 48, " %u %u\r\n", it->flags, it->vlen);
        put(r, "VALUE ", 6); /* VALUE KEY FLAGS BYTES [CAS], the value, CRLF */
        put(r, it->data, it->klen);
        put(r, h, (size_t)hn);
        put(r, it->data + it->klen, it->vlen);
        put(r, "\r\n", 2);
    }
    puts_(r, "END\r\n");
    return DONE;
}

/* set/add/replace KEY FLAGS EXPTIME BYTES [noreply], then BYTES and CRLF. */
static enum verdict do_store(struct reply *r, char **tok, int nt, const char *data, size_t avail,
                             size_t *used, size_t *skip) {
    uint64_t flags, exptime, bytes;
    bool noreply = nt == 6 && strcmp(tok[5], "noreply") == 0;
    if ((nt != 5 && !noreply) || !key_ok(tok[1], strlen(tok[1])) ||
        !num(tok[2], UINT32_MAX, &flags) || !num(tok[3], UINT32_MAX, &exptime) ||
        !num(tok[4], UINT64_MAX / 2, &bytes)) {
        puts_(r, "CLIENT_ERROR bad command line format\r\n");
        return DONE;
    }
    if (bytes > VALUE_MAX) { /* memcached's answer; its bytes are skipped */
        puts_(r, "SERVER_ERROR object too large for cache\r\n");
        *skip = bytes + 2;
        return DONE;
    }
    if (avail < bytes + 2)
        return NEED_MORE;
    *used = bytes + 2;
    if (data[bytes] != '\r' || data[bytes + 1] != '\n') {
        puts_(r, "CLIENT_ERROR bad data chunk\r\n");
        return DONE;
    }
    size_t kn = strlen(tok[1]);
    struct item **pp = find(tok[1], kn);
    bool exists = *pp != NULL;
    if ((!strcmp(tok[0], "add") && exists) || (!strcmp(tok[0], "replace") && !exists)) {
        if (!noreply)
            puts_(r, "NOT_STORED\r\n");
        return DONE;
    }
    size_t need = sizeof(struct item) + kn + bytes;
    if (g.bytes - (exists ? sizeof(**pp) + (*pp)->klen + (*pp)->vlen : 0) + need > g.max_bytes) {
        puts_(r, "SERVER_ERROR out of memory storing object\r\n");
        return DONE;
    }
    struct item *it = malloc(need);
    if (it == NULL) {
        puts_(r, "SERVER_ERROR out of memory storing object\r\n");
        return DONE;
    }
    if (exists)
        unlink_item(pp);
    pp = find(tok[1], kn);
    it->flags = (uint32_t)flags;
    /* memcached: up to 30 days is relative, more is a unix time */
    it->expires = exptime == 0 ? 0 : exptime <= 2592000 ? now_s() + exptime : exptime;
    it->cas = ++g.cas_next;
    it->klen = (uint32_t)kn;
    it->vlen = (uint32_t)bytes;
    memcpy(it->data, tok[1], kn);
    memcpy(it->data + kn, data, bytes);
    it->next = *pp;
    *pp = it;
    g.bytes += need;
    g.sets++;
    if (!noreply)
        puts_(r, "STORED\r\n");
    return DONE;
}

/* One request at in[0..len): what to answer in r, how many bytes it took. */
static enum verdict request(char *in, size_t len, struct reply *r, size_t *used, size_t *skip) {
    char *eol = memchr(in, '\n', len < LINE_MAX_ ? len : LINE_MAX_);
    if (eol == NULL) {
        if (len < LINE_MAX_)
            return NEED_MORE;
        puts_(r, "CLIENT_ERROR line too long\r\n");
        return CLOSE;
    }
    size_t ll = (size_t)(eol - in) + 1;
    char line[LINE_MAX_ + 1];
    size_t n = ll - 1;
    if (n > 0 && in[n - 1] == '\r')
        n--;
    memcpy(line, in, n);
    line[n] = '\0';
    char *tok[TOK_MAX];
    int nt = split(line, tok, TOK_MAX);
    *used = ll;
    if (nt == TOK_MAX) {
        puts_(r, "CLIENT_ERROR too many keys\r\n");
        return DONE;
    }
    if (nt == 0) {
        puts_(r, "ERROR\r\n");
        return DONE;
    }
    if (!strcmp(tok[0], "get") || !strcmp(tok[0], "gets")) {
        if (nt < 2) {
            puts_(r, "ERROR\r\n");
            return DONE;
        }
        return do_get(r, tok, nt, tok[0][3] == 's');
    }
    if (!strcmp(tok[0], "set") || !strcmp(tok[0], "add") || !strcmp(tok[0], "replace")) {
        size_t vused = 0;
        enum verdict v = do_store(r, tok, nt, in + ll, len - ll, &vused, skip);
        *used = ll + vused;
        return v;
    }
    if (!strcmp(tok[0], "delete") && (nt == 2 || (nt == 3 && !strcmp(tok[2], "noreply")))) {
        struct item **pp = key_ok(tok[1], strlen(tok[1])) ? find(tok[1], strlen(tok[1])) : NULL;
        bool found = pp != NULL && *pp != NULL;
        if (found) {
            unlink_item(pp);
            g.deletes++;
        }
        if (nt == 2)
            puts_(r, found ? "DELETED\r\n" : "NOT_FOUND\r\n");
        return DONE;
    }
    if (!strcmp(tok[0], "version") && nt == 1) {
        puts_(r, VERSION_LINE);
        return DONE;
    }
    if (!strcmp(tok[0], "quit") && nt == 1)
        return CLOSE;
    g.errors++;
    puts_(r, "ERROR\r\n");
    return DONE;
}

/* ---- TCP ---- */

static void kc_free(struct kconn *k) {
    free(k->out);
    free(k);
}

static void kc_close(struct kconn *k) {
    dpn_close_conn(k->c); /* lingering: what the client still sends is dropped */
    kc_free(k);
}

/* What is left of a large answer, as far as the send buffer takes it;
 * true once all of it is queued. */
static bool drain_out(struct kconn *k) {
    while (k->out != NULL) {
        long n = dpn_send(k->c, k->out + k->out_off, k->out_len - k->out_off);
        if (n <= 0)
            return false;
        k->out_off += (size_t)n;
        if (k->out_off == k->out_len) {
            free(k->out);
            k->out = NULL;
        }
    }
    return true;
}

/* An answer: sent at once when it fits, else flattened and sent as room
 * comes (no further request is answered meanwhile). false: the connection
 * cannot take it. */
static bool answer(struct kconn *k, const struct reply *r) {
    if (r->len <= dpn_send_space(k->c))
        return dpn_sendv(k->c, r->iov, r->n) == (long)r->len;
    if (r->len > OUT_MAX) {
        static const char e[] = "SERVER_ERROR answer too large\r\n";
        return dpn_send(k->c, e, sizeof(e) - 1) == (long)sizeof(e) - 1 || true;
    }
    k->out = malloc(r->len);
    if (k->out == NULL)
        return false;
    size_t off = 0;
    for (unsigned i = 0; i < r->n; i++) {
        memcpy(k->out + off, r->iov[i].base, r->iov[i].len);
        off += r->iov[i].len;
    }
    k->out_len = r->len;
    k->out_off = 0;
    drain_out(k);
    return true;
}

/* Answer every complete request in order while the answers go out. */
static void pump(struct kconn *k) {
    size_t off = 0;
    if (!drain_out(k))
        return;
    while (off < k->in_len && !k->closing && k->out == NULL) {
        if (k->skip > 0) { /* a refused value's bytes */
            size_t n = k->skip < k->in_len - off ? k->skip : k->in_len - off;
            k->skip -= n;
            off += n;
            continue;
        }
        struct reply r;
        r.n = 0, r.len = 0, r.ns = 0;
        size_t used = 0, skip = 0;
        enum verdict v = request(k->in + off, k->in_len - off, &r, &used, &skip);
        if (v == NEED_MORE)
            break;
        if (r.len > 0 && !answer(k, &r)) {
            k->closing = true; /* the connection cannot send any more */
            break;
        }
        off += used;
        k->skip = skip;
        if (v == CLOSE)
            k->closing = true;
    }
    memmove(k->in, k->in + off, k->in_len - off);
    k->in_len -= off;
}

static void flow(struct kconn *k) {
    /* Read while no answer waits and one more delivery (a pbuf chain: at
     * most 64 KiB) fits; a largest request always fits whole. */
    bool want = k->out == NULL && sizeof(k->in) - k->in_len >= 65536;
    if (want && k->paused)
        dpn_read_start(k->c);
    else if (!want && !k->paused)
        dpn_read_stop(k->c);
    k->paused = !want;
}

static int on_accept(void *lctx, struct dpn_conn *c) {
    (void)lctx;
    struct kconn *k = malloc(sizeof(*k));
    if (k == NULL)
        return 1;
    k->c = c;
    k->out = NULL;
    k->in_len = k->skip = 0;
    k->paused = k->closing = false;
    dpn_conn_set_ctx(c, k);
    return 0;
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct kconn *k = ctx;
    size_t n = dpn_buf_len(b), room = sizeof(k->in) - k->in_len;
    if (n > room) { /* flow() stops reading before this: a client beyond the window */
        dpn_recv_done(c, b);
        k->closing = true;
    } else {
        dpn_buf_copy(b, k->in + k->in_len, n, 0);
        k->in_len += n;
        dpn_recv_done(c, b);
        pump(k);
    }
    if (k->closing) {
        kc_close(k);
        return;
    }
    flow(k);
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    struct kconn *k = ctx;
    (void)c, (void)len;
    pump(k); /* answers that waited for room */
    if (k->closing) {
        kc_close(k);
        return;
    }
    flow(k);
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    struct kconn *k = ctx;
    (void)c;
    kc_close(k); /* what was answered still goes out, then FIN */
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)c, (void)err;
    kc_free(ctx);
}

static const struct dpn_tcp_ops ops = {
    .accepted = on_accept, .recv = on_recv, .sent = on_sent, .eof = on_eof, .closed = on_closed};

/* ---- UDP: memcached's frame header, then one request ---- */

static void on_udp(void *ctx, struct dpn_udp *u, struct dpn_buf *b, uint32_t ip, uint16_t port) {
    (void)ctx;
    static char in[UDP_PAYLOAD + UDP_HDR + 1];
    static char out[UDP_HDR + UDP_PAYLOAD];
    size_t n = dpn_buf_len(b);
    if (n <= UDP_HDR || n > sizeof(in) - 1) {
        dpn_buf_free(b);
        return;
    }
    dpn_buf_copy(b, in, n, 0);
    dpn_buf_free(b);
    uint8_t *h = (uint8_t *)in;
    if (h[4] != 0 || h[5] != 1) /* one datagram per request */
        return;
    struct reply r;
    r.n = 0, r.len = 0, r.ns = 0;
    size_t used = 0, skip = 0;
    enum verdict v = request(in + UDP_HDR, n - UDP_HDR, &r, &used, &skip);
    if (v == NEED_MORE || r.len == 0)
        return;
    /* The answer flattened, then cut into datagrams with their headers. */
    size_t total = r.len, ndg = (total + UDP_PAYLOAD - 1) / UDP_PAYLOAD, done = 0;
    unsigned iv = 0;
    size_t ioff = 0;
    for (size_t seq = 0; seq < ndg && ndg <= 0xffff; seq++) {
        size_t len = total - done < UDP_PAYLOAD ? total - done : UDP_PAYLOAD, k = 0;
        memcpy(out, h, 2); /* request id */
        out[2] = (char)(seq >> 8), out[3] = (char)seq;
        out[4] = (char)(ndg >> 8), out[5] = (char)ndg;
        out[6] = out[7] = 0;
        while (k < len) {
            size_t take = r.iov[iv].len - ioff < len - k ? r.iov[iv].len - ioff : len - k;
            memcpy(out + UDP_HDR + k, (const char *)r.iov[iv].base + ioff, take);
            k += take;
            ioff += take;
            if (ioff == r.iov[iv].len)
                iv++, ioff = 0;
        }
        dpn_udp_sendto(u, out, UDP_HDR + len, ip, port);
        done += len;
    }
}

/* ---- main ---- */

static int usage(const char *prog) {
    fprintf(stderr,
            "usage: %s [EAL options] -- [dpnet options] [--port N] [--memory MB] [--no-udp]\n",
            prog);
    return 2;
}

int main(int argc, char **argv) {
    if (dpn_init(&argc, &argv, &g.w) != 0)
        return 1;
    unsigned port = 11211, mb = 64;
    bool udp = true;
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"memory", required_argument, NULL, 'm'},
                                         {"no-udp", no_argument, NULL, 'U'},
                                         {NULL, 0, NULL, 0}};
    int o;
    while ((o = getopt_long(argc, argv, "p:m:", opts, NULL)) != -1) {
        char *end;
        unsigned long v = 0;
        if (o == 'p' || o == 'm')
            v = strtoul(optarg, &end, 10);
        if ((o == 'p' && (*end != '\0' || v == 0 || v > 65535)) ||
            (o == 'm' && (*end != '\0' || v == 0 || v > 65536)) || o == '?') {
            dpn_close(g.w);
            return usage(argv[0]);
        }
        if (o == 'p')
            port = (unsigned)v;
        else if (o == 'm')
            mb = (unsigned)v;
        else if (o == 'U')
            udp = false;
    }
    g.max_bytes = (size_t)mb << 20;
    /* One table per worker: worker i of N serves port + i. */
    unsigned idx = dpn_worker_index(g.w), nw = dpn_worker_count(g.w);
    if (port + idx > 65535) {
        fprintf(stderr, "kvd: port %u + worker %u is past 65535\n", port, idx);
        dpn_close(g.w);
        return 1;
    }
    port += idx;
    struct dpn_listener *l = NULL;
    struct dpn_udp *u = NULL;
    int rc = dpn_listen(g.w, (uint16_t)port, &ops, NULL, &l);
    if (rc == 0 && udp)
        rc = dpn_udp_bind(g.w, (uint16_t)port, on_udp, NULL, &u);
    if (rc < 0) {
        fprintf(stderr, "kvd: port %u: %s\n", port, dpn_strerror(rc));
        if (l != NULL)
            dpn_unlisten(l);
        dpn_close(g.w);
        return 1;
    }
    printf("kvd: worker %u of %u serving port %u (tcp%s), %u MiB\n", idx, nw, port,
           udp ? "+udp" : "", mb);
    fflush(stdout);
    dpn_run(g.w);
    printf("kvd: %" PRIu64 " sets, %" PRIu64 " gets (%" PRIu64 " hits), %" PRIu64
           " deletes, %" PRIu64 " unknown commands; %zu bytes held\n",
           g.sets, g.gets, g.hits, g.deletes, g.errors, g.bytes);
    dpn_unlisten(l);
    if (u != NULL)
        dpn_udp_close(u);
    dpn_close(g.w);
    for (size_t i = 0; i < (1u << TABLE_BITS); i++)
        while (g.table[i] != NULL)
            unlink_item(&g.table[i]);
    return 0;
}
