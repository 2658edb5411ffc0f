/*
 * queue_words.c - the spool's word lists (queue_words.h): netstrings in
 * the database, and the operator's hook commands split into words without
 * a shell.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue_words.h"

char *words_join(char *const *argv, int n)
{
    size_t len = 1;
    char *out, *p;

    for (int i = 0; i < n; i++)
        len += strlen(argv[i]) + 24;
    out = p = malloc(len);
    if (!out)
        return NULL;
    *p = '\0';
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%zu:%s,", strlen(argv[i]), argv[i]);
    return out;
}

void words_free(char **argv)
{
    for (char **a = argv; a && *a; a++)
        free(*a);
    free(argv);
}

int words_split(const char *text, char ***argv, int *n)
{
    char **out = calloc(strlen(text) / 3 + 2, sizeof *out);
    int count = 0;

    if (!out)
        return -1;
    for (const char *p = text; *p;) {
        char *end;
        unsigned long len = strtoul(p, &end, 10);

        if (end == p || *end != ':' || strlen(end + 1) < len + 1 || end[1 + len] != ',') {
            words_free(out);
            return -1;
        }
        out[count] = strndup(end + 1, len);
        if (!out[count]) {
            words_free(out);
            return -1;
        }
        count++;
        p = end + 1 + len + 1;
    }
    *argv = out;
    *n = count;
    return 0;
}

int words_parse_command(const char *text, char ***argv, int *n, const char **why)
{
    size_t len = strlen(text);
    char **out = calloc(len / 2 + 2, sizeof *out);
    char *word = malloc(len + 1);
    int count = 0;
    const char *p = text;

    *why = "out of memory";
    if (!out || !word)
        goto fail;
    for (;;) {
        size_t w = 0;
        int have = 0;

        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            break;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n') {
            char q = *p;

            have = 1;
            if (q == '\'' || q == '"') {
                const char *close = p + 1;

                for (; *close && *close != q; close++)
                    if (q == '"' && *close == '\\' && (close[1] == '"' || close[1] == '\\'))
                        word[w++] = *++close;
                    else
                        word[w++] = *close;
                if (!*close) {
                    *why = "an unclosed quote";
                    goto fail;
                }
                p = close + 1;
            } else if (q == '\\' && p[1]) {
                word[w++] = p[1];
                p += 2;
            } else {
                word[w++] = *p++;
            }
        }
        if (have) {
            out[count] = strndup(word, w);
            if (!out[count++])
                goto fail;
        }
    }
    free(word);
    if (count == 0) {
        *why = "no command";
        words_free(out);
        return -1;
    }
    *argv = out;
    *n = count;
    return 0;
fail:
    free(word);
    words_free(out);
    return -1;
}
