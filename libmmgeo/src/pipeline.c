/*
 * The I/O pipeline of a run (pipeline.h): a reader thread that reads windows ahead into a ring,
 * and a writer thread that performs the queued writes of finished strips, so that reading,
 * computing and writing overlap.
 *
 * Reader: a ring of slots, each holding every source's tile and validity of one window. The
 * reader fills slots in the order of the sequence and waits when the ring is full; the caller
 * takes them in the same order (windows it skips are dropped). A slot is reused only after the
 * caller has moved past it. mmgeo_read_window sets the tile from the source alone and clears
 * validity where the source is invalid, whatever the validity was before, so reading into a
 * slot (validity all 1) and ANDing the slot's validity into the caller's gives the caller
 * exactly what the direct call would.
 *
 * Writer: a FIFO of writes (copies of the caller's data), bounded in count and bytes, performed
 * in order by one thread. GDAL datasets are used from one thread at a time: the sources only by
 * the reader, the targets only by the writer, until mmgeo_pipe_free / mmgeo_pipe_flush.
 */
#include "pipeline.h"

#include <cpl_conv.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { QCAP = 4 * MMGEO_MAX_IO + 4 };
#define QBYTES ((size_t)256 << 20) /* queued write data at most (unless one write is larger) */
#define RBYTES ((size_t)512 << 20) /* read-ahead ring at most (but at least 2 windows) */

typedef struct {
    int ox, oy;
    int rc;
    char err[512];
    float *tile[MMGEO_MAX_IO];
    uint8_t *valid[MMGEO_MAX_IO];
} slot;

typedef struct {
    GDALDatasetH ds;
    GDALRasterBandH band;
    int x, y, w, h, nb;
    GDALDataType type;
    void *data;
    size_t bytes;
} wjob;

struct mmgeo_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* reader */
    pthread_t rd;
    int rd_on;
    mmgeo_src *src;
    int ns, W, H, S;
    int ch[MMGEO_MAX_IO];
    const int *ox, *oy;
    int kxa, kxb, kya, kyb;
    slot *ring;
    int cap;
    long head, tail; /* slots taken by the caller / filled by the reader (monotonic) */
    int rd_done;
    double *raw;
    uint8_t *mraw;
    /* writer */
    pthread_t wr;
    int wr_on;
    wjob q[QCAP];
    long qh, qt;
    size_t qbytes;
    int wr_failed;
    char wr_msg[1024];
};

/* ---- reader --------------------------------------------------------------------------------- */

static void *reader(void *arg) {
    mmgeo_pipe *p = arg;
    const size_t plane = (size_t)p->S * p->S;
    for (int ky = p->kya; ky <= p->kyb; ky++)
        for (int kx = p->kxa; kx <= p->kxb; kx++) {
            pthread_mutex_lock(&p->mu);
            while (!p->stop && p->tail - p->head >= p->cap)
                pthread_cond_wait(&p->cv, &p->mu);
            const int stop = p->stop;
            slot *s = &p->ring[p->tail % p->cap];
            pthread_mutex_unlock(&p->mu);
            if (stop) goto done;
            s->ox = p->ox[kx], s->oy = p->oy[ky], s->rc = 0, s->err[0] = 0;
            for (int i = 0; i < p->ns && !s->rc; i++) {
                memset(s->valid[i], 1, plane);
                s->rc = mmgeo_read_window(&p->src[i], p->W, p->H, p->S, s->ox, s->oy, s->tile[i],
                                          s->valid[i], p->raw, p->mraw, s->err, sizeof s->err);
            }
            pthread_mutex_lock(&p->mu);
            p->tail++;
            pthread_cond_broadcast(&p->cv);
            pthread_mutex_unlock(&p->mu);
            if (s->rc) goto done; /* the caller reports it when it gets there */
        }
done:
    pthread_mutex_lock(&p->mu);
    p->rd_done = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int mmgeo_pipe_read_window(mmgeo_pipe *p, int i, mmgeo_src *src, int W, int H, int S, int ox,
                           int oy, float *tile, uint8_t *valid, double *raw, uint8_t *mraw,
                           char *err, size_t errlen) {
    if (!p || !p->rd_on)
        return mmgeo_read_window(src, W, H, S, ox, oy, tile, valid, raw, mraw, err, errlen);
    if (i < 0 || i >= p->ns || S != p->S || src != &p->src[i]) /* the reader owns the sources */
        return mmgeo_fail(err, errlen, "pipeline: source %d of window size %d is not the reader's",
                          i, S);
    pthread_mutex_lock(&p->mu);
    slot *s = NULL;
    for (;;) {
        while (p->head < p->tail) {
            slot *h = &p->ring[p->head % p->cap];
            if (h->ox == ox && h->oy == oy) {
                s = h;
                break;
            }
            p->head++; /* a window the run skipped: its slot is free again */
            pthread_cond_broadcast(&p->cv);
        }
        if (s || p->rd_done) break;
        pthread_cond_wait(&p->cv, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    if (!s) /* not in the sequence; the reader has finished, so the sources are free */
        return mmgeo_read_window(src, W, H, S, ox, oy, tile, valid, raw, mraw, err, errlen);
    if (s->rc) {
        snprintf(err, errlen, "%s", s->err);
        return s->rc;
    }
    const size_t plane = (size_t)S * S;
    memcpy(tile, s->tile[i], sizeof(float) * p->ch[i] * plane);
    for (size_t k = 0; k < plane; k++)
        if (!s->valid[i][k]) valid[k] = 0;
    return 0;
}

/* ---- writer --------------------------------------------------------------------------------- */

static void *writer(void *arg) {
    mmgeo_pipe *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->qh == p->qt)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) break; /* what is still queued is dropped by mmgeo_pipe_free */
        wjob *j = &p->q[p->qh % QCAP];
        const int failed = p->wr_failed;
        pthread_mutex_unlock(&p->mu);
        if (!failed) {
            CPLErrorReset();
            const CPLErr e =
                j->ds ? GDALDatasetRasterIO(j->ds, GF_Write, j->x, j->y, j->w, j->h, j->data, j->w,
                                            j->h, j->type, j->nb, NULL, 0, 0, 0)
                      : GDALRasterIO(j->band, GF_Write, j->x, j->y, j->w, j->h, j->data, j->w, j->h,
                                     j->type, 0, 0);
            if (e != CE_None) {
                const char *m = CPLGetLastErrorMsg();
                pthread_mutex_lock(&p->mu);
                p->wr_failed = 1;
                snprintf(p->wr_msg, sizeof p->wr_msg, "%s", m && *m ? m : "GDAL gave no reason");
                pthread_mutex_unlock(&p->mu);
            }
        }
        free(j->data);
        pthread_mutex_lock(&p->mu);
        j->data = NULL;
        p->qbytes -= j->bytes;
        p->qh++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* with p->mu held: the writer's failure as this thread's last GDAL error */
static CPLErr report_failure(mmgeo_pipe *p) {
    CPLErrorSetState(CE_Failure, CPLE_AppDefined, p->wr_msg);
    return CE_Failure;
}

CPLErr mmgeo_pipe_write(mmgeo_pipe *p, GDALDatasetH ds, GDALRasterBandH band, int x, int y, int w,
                        int h, const void *data, GDALDataType type, int nb) {
    if (!p || !p->wr_on) {
        if (ds)
            return GDALDatasetRasterIO(ds, GF_Write, x, y, w, h, (void *)data, w, h, type, nb, NULL,
                                       0, 0, 0);
        return GDALRasterIO(band, GF_Write, x, y, w, h, (void *)data, w, h, type, 0, 0);
    }
    const size_t bytes = (size_t)w * h * (ds ? nb : 1) * (size_t)GDALGetDataTypeSizeBytes(type);
    void *copy = malloc(bytes ? bytes : 1);
    pthread_mutex_lock(&p->mu);
    while (!p->wr_failed &&
           (p->qt - p->qh >= QCAP || (p->qt > p->qh && p->qbytes + bytes > QBYTES)))
        pthread_cond_wait(&p->cv, &p->mu);
    CPLErr e = CE_None;
    if (p->wr_failed) {
        e = report_failure(p);
    } else if (!copy) {
        snprintf(p->wr_msg, sizeof p->wr_msg, "out of memory queueing a write of %zu bytes", bytes);
        p->wr_failed = 1;
        e = report_failure(p);
    } else {
        memcpy(copy, data, bytes);
        p->q[p->qt % QCAP] = (wjob){ds, band, x, y, w, h, ds ? nb : 1, type, copy, bytes};
        copy = NULL;
        p->qbytes += bytes;
        p->qt++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    free(copy);
    return e;
}

CPLErr mmgeo_pipe_flush(mmgeo_pipe *p) {
    if (!p || !p->wr_on) return CE_None;
    pthread_mutex_lock(&p->mu);
    while (p->qh != p->qt)
        pthread_cond_wait(&p->cv, &p->mu);
    const CPLErr e = p->wr_failed ? report_failure(p) : CE_None;
    pthread_mutex_unlock(&p->mu);
    return e;
}

/* ---- lifetime ------------------------------------------------------------------------------- */

void mmgeo_pipe_free(mmgeo_pipe *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->rd_on) pthread_join(p->rd, NULL);
    if (p->wr_on) pthread_join(p->wr, NULL);
    for (long k = p->qh; k < p->qt; k++)
        free(p->q[k % QCAP].data);
    for (int k = 0; p->ring && k < p->cap; k++)
        for (int i = 0; i < p->ns; i++)
            free(p->ring[k].tile[i]), free(p->ring[k].valid[i]);
    free(p->ring);
    free(p->raw);
    free(p->mraw);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

mmgeo_pipe *mmgeo_pipe_start(mmgeo_src *src, int ns, const int *channels, int W, int H, int S,
                             const int *ox, int kxa, int kxb, const int *oy, int kya, int kyb,
                             int batch) {
    const char *env = getenv("MMGEO_PIPELINE");
    if ((env && strcmp(env, "0") == 0) || ns < 0 || ns > MMGEO_MAX_IO || S < 1) return NULL;
    mmgeo_pipe *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->src = src, p->ns = ns, p->W = W, p->H = H, p->S = S;
    p->ox = ox, p->oy = oy, p->kxa = kxa, p->kxb = kxb, p->kya = kya, p->kyb = kyb;
    const size_t plane = (size_t)S * S;
    size_t per = 0;
    for (int i = 0; i < ns; i++)
        p->ch[i] = channels[i], per += plane * (sizeof(float) * p->ch[i] + 1);
    /* a strip row of windows and a batch ahead, within RBYTES */
    long cap = (long)(kxb - kxa + 1) + (batch > 0 ? batch : 1) + 1;
    if (per && (size_t)cap * per > RBYTES) cap = (long)(RBYTES / per);
    p->cap = cap < 2 ? 2 : (int)cap;
    int ok = 1;
    if (ns > 0 && kxb >= kxa && kyb >= kya) {
        p->ring = calloc((size_t)p->cap, sizeof *p->ring);
        p->raw = malloc(plane * 2 * sizeof(double));
        p->mraw = malloc(plane);
        ok = p->ring && p->raw && p->mraw;
        for (int k = 0; ok && k < p->cap; k++)
            for (int i = 0; ok && i < ns; i++) {
                p->ring[k].tile[i] = malloc(sizeof(float) * p->ch[i] * plane);
                p->ring[k].valid[i] = malloc(plane);
                ok = p->ring[k].tile[i] && p->ring[k].valid[i];
            }
        if (ok) p->rd_on = ok = pthread_create(&p->rd, NULL, reader, p) == 0;
    }
    if (ok) p->wr_on = ok = pthread_create(&p->wr, NULL, writer, p) == 0;
    if (!ok) { /* the run works without the pipeline */
        mmgeo_pipe_free(p);
        return NULL;
    }
    return p;
}
