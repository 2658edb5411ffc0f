/*
 * queue_words.h - lists of words as the spool keeps them: a queued
 * request's rcat options and a hook's command with its arguments, stored in
 * one text column each and given back to execve word for word (no shell
 * ever reads them). Stored as netstrings ("5:hello,"), which hold any byte.
 */
#ifndef RCAT_QUEUE_WORDS_H
#define RCAT_QUEUE_WORDS_H

/* argv[0..n-1] as one stored text; NULL when out of memory. */
char *words_join(char *const *argv, int n);
/* A stored text back into a NULL-ended array (free with words_free);
 * -1 when the text is not such a list. */
int words_split(const char *text, char ***argv, int *n);
void words_free(char **argv);
/* A command as the operator writes it on the command line: words split at
 * blanks; '...' keeps everything, "..." and \ outside quotes escape the
 * next character. No variables, globs or anything else a shell would do.
 * -1 with *why for an unclosed quote or an empty command. */
int words_parse_command(const char *text, char ***argv, int *n, const char **why);

#endif
