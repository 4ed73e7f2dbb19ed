/* httpd's open-file and content cache (httpd_cache.h). */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd_cache.h"

#define ENTRIES 1024
#define PATH_KEY 256 /* longer paths are not cached */

struct entry {
    uint32_t hash; /* 0 = free */
    int status;
    struct hc_blob *blob;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint64_t checked_ns, used_ns;
    char path[PATH_KEY];
};

static struct {
    int (*open_fn)(const char *rel);
    size_t budget, bytes;
    uint64_t valid_ns;
    struct entry e[ENTRIES];
    struct hc_stats st;
} C;

void hc_init(int (*open_fn)(const char *rel), size_t budget, uint32_t valid_ms) {
    C.open_fn = open_fn;
    C.budget = budget;
    C.valid_ns = (uint64_t)valid_ms * 1000000u;
}

void hc_put(struct hc_blob *b) {
    if (b != NULL && --b->refs == 0)
        free(b);
}

static uint32_t hash_of(const char *s) {
    uint32_t h = 2166136261u;
    while (*s != '\0')
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h | 1; /* never 0 */
}

static void drop(struct entry *e) {
    if (e->blob != NULL) {
        C.bytes -= e->blob->len;
        hc_put(e->blob);
    }
    memset(e, 0, sizeof(*e));
}

/* Room for len more bytes and an entry: the least recently used go. */
static struct entry *make_room(size_t len) {
    for (;;) {
        struct entry *free_e = NULL, *old = NULL;
        for (unsigned i = 0; i < ENTRIES; i++) {
            struct entry *e = &C.e[i];
            if (e->hash == 0) {
                free_e = free_e != NULL ? free_e : e;
                continue;
            }
            if (old == NULL || e->used_ns < old->used_ns)
                old = e;
        }
        if (free_e != NULL && C.bytes + len <= C.budget)
            return free_e;
        if (old == NULL)
            return NULL;
        drop(old);
    }
}

/* The file's bytes, read whole; NULL when it changed under us or failed. */
static struct hc_blob *read_all(int fd, off_t size) {
    struct hc_blob *b = malloc(sizeof(*b) + (size_t)size);
    if (b == NULL)
        return NULL;
    b->refs = 1;
    b->len = (size_t)size;
    size_t got = 0;
    while (got < b->len) {
        ssize_t n = pread(fd, b->data + got, b->len - got, (off_t)got);
        if (n <= 0) {
            free(b);
            return NULL;
        }
        got += (size_t)n;
    }
    return b;
}

static bool same_file(const struct entry *e, const struct stat *st) {
    return e->status == 200 && e->dev == st->st_dev && e->ino == st->st_ino &&
           e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
           e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Look at the file itself: fill r; keep what is cacheable in e (NULL: no entry). */
static void load(struct entry *e, const char *rel, uint32_t h, uint64_t now, struct hc_result *r) {
    int fd = C.open_fn(rel);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int err = fd < 0 ? errno : 0;
        if (fd >= 0)
            close(fd);
        r->status = err == EXDEV || err == ELOOP || err == EACCES || err == EPERM ? 403 : 404;
        if (e != NULL) {
            drop(e);
            e->hash = h;
            e->status = r->status;
            snprintf(e->path, sizeof(e->path), "%s", rel);
            e->checked_ns = e->used_ns = now;
        }
        return;
    }
    r->status = 200;
    r->size = (uint64_t)st.st_size;
    if (e != NULL && same_file(e, &st)) { /* unchanged: the bytes we have */
        close(fd);
        e->checked_ns = now;
        C.st.revalidated++;
        r->blob = e->blob;
        r->blob->refs++;
        return;
    }
    struct hc_blob *b =
        st.st_size <= (off_t)HC_FILE_MAX && e != NULL ? read_all(fd, st.st_size) : NULL;
    if (b == NULL) { /* too large, or no entry: streamed from the fd */
        if (e != NULL)
            drop(e);
        r->fd = fd;
        return;
    }
    close(fd);
    drop(e);
    struct entry *slot = make_room(b->len);
    if (slot == NULL) {
        r->blob = b; /* served once, not kept */
        return;
    }
    slot->hash = h;
    slot->status = 200;
    slot->blob = b;
    b->refs++; /* the entry's and the caller's */
    C.bytes += b->len;
    C.st.bytes = C.bytes;
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->size = st.st_size;
    slot->mtime = st.st_mtim;
    slot->checked_ns = slot->used_ns = now;
    snprintf(slot->path, sizeof(slot->path), "%s", rel);
    r->blob = b;
}

void hc_lookup(const char *rel, uint64_t now, struct hc_result *r) {
    r->status = 404;
    r->blob = NULL;
    r->fd = -1;
    r->size = 0;
    if (strlen(rel) >= PATH_KEY) {
        load(NULL, rel, 0, now, r);
        return;
    }
    uint32_t h = hash_of(rel);
    struct entry *e = NULL;
    for (unsigned i = 0; i < ENTRIES && e == NULL; i++)
        if (C.e[i].hash == h && strcmp(C.e[i].path, rel) == 0)
            e = &C.e[i];
    if (e != NULL && now - e->checked_ns < C.valid_ns) {
        C.st.hits++;
        e->used_ns = now;
        r->status = e->status;
        if (e->blob != NULL) {
            r->blob = e->blob;
            r->blob->refs++;
            r->size = e->blob->len;
        }
        return;
    }
    C.st.misses += e == NULL;
    if (e == NULL && (e = make_room(0)) == NULL) {
        load(NULL, rel, h, now, r);
        return;
    }
    load(e, rel, h, now, r);
}

void hc_stats(struct hc_stats *s) {
    *s = C.st;
    s->bytes = C.bytes;
}

void hc_fini(void) {
    for (unsigned i = 0; i < ENTRIES; i++)
        if (C.e[i].hash != 0)
            drop(&C.e[i]);
}
