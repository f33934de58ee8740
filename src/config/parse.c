/* Reading a YAML config file with libyaml's event parser: nested mappings become key paths
 * ("train.lr"; a dotted key "train.lr: 0.1" is the same key), each value is handed to the
 * schema, and every error names FILE:LINE. */
#include "config_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define MAX_SECTIONS 32

typedef struct {
    yaml_parser_t yaml;
    const char *file;
    Config *c;
    int *lines; /* [config_n_keys]: line where each key was set, 0 = not set */
    char sections[MAX_SECTIONS][CFG_STR]; /* sections seen, for duplicates */
    int section_lines[MAX_SECTIONS];
    int n_sections;
    char *err;
    size_t err_size;
} Parser;

static int fail(Parser *p, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(Parser *p, size_t line, const char *fmt, ...) {
    int n = snprintf(p->err, p->err_size, "%s:%zu: ", p->file, line);
    if (n < 0 || (size_t)n >= p->err_size) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static size_t line_of(const yaml_event_t *ev) {
    return ev->start_mark.line + 1;
}

/* The next event, or -1 with libyaml's message and line. */
static int next(Parser *p, yaml_event_t *ev) {
    if (yaml_parser_parse(&p->yaml, ev)) return 0;
    const char *problem = p->yaml.problem ? p->yaml.problem : "unreadable input";
    if (p->yaml.context)
        return fail(p, p->yaml.problem_mark.line + 1, "YAML syntax error: %s %s", problem,
                    p->yaml.context);
    return fail(p, p->yaml.problem_mark.line + 1, "YAML syntax error: %s", problem);
}

static int is_empty_scalar(const yaml_event_t *ev) {
    return ev->type == YAML_SCALAR_EVENT && ev->data.scalar.length == 0 &&
           ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* Reads the value that starts with ev (a scalar or a list of scalars) into v. */
static int read_value(Parser *p, const char *key, yaml_event_t *ev, ConfigValue *v) {
    memset(v, 0, sizeof *v);
    if (ev->type == YAML_SCALAR_EVENT) {
        value_add(v, (const char *)ev->data.scalar.value, ev->data.scalar.length);
        return 0;
    }
    if (ev->type == YAML_MAPPING_START_EVENT)
        return fail(p, line_of(ev), "%s: expected a value, got a mapping", key);
    if (ev->type == YAML_ALIAS_EVENT)
        return fail(p, line_of(ev), "%s: YAML aliases (*name) are not supported", key);
    if (ev->type != YAML_SEQUENCE_START_EVENT)
        return fail(p, line_of(ev), "%s: expected a value", key);
    v->is_list = 1;
    for (;;) {
        yaml_event_t item;
        if (next(p, &item) != 0) return -1;
        if (item.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&item);
            return 0;
        }
        int scalar = item.type == YAML_SCALAR_EVENT;
        if (scalar) value_add(v, (const char *)item.data.scalar.value, item.data.scalar.length);
        size_t line = line_of(&item);
        yaml_event_delete(&item);
        if (!scalar) return fail(p, line, "%s: expected a list of plain values", key);
    }
}

static int parse_mapping(Parser *p, const char *prefix);

/* One "key: value" of the mapping under prefix; key is the key's scalar event. */
static int parse_entry(Parser *p, const char *prefix, const yaml_event_t *key) {
    char path[CFG_STR];
    size_t line = line_of(key);
    if (key->type != YAML_SCALAR_EVENT) return fail(p, line, "keys must be plain names");
    const char *name = (const char *)key->data.scalar.value;
    if ((size_t)snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", name) >=
        sizeof path)
        return fail(p, line, "key too long: '%.60s...'", name);

    yaml_event_t ev;
    int rc = -1, k = schema_find(path);
    if (next(p, &ev) != 0) return -1;
    if (k >= 0) { /* a key: read and apply its value */
        ConfigValue v;
        char msg[512];
        if (p->lines[k])
            fail(p, line, "duplicate key '%s' (first set on line %d)", path, p->lines[k]);
        else if (read_value(p, path, &ev, &v) == 0) {
            if (key_apply(p->c, &config_keys[k], &v, msg, sizeof msg) != 0)
                fail(p, line_of(&ev), "%s: %s", path, msg);
            else
                rc = 0, p->lines[k] = (int)line;
        }
    } else if (schema_is_section(path)) { /* a section: its keys, in a mapping */
        int seen = -1;
        for (int i = 0; i < p->n_sections; i++)
            if (strcmp(p->sections[i], path) == 0) seen = i;
        if (seen >= 0) {
            fail(p, line, "duplicate section '%s' (first on line %d)", path,
                 p->section_lines[seen]);
        } else if (p->n_sections == MAX_SECTIONS) {
            fail(p, line, "too many sections");
        } else {
            snprintf(p->sections[p->n_sections], CFG_STR, "%s", path);
            p->section_lines[p->n_sections++] = (int)line;
            if (ev.type == YAML_MAPPING_START_EVENT)
                rc = parse_mapping(p, path);
            else if (is_empty_scalar(&ev)) /* "data:" with nothing under it */
                rc = 0;
            else if (ev.type == YAML_SCALAR_EVENT)
                fail(p, line_of(&ev),
                     "'%s' is a section: expected its keys indented below it, got '%.60s'", path,
                     (const char *)ev.data.scalar.value);
            else
                fail(p, line_of(&ev), "'%s' is a section: expected its keys indented below it",
                     path);
        }
    } else {
        char hint[160];
        schema_suggest(path, hint, sizeof hint);
        fail(p, line, "unknown key '%s'%s", path, hint);
    }
    yaml_event_delete(&ev);
    return rc;
}

/* The entries of a mapping whose start event was just read, up to its end. */
static int parse_mapping(Parser *p, const char *prefix) {
    for (;;) {
        yaml_event_t key;
        if (next(p, &key) != 0) return -1;
        if (key.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&key);
            return 0;
        }
        int rc = parse_entry(p, prefix, &key);
        yaml_event_delete(&key);
        if (rc != 0) return -1;
    }
}

/* stream-start, at most one document holding a mapping (or nothing), stream-end */
static int parse_stream(Parser *p) {
    yaml_event_t ev;
    int rc = 0;
    if (next(p, &ev) != 0) return -1; /* stream start */
    yaml_event_delete(&ev);
    if (next(p, &ev) != 0) return -1;
    if (ev.type == YAML_STREAM_END_EVENT) { /* an empty file: every default */
        yaml_event_delete(&ev);
        return 0;
    }
    yaml_event_delete(&ev); /* document start */
    if (next(p, &ev) != 0) return -1;
    if (ev.type == YAML_MAPPING_START_EVENT)
        rc = parse_mapping(p, "");
    else if (!is_empty_scalar(&ev))
        rc = fail(p, line_of(&ev),
                  "expected a mapping of sections at the top (name: ..., data: ..., train: ...)");
    yaml_event_delete(&ev);
    if (rc != 0) return -1;
    if (next(p, &ev) != 0) return -1; /* document end */
    yaml_event_delete(&ev);
    if (next(p, &ev) != 0) return -1;
    if (ev.type != YAML_STREAM_END_EVENT)
        rc = fail(p, line_of(&ev), "only one YAML document is allowed");
    yaml_event_delete(&ev);
    return rc;
}

int config_parse_file(Config *c, const char *path, int *lines, char *err, size_t size) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(err, size, "%s: is a directory, not a config file", path);
        return -1;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    Parser parser = {.file = path, .c = c, .lines = lines, .err = err, .err_size = size},
           *p = &parser;
    int rc = -1;
    if (!yaml_parser_initialize(&p->yaml)) {
        snprintf(err, size, "%s: cannot initialise the YAML parser", path);
    } else {
        yaml_parser_set_input_file(&p->yaml, f);
        rc = parse_stream(p);
        yaml_parser_delete(&p->yaml);
    }
    fclose(f);
    return rc;
}

int config_parse_text(Config *c, const char *text, const char *name, int *lines, char *err,
                      size_t size) {
    Parser parser = {.file = name, .c = c, .lines = lines, .err = err, .err_size = size},
           *p = &parser;
    if (!yaml_parser_initialize(&p->yaml)) {
        snprintf(err, size, "%s: cannot initialise the YAML parser", name);
        return -1;
    }
    yaml_parser_set_input_string(&p->yaml, (const unsigned char *)text, strlen(text));
    int rc = parse_stream(p);
    yaml_parser_delete(&p->yaml);
    return rc;
}
