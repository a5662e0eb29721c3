/*
 * The I/O pipeline of a run (pipeline.c, docs/cuda.md "Overlap"): while the processor computes
 * one batch of windows, a reader thread reads the windows that come next (up to a strip row and
 * a batch ahead) and a writer thread writes the strips that are finished. Both threads call the
 * same GDAL functions on the same datasets with the same arguments, in the same order, as the
 * run would itself, and nothing else touches those datasets meanwhile: the output is
 * bit-identical with the pipeline off (MMGEO_PIPELINE=0).
 *
 * Every function takes pipe == NULL (pipeline off), and then does the work itself, synchronously.
 */
#ifndef MMGEO_PIPELINE_H
#define MMGEO_PIPELINE_H

#include "internal.h"

typedef struct mmgeo_pipe mmgeo_pipe;

/* Starts the reader over the windows at (ox[kx], oy[ky]) for ky in [kya, kyb], kx in
 * [kxa, kxb], in that order (row by row), of the ns sources (channels[i] bands each), and the
 * writer. NULL when MMGEO_PIPELINE=0 or the threads cannot be started (the run then works
 * without them). The sources are the reader's until mmgeo_pipe_free. */
mmgeo_pipe *mmgeo_pipe_start(mmgeo_src *src, int ns, const int *channels, int W, int H, int S,
                             const int *ox, int kxa, int kxb, const int *oy, int kya, int kyb,
                             int batch);

/* mmgeo_read_window for source i of the window at (ox, oy), from what the reader has read. A
 * window of the sequence that is never asked for (skipped) is dropped when a later one is. */
int mmgeo_pipe_read_window(mmgeo_pipe *p, int i, mmgeo_src *src, int W, int H, int S, int ox,
                           int oy, float *tile, uint8_t *valid, double *raw, uint8_t *mraw,
                           char *err, size_t errlen);

/* The write GDALDatasetRasterIO(ds, GF_Write, x, y, w, h, data, w, h, type, nb, NULL, 0, 0, 0)
 * (ds != NULL) or GDALRasterIO(band, GF_Write, x, y, w, h, data, w, h, type, 0, 0), queued for
 * the writer (data is copied). CE_Failure when a write failed (this one or an earlier queued
 * one): the writer's message is then the calling thread's last GDAL error (CPLGetLastErrorMsg). */
CPLErr mmgeo_pipe_write(mmgeo_pipe *p, GDALDatasetH ds, GDALRasterBandH band, int x, int y, int w,
                        int h, const void *data, GDALDataType type, int nb);

/* Waits until every queued write is done; CE_Failure as mmgeo_pipe_write. */
CPLErr mmgeo_pipe_flush(mmgeo_pipe *p);

/* Stops both threads (queued writes not yet done are dropped: call mmgeo_pipe_flush first to
 * keep them). NULL is fine. */
void mmgeo_pipe_free(mmgeo_pipe *p);

#endif
