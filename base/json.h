/* JSON, behind one small interface so the parser can be swapped (today: yajl).
 *
 * Reading: json_parse builds a read-only tree that the caller frees with json_free; every node
 * pointer handed out by the accessors lives as long as the tree. Accessors accept NULL and
 * answer "absent" for it, so lookups chain without checks in between.
 * Writing: a json_writer collects events and json_writer_finish returns the text (owned by the
 * caller) and frees the writer, on success and on failure alike.
 */
#ifndef BERTH_BASE_JSON_H
#define BERTH_BASE_JSON_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json;
struct json_writer;

enum json_type { JSON_ABSENT, JSON_NULL, JSON_STRING, JSON_NUMBER, JSON_OBJECT, JSON_ARRAY, JSON_BOOL };

int json_parse(const char *text, struct json **ret, struct berth_error **err);
struct json *json_free(struct json *j);
void json_freep(struct json **j);

enum json_type json_type_of(const struct json *j);
const char *json_type_name(enum json_type t);
const struct json *json_object_get(const struct json *obj, const char *key);
size_t json_object_size(const struct json *obj);
const char *json_object_key(const struct json *obj, size_t i);
const struct json *json_object_value(const struct json *obj, size_t i);
size_t json_array_size(const struct json *arr);
const struct json *json_array_get(const struct json *arr, size_t i);
const char *json_string(const struct json *j);
bool json_bool(const struct json *j);
/* Integers: false when the number is not an integer or does not fit. */
bool json_int64(const struct json *j, int64_t *ret);
bool json_uint64(const struct json *j, uint64_t *ret);

struct json_writer *json_writer_new(bool pretty);
void json_writer_begin_object(struct json_writer *w);
void json_writer_end_object(struct json_writer *w);
void json_writer_begin_array(struct json_writer *w);
void json_writer_end_array(struct json_writer *w);
void json_writer_key(struct json_writer *w, const char *key);
void json_writer_string(struct json_writer *w, const char *s);
void json_writer_int(struct json_writer *w, int64_t v);
void json_writer_uint(struct json_writer *w, uint64_t v);
void json_writer_bool(struct json_writer *w, bool v);
void json_writer_null(struct json_writer *w);
/* Writes a parsed node (and everything under it) as it is. */
void json_writer_value(struct json_writer *w, const struct json *j);
void json_writer_kv_string(struct json_writer *w, const char *key, const char *s);
void json_writer_kv_int(struct json_writer *w, const char *key, int64_t v);
void json_writer_kv_bool(struct json_writer *w, const char *key, bool v);
/* Returns 0 and the NUL-terminated text in *ret (length in *ret_len when not NULL), or -ENOMEM /
 * -EINVAL when an event was out of place. Frees w either way. */
int json_writer_finish(struct json_writer *w, char **ret, size_t *ret_len);

#endif
