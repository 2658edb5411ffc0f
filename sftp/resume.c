/*
 * resume.c - the two ends of a resumed transfer over fileio (resume.h says
 * how they agree; restart.h how the points are kept).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>

#include "fileio_impl.h"
#include "restart.h"
#include "resume.h"

#define FEED_CHUNK (1u << 20)

struct resume_sink {
    int rpfd;             /* the restart-point file */
    int have_point;       /* point checked against the partial: offered */
    struct restart_point point;
    XXH3_state_t *prefix; /* hash of the partial's [0, point.offset) */
    int decided;
    uint64_t interval;
    uint64_t next_at;     /* stream position of the next restart point */
};

int resume_feed_prefix(int fd, int64_t from, uint64_t len, XXH3_state_t *h,
                       struct namedsum *named)
{
    uint8_t *buf = malloc(FEED_CHUNK);
    int rc = 0;

    if (!buf)
        return RPC2_ENOMEM;
    while (len > 0) {
        size_t want = len < FEED_CHUNK ? (size_t)len : FEED_CHUNK;
        ssize_t n = pread(fd, buf, want, from);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? fileio_errno_code(errno) : RPC2_ECHANGED;
            break;
        }
        XXH3_128bits_update(h, buf, (size_t)n);
        if (named)
            namedsum_update(named, buf, (size_t)n);
        from += n;
        len -= (uint64_t)n;
    }
    free(buf);
    return rc;
}

static void canonical(const XXH3_state_t *h, uint8_t out[16])
{
    XXH128_canonical_t c;

    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(h));
    memcpy(out, c.digest, 16);
}

/* The named checksum's hasher was fed a prefix that is not used after all:
 * it starts over with the bytes. */
static int forget_named_prefix(struct fileio *f)
{
    return f->named ? namedsum_init(f->named) : 0;
}

/* The partial holds the bytes the point vouches for, or it is not used. */
static int check_point(struct fileio *f, struct resume_sink *r)
{
    struct stat st;
    uint8_t sum[16];
    int rc = restart_last(r->rpfd, &r->point);

    if (rc == RPC2_EINTEGRITY) {
        f->d->resume_note = "the restart-point file is damaged: starting over";
        return 0;
    }
    if (rc <= 0)
        return rc;
    if (fstat(f->fd, &st) < 0)
        return fileio_errno_code(errno);
    if ((uint64_t)st.st_size < r->point.offset) {
        f->d->resume_note = "the partial file is shorter than its restart point: starting over";
        return 0;
    }
    rc = resume_feed_prefix(f->fd, 0, r->point.offset, r->prefix, f->named);
    if (rc < 0)
        return rc;
    canonical(r->prefix, sum);
    if (memcmp(sum, r->point.sum, sizeof sum) != 0) {
        f->d->resume_note = "the partial file does not match its restart point: starting over";
        return forget_named_prefix(f);
    }
    r->have_point = 1;
    return 0;
}

int resume_sink_open(struct fileio *f, int existed)
{
    struct resume_sink *r = calloc(1, sizeof *r);
    int rc;

    if (!r)
        return fail(f, "out of memory", RPC2_ENOMEM);
    r->rpfd = -1;
    f->resume = r;
    r->interval = f->d->resume_interval ? f->d->resume_interval : RESUME_DEFAULT_INTERVAL;
    r->next_at = r->interval;
    r->prefix = XXH3_createState();
    if (!r->prefix || XXH3_128bits_reset(r->prefix) != XXH_OK)
        return fail(f, "out of memory", RPC2_ENOMEM);
    r->rpfd = openat(f->at.dirfd, f->at.side, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (r->rpfd < 0)
        return fail(f, "opening the restart-point file failed", fileio_errno_code(errno));
    rc = existed ? check_point(f, r) : 0;
    if (rc < 0)
        return fail(f, "reading the partial file or its restart points failed", rc);
    if (existed && !r->have_point)
        f->d->resume_started_over = 1;
    return 0;
}

int resume_sink_offer(const struct fileio *f, uint64_t *offset, uint8_t sum[16])
{
    const struct resume_sink *r = f->resume;

    if (!r || !r->have_point || r->decided)
        return 0;
    *offset = r->point.offset;
    memcpy(sum, r->point.sum, 16);
    return 1;
}

/* From 0: nothing an earlier attempt wrote may outlive this one's bytes. */
static int start_over(struct fileio *f, struct resume_sink *r)
{
    if (ftruncate(f->fd, 0) < 0)
        return fail(f, "emptying the partial file failed", fileio_errno_code(errno));
    int rc = restart_clear(r->rpfd);
    return rc < 0 ? fail(f, "emptying the restart-point file failed", rc) : 0;
}

int resume_sink_decide(struct fileio *f, int confirmed)
{
    struct resume_sink *r = f->resume;

    if (!r || r->decided)
        return 0;
    r->decided = 1;
    if (confirmed && !r->have_point)
        return fail(f, "the source resumed from a point never offered", RPC2_EBADPACKET);
    if (!confirmed) {
        if (r->have_point && f->d->resume_fail_changed)
            return fail(f, "the source's file is not the one the partial came from",
                        RPC2_ECHANGED);
        if (r->have_point) {
            f->d->resume_started_over = 1;
            f->d->resume_note = "the source's file changed since the partial was written: "
                                "starting over";
        }
        int rc = forget_named_prefix(f);
        return rc < 0 ? fail(f, "out of memory", rc) : start_over(f, r);
    }
    if (ftruncate(f->fd, (off_t)r->point.offset) < 0)
        return fail(f, "cutting the partial file at its restart point failed",
                    fileio_errno_code(errno));
    XXH3_copyState(f->hash, r->prefix);
    f->start = (int64_t)r->point.offset;
    f->resumed = r->point.offset;
    f->d->resumed_from = r->point.offset;
    return 0;
}

int resume_sink_decided(const struct fileio *f)
{
    return !f->resume || f->resume->decided;
}

int resume_sink_wrote(struct fileio *f)
{
    struct resume_sink *r = f->resume;
    struct restart_point p;
    int rc;

    if (!r || f->hash_gap || f->hashed < r->next_at)
        return 0;
    /* the data first: a point never vouches for bytes a crash can lose */
    if (fdatasync(f->fd) < 0)
        return fail(f, "flushing the partial file failed", fileio_errno_code(errno));
    p.offset = (uint64_t)f->start + f->hashed;
    canonical(f->hash, p.sum);
    rc = restart_append(r->rpfd, &p);
    if (rc < 0)
        return fail(f, "writing a restart point failed", rc);
    /* at the next multiple: points that drift by a packet each would leave
     * more than an interval between the last one and a crash */
    while (r->next_at <= f->hashed)
        r->next_at += r->interval;
    return 0;
}

void resume_sink_settle(struct fileio *f)
{
    struct resume_sink *r = f->resume;
    struct stat st;

    if (!r || r->rpfd < 0 || !f->at.tmp || fstat(r->rpfd, &st) < 0 || st.st_size > 0)
        return;
    f->at.keep = 0; /* the partial goes with the dispose */
    unlinkat(f->at.dirfd, f->at.side, 0);
}

void resume_sink_free(struct fileio *f)
{
    struct resume_sink *r = f->resume;

    if (!r)
        return;
    if (r->rpfd >= 0)
        close(r->rpfd);
    XXH3_freeState(r->prefix);
    free(r);
    f->resume = NULL;
}

/* Both ends say so: the sink's partial was there, and is not used. */
static int refused(struct fileio *f, const char *why)
{
    f->d->resume_started_over = 1;
    f->d->resume_note = why;
    return 0;
}

int resume_source_confirm(struct fileio *f, uint64_t offset, const uint8_t sum[16])
{
    XXH3_state_t *h;
    uint8_t own[16];
    int rc;

    if (f->sink || f->kind != FIO_POSITIONAL || f->moved || f->peeked || f->quota >= 0 ||
        f->size < 0 || offset > (uint64_t)f->size)
        return refused(f, "the source cannot continue from the sink's restart point: "
                          "starting over");
    h = XXH3_createState();
    if (!h || XXH3_128bits_reset(h) != XXH_OK) {
        XXH3_freeState(h);
        return fail(f, "out of memory", RPC2_ENOMEM);
    }
    rc = resume_feed_prefix(f->fd, f->start, offset, h, f->named);
    if (rc == RPC2_ECHANGED)
        rc = 0; /* shorter now than it was at open: a later read says so */
    canonical(h, own);
    if (rc == 0 && memcmp(own, sum, sizeof own) == 0) {
        XXH3_copyState(f->hash, h);
        f->start += (int64_t)offset;
        f->size -= (int64_t)offset;
        f->resumed = offset;
        f->d->resumed_from = offset;
        rc = 1;
    } else if (rc == 0) {
        refused(f, "the sink's partial is not of this file (it changed): starting over");
    }
    if (rc != 1 && forget_named_prefix(f) < 0 && rc == 0)
        rc = RPC2_ENOMEM;
    XXH3_freeState(h);
    return rc < 0 ? fail(f, "reading the source's prefix failed", rc) : rc;
}
