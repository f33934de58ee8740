/* Internal to src/config: the schema (one table of every key: type, field, default, range,
 * doc) and the per-type operations that parsing, --set, defaults, validation, the YAML dump and
 * the docs all share. */
#ifndef ENSDISTILL_CONFIG_INTERNAL_H
#define ENSDISTILL_CONFIG_INTERNAL_H

#include "ensdistill/config.h"

#include <stddef.h>

typedef enum {
    KEY_INT,      /* int; words (optional) names the value 0, e.g. "full", "auto" */
    KEY_INT64,    /* int64_t */
    KEY_FLOAT,    /* double */
    KEY_BOOL,     /* int 0/1 */
    KEY_STRING,   /* char[aux] */
    KEY_ENUM,     /* a C enum (int-sized): the index of its name in names[0..aux) */
    KEY_INT_LIST, /* int[CFG_MAX_LIST] with its count at offset aux */
    KEY_FLAGS,    /* consecutive ints, one per name in words "a|b|c", set by a list of names */
    KEY_FLOAT_SWEEP, /* double[CFG_MAX_LIST] with its count (>= 1) at offset aux: a number, or
                        a list of numbers to sweep over */
} KeyType;

enum { RANGE_LO_OPEN = 1, RANGE_HI_OPEN = 2 };

typedef struct {
    const char *path; /* "train.lr" */
    KeyType type;
    size_t offset;     /* of the field in Config */
    size_t aux;        /* KEY_STRING: capacity; KEY_ENUM: count of names; KEY_INT_LIST,
                          KEY_FLOAT_SWEEP: offset of the count */
    const char *def;   /* default, as --set would write it */
    double lo, hi;     /* allowed range of numbers (list items too) */
    int open;          /* RANGE_* bits */
    const char *words; /* see KeyType */
    const char *doc;
    const char *const *names; /* KEY_ENUM: names[value], as the YAML spells it */
} ConfigKey;

extern const ConfigKey config_keys[];
extern const int config_n_keys;
#define CONFIG_MAX_KEYS 128

/* One value as written in a file or after --set key=: a scalar or a list of scalars. */
typedef struct {
    int is_list;
    int n;        /* items given (may exceed CFG_MAX_LIST; only those fit are kept) */
    int too_long; /* an item did not fit in ED_PATH_MAX */
    char item[CFG_MAX_LIST][ED_PATH_MAX];
} ConfigValue;

/* Index of the key with this full path, or -1. */
int schema_find(const char *path);
/* 1 if path names a section ("data", "data.multiview"). */
int schema_is_section(const char *path);
/* Writes " (did you mean 'train.lr'?)" for the nearest key or section, or a pointer to the
 * docs when nothing is close. */
void schema_suggest(const char *path, char *out, size_t size);

/* Appends text as one item of v. */
void value_add(ConfigValue *v, const char *text, size_t len);
/* v from --set text: list keys take "a,b" or "[a, b]"; others take the text as it is. */
void value_from_text(ConfigValue *v, const ConfigKey *k, const char *text);
/* Parses v, checks type and range, stores it in c. Returns 0, or -1 with "expected an integer,
 * got 'ten'" (no key name) in msg. */
int key_apply(Config *c, const ConfigKey *k, const ConfigValue *v, char *msg, size_t size);
/* Checks the value stored in c against the key's type and range; 0 or -1 with msg. */
int key_check(const Config *c, const ConfigKey *k, char *msg, size_t size);
/* The stored value as YAML text ("0.05", "[kd, self]", "\"a b\"") into buf. */
void key_format(const Config *c, const ConfigKey *k, char *buf, size_t size);
/* "int >= 1 or `full`", "float in [0, 1]", "one of: a, b": for the docs. */
void key_type_text(const ConfigKey *k, char *buf, size_t size);

/* Fills c with every key's default (zeroing padding first); checkpoint.dir stays "". */
void schema_defaults(Config *c);
/* Parses the YAML file path into c (over what c holds). lines[i] gets the line where key i was
 * set. Returns 0 or -1 with "FILE:LINE: ..." in err. */
int config_parse_file(Config *c, const char *path, int *lines, char *err, size_t size);
/* The same from YAML text; name stands for the file in messages. */
int config_parse_text(Config *c, const char *text, const char *name, int *lines, char *err,
                      size_t size);

#endif
