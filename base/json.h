/* JSON, behind one small interface so the parser can be swapped (today: yajl).
 *
 * Reading: bjson_parse builds a read-only tree that the caller frees with bjson_free; every node
 * pointer handed out by the accessors lives as long as the tree. Accessors accept NULL and
 * answer "absent" for it, so lookups chain without checks in between.
 * Writing: a json_writer collects events and bjson_writer_finish returns the text (owned by the
 * caller) and frees the writer, on success and on failure alike.
 * The functions are prefixed "bjson_": jansson, which libnftables links, exports json_string,
 * json_object_get and others, and a program that links both must not mix them up.
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

int bjson_parse(const char *text, struct json **ret, struct berth_error **err);
struct json *bjson_free(struct json *j);
void bjson_freep(struct json **j);

enum json_type bjson_type_of(const struct json *j);
const char *bjson_type_name(enum json_type t);
const struct json *bjson_object_get(const struct json *obj, const char *key);
size_t bjson_object_size(const struct json *obj);
const char *bjson_object_key(const struct json *obj, size_t i);
const struct json *bjson_object_value(const struct json *obj, size_t i);
size_t bjson_array_size(const struct json *arr);
const struct json *bjson_array_get(const struct json *arr, size_t i);
const char *bjson_string(const struct json *j);
bool bjson_bool(const struct json *j);
/* Integers: false when the number is not an integer or does not fit. */
bool bjson_int64(const struct json *j, int64_t *ret);
bool bjson_uint64(const struct json *j, uint64_t *ret);

struct json_writer *bjson_writer_new(bool pretty);
void bjson_writer_begin_object(struct json_writer *w);
void bjson_writer_end_object(struct json_writer *w);
void bjson_writer_begin_array(struct json_writer *w);
void bjson_writer_end_array(struct json_writer *w);
void bjson_writer_key(struct json_writer *w, const char *key);
void bjson_writer_string(struct json_writer *w, const char *s);
void bjson_writer_int(struct json_writer *w, int64_t v);
void bjson_writer_uint(struct json_writer *w, uint64_t v);
void bjson_writer_bool(struct json_writer *w, bool v);
void bjson_writer_null(struct json_writer *w);
/* Writes a parsed node (and everything under it) as it is. */
void bjson_writer_value(struct json_writer *w, const struct json *j);
void bjson_writer_kv_string(struct json_writer *w, const char *key, const char *s);
void bjson_writer_kv_int(struct json_writer *w, const char *key, int64_t v);
void bjson_writer_kv_bool(struct json_writer *w, const char *key, bool v);
/* Returns 0 and the NUL-terminated text in *ret (length in *ret_len when not NULL), or -ENOMEM /
 * -EINVAL when an event was out of place. Frees w either way. */
int bjson_writer_finish(struct json_writer *w, char **ret, size_t *ret_len);

#endif
