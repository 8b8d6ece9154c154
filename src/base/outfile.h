/*
 * Output files the CLI creates or overwrites (traces, card profiles, SVGs):
 * always mode 0600 and always a new inode.
 *
 * Writing into an existing file keeps that file's mode (a 0644 profile stays
 * 0644 while the card's private key and PIN go into it) and anyone who
 * opened it before keeps reading it. So an output is written to a new file
 * in the same directory, created with O_CREAT | O_EXCL | O_NOFOLLOW and mode
 * 0600, and renamed over the target:
 *
 *   kv_outfile_open      creates the temporary file
 *   kv_outfile_publish   renames it over the target now (streams such as
 *                        traces: the file is visible while it is written)
 *   kv_outfile_commit    flushes, syncs, closes and (if not yet done)
 *                        renames: a document is never seen half-written
 *   kv_outfile_abort     closes and removes what was not published
 *
 * A target that exists and is not a regular file (/dev/null, /dev/stdout, a
 * FIFO, a terminal) is opened and written as it is: it is never replaced.
 */
#ifndef KV_BASE_OUTFILE_H
#define KV_BASE_OUTFILE_H

#include <stdio.h>

typedef struct {
    FILE *f;       /* write here */
    char *path;    /* the target */
    char *tmp;     /* the temporary file; NULL when writing the target directly */
    int published; /* tmp has been renamed to path */
} kv_outfile;

/*
 * Open an output for path. Returns 0, KV_ERR_IO (errno kept) or
 * KV_ERR_NOMEM. On failure o->f is NULL and nothing was created.
 */
int kv_outfile_open(const char *path, kv_outfile *o);

/* Rename the temporary file over the target now. 0 or KV_ERR_IO. */
int kv_outfile_publish(kv_outfile *o);

/*
 * Flush, fsync, close and rename over the target (when not published yet).
 * Returns 0 or KV_ERR_IO; on failure an unpublished temporary file is
 * removed and the target is left as it was. o is reset either way.
 */
int kv_outfile_commit(kv_outfile *o);

/* Close; remove the temporary file unless published. NULL or a reset o is a no-op. */
void kv_outfile_abort(kv_outfile *o);

#endif
