/* The window cache of the region renderer: a bounded in-memory LRU and a persistent SQLite store
 * (WAL, busy timeout: several processes may share one file). Keys are 32-byte digests made by
 * region.c (docs/driver.md, "Cache keys"); values are opaque byte strings. Thread-safe. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct entry {
    uint8_t key[32];
    struct entry *hnext;       /* hash chain */
    struct entry *prev, *next; /* LRU list: head = most recent */
    size_t n;
    unsigned char data[];
} entry;

enum { NBUCKETS = 1 << 14 };

struct mmgeo_cache {
    pthread_mutex_t lock;
    size_t limit, bytes;
    entry *buckets[NBUCKETS];
    entry *head, *tail;
    sqlite3 *db;
    sqlite3_stmt *get, *put;
    long long disk_errors;
};

static size_t bucket_of(const uint8_t key[32]) {
    size_t h;
    memcpy(&h, key, sizeof h);
    return h & (NBUCKETS - 1);
}

static void unlink_lru(mmgeo_cache *c, entry *e) {
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void push_front(mmgeo_cache *c, entry *e) {
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (!c->tail) c->tail = e;
}

static void remove_entry(mmgeo_cache *c, entry *e) {
    entry **p = &c->buckets[bucket_of(e->key)];
    while (*p && *p != e)
        p = &(*p)->hnext;
    if (*p) *p = e->hnext;
    unlink_lru(c, e);
    c->bytes -= sizeof *e + e->n;
    free(e);
}

static int db_exec(sqlite3 *db, const char *sql) {
    for (int tries = 0;; tries++) {
        int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        if (rc != SQLITE_BUSY || tries > 50) return rc;
        sqlite3_sleep(100);
    }
}

int mmgeo_cache_open(const char *path, size_t mem_bytes, mmgeo_cache **out, char *err,
                     size_t errlen) {
    *out = NULL;
    mmgeo_cache *c = calloc(1, sizeof *c);
    if (!c) return mmgeo_fail(err, errlen, "out of memory");
    pthread_mutex_init(&c->lock, NULL);
    c->limit = mem_bytes;
    if (path && *path) {
        int rc = sqlite3_open_v2(
            path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
        if (rc != SQLITE_OK) {
            mmgeo_fail(err, errlen, "cannot open the cache '%s': %s", path,
                       c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
            mmgeo_cache_close(c);
            return MMGEO_ERROR;
        }
        sqlite3_busy_timeout(c->db, 30000);
        if (db_exec(c->db, "PRAGMA journal_mode=WAL") != SQLITE_OK ||
            db_exec(c->db, "PRAGMA synchronous=NORMAL") != SQLITE_OK ||
            db_exec(c->db, "CREATE TABLE IF NOT EXISTS mm_windows(key BLOB PRIMARY KEY, "
                           "source TEXT, ident TEXT, data BLOB)") != SQLITE_OK ||
            sqlite3_prepare_v2(c->db, "SELECT data FROM mm_windows WHERE key = ?", -1, &c->get,
                               NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(c->db,
                               "INSERT OR REPLACE INTO mm_windows(key, source, ident, data) "
                               "VALUES (?, ?, ?, ?)",
                               -1, &c->put, NULL) != SQLITE_OK) {
            mmgeo_fail(err, errlen, "cannot use '%s' as a window cache: %s", path,
                       sqlite3_errmsg(c->db));
            mmgeo_cache_close(c);
            return MMGEO_ERROR;
        }
    }
    *out = c;
    return 0;
}

void mmgeo_cache_close(mmgeo_cache *c) {
    if (!c) return;
    while (c->head)
        remove_entry(c, c->head);
    sqlite3_finalize(c->get);
    sqlite3_finalize(c->put);
    if (c->db) sqlite3_close(c->db);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int mmgeo_cache_mem_get(mmgeo_cache *c, const uint8_t key[32], void *buf, size_t n) {
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    for (entry *e = c->buckets[bucket_of(key)]; e; e = e->hnext)
        if (!memcmp(e->key, key, 32) && e->n == n) {
            memcpy(buf, e->data, n);
            unlink_lru(c, e);
            push_front(c, e);
            hit = 1;
            break;
        }
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void mmgeo_cache_mem_put(mmgeo_cache *c, const uint8_t key[32], const void *buf, size_t n) {
    if (sizeof(entry) + n > c->limit) return;
    pthread_mutex_lock(&c->lock);
    for (entry *e = c->buckets[bucket_of(key)]; e; e = e->hnext)
        if (!memcmp(e->key, key, 32)) {
            remove_entry(c, e);
            break;
        }
    entry *e = malloc(sizeof *e + n);
    if (e) {
        memcpy(e->key, key, 32);
        e->n = n;
        memcpy(e->data, buf, n);
        const size_t b = bucket_of(key);
        e->hnext = c->buckets[b];
        c->buckets[b] = e;
        push_front(c, e);
        c->bytes += sizeof *e + n;
        while (c->bytes > c->limit && c->tail && c->tail != e)
            remove_entry(c, c->tail);
    }
    pthread_mutex_unlock(&c->lock);
}

int mmgeo_cache_disk_get(mmgeo_cache *c, const uint8_t key[32], void *buf, size_t n) {
    if (!c->db) return 0;
    int hit = 0;
    pthread_mutex_lock(&c->lock);
    sqlite3_reset(c->get);
    sqlite3_bind_blob(c->get, 1, key, 32, SQLITE_STATIC);
    int rc = sqlite3_step(c->get);
    if (rc == SQLITE_ROW) {
        if ((size_t)sqlite3_column_bytes(c->get, 0) == n) {
            memcpy(buf, sqlite3_column_blob(c->get, 0), n);
            hit = 1;
        }
    } else if (rc != SQLITE_DONE) {
        c->disk_errors++;
    }
    sqlite3_reset(c->get);
    pthread_mutex_unlock(&c->lock);
    return hit;
}

void mmgeo_cache_disk_put(mmgeo_cache *c, const uint8_t key[32], const char *source,
                          const char *ident, const void *buf, size_t n) {
    if (!c->db) return;
    pthread_mutex_lock(&c->lock);
    sqlite3_reset(c->put);
    sqlite3_bind_blob(c->put, 1, key, 32, SQLITE_STATIC);
    sqlite3_bind_text(c->put, 2, source, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->put, 3, ident, -1, SQLITE_STATIC);
    sqlite3_bind_blob(c->put, 4, buf, (int)n, SQLITE_STATIC);
    if (sqlite3_step(c->put) != SQLITE_DONE) c->disk_errors++;
    sqlite3_reset(c->put);
    pthread_mutex_unlock(&c->lock);
}

void mmgeo_cache_disk_purge(mmgeo_cache *c, const char *source, const char *ident) {
    if (!c->db) return;
    pthread_mutex_lock(&c->lock);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(c->db, "DELETE FROM mm_windows WHERE source = ? AND ident <> ?", -1, &st,
                           NULL) == SQLITE_OK) {
        sqlite3_bind_text(st, 1, source, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, ident, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE) c->disk_errors++;
    } else {
        c->disk_errors++;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&c->lock);
}

long long mmgeo_cache_disk_errors(mmgeo_cache *c) {
    pthread_mutex_lock(&c->lock);
    long long n = c->disk_errors;
    pthread_mutex_unlock(&c->lock);
    return n;
}
