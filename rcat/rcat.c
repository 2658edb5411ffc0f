/*
 * rcat.c - the rcat command: reads the options, checks every argument
 * before anything touches the network (a usage error attempts nothing),
 * then runs one operation per argument and exits with the first failure's
 * code. Operators call it from scripts and cron, so the exit code and the
 * message on standard error are its real interface.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "duration.h"
#include "ops.h"
#include "policy.h"
#include "report.h"
#include "retry.h"
#include "url.h"
#include "verdict.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0"
#endif

#define TIMEOUT_MAX_US 4294000000ull /* dead_peer_us is 32 bits of microseconds */
#define DURATION_MIN_US 1000ull      /* 1 ms: less is a typo, not a limit */
#define RETRIES_MAX 1000000

enum mode { MODE_FETCH, MODE_PUT, MODE_STAT, MODE_LS };

static const char *const mode_names[] = {"Fetch", "Store", "Stat", "List"};

struct options {
    enum mode mode;
    const char *mode_flag; /* the option that chose the mode, for messages */
    const char *output;
    const char *put;
    unsigned port;
    struct ops_config ops;
    int offset_set, length_set;
    int quiet, verbose, json;
    int progress; /* -1: only on a terminal */
    int help, version, genkey;
    int parents; /* --parents: -o DIR/ keeps each remote path beneath DIR */
    int security_set; /* --security given: otherwise it follows --key-file */
    int restart_interval_set;
    unsigned closed_std; /* bit n: fd n was closed when rcat started */
    struct retry_config retry; /* --retries, --retry-interval */
    const char *target_flag; /* -n, --overwrite or --append, whichever was given */
    char **operands;
    int n_operands;
};

/* The first usage error; parsing goes on so that --json anywhere counts. */
static char usage_error[512];

__attribute__((format(printf, 1, 2))) static void bad(const char *fmt, ...)
{
    va_list ap;

    if (usage_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(usage_error, sizeof usage_error, fmt, ap);
    va_end(ap);
}

static void usage(void)
{
    printf("Usage: rcat [OPTION]... REMOTE...             write them to standard output\n"
           "  or:  rcat [OPTION]... -o FILE REMOTE        fetch into FILE\n"
           "  or:  rcat [OPTION]... -o DIR/ REMOTE...     fetch each into DIR/BASENAME\n"
           "  or:  rcat [OPTION]... --put LOCAL REMOTE    store LOCAL on the server\n"
           "  or:  rcat [OPTION]... --stat|--ls REMOTE... describe or list remote paths\n"
           "Move files to and from an rcatd server over rpc2.\n"
           "\n"
           "REMOTE is rcat://HOST[:PORT]/PATH (percent-escapes decoded) or, as with scp,\n"
           "HOST:PATH ([ADDR]:PATH for IPv6). An argument with a '/' before any ':' is\n"
           "local: write ./a:b for a file named a:b. Paths are relative to the server's\n"
           "root.\n"
           "\n"
           "Transfers:\n"
           "  -o, --output=FILE     write FILE atomically (whole or not at all); '-' is\n"
           "                        standard output; DIR/ (or an existing directory) takes\n"
           "                        several REMOTEs\n"
           "      --put=LOCAL       store LOCAL ('-': standard input) as REMOTE; a REMOTE\n"
           "                        ending in '/' gets LOCAL's base name\n"
           "      --parents         with -o DIR/, keep each REMOTE's path beneath DIR\n"
           "                        (DIR/a/b/f for HOST:a/b/f) instead of its base name\n"
           "  -n, --no-clobber      never replace an existing file: refuse it\n"
           "      --overwrite       replace an existing file (the default)\n"
           "      --append          add to the end of an existing file (created if missing);\n"
           "                        a failed append leaves the file as it was\n"
           "      --mkdirs          create the target's missing directories (mode 0777\n"
           "                        under the umask, as mkdir -p; rcatd: within its root)\n"
           "  -p, --preserve        keep modification time and mode bits\n"
           "      --offset=N        start N bytes into the source\n"
           "      --length=N        move at most N bytes\n"
           "                        N may end in K, M, G or T (powers of 1024)\n"
           "  -C, --continue, --resume\n"
           "                        continue from where an earlier attempt (killed, failed)\n"
           "                        left the file (-o FILE, --put FILE) once the source\n"
           "                        confirms the bytes already moved are still its own;\n"
           "                        else start over. Keeps restart points while it runs\n"
           "      --resume-strict   with -C: fail (exit 6) instead of starting over when\n"
           "                        the source changed since the earlier attempt\n"
           "      --restart-interval=N  with -C or --retries: bytes between restart points\n"
           "                            (default 32M)\n"
           "      --checksum=TYPE   also compute md5, sha1, sha256 or xxh128 (the default)\n"
           "                        of the bytes moved, checked end to end; shown with -v\n"
           "                        and --json (Checksum, ChecksumType)\n"
           "      --check=SUM       fail (exit 5, nothing kept) unless the bytes moved have\n"
           "                        this sum (hex) of the --checksum type\n"
           "Queries:\n"
           "      --stat            type, size, mode and modification time of each REMOTE\n"
           "      --ls              list each REMOTE directory: mode, size, mtime, name\n"
           "Connection:\n"
           "  -P, --port=PORT       port for arguments that name none (default %d)\n"
           "      --timeout=D       give up on a server silent for D (default 30s); a busy\n"
           "                        server is not silent: --max-time bounds the wait\n"
           "      --max-time=D      give up on the whole run after D (default: no limit)\n"
           "                        D is seconds, or ends in s, m, h or d (90s, 5m, 2h)\n"
           "      --retries=N       try again N times when the server was lost, restarted,\n"
           "                        unreachable, stalled or timed out (default 0)\n"
           "      --retry-interval=D  wait D before the first retry (default 1s), twice\n"
           "                        as long before each next one, at most 5m (or D)\n"
           "Security:\n"
           "      --identity=NAME   who to bind as (a name in the server's key file)\n"
           "      --key-file=FILE   FILE holds NAME's secret (in base64, alone; mode 0600)\n"
           "      --security=LEVEL  none, auth (every packet authenticated) or encrypt\n"
           "                        (authenticated and encrypted); default: encrypt with\n"
           "                        --key-file, else none. Never lower it after a refusal.\n"
           "      --genkey [FILE]   write a new random secret into FILE (created, mode 0600;\n"
           "                        never replaced), or standard output, and exit\n"
           "Rate (docs/RATE.md; RATE in bits/s: 800k, 100M, 1G; the server may cap it):\n"
           "      --rate=RATE       at most RATE (with --policy fixed: exactly RATE)\n"
           "      --min-rate=RATE   at least RATE, whatever the policy would do\n"
           "      --policy=NAME     adaptive (default), fixed, or background (yield to\n"
           "                        other traffic)\n"
           "      --rate-control=FIFO  read changes while running from FIFO (made if\n"
           "                        missing): lines 'rate RATE', 'min-rate RATE',\n"
           "                        'policy NAME' (RATE none: no limit)\n"
           "Messages:\n"
           "      --progress        draw the progress bar even off a terminal\n"
           "      --no-progress     never draw it\n"
           "  -q, --quiet           report nothing but errors\n"
           "  -v, --verbose         report more, including the rpc2 library's debug log\n"
           "      --json            standard error carries only JSON events, one per line\n"
           "  -h, --help            show this help and exit\n"
           "  -V, --version         show the version and exit\n"
           "\n"
           "Exit status:\n"
           "  0  success\n"
           "  1  usage error: nothing was attempted\n"
           "  2  cannot reach the server, or lost it\n"
           "  3  the server refused: not found, permission, outside its root, read-only,\n"
           "     already exists, authentication failed, security level refused...\n"
           "  4  local error: a local file could not be opened, written or replaced, or the\n"
           "     key file cannot be used\n"
           "  5  data integrity error (the end-to-end checksum differed, or the sum is\n"
           "     not the one given with --check)\n"
           "  6  the source file changed while it was being sent\n"
           "With several REMOTEs rcat goes on after a failure and exits with the code of the\n"
           "first one. See rcat(1).\n",
           RPC2_DEFAULT_PORT);
}

enum {
    OPT_PUT = 256,
    OPT_OFFSET,
    OPT_LENGTH,
    OPT_STAT,
    OPT_LS,
    OPT_PROGRESS,
    OPT_NO_PROGRESS,
    OPT_JSON,
    OPT_TIMEOUT,
    OPT_MAX_TIME,
    OPT_IDENTITY,
    OPT_KEY_FILE,
    OPT_SECURITY,
    OPT_GENKEY,
    OPT_RATE,
    OPT_MIN_RATE,
    OPT_POLICY,
    OPT_RATE_CONTROL,
    OPT_PARENTS,
    OPT_RESUME_STRICT,
    OPT_RESTART_INTERVAL,
    OPT_CHECKSUM,
    OPT_CHECK,
    OPT_OVERWRITE,
    OPT_APPEND,
    OPT_MKDIRS,
    OPT_RETRIES,
    OPT_RETRY_INTERVAL,
};

static const struct option long_options[] = {
    {"output", required_argument, NULL, 'o'},
    {"put", required_argument, NULL, OPT_PUT},
    {"no-clobber", no_argument, NULL, 'n'},
    {"continue", no_argument, NULL, 'C'},
    {"resume", no_argument, NULL, 'C'},
    {"resume-strict", no_argument, NULL, OPT_RESUME_STRICT},
    {"restart-interval", required_argument, NULL, OPT_RESTART_INTERVAL},
    {"overwrite", no_argument, NULL, OPT_OVERWRITE},
    {"append", no_argument, NULL, OPT_APPEND},
    {"mkdirs", no_argument, NULL, OPT_MKDIRS},
    {"retries", required_argument, NULL, OPT_RETRIES},
    {"retry-interval", required_argument, NULL, OPT_RETRY_INTERVAL},
    {"preserve", no_argument, NULL, 'p'},
    {"offset", required_argument, NULL, OPT_OFFSET},
    {"length", required_argument, NULL, OPT_LENGTH},
    {"stat", no_argument, NULL, OPT_STAT},
    {"ls", no_argument, NULL, OPT_LS},
    {"port", required_argument, NULL, 'P'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"max-time", required_argument, NULL, OPT_MAX_TIME},
    {"identity", required_argument, NULL, OPT_IDENTITY},
    {"key-file", required_argument, NULL, OPT_KEY_FILE},
    {"security", required_argument, NULL, OPT_SECURITY},
    {"genkey", no_argument, NULL, OPT_GENKEY},
    {"parents", no_argument, NULL, OPT_PARENTS},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"json", no_argument, NULL, OPT_JSON},
    {"rate", required_argument, NULL, OPT_RATE},
    {"min-rate", required_argument, NULL, OPT_MIN_RATE},
    {"policy", required_argument, NULL, OPT_POLICY},
    {"rate-control", required_argument, NULL, OPT_RATE_CONTROL},
    {"checksum", required_argument, NULL, OPT_CHECKSUM},
    {"check", required_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void set_mode(struct options *opt, enum mode mode, const char *flag)
{
    if (opt->mode_flag && opt->mode != mode)
        bad("%s and %s cannot be combined", opt->mode_flag, flag);
    opt->mode = mode;
    opt->mode_flag = flag;
}

static void parse_size(const char *flag, const char *text, int64_t *out)
{
    if (url_parse_size(text, out) < 0)
        bad("%s: '%s' is not a byte count (digits, optionally K, M, G or T)", flag, text);
}

/* A duration from 1 ms to max_us (duration.h: 30, 1.5, 90s, 5m, 2h, 1d). */
static void parse_duration(const char *flag, const char *text, uint64_t max_us, uint64_t *us)
{
    char most[32];

    if (duration_parse(text, us) == 0 && *us >= DURATION_MIN_US && *us <= max_us)
        return;
    duration_format(max_us, most, sizeof most);
    bad("%s: '%s' is not a duration from 1 ms to %s (seconds, or with a unit: 90s, 5m, 2h, "
        "1d)",
        flag, text, most);
}

/* The levels as --security spells them, in enum rpc2_security's order. */
static const char *const level_names[] = {"none", "auth", "encrypt"};

static void parse_security(struct options *opt, const char *text)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++) {
        if (!strcmp(text, level_names[i])) {
            opt->ops.security = (enum rpc2_security)i;
            opt->security_set = 1;
            return;
        }
    }
    bad("--security: '%s' is not a level (none, auth or encrypt)", text);
}

/* Only a name a server's key file can list: 1 to 255 bytes, no blank or
 * control character (the file's words are separated by blanks). */
static void parse_identity(struct options *opt, const char *text)
{
    size_t n = strlen(text);

    opt->ops.identity = text;
    if (n == 0 || n > RCAT_IDENTITY_MAX) {
        bad("--identity: a name of 1 to %d bytes, please", RCAT_IDENTITY_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c <= ' ' || c == 0x7f) {
            bad("--identity: no spaces or control characters in the name");
            return;
        }
    }
}

/* -n, --overwrite and --append say what to do with an existing target:
 * one of them (ectrans's reject, overwrite, append). */
static void set_target(struct options *opt, const char *flag)
{
    if (opt->target_flag && strcmp(opt->target_flag, flag) != 0)
        bad("%s and %s cannot be combined", opt->target_flag, flag);
    opt->target_flag = flag;
    opt->ops.no_clobber = !strcmp(flag, "--no-clobber");
    opt->ops.append = !strcmp(flag, "--append");
}

static void parse_retries(struct options *opt, const char *text)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || n > RETRIES_MAX)
        bad("--retries: '%s' is not a count from 0 to %d", text, RETRIES_MAX);
    opt->retry.retries = (unsigned)n;
}

static void unknown_option(int c, char **argv)
{
    if (c == ':')
        bad("option '%s' needs an argument", argv[optind - 1]);
    else if (optopt)
        bad("unknown option '-%c'", optopt);
    else
        bad("unknown option '%s'", argv[optind - 1]);
}

/* --rate, --min-rate, --policy: the same words as a --rate-control line. */
static void parse_rate_option(struct options *opt, const char *key, const char *flag,
                              const char *what)
{
    char line[128];

    snprintf(line, sizeof line, "%s %s", key, optarg);
    if (ratectl_apply_line(&opt->ops.rate, line) < 0)
        bad("%s: '%s' is not %s", flag, optarg, what);
}

static void apply_option(struct options *opt, int c, char **argv)
{
    switch (c) {
    case 'o':
        opt->output = optarg;
        break;
    case OPT_PUT:
        set_mode(opt, MODE_PUT, "--put");
        opt->put = optarg;
        break;
    case 'C':
        opt->ops.resume = 1;
        break;
    case OPT_RESUME_STRICT:
        opt->ops.resume_strict = 1;
        break;
    case OPT_RESTART_INTERVAL: {
        int64_t n = 0;

        parse_size("--restart-interval", optarg, &n);
        if (n <= 0)
            bad("--restart-interval: give a positive byte count");
        opt->ops.resume_interval = n > 0 ? (uint64_t)n : 0;
        opt->restart_interval_set = 1;
        break;
    }
    case 'n':
        set_target(opt, "--no-clobber");
        break;
    case OPT_OVERWRITE:
        set_target(opt, "--overwrite");
        break;
    case OPT_APPEND:
        set_target(opt, "--append");
        break;
    case OPT_MKDIRS:
        opt->ops.mkdirs = 1;
        break;
    case OPT_RETRIES:
        parse_retries(opt, optarg);
        break;
    case OPT_RETRY_INTERVAL:
        parse_duration("--retry-interval", optarg, DURATION_MAX_US, &opt->retry.interval_us);
        break;
    case 'p':
        opt->ops.preserve = 1;
        break;
    case OPT_OFFSET:
        parse_size("--offset", optarg, &opt->ops.offset);
        opt->offset_set = 1;
        break;
    case OPT_LENGTH:
        parse_size("--length", optarg, &opt->ops.length);
        opt->length_set = 1;
        break;
    case OPT_STAT:
        set_mode(opt, MODE_STAT, "--stat");
        break;
    case OPT_LS:
        set_mode(opt, MODE_LS, "--ls");
        break;
    case 'P':
        if (url_parse_port(optarg, &opt->port) < 0)
            bad("-P: '%s' is not a port (1 to 65535)", optarg);
        break;
    case OPT_TIMEOUT: {
        uint64_t us = 0;

        parse_duration("--timeout", optarg, TIMEOUT_MAX_US, &us);
        opt->ops.dead_peer_us = (uint32_t)us;
        break;
    }
    case OPT_MAX_TIME:
        parse_duration("--max-time", optarg, DURATION_MAX_US, &opt->ops.max_time_us);
        break;
    case OPT_IDENTITY:
        parse_identity(opt, optarg);
        break;
    case OPT_KEY_FILE:
        opt->ops.key_file = optarg;
        break;
    case OPT_SECURITY:
        parse_security(opt, optarg);
        break;
    case OPT_PARENTS:
        opt->parents = 1;
        break;
    case OPT_GENKEY:
        opt->genkey = 1;
        break;
    case OPT_RATE:
        parse_rate_option(opt, "rate", "--rate", "a rate (bits/s: 800k, 100M, 1G)");
        break;
    case OPT_MIN_RATE:
        parse_rate_option(opt, "min-rate", "--min-rate", "a rate (bits/s: 800k, 100M, 1G)");
        break;
    case OPT_POLICY:
        parse_rate_option(opt, "policy", "--policy", "a policy (adaptive, fixed, background)");
        break;
    case OPT_RATE_CONTROL:
        opt->ops.rate.control = optarg;
        break;
    case OPT_CHECKSUM:
        if (checksum_set_type(&opt->ops.sum, optarg) < 0)
            bad("--checksum: '%s' is not md5, sha1, sha256 or xxh128", optarg);
        break;
    case OPT_CHECK:
        opt->ops.sum.check = optarg;
        break;
    case OPT_PROGRESS:
    case OPT_NO_PROGRESS:
        opt->progress = c == OPT_PROGRESS;
        break;
    case 'q':
        opt->quiet = 1;
        break;
    case 'v':
        opt->verbose = 1;
        break;
    case OPT_JSON:
        opt->json = 1;
        break;
    case 'h':
        opt->help = 1;
        break;
    case 'V':
        opt->version = 1;
        break;
    default:
        unknown_option(c, argv);
    }
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    int c;

    memset(opt, 0, sizeof *opt);
    opt->mode = MODE_FETCH;
    opt->port = RPC2_DEFAULT_PORT;
    opt->ops.length = RPC2_SE_NO_QUOTA;
    opt->progress = -1;
    opt->retry.interval_us = RETRY_INTERVAL_US;
    opterr = 0; /* messages are ours: --json may be on */
    while ((c = getopt_long(argc, argv, ":o:P:CnpqvhV", long_options, NULL)) != -1)
        apply_option(opt, c, argv);
    opt->operands = argv + optind;
    opt->n_operands = argc - optind;
    opt->ops.verbose = opt->verbose;
    const char *why;
    if (checksum_finish(&opt->ops.sum, &why) < 0)
        bad("--check: '%s' is %s", opt->ops.sum.check, why);
    if (!opt->security_set && opt->ops.key_file)
        opt->ops.security = RPC2_SEC_ENCRYPT; /* a key is given to be used, at the best level */
}

static int output_is_dir(const char *out);
static int writes_stdout(const struct options *opt);

/* Options that mean nothing for the chosen operation are refused, not
 * silently ignored: a script that passes them expects something. */
static void check_combinations(const struct options *opt)
{
    int query = opt->mode == MODE_STAT || opt->mode == MODE_LS;

    if (opt->genkey) {
        struct url u;
        const char *why;

        if (opt->n_operands > 1)
            bad("--genkey takes one FILE to create, or none for standard output");
        else if (opt->n_operands == 1 && url_parse(opt->operands[0], 0, &u, &why) == 0 &&
                 u.remote)
            bad("--genkey %s: the key file is local (write ./%s for a local name with ':')",
                opt->operands[0], opt->operands[0]);
        return;
    }
    if (opt->quiet && opt->verbose)
        bad("-q and -v cannot be combined");
    if (query && (opt->output || opt->offset_set || opt->length_set || opt->ops.preserve ||
                  opt->target_flag || opt->ops.mkdirs))
        bad("%s takes none of -o, --offset, --length, -p, %s", opt->mode_flag,
            opt->target_flag ? opt->target_flag : "--mkdirs");
    if (opt->ops.append && writes_stdout(opt))
        bad("--append adds to a file: name it with -o FILE");
    if (opt->ops.append && opt->ops.preserve)
        bad("--append and -p cannot be combined (the file is not the source's)");
    if (opt->mode == MODE_PUT && opt->output)
        bad("--put stores on the server: -o makes no sense with it");
    if ((query || opt->n_operands > 1) && opt->ops.sum.check)
        bad("--check compares the sum of one file: give one REMOTE to fetch or store");
    if (query && opt->ops.sum.type)
        bad("%s moves no data: --checksum makes no sense with it", opt->mode_flag);
    if (opt->parents && !(opt->mode == MODE_FETCH && opt->output && output_is_dir(opt->output)))
        bad("--parents keeps remote paths beneath a directory: it needs -o DIR/");
    if (opt->ops.security != RPC2_SEC_NONE && (!opt->ops.identity || !opt->ops.key_file))
        bad("--security %s needs --identity NAME and --key-file FILE",
            level_names[opt->ops.security]);
    if (opt->n_operands == 0)
        bad(opt->mode == MODE_PUT ? "--put needs a REMOTE destination" : "missing REMOTE operand");
    if ((opt->ops.resume_strict || opt->restart_interval_set) && !opt->ops.resume &&
        !opt->retry.retries)
        bad("--resume-strict and --restart-interval go with -C (--continue) or --retries");
    if (opt->ops.resume &&
        (query || opt->offset_set || opt->length_set || opt->ops.append ||
         (opt->mode == MODE_FETCH && (!opt->output || !strcmp(opt->output, "-"))) ||
         (opt->mode == MODE_PUT && !strcmp(opt->put, "-"))))
        bad("-C continues a whole file: it needs -o FILE or --put FILE, without --offset, "
            "--length or --append");
    if (opt->mode == MODE_PUT && opt->n_operands > 1)
        bad("--put takes one REMOTE destination, not %d", opt->n_operands);
}

/* ---- operands ------------------------------------------------------------ */

static int output_is_dir(const char *out)
{
    size_t n = strlen(out);
    struct stat st;

    return (n > 0 && out[n - 1] == '/') || (stat(out, &st) == 0 && S_ISDIR(st.st_mode));
}

static int to_directory(const struct options *opt)
{
    return opt->mode == MODE_FETCH && opt->output && strcmp(opt->output, "-") != 0 &&
           output_is_dir(opt->output);
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
        bad("%s: name the remote file (no name to take from '%s')", opt->operands[0], opt->put);
    else if (n + strlen(base) > URL_PATH_MAX)
        bad("%s: remote path too long", opt->operands[0]);
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

static void check_operand(const struct options *opt, const char *arg, const struct url *u)
{
    int needs_path = opt->mode == MODE_FETCH;

    if (!u->remote)
        bad("%s: not a remote argument (rcat://HOST/PATH or HOST:PATH)", arg);
    else if (needs_path && !u->path[0])
        bad("%s: no remote path", arg);
    else if (to_directory(opt) && !url_basename(u->path))
        bad("%s: no file name to give the copy in %s", arg, opt->output);
    else if (to_directory(opt) && opt->parents && !kept_path(u->path))
        bad("%s: --parents cannot keep a path with '..' or empty components beneath %s", arg,
            opt->output);
}

static struct url *parse_operands(const struct options *opt)
{
    struct url *urls = calloc((size_t)opt->n_operands + 1, sizeof *urls);
    const char *why;

    if (!urls) {
        bad("out of memory");
        return NULL;
    }
    for (int i = 0; i < opt->n_operands; i++) {
        const char *arg = opt->operands[i];

        if (url_parse(arg, opt->port, &urls[i], &why) < 0)
            bad("%s: %s", arg, why);
        else
            check_operand(opt, arg, &urls[i]);
    }
    if (opt->mode == MODE_PUT && opt->n_operands == 1 && urls[0].remote)
        complete_put_target(opt, &urls[0]);
    if (opt->mode == MODE_FETCH && opt->output && opt->n_operands > 1 && !to_directory(opt) &&
        strcmp(opt->output, "-") != 0)
        bad("-o %s with %d sources: name a directory (end it with '/')", opt->output,
            opt->n_operands);
    return urls;
}

/* ---- running ------------------------------------------------------------- */

static int writes_stdout(const struct options *opt)
{
    return opt->mode == MODE_FETCH && (!opt->output || !strcmp(opt->output, "-"));
}

/* A bar only where someone watches it, and not across file contents that
 * are being written to the same terminal. */
static int want_progress(const struct options *opt)
{
    if (opt->progress >= 0)
        return opt->progress;
    if (opt->mode != MODE_FETCH && opt->mode != MODE_PUT)
        return 0;
    return isatty(STDERR_FILENO) && !(writes_stdout(opt) && isatty(STDOUT_FILENO));
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
        dest = opt->operands[0];
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
    return writes_stdout(opt) || opt->mode == MODE_STAT || opt->mode == MODE_LS || opt->genkey;
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
    for (int i = 0; i < opt->n_operands; i++) {
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
    struct url *urls = NULL;
    int code;
    unsigned closed_std = open_closed_std();

    parse_options(argc, argv, &opt);
    opt.closed_std = closed_std;
    if (opt.help || opt.version) {
        if (opt.help)
            usage();
        else
            printf("rcat (rpc2) %s\n", PACKAGE_VERSION);
        return fflush(stdout) == 0 ? RCAT_EXIT_OK : RCAT_EXIT_LOCAL;
    }
    check_combinations(&opt);
    /* A retry continues from the last restart point, as -C does, where -C
     * could (ops.c says where): the first attempt must already keep them. */
    if (opt.retry.retries > 0)
        opt.ops.resume = 1;
    if (opt.genkey && !usage_error[0])
        return genkey(&opt);
    if (!usage_error[0])
        urls = parse_operands(&opt);
    start_reporting(&opt);
    if (usage_error[0]) {
        report_usage("%s", usage_error);
        code = finish(RCAT_EXIT_USAGE);
    } else {
        code = finish(run(&opt, urls));
    }
    free(urls);
    return code;
}
