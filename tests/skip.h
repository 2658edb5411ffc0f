/*
 * skip.h - a test case that cannot run on this machine says so, instead of
 * returning early and passing.
 *
 * Check has no skipped state, so a skip is a line on stderr that automake
 * keeps in the program's .log: "RPC2-SKIP: test: why". .ci/run counts
 * these lines per program and prints them. A skip is also a claim about
 * the machine ("no IPv6 here", "not root"), and a case that skipped where
 * the claim is false hides a regression behind a pass: with
 * RPC2_TEST_STRICT set (CI sets it), a skip on a machine that has what the
 * case needs fails the case instead. What the machine has is asked here,
 * independently of the code under test (never "the code said EACCES, so
 * we must lack the capability").
 */
#ifndef RPC2_TEST_SKIP_H
#define RPC2_TEST_SKIP_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#include <check.h>

static inline bool skip_strict(void)
{
    const char *s = getenv("RPC2_TEST_STRICT");
    return s && *s && strcmp(s, "0") != 0;
}

static inline bool machine_is_root(void)
{
    return geteuid() == 0;
}

/* ::1 can be bound and reached: what the IPv6 cases need. */
static inline bool machine_has_ipv6_loopback(void)
{
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int fd = socket(AF_INET6, SOCK_DGRAM, 0);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;

    if (fd >= 0)
        close(fd);
    return ok;
}

/* AES-NI and carry-less multiply, asked of the CPU itself. */
static inline bool machine_has_aesni(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#else
    return false;
#endif
}

/* The effective capability set has cap (CAP_DAC_READ_SEARCH, ...). */
static inline bool machine_has_capability(int cap)
{
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
    struct __user_cap_data_struct c[2];

    if (syscall(SYS_capget, &h, c) != 0)
        return false;
    return (c[cap / 32].effective >> (cap % 32)) & 1u;
}

/* A full run: RPC2_TEST_SMALL (the sanitizer and valgrind builds) leaves the
 * big cases out on purpose. */
static inline bool machine_runs_big_cases(void)
{
    const char *s = getenv("RPC2_TEST_SMALL");
    return !(s && *s && strcmp(s, "0") != 0);
}

/*
 * Reports that test did not run, and why. machine_can says whether this
 * machine has what the case needs (one of the machine_* questions above,
 * or false for a want outside the machine's kind, such as 12 GiB of free
 * disk): under RPC2_TEST_STRICT a skip where it was true fails the case.
 */
static inline void test_skip(const char *test, bool machine_can, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, "RPC2-SKIP: %s: %s\n", test, why);
    fflush(stderr);
    if (machine_can && skip_strict())
        ck_abort_msg("%s skipped (%s) on a machine that can run it", test, why);
}

#endif
