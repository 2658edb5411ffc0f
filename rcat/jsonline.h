/*
 * jsonline.h - one string field read back from a JSON event line, as rcat
 * writes them (json.c): flat objects of strings and numbers. The queue
 * runner judges its child rcat by the ERROR event's error name, never by
 * the words of a message meant for people.
 */
#ifndef RCAT_JSONLINE_H
#define RCAT_JSONLINE_H

#include <stddef.h>

/* The string value of key in the object on line (its escapes undone, UTF-8)
 * into out: 1, or 0 when the object has no such string field, or -1 when
 * line is no flat JSON object or the value does not fit in cap. */
int jsonline_str(const char *line, const char *key, char *out, size_t cap);

#endif
