/* httpd: a small HTTP/1.1 file server written only against dpnet.h.
 *
 *   httpd [EAL options] -- [dpnet options] [--port N] [--root DIR] [--max-conns N]
 *         [--cache-mb N] [--cache-valid-ms N]
 *
 * GET and HEAD of regular files under DIR, and of /hello; keep-alive and
 * pipelining (answers in order; a request may span segments).
 *
 * Input: received buffers are queued per connection and copied into an
 * 8 KiB header buffer only as far as it has room; buffers not yet copied are
 * not given back, so their bytes stay outside the receive window and a client
 * that pipelines faster than we answer is slowed down by TCP itself.
 * Files: up to 1 MiB they are served from memory (httpd_cache.h: --cache-mb,
 * looked at again with one openat2 + fstat at most every --cache-valid-ms),
 * so a request for a cached file makes no system call. Larger files stream
 * with backpressure: as much as the send buffer takes is read with pread()
 * into one shared chunk buffer and copied by dpn_send(); the sent callback
 * continues. Per connection memory is a fixed slot from a
 * pool allocated at start. A connection that ends after a response (error,
 * "Connection: close", HTTP/1.0) first half-closes and drains the client
 * until its FIN (lingering close), so late request bytes cannot make lwIP
 * answer with an RST that destroys the response. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "dpnet.h"
#include "httpd_cache.h"

#define HDR_MAX 8192       /* request line + headers; a larger block is 431 */
#define BODY_MAX (1 << 20) /* larger request bodies are 413; smaller ones are discarded */
#define HELD_MAX 256       /* received buffers queued per connection while busy */
#define OUT_MAX 512        /* response header plus a small body */
#define CHUNK (64 * 1024)  /* file bytes read per dpn_send() */
#define LINGER_MS 2000     /* lingering close: wait this long for the client's FIN */
#define IDLE_MS 60000      /* a connection without progress this long is closed */
#define SWEEP_MS 500
#define HELLO "Hello, world!\n"

struct hconn {
    struct dpn_conn *c;
    struct dpn_buf *held[HELD_MAX]; /* received, not yet consumed (a ring) */
    unsigned held_head, held_n;
    size_t held_off; /* bytes of held[held_head] already consumed */
    size_t in_len;   /* bytes in in[] */
    size_t in_scan;  /* in[] searched for the end of headers up to here */
    uint64_t skip;   /* request body bytes still to discard */
    size_t out_len, out_off;
    int fd;               /* file being sent, or -1 */
    struct hc_blob *blob; /* ... or the cached bytes being sent (a reference), NULL */
    size_t blob_off, blob_end;
    uint64_t file_off, file_end;
    uint64_t deadline_ns;      /* idle or lingering limit */
    bool keep;                 /* keep the connection after the current response */
    bool eof;                  /* the client sent FIN */
    bool lingering;            /* our FIN is queued; draining the client */
    struct hconn *next, *prev; /* active list (free list: next) */
    char in[HDR_MAX];
    char out[OUT_MAX];
};

static const int codes[] = {200, 400, 403, 404, 405, 413, 431, 501, 505};
static const char *const reasons[] = {"OK",
                                      "Bad Request",
                                      "Forbidden",
                                      "Not Found",
                                      "Method Not Allowed",
                                      "Content Too Large",
                                      "Request Header Fields Too Large",
                                      "Not Implemented",
                                      "HTTP Version Not Supported"};
#define NSTATUS (sizeof(codes) / sizeof(codes[0]))

static struct {
    struct dpn_worker *w;
    int root; /* directory fd of --root */
    struct hconn *pool, *free, *active;
    uint64_t requests, resp[NSTATUS], accepted, closed, ended, aborted, refused, file_bytes;
    char chunk[CHUNK]; /* one worker, one callback at a time: shared by all connections */
} g;

struct req {
    bool get, head, keep;
    char *path;
    uint64_t clen;
};

/* ---- connection slots ---- */

static struct hconn *hc_alloc(struct dpn_conn *c) {
    struct hconn *h = g.free;
    if (h == NULL)
        return NULL;
    g.free = h->next;
    memset(h, 0, offsetof(struct hconn, in));
    h->c = c;
    h->fd = -1;
    h->keep = true;
    h->deadline_ns = dpn_now_ns() + IDLE_MS * 1000000ull;
    h->next = g.active;
    if (g.active != NULL)
        g.active->prev = h;
    g.active = h;
    return h;
}

/* Release everything the slot holds; the dpn_conn is the caller's business. */
static void hc_free(struct hconn *h) {
    while (h->held_n > 0) {
        dpn_buf_free(h->held[h->held_head]);
        h->held_head = (h->held_head + 1) % HELD_MAX;
        h->held_n--;
    }
    if (h->fd >= 0)
        close(h->fd);
    hc_put(h->blob);
    h->blob = NULL;
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        g.active = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    h->next = g.free;
    g.free = h;
}

/* Close (queued data still goes out, then FIN) or abort (RST). */
static void hc_end(struct hconn *h, bool abort) {
    struct dpn_conn *c = h->c;
    hc_free(h);
    if (abort) {
        g.aborted++;
        dpn_abort(c);
    } else {
        g.closed++;
        dpn_close_conn(c);
    }
}

/* ---- input ---- */

static void held_pop(struct hconn *h) {
    dpn_recv_done(h->c, h->held[h->held_head]); /* frees it, reopens the window */
    h->held_head = (h->held_head + 1) % HELD_MAX;
    h->held_n--;
    h->held_off = 0;
}

static void drop_input(struct hconn *h) {
    while (h->held_n > 0)
        held_pop(h);
    h->in_len = 0;
    h->skip = 0;
}

/* Discard body bytes (skip) or copy held bytes into in[] while it has room. */
static void take_input(struct hconn *h) {
    if (h->skip > 0 && h->in_len > 0) {
        size_t n = h->skip < h->in_len ? (size_t)h->skip : h->in_len;
        memmove(h->in, h->in + n, h->in_len - n);
        h->in_len -= n;
        h->skip -= n;
        h->in_scan = 0;
    }
    while (h->held_n > 0) {
        struct dpn_buf *b = h->held[h->held_head];
        size_t left = dpn_buf_len(b) - h->held_off, n;
        if (h->skip > 0) {
            n = h->skip < left ? (size_t)h->skip : left;
            h->skip -= n;
        } else if (h->in_len < HDR_MAX) {
            n = dpn_buf_copy(b, h->in + h->in_len, HDR_MAX - h->in_len, h->held_off);
            h->in_len += n;
        } else {
            return;
        }
        h->held_off += n;
        if (h->held_off == dpn_buf_len(b))
            held_pop(h);
    }
}

/* The end of the header block in in[] ("\r\n\r\n"), or NULL. */
static char *find_end(struct hconn *h) {
    size_t from = h->in_scan > 3 ? h->in_scan - 3 : 0;
    char *e = memmem(h->in + from, h->in_len - from, "\r\n\r\n", 4);
    h->in_scan = h->in_len;
    return e;
}

/* ---- output ---- */

static unsigned status_idx(int code) {
    unsigned i = 0;
    while (i + 1 < NSTATUS && codes[i] != code)
        i++;
    return i;
}

/* Response head (plus body when it fits in out[]): clen is the Content-Length. */
static void respond(struct hconn *h, int code, const char *type, uint64_t clen, const char *body,
                    const char *extra) {
    unsigned i = status_idx(code);
    int n = snprintf(h->out, OUT_MAX,
                     "HTTP/1.1 %d %s\r\nServer: dpnet-httpd\r\nContent-Type: %s\r\n"
                     "Content-Length: %" PRIu64 "\r\n%sConnection: %s\r\n\r\n",
                     code, reasons[i], type, clen, extra, h->keep ? "keep-alive" : "close");
    h->out_len = (size_t)n;
    if (body != NULL && clen < OUT_MAX - h->out_len) {
        memcpy(h->out + h->out_len, body, clen);
        h->out_len += clen;
    }
    h->out_off = 0;
    g.resp[i]++;
}

static void respond_error(struct hconn *h, int code, bool head, bool close) {
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", code, reasons[status_idx(code)]);
    if (close)
        h->keep = false;
    respond(h, code, "text/plain", (uint64_t)n, head ? NULL : body,
            code == 405 ? "Allow: GET, HEAD\r\n" : "");
}

/* Queue what remains of the response: 1 all queued, 0 waiting for send
 * space (the sent callback resumes), -1 the file failed mid-response. */
static int send_out(struct hconn *h) {
    while (h->out_off < h->out_len) {
        long n = dpn_send(h->c, h->out + h->out_off, h->out_len - h->out_off);
        if (n <= 0)
            return 0;
        h->out_off += (size_t)n;
    }
    while (h->blob != NULL && h->blob_off < h->blob_end) { /* cached: no system call */
        long n = dpn_send(h->c, h->blob->data + h->blob_off, h->blob_end - h->blob_off);
        if (n <= 0)
            return 0;
        h->blob_off += (size_t)n;
        g.file_bytes += (uint64_t)n;
    }
    if (h->blob != NULL) {
        hc_put(h->blob);
        h->blob = NULL;
    }
    while (h->fd >= 0 && h->file_off < h->file_end) {
        size_t want = dpn_send_space(h->c);
        if (want > CHUNK)
            want = CHUNK;
        if (want > h->file_end - h->file_off)
            want = (size_t)(h->file_end - h->file_off);
        if (want == 0)
            return 0;
        ssize_t r = pread(h->fd, g.chunk, want, (off_t)h->file_off);
        if (r <= 0)
            return -1; /* truncated under us: the promised length cannot be kept */
        long n = dpn_send(h->c, g.chunk, (size_t)r);
        if (n <= 0)
            return 0;
        h->file_off += (uint64_t)n; /* a short send is read again next time */
        g.file_bytes += (uint64_t)n;
        if (n < r)
            return 0;
    }
    if (h->fd >= 0) {
        close(h->fd);
        h->fd = -1;
    }
    return 1;
}

/* ---- requests ---- */

static bool is_tchar(char ch) {
    return ch != '\0' && (((ch | 32) >= 'a' && (ch | 32) <= 'z') || (ch >= '0' && ch <= '9') ||
                          strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

static bool token_ok(const char *s, const char *end) {
    if (s == end)
        return false;
    for (; s < end; s++)
        if (!is_tchar(*s))
            return false;
    return true;
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

struct hflags {
    bool host, cl, te, big, ka;
};

/* One header field: 0 or an error status. */
static int parse_header(char *line, struct req *r, struct hflags *f) {
    char *colon = strchr(line, ':');
    if (colon == NULL || !token_ok(line, colon)) /* also obsolete line folding */
        return 400;
    *colon = '\0';
    char *v = trim(colon + 1);
    if (strcasecmp(line, "host") == 0) {
        f->host = true;
    } else if (strcasecmp(line, "content-length") == 0) {
        if (f->cl || *v == '\0')
            return 400;
        f->cl = true;
        for (; *v != '\0'; v++) {
            if (*v < '0' || *v > '9')
                return 400;
            if (r->clen <= BODY_MAX) /* stop growing once too large: no overflow */
                r->clen = r->clen * 10 + (uint64_t)(*v - '0');
        }
        f->big = r->clen > BODY_MAX;
    } else if (strcasecmp(line, "transfer-encoding") == 0) {
        f->te = true;
    } else if (strcasecmp(line, "connection") == 0) {
        for (char *save, *t = strtok_r(v, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
            t = trim(t);
            if (strcasecmp(t, "close") == 0)
                r->keep = false;
            else if (strcasecmp(t, "keep-alive") == 0)
                f->ka = true;
        }
    }
    return 0;
}

/* Parse a NUL-terminated header block whose lines end in CRLF: 0 or an error status. */
static int parse_request(char *s, struct req *r) {
    memset(r, 0, sizeof(*r));
    char *eol = strstr(s, "\r\n");
    *eol = '\0';
    if (strpbrk(s, "\r\n") != NULL)
        return 400;
    char *sp1 = strchr(s, ' ');
    char *sp2 = sp1 != NULL ? strchr(sp1 + 1, ' ') : NULL;
    if (sp2 == NULL || !token_ok(s, sp1) || sp2 == sp1 + 1)
        return 400;
    *sp1 = *sp2 = '\0';
    r->get = strcmp(s, "GET") == 0;
    r->head = strcmp(s, "HEAD") == 0;
    r->path = sp1 + 1;
    for (const char *p = r->path; *p != '\0'; p++)
        if ((unsigned char)*p <= ' ' || *p == 127)
            return 400;
    const char *v = sp2 + 1;
    if (strlen(v) != 8 || strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' || v[6] != '.' ||
        v[7] < '0' || v[7] > '9')
        return 400;
    if (v[5] != '1' || v[7] > '1')
        return 505;
    struct hflags f = {0};
    r->keep = true;
    for (char *line = eol + 2; *line != '\0'; line = eol + 2) {
        eol = strstr(line, "\r\n");
        *eol = '\0';
        int st = strpbrk(line, "\r\n") != NULL ? 400 : parse_header(line, r, &f);
        if (st != 0)
            return st;
    }
    bool http11 = v[7] == '1';
    if (http11 && !f.host)
        return 400;
    if (f.te)
        return 501; /* no chunked request bodies here */
    if (f.big)
        return 413;
    if (!http11 && !f.ka)
        r->keep = false; /* HTTP/1.0 closes unless asked to keep alive */
    return 0;
}

static int hexval(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)(ch | 32);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Decode %XX in place, drop the query; 0, 400 (bad escape) or 403 (a ".." segment). */
static int clean_path(char *p) {
    if (*p != '/')
        return 400;
    p[strcspn(p, "?#")] = '\0';
    char *o = p;
    for (const char *s = p; *s != '\0'; s++) {
        if (*s != '%') {
            *o++ = *s;
            continue;
        }
        int hi = hexval(s[1]), lo = hi < 0 ? -1 : hexval(s[2]);
        if (lo < 0 || hi * 16 + lo == 0)
            return 400;
        *o++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *o = '\0';
    for (const char *s = p; (s = strstr(s, "..")) != NULL; s += 2)
        if (s[-1] == '/' && (s[2] == '/' || s[2] == '\0'))
            return 403; /* p starts with '/': s[-1] exists */
    return 0;
}

static const char *content_type(const char *path) {
    static const char *const map[][2] = {
        {".html", "text/html"}, {".htm", "text/html"},      {".txt", "text/plain"},
        {".css", "text/css"},   {".js", "text/javascript"}, {".json", "application/json"},
        {".png", "image/png"},  {".jpg", "image/jpeg"},     {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},  {".svg", "image/svg+xml"},  {".pdf", "application/pdf"},
    };
    const char *dot = strrchr(path, '.');
    if (dot != NULL && strchr(dot, '/') == NULL)
        for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
            if (strcasecmp(dot, map[i][0]) == 0)
                return map[i][1];
    return "application/octet-stream";
}

/* Open below the root only: openat2(RESOLVE_BENEATH) refuses ".." and
 * symbolic links that leave it (EXDEV). O_NONBLOCK: a FIFO must not block us. */
static int open_beneath(const char *rel) {
    struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, g.root, rel, &how, sizeof(how));
    if (fd < 0 && errno == ENOSYS) /* before Linux 5.6: no symbolic link at the end */
        fd = openat(g.root, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
    return fd;
}

static void serve(struct hconn *h, const struct req *r) {
    if (strcmp(r->path, "/hello") == 0) {
        respond(h, 200, "text/plain", strlen(HELLO), r->head ? NULL : HELLO, "");
        return;
    }
    char rel[PATH_MAX];
    const char *p = r->path + 1;
    size_t n = strlen(p);
    int len = snprintf(rel, sizeof(rel), "%s%s", p, n == 0 || p[n - 1] == '/' ? "index.html" : "");
    if (len >= (int)sizeof(rel)) {
        respond_error(h, 404, r->head, false);
        return;
    }
    struct hc_result f;
    hc_lookup(rel, dpn_now_ns(), &f); /* a cached path costs no system call */
    if (f.status != 200) {
        respond_error(h, f.status, r->head, false);
        return;
    }
    respond(h, 200, content_type(rel), f.size, NULL, "");
    if (r->head || f.size == 0) {
        if (f.fd >= 0)
            close(f.fd);
        hc_put(f.blob);
        return;
    }
    if (f.blob != NULL) {
        h->blob = f.blob;
        h->blob_off = 0;
        h->blob_end = f.blob->len;
        return;
    }
    h->fd = f.fd;
    h->file_off = 0;
    h->file_end = f.size;
}

/* Answer the request whose header block ends at end (in[]), then drop it from in[]. */
static void handle_request(struct hconn *h, char *end) {
    size_t used = (size_t)(end - h->in) + 4;
    struct req r;
    int st;
    end[2] = '\0';
    g.requests++;
    st = memchr(h->in, '\0', used - 2) != NULL ? 400 : parse_request(h->in, &r);
    if (st != 0) {
        respond_error(h, st, false, true);
    } else {
        h->keep = r.keep;
        h->skip = r.clen; /* discarded after the headers */
        if (!r.get && !r.head)
            respond_error(h, 405, false, false);
        else if ((st = clean_path(r.path)) != 0)
            respond_error(h, st, r.head, st == 400);
        else
            serve(h, &r);
    }
    memmove(h->in, h->in + used, h->in_len - used);
    h->in_len -= used;
    h->in_scan = 0;
}

/* ---- the connection's state machine ---- */

/* The last response is queued: send FIN and drain the client until its FIN. */
static void linger(struct hconn *h) {
    if (!h->lingering) {
        h->lingering = true;
        h->deadline_ns = dpn_now_ns() + LINGER_MS * 1000000ull;
        dpn_shutdown(h->c);
    }
    drop_input(h);
    if (h->eof)
        hc_end(h, false);
}

/* Make every step possible now: finish the response being sent, then answer
 * the next complete request, in order. h may be gone when this returns. */
static void pump(struct hconn *h) {
    for (;;) {
        int s = send_out(h);
        if (s < 0) {
            hc_end(h, true);
            return;
        }
        if (s == 0)
            return; /* the sent callback calls again */
        if (!h->keep) {
            linger(h);
            return;
        }
        take_input(h);
        if (h->skip > 0)
            break;
        char *end = find_end(h);
        if (end != NULL) {
            handle_request(h, end);
        } else if (h->in_len == HDR_MAX) {
            g.requests++;
            respond_error(h, 431, false, true);
        } else {
            break;
        }
    }
    if (h->eof)
        hc_end(h, false); /* the client is done and every complete request was answered */
}

static void on_recv(void *ctx, struct dpn_conn *c, struct dpn_buf *b) {
    struct hconn *h = ctx;
    if (h->lingering) {
        dpn_recv_done(c, b);
        return;
    }
    if (h->held_n == HELD_MAX) { /* a client sending tiny pieces while we are busy */
        dpn_buf_free(b);
        hc_end(h, true);
        return;
    }
    h->held[(h->held_head + h->held_n++) % HELD_MAX] = b;
    h->deadline_ns = dpn_now_ns() + IDLE_MS * 1000000ull;
    pump(h);
}

static void on_sent(void *ctx, struct dpn_conn *c, size_t len) {
    struct hconn *h = ctx;
    (void)c;
    (void)len;
    if (h->lingering)
        return;
    h->deadline_ns = dpn_now_ns() + IDLE_MS * 1000000ull;
    pump(h);
}

static void on_eof(void *ctx, struct dpn_conn *c) {
    struct hconn *h = ctx;
    (void)c;
    h->eof = true;
    pump(h);
}

static void on_closed(void *ctx, struct dpn_conn *c, int err) {
    (void)c;
    (void)err;
    g.ended++;
    hc_free(ctx);
}

static int on_accept(void *lctx, struct dpn_conn *c) {
    (void)lctx;
    struct hconn *h = hc_alloc(c);
    if (h == NULL) {
        g.refused++;
        return -1;
    }
    dpn_conn_set_ctx(c, h);
    g.accepted++;
    return 0;
}

static const struct dpn_tcp_ops http_ops = {
    .accepted = on_accept,
    .recv = on_recv,
    .eof = on_eof,
    .sent = on_sent,
    .closed = on_closed,
};

/* Close connections past their deadline: lingering or idle ones gracefully,
 * stalled transfers with RST. */
static void sweep(void *arg) {
    uint64_t now = dpn_now_ns();
    for (struct hconn *h = g.active, *next; h != NULL; h = next) {
        next = h->next;
        if (now < h->deadline_ns)
            continue;
        hc_end(h, !h->lingering && (h->fd >= 0 || h->out_off < h->out_len));
    }
    dpn_timer_add(g.w, SWEEP_MS, sweep, arg);
}

/* ---- set-up ---- */

static long cache_mb = 64, cache_valid_ms = 1000;

static int parse_args(int argc, char **argv, uint16_t *port, const char **root, long *nconns) {
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"root", required_argument, NULL, 'r'},
                                         {"max-conns", required_argument, NULL, 'm'},
                                         {"cache-mb", required_argument, NULL, 'c'},
                                         {"cache-valid-ms", required_argument, NULL, 'v'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int o;
    optind = 1;
    while ((o = getopt_long(argc, argv, "p:r:m:h", opts, NULL)) != -1) {
        char *end = NULL;
        long v = optarg != NULL ? strtol(optarg, &end, 10) : 0;
        if (o == 'p' && *end == '\0' && v >= 1 && v <= 65535) {
            *port = (uint16_t)v;
        } else if (o == 'c' && *end == '\0' && v >= 0 && v <= 65536) {
            cache_mb = v;
        } else if (o == 'v' && *end == '\0' && v >= 0 && v <= 3600000) {
            cache_valid_ms = v;
        } else if (o == 'm' && *end == '\0' && v >= 1 && v <= 8192) {
            *nconns = v;
        } else if (o == 'r') {
            *root = optarg;
        } else {
            fprintf(stderr,
                    "usage: %s [EAL options] -- [dpnet options] [--port N] [--root DIR] "
                    "[--max-conns N]\n  --port N       TCP port (default 80)\n"
                    "  --root DIR     directory served (default .)\n"
                    "  --max-conns N  concurrent connections, 1..8192 (default 1024)\n"
                    "  --cache-mb N   files up to 1 MiB kept in memory, N MiB in all (default "
                    "64, 0: none)\n"
                    "  --cache-valid-ms N  a cached file is looked at again after N ms "
                    "(default 1000)\n",
                    argv[0]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "httpd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int setup(const char *root, long nconns) {
    g.root = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g.root < 0) {
        fprintf(stderr, "httpd: cannot open --root %s: %s\n", root, strerror(errno));
        return -1;
    }
    g.pool = calloc((size_t)nconns, sizeof(*g.pool));
    if (g.pool == NULL) {
        fprintf(stderr, "httpd: no memory for %ld connections\n", nconns);
        return -1;
    }
    for (long i = 0; i < nconns; i++) {
        g.pool[i].next = g.free;
        g.free = &g.pool[i];
    }
    hc_init(open_beneath, (size_t)cache_mb << 20, (uint32_t)cache_valid_ms);
    return 0;
}

int main(int argc, char **argv) {
    uint16_t port = 80;
    const char *root = ".";
    long nconns = 1024;
    g.root = -1;
    if (dpn_init(&argc, &argv, &g.w) != 0)
        return 1;
    struct dpn_listener *l = NULL;
    int rc = -1;
    if (parse_args(argc, argv, &port, &root, &nconns) == 0 && setup(root, nconns) == 0 &&
        (rc = dpn_listen(g.w, port, &http_ops, NULL, &l)) != 0)
        fprintf(stderr, "httpd: cannot listen on TCP port %u: %s\n", port, dpn_strerror(rc));
    if (rc != 0) {
        dpn_close(g.w);
        return 1;
    }
    dpn_timer_add(g.w, SWEEP_MS, sweep, NULL);
    printf("httpd: listening on port %u, root %s\n", port, root);
    fflush(stdout);

    dpn_run(g.w);

    dpn_timer_cancel(g.w, sweep, NULL);
    dpn_unlisten(l);
    while (g.active != NULL)
        hc_end(g.active, false); /* dpn_close gives them a moment to finish */
    printf("httpd: requests %" PRIu64 "; responses", g.requests);
    for (size_t i = 0; i < NSTATUS; i++)
        printf(" %d:%" PRIu64, codes[i], g.resp[i]);
    printf("; connections accepted %" PRIu64 ", closed %" PRIu64 ", ended by the peer %" PRIu64
           ", aborted %" PRIu64 ", refused %" PRIu64 "; file bytes %" PRIu64 "\n",
           g.accepted, g.closed, g.ended, g.aborted, g.refused, g.file_bytes);
    struct hc_stats cs;
    hc_stats(&cs);
    printf("httpd: file cache %" PRIu64 " hits, %" PRIu64 " misses, %" PRIu64
           " revalidated unchanged, %" PRIu64 " bytes held\n",
           cs.hits, cs.misses, cs.revalidated, cs.bytes);
    fflush(stdout);
    hc_fini();
    dpn_close(g.w);
    close(g.root);
    free(g.pool);
    return 0;
}
