/* httpd's open-file and content cache: what a path under the root holds
 * (its bytes for files up to HC_FILE_MAX, or 403/404), revalidated with one
 * openat2 + fstat at most every valid_ms per path, as nginx's
 * open_file_cache_valid: a request for a cached file costs no system call,
 * and a change shows after at most valid_ms. Larger files are not cached
 * (streamed with pread as before). One worker, one thread: no locks. */
#ifndef HTTPD_CACHE_H
#define HTTPD_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define HC_FILE_MAX (1u << 20)

struct hc_blob { /* a file's bytes; freed with its last reference */
    unsigned refs;
    size_t len;
    char data[];
};

struct hc_result {
    int status;           /* 200, 403 or 404 */
    struct hc_blob *blob; /* 200 and cached: a reference for the caller (hc_put) */
    int fd;               /* 200, not cached (larger than HC_FILE_MAX): the caller closes it */
    uint64_t size;
};

/* open_fn opens a path below the root (RESOLVE_BENEATH) or fails with errno. */
void hc_init(int (*open_fn)(const char *rel), size_t budget, uint32_t valid_ms);
void hc_lookup(const char *rel, uint64_t now_ns, struct hc_result *r);
void hc_put(struct hc_blob *b);
void hc_fini(void);
struct hc_stats {
    uint64_t hits, misses, revalidated, bytes;
};
void hc_stats(struct hc_stats *s);

#endif
