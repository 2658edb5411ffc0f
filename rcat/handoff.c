/*
 * handoff.c - rcat handoff send|receive (docs/HANDOFF.md): every batch
 * directory of the source spool marked ready is copied under a hidden name
 * at the destination, checked file by file against the source, and renamed
 * into place; once the receiver marks it processed, the source's copy and
 * then the destination's are cleared or archived. What to do is read from
 * the two sides at each run (handoff_state.c), so a run killed anywhere is
 * continued by the next, and a run with nothing to do changes nothing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "handoff.h"
#include "handoff_side.h"
#include "handoff_state.h"
#include "report.h"
#include "tree.h"
#include "verdict.h"

struct handoff {
    struct ops *o;
    int send;             /* the source is the local side */
    struct side src, dst; /* where batches come from and go to */
    const char *ready, *processed;
    char stamp[32]; /* the run's time, for archived names */
};

/* Only for tests/test_handoff.sh: RCAT_HANDOFF_TEST_KILL=STEP ends rcat
 * by SIGKILL right after STEP, as a crash or a power cut there would. */
static void step_done(const char *step)
{
    const char *at = getenv("RCAT_HANDOFF_TEST_KILL");

    if (at && !strcmp(at, step))
        raise(SIGKILL);
}

static char *hidden(const char *name, const char *suffix)
{
    char *s;

    return asprintf(&s, HANDOFF_PREFIX "%s%s", name, suffix) < 0 ? NULL : s;
}

static int oom(void)
{
    const char *result;

    return verdict_fail_local("rcat handoff", NULL, ENOMEM, &result);
}

/* ---- the batch's state ---------------------------------------------------- */

static int is_kind(const struct side *s, const char *name, const char *marker,
                   enum side_kind want, int *yes)
{
    char *rel = marker ? tree_join(name, marker) : strdup(name);
    enum side_kind k;
    int code;

    if (!rel)
        return oom();
    code = side_kind(s, rel, &k);
    *yes = k == want;
    free(rel);
    return code;
}

static int look(struct handoff *h, const char *name, struct handoff_seen *seen)
{
    int code;

    memset(seen, 0, sizeof *seen);
    code = is_kind(&h->src, name, NULL, SIDE_DIR, &seen->source);
    if (!code && seen->source)
        code = is_kind(&h->src, name, h->ready, SIDE_FILE, &seen->ready);
    if (!code)
        code = is_kind(&h->dst, name, NULL, SIDE_DIR, &seen->dest);
    if (!code && seen->dest)
        code = is_kind(&h->dst, name, h->processed, SIDE_FILE, &seen->processed);
    return code;
}

/* ---- sending -------------------------------------------------------------- */

/* The copy into the hidden incoming name: files already there whole (same
 * size and mtime: an interrupted run's) are not moved again. */
static int copy(struct handoff *h, const char *name, const char *incoming)
{
    char *from = side_path(&h->src, name), *to = side_path(&h->dst, incoming);
    struct url u;
    int code;

    if (!from || !to) {
        code = oom();
    } else if (h->send) {
        side_url(&h->dst, to, &u);
        code = ops_tree_put(h->o, from, &u, TREE_INTO_CONTENTS);
    } else {
        side_url(&h->src, from, &u);
        code = ops_tree_fetch(h->o, &u, to, TREE_INTO_CONTENTS);
    }
    free(from);
    free(to);
    return code;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* What the incoming copy holds beneath rel that the source does not (the
 * temporary file of a store or fetch that a kill cut short, at either
 * end) is removed, so the copy becomes the source's tree exactly. */
static int prune(struct handoff *h, const char *name, const char *incoming, const char *rel)
{
    char **names = NULL, *in_dir = rel[0] ? tree_join(incoming, rel) : strdup(incoming);
    size_t n = 0;
    int code = in_dir ? side_list(&h->dst, in_dir, &names, &n) : oom();

    for (size_t i = 0; code == 0 && i < n; i++) {
        char *sub = tree_join(rel, names[i]);
        char *src = sub ? tree_join(name, sub) : NULL;
        char *dst = sub ? tree_join(incoming, sub) : NULL;
        enum side_kind theirs = SIDE_NONE, ours = SIDE_NONE;

        code = src && dst ? side_kind(&h->src, src, &theirs) : oom();
        if (!code)
            code = side_kind(&h->dst, dst, &ours);
        /* only what the source lacks: a symbolic link is told apart from
         * what it points to by one end (lstat) and not the other (STAT) */
        if (!code && theirs == SIDE_NONE)
            code = side_remove(&h->dst, dst);
        else if (!code && ours == SIDE_DIR && theirs == SIDE_DIR)
            code = prune(h, name, incoming, sub);
        free(sub);
        free(src);
        free(dst);
    }
    free_names(names, n);
    free(in_dir);
    return code;
}

/* Every file of the local copy (the source when sending, the incoming copy
 * when receiving) has the content of its remote counterpart, by a sum made
 * at each end. A file that differs is removed from the incoming copy, so
 * that the next run sends it again. */
static int verify(struct handoff *h, const char *name, const char *incoming)
{
    const struct side *local = h->send ? &h->src : &h->dst;
    const struct side *remote = h->send ? &h->dst : &h->src;
    char *ltop = side_path(local, h->send ? name : incoming);
    char *rtop = side_path(remote, h->send ? incoming : name);
    char where[4096] = "";
    struct tree t;
    int code = 0, rc;

    tree_init(&t);
    if (!ltop || !rtop) {
        code = oom();
    } else if ((rc = tree_walk_local(&t, ltop, "", 1, 0, where, sizeof where)) < 0) {
        const char *result;

        code = verdict_fail_local(where[0] ? where : ltop, NULL, -rc, &result);
    }
    for (size_t i = 0; code == 0 && i < t.n; i++) {
        const struct tree_entry *e = &t.v[i];
        char *rpath;
        int fd, same;

        if (e->kind != TREE_FILE)
            continue;
        rpath = tree_join(rtop, e->rel);
        fd = open(e->src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ops_begin_attempt(h->o, &remote->url, 0);
        same = fd >= 0 && rpath && ops_same_content(h->o, &remote->url, rpath, fd);
        if (fd >= 0)
            close(fd);
        if (!same && ops_last_error(h->o)) { /* not known: the server was lost */
            report_error(RCAT_EXIT_NET, rpc2_errname(ops_last_error(h->o)), rpath ? rpath : e->rel,
                         "cannot check the copy: %s", rpc2_strerror(ops_last_error(h->o)));
            code = RCAT_EXIT_NET;
        } else if (!same) {
            char *bad = tree_join(incoming, e->rel);

            report_error(RCAT_EXIT_INTEGRITY, "HANDOFF_VERIFY", rpath ? rpath : e->rel,
                         "the copy differs from the source: removed, sent again next run");
            if (bad)
                side_remove(&h->dst, bad);
            free(bad);
            code = RCAT_EXIT_INTEGRITY;
        }
        free(rpath);
    }
    tree_free(&t);
    free(ltop);
    free(rtop);
    return code;
}

/* Copy, check, then appear whole under the batch's name at once. */
static int send_batch(struct handoff *h, const char *name)
{
    char *incoming = hidden(name, HANDOFF_INCOMING), *to = side_path(&h->dst, name);
    int code = incoming && to ? 0 : oom();

    if (!code)
        code = copy(h, name, incoming);
    if (!code)
        step_done("transferred");
    if (!code)
        code = prune(h, name, incoming, "");
    if (!code)
        code = verify(h, name, incoming);
    if (!code)
        step_done("verified");
    if (!code) {
        code = side_rename(&h->dst, incoming, to);
        if (code == 1) { /* it is there: only a delivered batch can be */
            report_error(RCAT_EXIT_REFUSED, "HANDOFF_EXISTS", to, "already delivered");
            code = RCAT_EXIT_REFUSED;
        }
    }
    if (!code)
        step_done("delivered");
    free(incoming);
    free(to);
    return code;
}

/* ---- clearing ------------------------------------------------------------- */

/* Into the archive as NAME.YYYYMMDD.HHMMSS (-N after it when two runs in one
 * second archive the same name). */
static int archive(struct handoff *h, const struct side *s, const char *name)
{
    for (int i = 0; i < 100; i++) {
        char *to;
        int code;

        if ((i ? asprintf(&to, "%s/%s.%s-%d", s->archive, name, h->stamp, i)
               : asprintf(&to, "%s/%s.%s", s->archive, name, h->stamp)) < 0)
            return oom();
        code = side_rename(s, name, to);
        free(to);
        if (code != 1)
            return code;
    }
    report_error(RCAT_EXIT_LOCAL, "HANDOFF_ARCHIVE", s->archive, "no free name to archive %s",
                 name);
    return RCAT_EXIT_LOCAL;
}

/* Gone from the batch's name at once (renamed to a hidden name), then
 * removed: a run killed while removing never leaves half a batch that a
 * later run would take for a whole one. */
static int clear(struct handoff *h, const struct side *s, const char *name, const char *step)
{
    char *trash, *to;
    int code;

    if (s->archive) {
        code = archive(h, s, name);
        if (!code)
            step_done(step);
        return code;
    }
    trash = hidden(name, HANDOFF_TRASH);
    to = trash ? side_path(s, trash) : NULL;
    code = to ? side_remove(s, trash) : oom(); /* an earlier run's, not yet removed */
    if (!code)
        code = side_rename(s, name, to);
    if (code == 1) { /* removed just now: someone else made it again */
        report_error(RCAT_EXIT_LOCAL, "HANDOFF_TRASH", to, "in the way of clearing %s", name);
        code = RCAT_EXIT_LOCAL;
    }
    if (!code) {
        step_done(step);
        code = side_remove(s, trash);
    }
    free(trash);
    free(to);
    return code;
}

static int run_batch(struct handoff *h, const char *name)
{
    struct handoff_seen seen;
    enum handoff_action a;
    int code = look(h, name, &seen);

    if (code)
        return code;
    a = handoff_decide(&seen);
    switch (a) {
    case HANDOFF_SEND:
        code = send_batch(h, name);
        break;
    case HANDOFF_CLEAR_BOTH:
        code = clear(h, &h->src, name, "source-moved");
        if (!code)
            step_done("source-cleared");
        if (!code)
            code = clear(h, &h->dst, name, "dest-moved");
        break;
    case HANDOFF_CLEAR_DEST:
        code = clear(h, &h->dst, name, "dest-moved");
        break;
    default:
        break;
    }
    if (!code && a != HANDOFF_NOTHING)
        printf("%s %s\n", name, handoff_action_name(a));
    return code;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run(struct handoff *h)
{
    char **names = NULL;
    size_t n = 0;
    int first = side_sweep(&h->src);

    if (!first)
        first = side_sweep(&h->dst);
    if (!first)
        first = side_batches(&h->src, &names, &n);
    if (!first)
        first = side_batches(&h->dst, &names, &n);
    if (n > 1)
        qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
        /* a lost server fails every batch alike: said once */
        if (first != RCAT_EXIT_NET) {
            int code = run_batch(h, names[i]);

            ops_exit_if_interrupted(h->o);
            if (!first)
                first = code;
        }
        free(names[i]);
    }
    free(names);
    return first;
}

/* ---- the command line ----------------------------------------------------- */

struct handoff_args {
    const char *src_archive, *dst_archive, *ready, *processed;
};

/* Takes the handoff's own options out of argv (into a, the rest into
 * rest[], rcat's options, for cli_parse). */
static int split_args(int argc, char **argv, struct handoff_args *a, char **rest, int *n)
{
    static const char *const names[] = {"--source-archive", "--dest-archive", "--ready",
                                        "--processed"};
    const char **slots[] = {&a->src_archive, &a->dst_archive, &a->ready, &a->processed};

    for (int i = 0; i < argc; i++) {
        int taken = 0;

        for (size_t k = 0; k < sizeof names / sizeof *names && !taken; k++) {
            size_t len = strlen(names[k]);

            if (!strncmp(argv[i], names[k], len) && argv[i][len] == '=') {
                *slots[k] = argv[i] + len + 1;
                taken = 1;
            } else if (!strcmp(argv[i], names[k])) {
                if (i + 1 >= argc) {
                    cli_bad("%s needs an argument", names[k]);
                    return -1;
                }
                *slots[k] = argv[++i];
                taken = 1;
            }
        }
        if (!taken)
            rest[(*n)++] = argv[i];
    }
    return 0;
}

static int bad_marker(const char *m)
{
    return !m[0] || strchr(m, '/') || !strcmp(m, ".") || !strcmp(m, "..");
}

static void check_args(const struct options *opt, const struct handoff_args *a)
{
    if (opt->mode != MODE_FETCH || opt->output || opt->offset_set || opt->length_set ||
        opt->ops.append || opt->ops.sum.check || opt->target_flag || opt->retry.retries ||
        opt->recursive)
        cli_bad("rcat handoff takes none of --put, -o, -r, --offset, --length, --append, "
                "--check, -n, --retries, nor a remote operation");
    else if (opt->n_operands != 2)
        cli_bad("rcat handoff send LOCAL-SPOOL REMOTE-SPOOL, or receive REMOTE-SPOOL LOCAL-SPOOL");
    else if (bad_marker(a->ready) || bad_marker(a->processed) || !strcmp(a->ready, a->processed))
        cli_bad("--ready and --processed: two different file names, without '/'");
    else if ((a->src_archive && !a->src_archive[0]) || (a->dst_archive && !a->dst_archive[0]))
        cli_bad("--source-archive and --dest-archive need a directory");
}

static void usage(void)
{
    printf("Usage: rcat handoff send [OPTION]... LOCAL-SPOOL HOST:SPOOL\n"
           "  or:  rcat handoff receive [OPTION]... HOST:SPOOL LOCAL-SPOOL\n"
           "Hands each batch directory of the source spool that holds the ready file over\n"
           "to the destination spool, and clears both copies once the receiver has put the\n"
           "processed file into the delivered one. Run it again and again (cron): each run\n"
           "does what the two sides' state asks for, and continues an interrupted one.\n\n"
           "      --ready=NAME           the sender's mark (default .ready)\n"
           "      --processed=NAME       the receiver's mark (default .processed)\n"
           "      --source-archive=DIR   move a cleared source batch to DIR/NAME.STAMP\n"
           "                             (on the source's side) instead of removing it\n"
           "      --dest-archive=DIR     the same for the destination's copy\n"
           "  and rcat's connection options (-P, --identity, --key-file, --security,\n"
           "  --timeout, --rate, -j, --json, -q, -v). One line per batch on standard\n"
           "  output: NAME sent|waiting-for-sender|waiting-for-receiver|cleared.\n"
           "Exit status: 0 done, or nothing to do yet; 1 usage; 2 the server was not\n"
           "reached or was lost; 3 the server refused (rights, read-only); 4 a local\n"
           "error; 5 a copy differed from its source (removed: sent again next run).\n"
           "Any run that failed is continued by the next. See docs/HANDOFF.md.\n");
}

/* rest: argc + 1 words, kept while opt is used (its operands point there). */
static int parse(int argc, char **argv, char **rest, struct options *opt, struct handoff_args *a)
{
    int n = 0;

    rest[n++] = "rcat handoff";
    a->ready = ".ready";
    a->processed = ".processed";
    if (split_args(argc, argv, a, rest, &n) < 0)
        return -1;
    rest[n] = NULL;
    optind = 0;
    cli_parse(n, rest, opt);
    if (!cli_usage_error()[0])
        check_args(opt, a);
    return cli_usage_error()[0] ? -1 : 0;
}

static int sides(struct handoff *h, const struct options *opt, const struct handoff_args *a)
{
    const char *local = opt->operands[h->send ? 0 : 1];
    const char *remote = opt->operands[h->send ? 1 : 0];
    struct side *l = h->send ? &h->src : &h->dst, *r = h->send ? &h->dst : &h->src;
    const char *why;

    if (url_parse(remote, opt->port, &r->url, &why) < 0 || !r->url.remote) {
        cli_bad("%s: not a remote spool (HOST:DIR)", remote);
        return -1;
    }
    r->remote = 1;
    l->dir = local;
    h->src.archive = a->src_archive;
    h->dst.archive = a->dst_archive;
    h->ready = a->ready;
    h->processed = a->processed;
    return 0;
}

int handoff_main(int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "";
    struct handoff h = {0};
    struct handoff_args a = {0};
    struct options opt = {0};
    struct report_config rc = {0};
    struct ops_config cfg;
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    int code;

    if (!rest)
        return oom();

    if (!strcmp(sub, "-h") || !strcmp(sub, "--help")) {
        usage();
        free(rest);
        return fflush(stdout) == 0 ? RCAT_EXIT_OK : RCAT_EXIT_LOCAL;
    }
    h.send = !strcmp(sub, "send");
    if (!h.send && strcmp(sub, "receive"))
        cli_bad("rcat handoff: send or receive, please (rcat handoff --help)");
    else if (parse(argc - 3, argv + 3, rest, &opt, &a) == 0)
        sides(&h, &opt, &a);
    rc.quiet = opt.quiet;
    rc.verbose = opt.verbose;
    rc.json = opt.json;
    report_init(&rc);
    if (cli_usage_error()[0]) {
        report_usage("%s", cli_usage_error());
        report_done(RCAT_EXIT_USAGE);
        free(rest);
        return RCAT_EXIT_USAGE;
    }
    report_begin("rcat " PACKAGE_VERSION, h.send ? "HandoffSend" : "HandoffReceive", 2,
                 opt.operands[1]);
    cfg = opt.ops;
    cfg.servers = 1;
    cfg.recursive = 1;
    cfg.skip_existing = 1; /* an interrupted copy goes on where it stopped */
    cfg.preserve = 1;      /* ... which it knows by the mtimes kept */
    code = ops_new(&cfg, &h.o);
    if (code == RCAT_EXIT_OK) {
        h.src.o = h.dst.o = h.o;
        strftime(h.stamp, sizeof h.stamp, "%Y%m%d.%H%M%S", gmtime(&(time_t){time(NULL)}));
        code = run(&h);
        ops_exit_if_interrupted(h.o);
        ops_free(h.o);
    }
    if (report_flush_stdout() < 0 && code == RCAT_EXIT_OK)
        code = RCAT_EXIT_LOCAL;
    report_done(code);
    free(rest);
    return code;
}
