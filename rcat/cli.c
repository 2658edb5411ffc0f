/*
 * cli.c - rcat's command line: the help text, the options and their
 * words, and the combinations refused before anything touches the network.
 * Messages are rcat's own (opterr is off) so that they can be JSON too.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rpc2/rpc2.h>
#include <rpc2/se.h>

#include "cli.h"
#include "duration.h"
#include "level.h"
#include "split.h"
#include "url.h"

#define TIMEOUT_MAX_US 4294000000ull /* dead_peer_us is 32 bits of microseconds */
#define DURATION_MIN_US 1000ull      /* 1 ms: less is a typo, not a limit */
#define RETRIES_MAX 1000000

/* The first usage error. */
static char usage_error[512];

void cli_bad(const char *fmt, ...)
{
    va_list ap;

    if (usage_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(usage_error, sizeof usage_error, fmt, ap);
    va_end(ap);
}

const char *cli_usage_error(void)
{
    return usage_error;
}

void cli_usage(void)
{
    printf("Usage: rcat [OPTION]... REMOTE...             write them to standard output\n"
           "  or:  rcat [OPTION]... -o FILE REMOTE        fetch into FILE\n"
           "  or:  rcat [OPTION]... -o DIR/ REMOTE...     fetch each into DIR/BASENAME\n"
           "  or:  rcat [OPTION]... --put LOCAL REMOTE    store LOCAL on the server\n"
           "  or:  rcat [OPTION]... --stat|--ls REMOTE... describe or list remote paths\n"
           "  or:  rcat -r [OPTION]... REMOTE... LOCAL     copy files and trees from the server\n"
           "  or:  rcat -r [OPTION]... --put LOCAL... REMOTE  copy files and trees to it\n"
           "  or:  rcat [OPTION]... --mkdir|--rm|--glob|--sum|--readlink REMOTE...\n"
           "  or:  rcat [OPTION]... --mv REMOTE TO         rename on the server\n"
           "  or:  rcat [OPTION]... --symlink=TARGET REMOTE  make a symlink on the server\n"
           "  or:  rcat queue put|get|status|list|cancel|run ... a spool (rcat queue --help)\n"
           "  or:  rcat handoff send|receive ... a directory handed over (rcat handoff --help)\n"
           "Move files to and from an rcatd server over rpc2.\n"
           "\n"
           "REMOTE is rcat://HOST[:PORT]/PATH (percent-escapes decoded) or, as with scp,\n"
           "HOST:PATH ([ADDR]:PATH for IPv6). An argument with a '/' before any ':' is\n"
           "local: write ./a:b for a file named a:b. Paths are relative to the server's\n"
           "root. @NAME:PATH is PATH beneath the directory of association NAME, whose\n"
           "host, identity, key file and option defaults apply (~/.config/rcat/associations,\n"
           "/etc/rcat/associations or $RCAT_ASSOCIATIONS; rcat(1)).\n"
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
           "      --split=N         move a large file (-o FILE, or --put FILE) as N byte\n"
           "                        ranges at once, over N connections (at most %d; 1:\n"
           "                        not split) and one total --rate, into one temporary,\n"
           "                        checksummed whole against the other side's sum\n"
           "                        before it takes the name; a file under %d MiB a\n"
           "                        range, or a standard stream, is moved whole\n"
           "Trees (-r):\n"
           "  -r, --recursive       copy directories with everything beneath them: files,\n"
           "                        directories (empty ones too) and symbolic links (as\n"
           "                        links); the last operand is the destination, a copy\n"
           "                        goes beneath it when it is a directory. A REMOTE may\n"
           "                        hold wildcards (HOST:'logs/*.gz'), matched on the\n"
           "                        server's listing; -p keeps modes and mtimes\n"
           "  -j, --jobs=N          files in flight at once, over N connections (default\n"
           "                        %d, at most %d)\n"
           "      --skip-existing   leave a file whose copy has the same size and mtime\n"
           "                        (use -p so that copies keep the source's mtime)\n"
           "      --checksum-compare  leave a file whose copy has the same content, by a\n"
           "                        checksum computed at each end (no data moved)\n"
           "Queries:\n"
           "      --stat            type, size, mode and modification time of each REMOTE\n"
           "      --ls              list each REMOTE directory: mode, size, mtime, name\n"
           "Remote operations (within the server's root and the identity's rights):\n"
           "      --mkdir           make each REMOTE directory; with --parents, also the\n"
           "                        missing ones above, and one already there is fine\n"
           "      --mv              rename REMOTE to TO (HOST:PATH on the same server, or a\n"
           "                        path there), atomically; -n: refuse if TO exists\n"
           "      --rm              remove each REMOTE file or symlink; --dir: also empty\n"
           "                        directories; -r, --recursive: directories with all\n"
           "                        they hold (symlinks removed, never followed)\n"
           "      --glob            list what each REMOTE pattern (* ? [...] in any\n"
           "                        component; quote it) matches: mode, size, mtime, path\n"
           "      --sum             the --checksum (default xxh128) of each REMOTE file,\n"
           "                        computed by the server, printed as sha256sum does\n"
           "      --readlink        the target of each REMOTE symlink\n"
           "      --symlink=TARGET  make REMOTE a symlink to TARGET (stored as given)\n"
           "Connection:\n"
           "  -P, --port=PORT       port for arguments that name none (default %d)\n"
           "      --timeout=D       give up on a server silent for D (default 30s); a busy\n"
           "                        server is not silent: --max-time bounds the wait\n"
           "      --listen=[ADDR:]PORT  for a server that cannot be reached (its firewall\n"
           "                        lets only its own traffic out): wait on PORT for it to\n"
           "                        announce itself (rcatd --connect), at most --timeout,\n"
           "                        then connect to it; only the HOST each REMOTE names\n"
           "                        is believed, and its port comes from the announcement\n"
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
           "  -v, --verbose         report more: a line per second while a file moves (rate,\n"
           "                        RTT, loss), and the rpc2 library's debug log\n"
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
           SPLIT_MAX, (int)(SPLIT_MIN_RANGE >> 20), CLI_JOBS_DEFAULT, CLI_JOBS_MAX,
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
    OPT_MKDIR,
    OPT_MV,
    OPT_RM,
    OPT_DIR,
    OPT_GLOB,
    OPT_SUM,
    OPT_READLINK,
    OPT_SYMLINK,
    /* rcat -r */
    OPT_SKIP_EXISTING,
    OPT_CHECKSUM_COMPARE,
    OPT_LISTEN,
    OPT_SPLIT,
};

const struct option cli_long_options[] = {
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
    {"listen", required_argument, NULL, OPT_LISTEN},
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
    {"mkdir", no_argument, NULL, OPT_MKDIR},
    {"mv", no_argument, NULL, OPT_MV},
    {"rm", no_argument, NULL, OPT_RM},
    {"dir", no_argument, NULL, OPT_DIR},
    {"glob", no_argument, NULL, OPT_GLOB},
    {"sum", no_argument, NULL, OPT_SUM},
    {"readlink", no_argument, NULL, OPT_READLINK},
    {"symlink", required_argument, NULL, OPT_SYMLINK},
    /* rcat -r */
    {"recursive", no_argument, NULL, 'r'},
    {"jobs", required_argument, NULL, 'j'},
    {"skip-existing", no_argument, NULL, OPT_SKIP_EXISTING},
    {"checksum-compare", no_argument, NULL, OPT_CHECKSUM_COMPARE},
    {"split", required_argument, NULL, OPT_SPLIT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void set_mode(struct options *opt, enum mode mode, const char *flag)
{
    if (opt->mode_flag && opt->mode != mode)
        cli_bad("%s and %s cannot be combined", opt->mode_flag, flag);
    opt->mode = mode;
    opt->mode_flag = flag;
}

static void parse_size(const char *flag, const char *text, int64_t *out)
{
    if (url_parse_size(text, out) < 0)
        cli_bad("%s: '%s' is not a byte count (digits, optionally K, M, G or T)", flag, text);
}

/* A duration from 1 ms to max_us (duration.h: 30, 1.5, 90s, 5m, 2h, 1d). */
static void parse_duration(const char *flag, const char *text, uint64_t max_us, uint64_t *us)
{
    char most[32];

    if (duration_parse(text, us) == 0 && *us >= DURATION_MIN_US && *us <= max_us)
        return;
    duration_format(max_us, most, sizeof most);
    cli_bad("%s: '%s' is not a duration from 1 ms to %s (seconds, or with a unit: 90s, 5m, 2h, "
            "1d)",
            flag, text, most);
}

static void parse_security(struct options *opt, const char *text)
{
    if (level_parse(text, strlen(text), &opt->ops.security) == 0) {
        opt->security_set = 1;
        return;
    }
    cli_bad("--security: '%s' is not a level (none, auth or encrypt)", text);
}

/* Only a name a server's key file can list: 1 to 255 bytes, no blank or
 * control character (the file's words are separated by blanks). */
static void parse_identity(struct options *opt, const char *text)
{
    size_t n = strlen(text);

    opt->ops.identity = text;
    if (n == 0 || n > RCAT_IDENTITY_MAX) {
        cli_bad("--identity: a name of 1 to %d bytes, please", RCAT_IDENTITY_MAX);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];

        if (c <= ' ' || c == 0x7f) {
            cli_bad("--identity: no spaces or control characters in the name");
            return;
        }
    }
}

/* -n, --overwrite and --append say what to do with an existing target:
 * one of them (ectrans's reject, overwrite, append). */
static void set_target(struct options *opt, const char *flag)
{
    if (opt->target_flag && strcmp(opt->target_flag, flag) != 0)
        cli_bad("%s and %s cannot be combined", opt->target_flag, flag);
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
        cli_bad("--retries: '%s' is not a count from 0 to %d", text, RETRIES_MAX);
    opt->retry.retries = (unsigned)n;
}

static void unknown_option(int c, char **argv)
{
    if (c == ':')
        cli_bad("option '%s' needs an argument", argv[optind - 1]);
    else if (optopt)
        cli_bad("unknown option '-%c'", optopt);
    else
        cli_bad("unknown option '%s'", argv[optind - 1]);
}

/* --rate, --min-rate, --policy: the same words as a --rate-control line. */
static void parse_rate_option(struct options *opt, const char *key, const char *flag,
                              const char *what)
{
    char line[128];

    snprintf(line, sizeof line, "%s %s", key, optarg);
    if (ratectl_apply_line(&opt->ops.rate, line) < 0)
        cli_bad("%s: '%s' is not %s", flag, optarg, what);
}

/* A whole number from 1 to max (-j, --split); a bad one is a usage error. */
static unsigned parse_count(const char *flag, const char *text, unsigned max)
{
    char *end;
    unsigned long n;

    errno = 0;
    n = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || n < 1 || n > max) {
        cli_bad("%s: '%s' is not a count from 1 to %u", flag, text, max);
        return 1;
    }
    return (unsigned)n;
}

/* -r and what goes with it. 1 when c was one of them. */
static int apply_tree_option(struct options *opt, int c)
{
    switch (c) {
    case 'r': /* copies trees; with --rm, removes them */
        opt->ops.recursive = 1;
        opt->recursive = 1;
        return 1;
    case 'j':
        opt->ops.jobs = parse_count("-j", optarg, CLI_JOBS_MAX);
        opt->jobs_set = 1;
        return 1;
    case OPT_SKIP_EXISTING:
        opt->ops.skip_existing = 1;
        return 1;
    case OPT_CHECKSUM_COMPARE:
        opt->ops.checksum_compare = 1;
        return 1;
    }
    return 0;
}

/* The remote operations' modes and flags; 0 when c is none of them. */
static int apply_remote_option(struct options *opt, int c)
{
    switch (c) {
    case OPT_MKDIR:
        set_mode(opt, MODE_MKDIR, "--mkdir");
        return 1;
    case OPT_MV:
        set_mode(opt, MODE_MV, "--mv");
        return 1;
    case OPT_RM:
        set_mode(opt, MODE_RM, "--rm");
        return 1;
    case OPT_GLOB:
        set_mode(opt, MODE_GLOB, "--glob");
        return 1;
    case OPT_SUM:
        set_mode(opt, MODE_SUM, "--sum");
        return 1;
    case OPT_READLINK:
        set_mode(opt, MODE_READLINK, "--readlink");
        return 1;
    case OPT_SYMLINK:
        set_mode(opt, MODE_SYMLINK, "--symlink");
        opt->symlink_target = optarg;
        return 1;
    case OPT_DIR:
        opt->rm_dir = 1;
        return 1;
    }
    return 0;
}

/* --split moves one file whole, fetched or stored: a range, an append, a
 * resumed file or a tree are moved otherwise. */
static void check_split(const struct options *opt)
{
    if (!opt->split_set)
        return;
    if ((opt->mode != MODE_FETCH && opt->mode != MODE_PUT) || cli_tree(opt))
        cli_bad("--split goes with the fetch or --put of a file (for trees, -j moves several "
                "at once)");
    else if (opt->offset_set || opt->length_set || opt->ops.append || opt->ops.resume)
        cli_bad("--split moves a whole file: --offset, --length, --append and -C make no "
                "sense with it");
}

static void apply_option(struct options *opt, int c, char **argv)
{
    if (apply_tree_option(opt, c) || apply_remote_option(opt, c))
        return;
    switch (c) {
    case OPT_SPLIT: /* ranges of one large fetch at once (split.h); 1: not split */
        opt->ops.split = parse_count("--split", optarg, SPLIT_MAX);
        opt->split_set = 1;
        break;
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
            cli_bad("--restart-interval: give a positive byte count");
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
            cli_bad("-P: '%s' is not a port (1 to 65535)", optarg);
        break;
    case OPT_TIMEOUT: {
        uint64_t us = 0;

        parse_duration("--timeout", optarg, TIMEOUT_MAX_US, &us);
        opt->ops.dead_peer_us = (uint32_t)us;
        break;
    }
    case OPT_LISTEN: {
        const char *colon = strrchr(optarg, ':');
        unsigned port;

        if (url_parse_port(colon ? colon + 1 : optarg, &port) < 0)
            cli_bad("--listen: '%s' is not [ADDR:]PORT (PORT from 1 to 65535)", optarg);
        opt->ops.listen = optarg;
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
            cli_bad("--checksum: '%s' is not md5, sha1, sha256 or xxh128", optarg);
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

void cli_parse(int argc, char **argv, struct options *opt)
{
    int c;

    memset(opt, 0, sizeof *opt);
    opt->mode = MODE_FETCH;
    opt->port = RPC2_DEFAULT_PORT;
    opt->ops.length = RPC2_SE_NO_QUOTA;
    opt->progress = -1;
    opt->retry.interval_us = RETRY_INTERVAL_US;
    opt->ops.jobs = CLI_JOBS_DEFAULT;
    opterr = 0; /* messages are ours: --json may be on */
    while ((c = getopt_long(argc, argv, CLI_SHORT_OPTIONS, cli_long_options, NULL)) != -1)
        apply_option(opt, c, argv);
    opt->operands = argv + optind;
    opt->n_operands = argc - optind;
    opt->ops.verbose = opt->verbose;
    const char *why;
    if (checksum_finish(&opt->ops.sum, &why) < 0)
        cli_bad("--check: '%s' is %s", opt->ops.sum.check, why);
    if (!opt->security_set && opt->ops.key_file)
        opt->ops.security = RPC2_SEC_ENCRYPT; /* a key is given to be used, at the best level */
}

int cli_output_is_dir(const char *out)
{
    size_t n = strlen(out);
    struct stat st;

    return (n > 0 && out[n - 1] == '/') || (stat(out, &st) == 0 && S_ISDIR(st.st_mode));
}

int cli_remote_op(enum mode m)
{
    return m >= MODE_MKDIR;
}

int cli_writes_stdout(const struct options *opt)
{
    return opt->mode == MODE_FETCH && (!opt->output || !strcmp(opt->output, "-"));
}

int cli_tree(const struct options *opt)
{
    return (opt->mode == MODE_FETCH || opt->mode == MODE_PUT) &&
           (opt->ops.recursive || (opt->mode == MODE_PUT && opt->n_operands > 1));
}

/* rcat -r: the last operand is the destination, the others sources. */
static void check_tree(const struct options *opt)
{
    int tree = cli_tree(opt);

    if (!tree && (opt->jobs_set || opt->ops.skip_existing || opt->ops.checksum_compare))
        cli_bad("-j, --skip-existing and --checksum-compare go with -r");
    if (!tree)
        return;
    if (opt->output)
        cli_bad("-r: name the destination as the last operand, not with -o");
    else if (opt->offset_set || opt->length_set || opt->ops.append || opt->ops.resume ||
             opt->ops.sum.check || opt->retry.retries)
        cli_bad("-r copies whole files: --offset, --length, --append, -C, --check and --retries "
                "make no sense with it");
    else if (opt->mode == MODE_FETCH && opt->n_operands < 2)
        cli_bad("-r needs a REMOTE source and a LOCAL destination");
    else if (opt->mode == MODE_PUT && !strcmp(opt->put, "-"))
        cli_bad("-r --put copies files: standard input is not one");
}

/* The remote operations take none of the transfer's options; -n goes
 * with --mv, -r and --dir with --rm, --parents with --mkdir, --checksum
 * with --sum. */
static void check_remote_op(const struct options *opt)
{
    enum mode m = opt->mode;

    if (opt->rm_dir && m != MODE_RM)
        cli_bad("--dir removes directories: it goes with --rm");
    if (opt->recursive && m != MODE_RM && m != MODE_FETCH && m != MODE_PUT)
        cli_bad("-r copies trees (and removes them with --rm): %s makes no sense with it",
                opt->mode_flag);
    if (!cli_remote_op(m))
        return;
    if (opt->output || opt->offset_set || opt->length_set || opt->ops.preserve || opt->ops.mkdirs ||
        opt->ops.resume || opt->ops.sum.check ||
        (opt->target_flag && !(m == MODE_MV && opt->ops.no_clobber)))
        cli_bad("%s takes none of -o, --offset, --length, -p, --mkdirs, -C, --check, %s",
                opt->mode_flag, m == MODE_MV ? "--overwrite, --append" : "-n, --append");
    if (opt->ops.sum.type && m != MODE_SUM)
        cli_bad("%s moves no data: --checksum makes no sense with it", opt->mode_flag);
    if (m == MODE_MV && opt->n_operands != 2)
        cli_bad("--mv takes two operands: REMOTE and its new name");
    if (m == MODE_SYMLINK && !opt->symlink_target[0])
        cli_bad("--symlink: an empty TARGET");
}

/* Options that mean nothing for the chosen operation are refused, not
 * silently ignored: a script that passes them expects something. */
void cli_check(const struct options *opt)
{
    int query = opt->mode == MODE_STAT || opt->mode == MODE_LS;

    if (opt->genkey) {
        struct url u;
        const char *why;

        if (opt->n_operands > 1)
            cli_bad("--genkey takes one FILE to create, or none for standard output");
        else if (opt->n_operands == 1 && url_parse(opt->operands[0], 0, &u, &why) == 0 && u.remote)
            cli_bad("--genkey %s: the key file is local (write ./%s for a local name with ':')",
                    opt->operands[0], opt->operands[0]);
        return;
    }
    if (opt->quiet && opt->verbose)
        cli_bad("-q and -v cannot be combined");
    if (query && (opt->output || opt->offset_set || opt->length_set || opt->ops.preserve ||
                  opt->target_flag || opt->ops.mkdirs))
        cli_bad("%s takes none of -o, --offset, --length, -p, %s", opt->mode_flag,
                opt->target_flag ? opt->target_flag : "--mkdirs");
    if (opt->ops.append && cli_writes_stdout(opt))
        cli_bad("--append adds to a file: name it with -o FILE");
    if (opt->ops.append && opt->ops.preserve)
        cli_bad("--append and -p cannot be combined (the file is not the source's)");
    if (opt->mode == MODE_PUT && opt->output)
        cli_bad("--put stores on the server: -o makes no sense with it");
    if ((query || opt->n_operands > 1) && opt->ops.sum.check)
        cli_bad("--check compares the sum of one file: give one REMOTE to fetch or store");
    if (query && opt->ops.sum.type)
        cli_bad("%s moves no data: --checksum makes no sense with it", opt->mode_flag);
    check_remote_op(opt);
    if (opt->parents && opt->mode != MODE_MKDIR &&
        !(opt->mode == MODE_FETCH && opt->output && cli_output_is_dir(opt->output)))
        cli_bad("--parents keeps remote paths beneath a directory: it needs -o DIR/");
    if (opt->ops.security != RPC2_SEC_NONE && (!opt->ops.identity || !opt->ops.key_file))
        cli_bad("--security %s needs --identity NAME and --key-file FILE",
                level_name(opt->ops.security));
    if (opt->n_operands == 0)
        cli_bad(opt->mode == MODE_PUT ? "--put needs a REMOTE destination"
                                      : "missing REMOTE operand");
    if ((opt->ops.resume_strict || opt->restart_interval_set) && !opt->ops.resume &&
        !opt->retry.retries)
        cli_bad("--resume-strict and --restart-interval go with -C (--continue) or --retries");
    if (opt->ops.resume &&
        (query || opt->offset_set || opt->length_set || opt->ops.append ||
         (opt->mode == MODE_FETCH && (!opt->output || !strcmp(opt->output, "-"))) ||
         (opt->mode == MODE_PUT && !strcmp(opt->put, "-"))))
        cli_bad("-C continues a whole file: it needs -o FILE or --put FILE, without --offset, "
                "--length or --append");
    check_tree(opt);
    check_split(opt);
}

/* ---- operands ------------------------------------------------------------ */
