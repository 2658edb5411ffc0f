/*
 * rcat.c - the rcat command: with the options read and checked (cli.c),
 * checks every operand before anything touches the network (a usage error
 * attempts nothing), then runs one operation per operand and exits with
 * the first failure's code. Operators call it from scripts and cron, so the
 * exit code and the message on standard error are its real interface.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "assoc_cli.h"
#include "cli.h"
#include "handoff.h"
#include "ops.h"
#include "policy.h"
#include "queue.h"
#include "report.h"
#include "retry.h"
#include "run_tree.h"
#include "url.h"
#include "verdict.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

static const char *const mode_names[] = {"Fetch",  "Store", "Stat", "List",     "Mkdir",  "Rename",
                                         "Delete", "Glob",  "Sum",  "Readlink", "Symlink"};

static int to_directory(const struct options *opt)
{
    return opt->mode == MODE_FETCH && opt->output && strcmp(opt->output, "-") != 0 &&
           cli_output_is_dir(opt->output);
}

static char *join_path(const char *dir, const char *base)
{
    size_t n = strlen(dir);
    const char *sep = n > 0 && dir[n - 1] == '/' ? "" : "/";
    char *out = malloc(n + strlen(sep) + strlen(base) + 1);

    if (out)
        sprintf(out, "%s%s%s", dir, sep, base);
    return out;
}

/* --put LOCAL HOST:DIR/ names the remote file after LOCAL, as scp does. */
static void complete_put_target(const struct options *opt, struct url *u)
{
    size_t n = strlen(u->path);
    const char *slash = strrchr(opt->put, '/');
    const char *base = slash ? slash + 1 : opt->put;

    if (n > 0 && u->path[n - 1] != '/')
        return;
    if (!strcmp(opt->put, "-") || !*base || !strcmp(base, ".") || !strcmp(base, ".."))
        cli_bad("%s: name the remote file (no name to take from '%s')", opt->operands[0], opt->put);
    else if (n + strlen(base) > URL_PATH_MAX)
        cli_bad("%s: remote path too long", opt->operands[0]);
    else
        strcat(u->path, base);
}

/* What --parents keeps of a remote path beneath DIR: the path without its
 * leading slashes; NULL when a component is empty, "." or "..", which
 * could land outside DIR or on another operand's name. */
static const char *kept_path(const char *path)
{
    while (*path == '/')
        path++;
    for (const char *c = path; *c;) {
        size_t n = strcspn(c, "/");

        if (n == 0 || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return NULL;
        c += n;
        if (*c == '/')
            c++;
    }
    return *path ? path : NULL;
}

/* --mv HOST:FROM TO: TO is a path on the same server, or HOST:TO there. */
static void check_new_name(const struct url *from, const char *arg, struct url *to)
{
    if (!to->remote) {
        if (!arg[0] || strlen(arg) > URL_PATH_MAX)
            cli_bad("%s: not a path on the server", arg);
        else
            strcpy(to->path, arg);
    } else if (strcmp(to->host, from->host) != 0 || to->port != from->port) {
        cli_bad("%s: --mv renames on one server (%s)", arg, from->host);
    } else if (!to->path[0]) {
        cli_bad("%s: no remote path", arg);
    }
}

static void check_operand(const struct options *opt, const char *arg, const struct url *u)
{
    int needs_path =
        opt->mode == MODE_FETCH || (cli_remote_op(opt->mode) && opt->mode != MODE_MKDIR);

    if (!u->remote)
        cli_bad("%s: not a remote argument (rcat://HOST/PATH or HOST:PATH)", arg);
    else if (needs_path && !u->path[0])
        cli_bad("%s: no remote path", arg);
    else if (to_directory(opt) && !url_basename(u->path))
        cli_bad("%s: no file name to give the copy in %s", arg, opt->output);
    else if (to_directory(opt) && opt->parents && !kept_path(u->path))
        cli_bad("%s: --parents cannot keep a path with '..' or empty components beneath %s", arg,
                opt->output);
}

static struct url *parse_operands(const struct options *opt, const struct assoc *as)
{
    struct url *urls;
    const char *why;

    if (cli_tree(opt))
        return run_tree_operands(opt);
    urls = calloc((size_t)opt->n_operands + 1, sizeof *urls);
    if (!urls) {
        cli_bad("out of memory");
        return NULL;
    }
    for (int i = 0; i < opt->n_operands; i++) {
        const char *arg = opt->operands[i];
        int rc;

        if (!assoc_cli_url(as, arg, opt->port, &urls[i], &rc, &why))
            rc = url_parse(arg, opt->port, &urls[i], &why);
        if (rc < 0)
            cli_bad("%s: %s", arg, why);
        else if (opt->mode == MODE_MV && i == 1)
            check_new_name(&urls[0], arg, &urls[1]);
        else
            check_operand(opt, arg, &urls[i]);
    }
    if (opt->mode == MODE_PUT && opt->n_operands == 1 && urls[0].remote)
        complete_put_target(opt, &urls[0]);
    if (opt->mode == MODE_FETCH && opt->output && opt->n_operands > 1 && !to_directory(opt) &&
        strcmp(opt->output, "-") != 0)
        cli_bad("-o %s with %d sources: name a directory (end it with '/')", opt->output,
                opt->n_operands);
    return urls;
}

/* ---- running ------------------------------------------------------------- */

/* A bar only where someone watches it, and not across file contents that
 * are being written to the same terminal. */
static int want_progress(const struct options *opt)
{
    if (opt->progress >= 0)
        return opt->progress;
    if (opt->mode != MODE_FETCH && opt->mode != MODE_PUT)
        return 0;
    return isatty(STDERR_FILENO) && !(cli_writes_stdout(opt) && isatty(STDOUT_FILENO));
}

static void start_reporting(const struct options *opt)
{
    struct report_config rc = {
        .quiet = opt->quiet,
        .verbose = opt->verbose,
        .json = opt->json,
        .progress = want_progress(opt),
    };
    const char *dest = NULL;

    report_init(&rc);
    if (opt->mode == MODE_FETCH)
        dest = opt->output ? opt->output : "-";
    else if (opt->mode == MODE_PUT && opt->n_operands > 0)
        dest = opt->operands[opt->n_operands - 1];
    if (cli_tree(opt) && opt->mode == MODE_FETCH && opt->n_operands > 0)
        dest = opt->operands[opt->n_operands - 1];
    report_begin("rcat " PACKAGE_VERSION, mode_names[opt->mode], opt->n_operands, dest);
}

/* A destination directory that is not there fails every file the same way:
 * said once, before any transfer. */
static int check_output_dir(const struct options *opt)
{
    struct stat st;

    if (!to_directory(opt))
        return RCAT_EXIT_OK;
    if (stat(opt->output, &st) == 0 && S_ISDIR(st.st_mode))
        return RCAT_EXIT_OK;
    if (opt->ops.mkdirs) { /* --mkdirs -o DIR/: DIR too */
        char *dir = join_path(opt->output, "");
        const char *result;
        int code = dir ? policy_make_parents(dir, 0, &result) : RCAT_EXIT_LOCAL;

        free(dir);
        return code;
    }
    report_error(RCAT_EXIT_LOCAL, "RPC2_ENOENT", opt->output, "no such directory");
    return RCAT_EXIT_LOCAL;
}

/* -o DIR/ names each copy after its source's base name: a second source
 * with a name already given in this run is not written (it would replace
 * the first copy), and says which operand had it first. */
static const char *copy_name(const struct options *opt, const struct url *u)
{
    return opt->parents ? kept_path(u->path) : url_basename(u->path);
}

static int name_taken(const struct options *opt, const struct url *urls, int i)
{
    const char *base = copy_name(opt, &urls[i]);

    for (int j = 0; j < i; j++) {
        if (strcmp(copy_name(opt, &urls[j]), base) != 0)
            continue;
        report_error(RCAT_EXIT_LOCAL, "RPC2_EEXIST", urls[i].path,
                     "not written: %s%s%s is already the name for %s (operand %d)", opt->output,
                     opt->output[strlen(opt->output) - 1] == '/' ? "" : "/", base, urls[j].path,
                     j + 1);
        return 1;
    }
    return 0;
}

static int fetch_one(struct ops *o, const struct options *opt, const struct url *urls, int i)
{
    const struct url *u = &urls[i];
    char *dest;
    int code;

    if (!to_directory(opt))
        return ops_fetch(o, u, opt->output);
    if (name_taken(opt, urls, i))
        return RCAT_EXIT_LOCAL;
    dest = join_path(opt->output, copy_name(opt, u));
    if (!dest) {
        report_error(RCAT_EXIT_LOCAL, "RPC2_ENOMEM", opt->output, "out of memory");
        return RCAT_EXIT_LOCAL;
    }
    code = opt->parents ? policy_make_parents(dest, strlen(opt->output), &(const char *){NULL})
                        : RCAT_EXIT_OK;
    if (code == RCAT_EXIT_OK)
        code = ops_fetch(o, u, dest);
    free(dest);
    return code;
}

static int run_one(struct ops *o, const struct options *opt, const struct url *urls, int i)
{
    const struct url *u = &urls[i];

    switch (opt->mode) {
    case MODE_FETCH:
        return fetch_one(o, opt, urls, i);
    case MODE_PUT:
        return ops_store(o, opt->put, u);
    case MODE_STAT:
        return ops_stat(o, u);
    case MODE_LS:
        return ops_list(o, u);
    case MODE_MKDIR:
        return ops_cmd_mkdir(o, u, opt->parents);
    case MODE_MV:
        return ops_cmd_rename(o, u, urls[1].path, opt->ops.no_clobber);
    case MODE_RM:
        return ops_cmd_delete(o, u,
                              (opt->rm_dir ? RCAT_DELETE_DIR : 0) |
                                  (opt->recursive ? RCAT_DELETE_RECURSIVE : 0));
    case MODE_GLOB:
        return ops_cmd_glob(o, u);
    case MODE_SUM:
        return ops_cmd_sum(o, u, opt->ops.sum.type);
    case MODE_READLINK:
        return ops_cmd_readlink(o, u);
    case MODE_SYMLINK:
        return ops_cmd_symlink(o, opt->symlink_target, u);
    }
    return RCAT_EXIT_USAGE;
}

/*
 * Descriptors 0-2 the caller closed (`rcat URL >&-`) are opened on
 * /dev/null before anything else, so that no descriptor of rcat's own (the
 * event loop's, a socket) takes their numbers and is written to as output.
 * Each is remembered: using one is still an error, as it is for cat.
 */
static unsigned open_closed_std(void)
{
    unsigned closed = 0;

    for (int fd = 0; fd <= 2; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        closed |= 1u << fd;
        int null = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
        if (null >= 0 && null != fd) /* the lowest free number: fd itself */
            close(null);
    }
    return closed;
}

static int needs_stdout(const struct options *opt)
{
    return cli_writes_stdout(opt) || opt->mode == MODE_STAT || opt->mode == MODE_LS ||
           opt->mode == MODE_GLOB || opt->mode == MODE_SUM || opt->mode == MODE_READLINK ||
           opt->genkey;
}

/* A closed standard stream the run would use fails it before anything is
 * sent, the way cat says "Bad file descriptor". */
static int check_std(const struct options *opt)
{
    const char *result;

    if ((opt->closed_std & 2u) && needs_stdout(opt))
        return verdict_fail_local("standard output", NULL, EBADF, &result);
    if ((opt->closed_std & 1u) && opt->mode == MODE_PUT && !strcmp(opt->put, "-"))
        return verdict_fail_local("standard input", NULL, EBADF, &result);
    return RCAT_EXIT_OK;
}

/* One operand's operation, as the retry loop calls it. */
struct operand {
    struct ops *o;
    const struct options *opt;
    const struct url *urls;
    int i;
};

static int run_operand(void *arg)
{
    const struct operand *p = arg;

    return run_one(p->o, p->opt, p->urls, p->i);
}

static int run(const struct options *opt, const struct url *urls)
{
    struct ops_config cfg = opt->ops;
    struct ops *o;
    int first = check_std(opt);

    if (first != RCAT_EXIT_OK)
        return first;
    first = check_output_dir(opt);

    if (first != RCAT_EXIT_OK)
        return first;
    cfg.servers = (size_t)opt->n_operands;
    first = ops_new(&cfg, &o);
    if (first != RCAT_EXIT_OK)
        return first;
    if (cli_tree(opt)) {
        first = run_tree(o, opt, urls);
        ops_free(o);
        return first;
    }
    /* --mv's second operand is the first one's new name */
    int n = opt->mode == MODE_MV ? 1 : opt->n_operands;
    for (int i = 0; i < n; i++) {
        int code;

        report_operand(i + 1);
        code = retry_operand(o, &opt->retry, &urls[i], run_operand,
                             &(struct operand){o, opt, urls, i});
        ops_exit_if_interrupted(o);
        if (first == RCAT_EXIT_OK)
            first = code;
    }
    report_operand(0);
    ops_free(o);
    return first;
}

static int finish(int code)
{
    if (report_flush_stdout() < 0) {
        report_error(RCAT_EXIT_LOCAL, "RPC2_EIO", "standard output", "write error");
        if (code == RCAT_EXIT_OK)
            code = RCAT_EXIT_LOCAL;
    }
    report_done(code);
    return code;
}

/* --genkey FILE: created here, 0600 from the start and only if new, so
 * the secret is never readable by others, not even for a moment. */
static int open_key_file(const char *path, int *fd)
{
    const char *result;

    *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    return *fd < 0 ? verdict_fail_local(path, "cannot create the key file", errno, &result)
                   : RCAT_EXIT_OK;
}

/* Standard output that the shell made a file others may read (`rcat
 * --genkey > alice.key` under umask 022): closed to them before the secret
 * is written (said only when that fails; --genkey FILE has no moment at all
 * when the empty file was open to them). */
static void protect_stdout_file(void)
{
    struct stat st;

    if (fstat(STDOUT_FILENO, &st) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & 077))
        return;
    if (fchmod(STDOUT_FILENO, st.st_mode & 0700) < 0)
        report_error(RCAT_EXIT_OK, "WARNING", "standard output",
                     "the key file is readable by others (mode %04o): use --genkey FILE",
                     (unsigned)(st.st_mode & 07777));
}

/* --genkey: the secret goes out with one write(2), so that no stdio buffer
 * keeps a copy, and rcat's own copy is wiped. */
static int genkey(const struct options *opt)
{
    struct report_config rc = {.json = opt->json};
    const char *file = opt->n_operands == 1 ? opt->operands[0] : NULL;
    const char *shown = file ? file : "standard output";
    char key[RPC2_SECRET_BASE64_LEN + 2];
    size_t len;
    int err, fd = STDOUT_FILENO, code;

    report_init(&rc);
    code = file ? open_key_file(file, &fd) : check_std(opt);
    if (code != RCAT_EXIT_OK)
        return code;
    if (!file)
        protect_stdout_file();
    err = rpc2_keys_generate(key);
    if (err != 0) {
        report_error(RCAT_EXIT_LOCAL, rpc2_errname(err), NULL, "cannot make a secret: %s",
                     rpc2_strerror(err));
        code = RCAT_EXIT_LOCAL;
    } else {
        len = strlen(key);
        key[len++] = '\n';
        if (write(fd, key, len) != (ssize_t)len || (file && fsync(fd) < 0)) {
            report_error(RCAT_EXIT_LOCAL, "RPC2_EIO", shown, "write error");
            code = RCAT_EXIT_LOCAL;
        }
    }
    explicit_bzero(key, sizeof key);
    if (file && close(fd) < 0 && code == RCAT_EXIT_OK) {
        report_error(RCAT_EXIT_LOCAL, "RPC2_EIO", shown, "write error");
        code = RCAT_EXIT_LOCAL;
    }
    if (file && code != RCAT_EXIT_OK)
        unlink(file); /* ours (O_EXCL), and of no use */
    return code;
}

int main(int argc, char **argv)
{
    struct options opt;
    struct assoc as;
    struct url *urls = NULL;
    int code;
    unsigned closed_std = open_closed_std();

    if (argc > 1 && !strcmp(argv[1], "queue"))
        return queue_main(argc, argv);
    if (argc > 1 && !strcmp(argv[1], "handoff"))
        return handoff_main(argc, argv);
    cli_parse(argc, argv, &opt);
    assoc_cli_apply(argc, argv, &opt, &as); /* @NAME: its options first, then the line's */
    opt.closed_std = closed_std;
    if (opt.help || opt.version) {
        if (opt.help)
            cli_usage();
        else
            printf("rcat (rpc2) %s\n", PACKAGE_VERSION);
        return fflush(stdout) == 0 ? RCAT_EXIT_OK : RCAT_EXIT_LOCAL;
    }
    cli_check(&opt);
    /* A retry continues from the last restart point, as -C does, where -C
     * could (ops.c says where): the first attempt must already keep them. */
    if (opt.retry.retries > 0)
        opt.ops.resume = 1;
    if (opt.genkey && !cli_usage_error()[0])
        return genkey(&opt);
    if (!cli_usage_error()[0])
        urls = parse_operands(&opt, &as);
    start_reporting(&opt);
    if (cli_usage_error()[0]) {
        report_usage("%s", cli_usage_error());
        code = finish(RCAT_EXIT_USAGE);
    } else {
        code = finish(run(&opt, urls));
    }
    free(urls);
    assoc_dispose(&as);
    return code;
}
