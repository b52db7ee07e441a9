#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

/* struct json is yajl's tree node; the cast is the whole adapter. */
#define NODE(j) ((yajl_val)(j))

int bjson_parse(const char *text, struct json **ret, struct berth_error **err)
{
	char errbuf[256] = "";
	yajl_val v = yajl_tree_parse(text, errbuf, sizeof(errbuf));
	if (!v) {
		/* yajl's message spans lines (it draws the spot); the first line says it */
		char *nl = strchr(errbuf, '\n');
		if (nl)
			*nl = '\0';
		return berth_error_set(err, EINVAL, "invalid JSON: %s", errbuf[0] ? errbuf : "parse error");
	}
	*ret = (struct json *)v;
	return 0;
}

struct json *bjson_free(struct json *j)
{
	if (j)
		yajl_tree_free(NODE(j));
	return NULL;
}

void bjson_freep(struct json **j)
{
	*j = bjson_free(*j);
}

enum json_type bjson_type_of(const struct json *j)
{
	if (!j)
		return JSON_ABSENT;
	switch (NODE(j)->type) {
	case yajl_t_string:
		return JSON_STRING;
	case yajl_t_number:
		return JSON_NUMBER;
	case yajl_t_object:
		return JSON_OBJECT;
	case yajl_t_array:
		return JSON_ARRAY;
	case yajl_t_true:
	case yajl_t_false:
		return JSON_BOOL;
	default:
		return JSON_NULL;
	}
}

const char *bjson_type_name(enum json_type t)
{
	static const char *const names[] = { "absent", "null",  "a string", "a number",
					     "an object", "an array", "a boolean" };
	return names[t];
}

const struct json *bjson_object_get(const struct json *obj, const char *key)
{
	if (bjson_type_of(obj) != JSON_OBJECT)
		return NULL;
	yajl_val o = NODE(obj);
	/* the last duplicate wins, as in most parsers */
	for (size_t i = o->u.object.len; i-- > 0;)
		if (strcmp(o->u.object.keys[i], key) == 0)
			return (const struct json *)o->u.object.values[i];
	return NULL;
}

size_t bjson_object_size(const struct json *obj)
{
	return bjson_type_of(obj) == JSON_OBJECT ? NODE(obj)->u.object.len : 0;
}

const char *bjson_object_key(const struct json *obj, size_t i)
{
	return i < bjson_object_size(obj) ? NODE(obj)->u.object.keys[i] : NULL;
}

const struct json *bjson_object_value(const struct json *obj, size_t i)
{
	return i < bjson_object_size(obj) ? (const struct json *)NODE(obj)->u.object.values[i] : NULL;
}

size_t bjson_array_size(const struct json *arr)
{
	return bjson_type_of(arr) == JSON_ARRAY ? NODE(arr)->u.array.len : 0;
}

const struct json *bjson_array_get(const struct json *arr, size_t i)
{
	return i < bjson_array_size(arr) ? (const struct json *)NODE(arr)->u.array.values[i] : NULL;
}

const char *bjson_string(const struct json *j)
{
	return bjson_type_of(j) == JSON_STRING ? NODE(j)->u.string : NULL;
}

bool bjson_bool(const struct json *j)
{
	return j && NODE(j)->type == yajl_t_true;
}

bool bjson_int64(const struct json *j, int64_t *ret)
{
	if (bjson_type_of(j) != JSON_NUMBER || !(NODE(j)->u.number.flags & YAJL_NUMBER_INT_VALID))
		return false;
	*ret = NODE(j)->u.number.i;
	return true;
}

bool bjson_uint64(const struct json *j, uint64_t *ret)
{
	if (bjson_type_of(j) != JSON_NUMBER)
		return false;
	const char *r = NODE(j)->u.number.r;
	if (!r || r[0] == '-' || strpbrk(r, ".eE"))
		return false;
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(r, &end, 10);
	if (errno || !end || *end)
		return false;
	*ret = v;
	return true;
}

struct json_writer {
	yajl_gen g;
	int depth; /* open objects and arrays: finish needs 0 */
	bool failed;
};

struct json_writer *bjson_writer_new(bool pretty)
{
	struct json_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->g = yajl_gen_alloc(NULL);
	if (!w->g) {
		free(w);
		return NULL;
	}
	yajl_gen_config(w->g, yajl_gen_beautify, pretty ? 1 : 0);
	yajl_gen_config(w->g, yajl_gen_indent_string, "\t");
	yajl_gen_config(w->g, yajl_gen_validate_utf8, 1);
	return w;
}

static void check(struct json_writer *w, yajl_gen_status st)
{
	if (st != yajl_gen_status_ok)
		w->failed = true;
}

void bjson_writer_begin_object(struct json_writer *w)
{
	w->depth++;
	check(w, yajl_gen_map_open(w->g));
}
void bjson_writer_end_object(struct json_writer *w)
{
	w->depth--;
	check(w, yajl_gen_map_close(w->g));
}
void bjson_writer_begin_array(struct json_writer *w)
{
	w->depth++;
	check(w, yajl_gen_array_open(w->g));
}
void bjson_writer_end_array(struct json_writer *w)
{
	w->depth--;
	check(w, yajl_gen_array_close(w->g));
}
void bjson_writer_string(struct json_writer *w, const char *s)
{
	check(w, yajl_gen_string(w->g, (const unsigned char *)s, strlen(s)));
}
void bjson_writer_key(struct json_writer *w, const char *key)
{
	bjson_writer_string(w, key);
}
void bjson_writer_int(struct json_writer *w, int64_t v)
{
	check(w, yajl_gen_integer(w->g, v));
}
void bjson_writer_uint(struct json_writer *w, uint64_t v)
{
	char buf[32];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	check(w, yajl_gen_number(w->g, buf, (size_t)n));
}
void bjson_writer_bool(struct json_writer *w, bool v)
{
	check(w, yajl_gen_bool(w->g, v));
}
void bjson_writer_null(struct json_writer *w)
{
	check(w, yajl_gen_null(w->g));
}

void bjson_writer_value(struct json_writer *w, const struct json *j)
{
	yajl_val v = NODE(j);
	switch (bjson_type_of(j)) {
	case JSON_ABSENT:
	case JSON_NULL:
		bjson_writer_null(w);
		break;
	case JSON_STRING:
		bjson_writer_string(w, v->u.string);
		break;
	case JSON_NUMBER:
		check(w, yajl_gen_number(w->g, v->u.number.r, strlen(v->u.number.r)));
		break;
	case JSON_BOOL:
		bjson_writer_bool(w, bjson_bool(j));
		break;
	case JSON_OBJECT:
		bjson_writer_begin_object(w);
		for (size_t i = 0; i < v->u.object.len; i++) {
			bjson_writer_key(w, v->u.object.keys[i]);
			bjson_writer_value(w, (const struct json *)v->u.object.values[i]);
		}
		bjson_writer_end_object(w);
		break;
	case JSON_ARRAY:
		bjson_writer_begin_array(w);
		for (size_t i = 0; i < v->u.array.len; i++)
			bjson_writer_value(w, (const struct json *)v->u.array.values[i]);
		bjson_writer_end_array(w);
		break;
	}
}

void bjson_writer_kv_string(struct json_writer *w, const char *key, const char *s)
{
	bjson_writer_key(w, key);
	bjson_writer_string(w, s);
}
void bjson_writer_kv_int(struct json_writer *w, const char *key, int64_t v)
{
	bjson_writer_key(w, key);
	bjson_writer_int(w, v);
}
void bjson_writer_kv_bool(struct json_writer *w, const char *key, bool v)
{
	bjson_writer_key(w, key);
	bjson_writer_bool(w, v);
}

int bjson_writer_finish(struct json_writer *w, char **ret, size_t *ret_len)
{
	if (!w)
		return -ENOMEM;
	const unsigned char *buf = NULL;
	size_t len = 0;
	int r = 0;
	if (w->failed || w->depth != 0 || yajl_gen_get_buf(w->g, &buf, &len) != yajl_gen_status_ok) {
		r = -EINVAL;
	} else {
		char *out = malloc(len + 1);
		if (!out) {
			r = -ENOMEM;
		} else {
			memcpy(out, buf, len);
			out[len] = '\0';
			*ret = out;
			if (ret_len)
				*ret_len = len;
		}
	}
	yajl_gen_free(w->g);
	free(w);
	return r;
}
