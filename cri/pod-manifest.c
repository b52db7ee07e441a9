/* cri/pod-manifest.c: the schema walker. A ynode tree (pod-manifest-yaml.c) is read into the
 * struct tree of pod-manifest.h by walking the Pod v1 schema (pod-manifest-schema.c); the same
 * schema drives hashing and freeing, so a field added to the tables is read, compared and freed
 * without code of its own. Each field type is one row of `types`: decode, hash, free. */
#include "cri/pod-manifest.h"
#include "cri/pod-manifest-internal.h"

#include "base/cleanup.h"
#include "base/hash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AT(base, off) ((void *)((char *)(base) + (off)))
#define AT_C(base, off) ((const void *)((const char *)(base) + (off)))

/* ---- paths and errors ---- */

/* Appends sep (unless the path is empty) and s; returns the length to pop back to. */
static size_t push(struct decoder *d, const char *sep, const char *s)
{
	size_t old = d->path_len;
	size_t room = sizeof(d->path) - old;
	int n = snprintf(d->path + old, room, "%s%s", old ? sep : "", s);
	d->path_len = n < 0 ? old : (size_t)n >= room ? sizeof(d->path) - 1 : old + (size_t)n;
	return old;
}

size_t decoder_push_key(struct decoder *d, const char *key)
{
	return push(d, ".", key);
}

size_t decoder_push_index(struct decoder *d, size_t i)
{
	char index[32];
	snprintf(index, sizeof(index), "[%zu]", i);
	return push(d, "", index);
}

void decoder_pop(struct decoder *d, size_t len)
{
	d->path_len = len;
	d->path[len] = '\0';
}

/* A message is one line whatever the manifest's keys and values hold. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

__attribute__((format(printf, 2, 0))) static int vfail(struct decoder *d, const char *fmt,
							va_list ap)
{
	char what[768], msg[1400];
	vsnprintf(what, sizeof(what), fmt, ap);
	snprintf(msg, sizeof(msg), "%s: %s: %s", d->file, d->path_len ? d->path : "(document)",
		 what);
	one_line(msg);
	return berth_error_set(d->err, EINVAL, "%s", msg);
}

int decoder_fail(struct decoder *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(d, fmt, ap);
	va_end(ap);
	return r;
}

int decoder_fail_at(struct decoder *d, const char *sub, const char *fmt, ...)
{
	size_t old = push(d, sub[0] == '[' ? "" : ".", sub);
	va_list ap;
	va_start(ap, fmt);
	int r = vfail(d, fmt, ap);
	va_end(ap);
	decoder_pop(d, old);
	return r;
}

/* ---- node checks ---- */

static const char *const kind_names[] = { "a string", "a list", "a map" };

static int expect_kind(struct decoder *d, const struct ynode *n, enum ynode_kind kind)
{
	if (n->kind == kind && (kind != YNODE_SCALAR || n->scalar == YSCALAR_STR))
		return 0;
	return decoder_fail(d, "expected %s", kind_names[kind]);
}

static bool is_null(const struct ynode *n)
{
	return n->kind == YNODE_SCALAR && n->scalar == YSCALAR_NULL;
}

/* Null, {} and []: no value (kubectl writes `creationTimestamp: null` and `status: {}`). */
static bool is_empty(const struct ynode *n)
{
	return is_null(n) || (n->kind != YNODE_SCALAR && n->n == 0);
}

struct named {
	const char *name;
	size_t index;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->index > y->index) - (x->index < y->index);
}

size_t first_duplicate(const char *const *names, size_t n)
{
	size_t m = 0, first = SIZE_MAX;
	if (n < 2)
		return SIZE_MAX;
	_cleanup_free_ struct named *v = malloc(n * sizeof(*v));
	if (!v)
		return SIZE_MAX - 1;
	for (size_t i = 0; i < n; i++)
		if (names[i])
			v[m++] = (struct named){ names[i], i };
	qsort(v, m, sizeof(*v), named_cmp);
	for (size_t i = 1; i < m; i++)
		if (strcmp(v[i].name, v[i - 1].name) == 0 && v[i].index < first)
			first = v[i].index;
	return first;
}

/* Refuses a map with a key twice, naming the first repeated key in document order. */
static int check_duplicates(struct decoder *d, const struct ynode *map)
{
	size_t pairs = map->n / 2;
	if (pairs < 2)
		return 0;
	_cleanup_free_ const char **keys = malloc(pairs * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < pairs; i++)
		keys[i] = map->kids[2 * i]->text;
	size_t dup = first_duplicate(keys, pairs);
	if (dup == SIZE_MAX - 1)
		return -ENOMEM;
	if (dup == SIZE_MAX)
		return 0;
	size_t old = decoder_push_key(d, keys[dup]);
	int r = decoder_fail(d, "duplicate key");
	decoder_pop(d, old);
	return r;
}

static int check_string(struct decoder *d, const struct field *f, const char *s)
{
	const char *want = f->check ? f->check(s) : NULL;
	return want ? decoder_fail(d, "invalid value \"%.100s\": must be %s", s, want) : 0;
}

static int read_int(struct decoder *d, const struct field *f, const struct ynode *n, int64_t *ret)
{
	if (n->kind != YNODE_SCALAR || n->scalar != YSCALAR_INT)
		return decoder_fail(d, "expected an integer");
	if (!n->int_ok || n->ival < f->min || n->ival > f->max) {
		if (f->max == INT64_MAX)
			return decoder_fail(d, "must be at least %" PRId64, f->min);
		return decoder_fail(d, "must be between %" PRId64 " and %" PRId64, f->min, f->max);
	}
	*ret = n->ival;
	return 0;
}

static int read_quantity(struct decoder *d, const struct ynode *n, enum k8s_quantity_unit unit,
			 struct pod_opt_int *ret)
{
	_cleanup_error_ struct berth_error *e = NULL;
	if (n->kind != YNODE_SCALAR || n->scalar == YSCALAR_BOOL)
		return decoder_fail(d, "expected a quantity");
	int r = k8s_quantity_parse(n->text, unit, &ret->value, &e);
	if (r < 0)
		return decoder_fail(d, "%s", e->msg);
	ret->set = true;
	return 0;
}

/* ---- decoding, one function per field type ---- */

typedef int (*decode_fn)(struct decoder *d, const struct field *f, const struct ynode *n,
			 void *at);

static int decode_object(struct decoder *d, const struct schema *s, const struct ynode *n,
			 void *obj);

static int decode_str(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	int r = expect_kind(d, n, YNODE_SCALAR);
	if (r == 0)
		r = check_string(d, f, n->text);
	if (r < 0)
		return r;
	*(char **)at = strdup(n->text);
	return *(char **)at ? 0 : -ENOMEM;
}

static int decode_int(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	return read_int(d, f, n, at);
}

static int decode_opt_int(struct decoder *d, const struct field *f, const struct ynode *n,
			  void *at)
{
	struct pod_opt_int *o = at;
	int r = read_int(d, f, n, &o->value);
	o->set = r == 0;
	return r;
}

static int read_bool(struct decoder *d, const struct ynode *n, bool *ret)
{
	if (n->kind != YNODE_SCALAR || n->scalar != YSCALAR_BOOL)
		return decoder_fail(d, "expected a boolean");
	*ret = n->bval;
	return 0;
}

static int decode_bool(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	(void)f;
	return read_bool(d, n, at);
}

static int decode_opt_bool(struct decoder *d, const struct field *f, const struct ynode *n,
			   void *at)
{
	struct pod_opt_bool *o = at;
	(void)f;
	int r = read_bool(d, n, &o->value);
	o->set = r == 0;
	return r;
}

static int decode_enum(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	int r = expect_kind(d, n, YNODE_SCALAR);
	if (r < 0)
		return r;
	char names[256] = "";
	for (const struct enum_value *v = f->values; v->name; v++) {
		if (strcmp(v->name, n->text) == 0) {
			if (v->unsupported)
				return decoder_fail(d, "\"%s\" is not supported by berth", v->name);
			*(int *)at = v->value;
			return 0;
		}
		if (!v->unsupported && v->name[0])
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 names[0] ? ", " : "", v->name);
	}
	return decoder_fail(d, "invalid value \"%.100s\": must be one of %s", n->text, names);
}

/* Calls item_cb for each element of a list with the path at "[i]". */
static int each_item(struct decoder *d, const struct ynode *n, void *ctx,
		     int (*item_cb)(struct decoder *d, const struct ynode *item, size_t i,
				    void *ctx))
{
	int r = expect_kind(d, n, YNODE_SEQ);
	for (size_t i = 0; r == 0 && i < n->n; i++) {
		size_t old = decoder_push_index(d, i);
		r = item_cb(d, n->kids[i], i, ctx);
		if (r == 0)
			decoder_pop(d, old);
	}
	return r;
}

/* Calls pair_cb for each key and value of a map (keys unique) with the path at the key. */
static int each_pair(struct decoder *d, const struct ynode *n, void *ctx,
		     int (*pair_cb)(struct decoder *d, const struct ynode *key,
				    const struct ynode *value, size_t i, void *ctx))
{
	int r = expect_kind(d, n, YNODE_MAP);
	if (r == 0)
		r = check_duplicates(d, n);
	for (size_t i = 0; r == 0 && i < n->n; i += 2) {
		size_t old = decoder_push_key(d, n->kids[i]->text);
		r = pair_cb(d, n->kids[i], n->kids[i + 1], i / 2, ctx);
		if (r == 0)
			decoder_pop(d, old);
	}
	return r;
}

struct strv_ctx {
	const struct field *f;
	char **v;
};

static int strv_item(struct decoder *d, const struct ynode *item, size_t i, void *ctx)
{
	struct strv_ctx *c = ctx;
	int r = expect_kind(d, item, YNODE_SCALAR);
	if (r == 0)
		r = check_string(d, c->f, item->text);
	if (r < 0)
		return r;
	c->v[i] = strdup(item->text);
	return c->v[i] ? 0 : -ENOMEM;
}

static int decode_strv(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	int r = expect_kind(d, n, YNODE_SEQ);
	if (r < 0 || n->n == 0)
		return r;
	struct strv_ctx c = { .f = f, .v = calloc(n->n + 1, sizeof(char *)) };
	if (!c.v)
		return -ENOMEM;
	*(char ***)at = c.v;
	return each_item(d, n, &c, strv_item);
}

struct intv_ctx {
	const struct field *f;
	int64_t *v;
};

static int intv_item(struct decoder *d, const struct ynode *item, size_t i, void *ctx)
{
	struct intv_ctx *c = ctx;
	return read_int(d, c->f, item, &c->v[i]);
}

static int decode_intv(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	int r = expect_kind(d, n, YNODE_SEQ);
	if (r < 0 || n->n == 0)
		return r;
	struct intv_ctx c = { .f = f, .v = calloc(n->n, sizeof(int64_t)) };
	if (!c.v)
		return -ENOMEM;
	*(int64_t **)at = c.v;
	*(size_t *)AT(at, f->count_off - f->off) = n->n;
	return each_item(d, n, &c, intv_item);
}

static int kv_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pod_kv *)a)->key, ((const struct pod_kv *)b)->key);
}

struct kv_ctx {
	const struct field *f;
	struct pod_kv_list *l;
};

static int kv_pair(struct decoder *d, const struct ynode *k, const struct ynode *v, size_t i,
		   void *ctx)
{
	struct kv_ctx *c = ctx;
	struct pod_kv *kv = &c->l->items[i];
	int r = check_string(d, c->f, k->text);
	if (r < 0)
		return r;
	if (is_null(v))
		return decoder_fail(d, "expected a string");
	r = expect_kind(d, v, YNODE_SCALAR);
	const char *want = r == 0 && c->f->check_value ? c->f->check_value(v->text) : NULL;
	if (want)
		r = decoder_fail(d, "invalid value \"%.100s\": must be %s", v->text, want);
	if (r < 0)
		return r;
	kv->key = strdup(k->text);
	kv->value = strdup(v->text);
	return kv->key && kv->value ? 0 : -ENOMEM;
}

static int decode_kv(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	struct kv_ctx c = { .f = f, .l = at };
	if (n->kind == YNODE_MAP && n->n > 0) {
		c.l->items = calloc(n->n / 2, sizeof(*c.l->items));
		if (!c.l->items)
			return -ENOMEM;
		c.l->n = n->n / 2;
	}
	int r = each_pair(d, n, &c, kv_pair);
	if (r == 0 && c.l->n > 0)
		qsort(c.l->items, c.l->n, sizeof(*c.l->items), kv_cmp);
	return r;
}

static int resource_pair(struct decoder *d, const struct ynode *k, const struct ynode *v,
			 size_t i, void *ctx)
{
	struct pod_resource_list *l = ctx;
	(void)i;
	if (strcmp(k->text, "cpu") == 0)
		return read_quantity(d, v, K8S_QUANTITY_MILLI, &l->cpu_millis);
	if (strcmp(k->text, "memory") == 0)
		return read_quantity(d, v, K8S_QUANTITY_UNITS, &l->memory_bytes);
	return decoder_fail(d, "not supported by berth");
}

static int decode_resources(struct decoder *d, const struct field *f, const struct ynode *n,
			    void *at)
{
	(void)f;
	return each_pair(d, n, at, resource_pair);
}

static int decode_quantity(struct decoder *d, const struct field *f, const struct ynode *n,
			   void *at)
{
	(void)f;
	return read_quantity(d, n, K8S_QUANTITY_UNITS, at);
}

static int decode_port(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	struct pod_port_ref *p = at;
	if (n->kind == YNODE_SCALAR && n->scalar == YSCALAR_INT)
		return read_int(d, f, n, &p->number);
	if (n->kind != YNODE_SCALAR || n->scalar != YSCALAR_STR)
		return decoder_fail(d, "expected an integer or a string");
	return decode_str(d, f, n, &p->name);
}

static int decode_obj(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	return decode_object(d, f->sub, n, at);
}

static int decode_ptr(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	void *obj = calloc(1, f->sub->size);
	if (!obj)
		return -ENOMEM;
	*(void **)at = obj;
	return decode_object(d, f->sub, n, obj);
}

struct list_ctx {
	const struct schema *sub;
	char *items;
};

static int list_item(struct decoder *d, const struct ynode *item, size_t i, void *ctx)
{
	struct list_ctx *c = ctx;
	return decode_object(d, c->sub, item, c->items + i * c->sub->size);
}

static int decode_list(struct decoder *d, const struct field *f, const struct ynode *n, void *at)
{
	int r = expect_kind(d, n, YNODE_SEQ);
	if (r < 0 || n->n == 0)
		return r;
	struct list_ctx c = { .sub = f->sub, .items = calloc(n->n, f->sub->size) };
	if (!c.items)
		return -ENOMEM;
	*(void **)at = c.items;
	*(size_t *)AT(at, f->count_off - f->off) = n->n;
	return each_item(d, n, &c, list_item);
}

/* ---- hashing: every field's name and canonical value, length-prefixed ---- */

typedef void (*hash_fn)(struct sha256_ctx *h, const struct field *f, const void *at);

static void hash_object(struct sha256_ctx *h, const struct schema *s, const void *obj);

static void hash_bytes(struct sha256_ctx *h, const void *p, size_t len)
{
	uint64_t n = len;
	sha256_update(h, &n, sizeof(n));
	if (len)
		sha256_update(h, p, len);
}

static void hash_i64(struct sha256_ctx *h, int64_t v)
{
	hash_bytes(h, &v, sizeof(v));
}

static void hash_cstr(struct sha256_ctx *h, const char *s)
{
	hash_i64(h, s != NULL);
	if (s)
		hash_bytes(h, s, strlen(s));
}

static void hash_str(struct sha256_ctx *h, const struct field *f, const void *at)
{
	(void)f;
	hash_cstr(h, *(char *const *)at);
}

static void hash_int(struct sha256_ctx *h, const struct field *f, const void *at)
{
	(void)f;
	hash_i64(h, *(const int64_t *)at);
}

static void hash_opt_int(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const struct pod_opt_int *o = at;
	(void)f;
	hash_i64(h, o->set);
	hash_i64(h, o->set ? o->value : 0);
}

static void hash_bool(struct sha256_ctx *h, const struct field *f, const void *at)
{
	(void)f;
	hash_i64(h, *(const bool *)at);
}

static void hash_opt_bool(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const struct pod_opt_bool *o = at;
	(void)f;
	hash_i64(h, o->set ? 1 + o->value : 0);
}

static void hash_enum(struct sha256_ctx *h, const struct field *f, const void *at)
{
	(void)f;
	hash_i64(h, *(const int *)at);
}

static void hash_strv(struct sha256_ctx *h, const struct field *f, const void *at)
{
	char *const *v = *(char **const *)at;
	(void)f;
	for (; v && *v; v++)
		hash_cstr(h, *v);
	hash_cstr(h, NULL);
}

static void hash_intv(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const int64_t *v = *(int64_t *const *)at;
	size_t n = *(const size_t *)AT_C(at, f->count_off - f->off);
	hash_i64(h, (int64_t)n);
	for (size_t i = 0; i < n; i++)
		hash_i64(h, v[i]);
}

static void hash_kv(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const struct pod_kv_list *l = at;
	(void)f;
	hash_i64(h, (int64_t)l->n);
	for (size_t i = 0; i < l->n; i++) {
		hash_cstr(h, l->items[i].key);
		hash_cstr(h, l->items[i].value);
	}
}

static void hash_resources(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const struct pod_resource_list *l = at;
	hash_opt_int(h, f, &l->cpu_millis);
	hash_opt_int(h, f, &l->memory_bytes);
}

static void hash_port(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const struct pod_port_ref *p = at;
	(void)f;
	hash_i64(h, p->number);
	hash_cstr(h, p->name);
}

static void hash_obj(struct sha256_ctx *h, const struct field *f, const void *at)
{
	hash_object(h, f->sub, at);
}

static void hash_ptr(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const void *obj = *(void *const *)at;
	hash_i64(h, obj != NULL);
	if (obj)
		hash_object(h, f->sub, obj);
}

static void hash_list(struct sha256_ctx *h, const struct field *f, const void *at)
{
	const char *items = *(char *const *)at;
	size_t n = *(const size_t *)AT_C(at, f->count_off - f->off);
	hash_i64(h, (int64_t)n);
	for (size_t i = 0; i < n; i++)
		hash_object(h, f->sub, items + i * f->sub->size);
}

/* ---- freeing ---- */

typedef void (*free_fn)(const struct field *f, void *at);

static void free_object(const struct schema *s, void *obj);

static void free_str(const struct field *f, void *at)
{
	(void)f;
	free(*(char **)at);
}

static void free_strv(const struct field *f, void *at)
{
	(void)f;
	strv_free(*(char ***)at);
}

static void free_kv(const struct field *f, void *at)
{
	struct pod_kv_list *l = at;
	(void)f;
	for (size_t i = 0; i < l->n && l->items; i++) {
		free(l->items[i].key);
		free(l->items[i].value);
	}
	free(l->items);
}

static void free_port(const struct field *f, void *at)
{
	(void)f;
	free(((struct pod_port_ref *)at)->name);
}

static void free_obj(const struct field *f, void *at)
{
	free_object(f->sub, at);
}

static void free_ptr(const struct field *f, void *at)
{
	void *obj = *(void **)at;
	if (obj)
		free_object(f->sub, obj);
	free(obj);
}

static void free_list(const struct field *f, void *at)
{
	char *items = *(char **)at;
	size_t n = *(size_t *)AT(at, f->count_off - f->off);
	for (size_t i = 0; items && i < n; i++)
		free_object(f->sub, items + i * f->sub->size);
	free(items);
}

static const struct {
	decode_fn decode;
	hash_fn hash;
	free_fn free;
} types[FT_COUNT] = {
	[FT_STR] = { decode_str, hash_str, free_str },
	[FT_INT] = { decode_int, hash_int, NULL },
	[FT_OPT_INT] = { decode_opt_int, hash_opt_int, NULL },
	[FT_BOOL] = { decode_bool, hash_bool, NULL },
	[FT_OPT_BOOL] = { decode_opt_bool, hash_opt_bool, NULL },
	[FT_ENUM] = { decode_enum, hash_enum, NULL },
	[FT_STRV] = { decode_strv, hash_strv, free_strv },
	[FT_INTV] = { decode_intv, hash_intv, free_str },
	[FT_KV] = { decode_kv, hash_kv, free_kv },
	[FT_RESOURCES] = { decode_resources, hash_resources, NULL },
	[FT_QUANTITY] = { decode_quantity, hash_opt_int, NULL },
	[FT_PORT] = { decode_port, hash_port, free_port },
	[FT_OBJ] = { decode_obj, hash_obj, free_obj },
	[FT_PTR] = { decode_ptr, hash_ptr, free_ptr },
	[FT_LIST] = { decode_list, hash_list, free_list },
	[FT_UNSUPPORTED] = { NULL, NULL, NULL },
};

static const struct field *find_field(const struct schema *s, const char *name)
{
	for (const struct field *f = s->fields; f->name; f++)
		if (strcmp(f->name, name) == 0)
			return f;
	return NULL;
}

struct object_ctx {
	const struct schema *s;
	void *obj;
};

static int object_pair(struct decoder *d, const struct ynode *k, const struct ynode *v, size_t i,
		       void *ctx)
{
	struct object_ctx *c = ctx;
	const struct field *f = find_field(c->s, k->text);
	(void)i;
	if (!f)
		return decoder_fail(d, "unknown field");
	if (f->type == FT_UNSUPPORTED)
		return is_empty(v) ? 0 : decoder_fail(d, "not supported by berth");
	if (is_null(v)) /* as in Kubernetes (JSON): null is "not given" */
		return 0;
	return types[f->type].decode(d, f, v, AT(c->obj, f->off));
}

static bool given(const struct ynode *map, const char *name)
{
	for (size_t i = 0; i < map->n; i += 2)
		if (strcmp(map->kids[i]->text, name) == 0)
			return !is_null(map->kids[i + 1]);
	return false;
}

static int decode_object(struct decoder *d, const struct schema *s, const struct ynode *n,
			 void *obj)
{
	struct object_ctx c = { .s = s, .obj = obj };
	if (s->init_cb)
		s->init_cb(obj);
	int r = each_pair(d, n, &c, object_pair);
	if (r < 0)
		return r;
	for (const struct field *f = s->fields; f->name; f++)
		if ((f->flags & FIELD_REQUIRED) && !given(n, f->name))
			return decoder_fail_at(d, f->name, "required");
	return s->finish_cb ? s->finish_cb(d, obj) : 0;
}

static void hash_object(struct sha256_ctx *h, const struct schema *s, const void *obj)
{
	for (const struct field *f = s->fields; f->name; f++)
		if (types[f->type].hash) {
			hash_cstr(h, f->name);
			types[f->type].hash(h, f, AT_C(obj, f->off));
		}
}

static void free_object(const struct schema *s, void *obj)
{
	for (const struct field *f = s->fields; f->name; f++)
		if (types[f->type].free)
			types[f->type].free(f, AT(obj, f->off));
}

/* ---- the API ---- */

struct pod_manifest *pod_manifest_free(struct pod_manifest *m)
{
	if (!m)
		return NULL;
	free_object(&pod_manifest_schema, m);
	free(m->file);
	free(m);
	return NULL;
}

void pod_manifest_freep(struct pod_manifest **m)
{
	*m = pod_manifest_free(*m);
}

/* Kind and apiVersion first: a Deployment would otherwise fail on its first unknown field. */
static int check_kind(struct decoder *d, const struct ynode *root)
{
	static const struct {
		const char *key, *want;
	} checks[] = { { "apiVersion", "v1" }, { "kind", "Pod" } };
	if (root->kind != YNODE_MAP)
		return decoder_fail(d, "expected a map (a Pod)");
	for (size_t c = 0; c < ARRAY_SIZE(checks); c++) {
		const struct ynode *v = NULL;
		for (size_t i = 0; i < root->n; i += 2)
			if (strcmp(root->kids[i]->text, checks[c].key) == 0)
				v = root->kids[i + 1];
		if (!v || is_null(v))
			return decoder_fail_at(d, checks[c].key, "required");
		if (v->kind == YNODE_SCALAR && strcmp(v->text, checks[c].want) != 0)
			return decoder_fail_at(d, checks[c].key,
					       "must be \"%s\", not \"%.100s\" (berth runs Pods)",
					       checks[c].want, v->text);
	}
	return 0;
}

int pod_manifest_parse(const char *text, size_t len, const char *file, struct pod_manifest **ret,
		       struct berth_error **err)
{
	_cleanup_(pod_manifest_freep) struct pod_manifest *m = NULL;
	struct ynode *root = NULL;
	struct decoder d = { .file = file ? file : "<manifest>", .err = err };

	if (len > POD_MANIFEST_MAX_SIZE)
		return berth_error_set(err, E2BIG, "%s: larger than %u bytes", d.file,
				       POD_MANIFEST_MAX_SIZE);
	int r = ynode_parse(text ? text : "", text ? len : 0, d.file, &root, err);
	if (r == 0) {
		m = calloc(1, sizeof(*m));
		r = m && (m->file = strdup(d.file)) ? 0 : -ENOMEM;
	}
	d.manifest = m;
	if (r == 0)
		r = check_kind(&d, root);
	if (r == 0)
		r = decode_object(&d, &pod_manifest_schema, root, m);
	ynode_free(root);
	if (r == -ENOMEM)
		return berth_error_set(err, ENOMEM, "%s: out of memory", d.file);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(m);
	return 0;
}

char *pod_manifest_hash(const struct pod_manifest *m)
{
	static const char hex[] = "0123456789abcdef";
	struct sha256_ctx h;
	uint8_t digest[SHA256_DIGEST_LEN];
	char *out = malloc(sizeof("sha256:") + 2 * SHA256_DIGEST_LEN);
	if (!out)
		return NULL;
	sha256_init(&h);
	hash_object(&h, &pod_manifest_schema, m);
	sha256_final(&h, digest);
	strcpy(out, "sha256:");
	for (size_t i = 0; i < SHA256_DIGEST_LEN; i++) {
		out[7 + 2 * i] = hex[digest[i] >> 4];
		out[8 + 2 * i] = hex[digest[i] & 15];
	}
	out[7 + 2 * SHA256_DIGEST_LEN] = '\0';
	return out;
}

bool pod_manifest_equal(const struct pod_manifest *a, const struct pod_manifest *b)
{
	_cleanup_free_ char *x = pod_manifest_hash(a);
	_cleanup_free_ char *y = pod_manifest_hash(b);
	return x && y && strcmp(x, y) == 0;
}

/* ---- QoS (Kubernetes' pkg/apis/core/v1/helper/qos) ---- */

struct qos_sum {
	int64_t requests[2], limits[2]; /* cpu, memory; sums of the positive ones */
	bool has_request[2], has_limit[2];
	bool guaranteed;
};

static void sat_add(int64_t *sum, int64_t v)
{
	if (__builtin_add_overflow(*sum, v, sum))
		*sum = INT64_MAX;
}

static void qos_add(struct qos_sum *q, const struct pod_container *c)
{
	const struct pod_opt_int *req[2] = { &c->resources.requests.cpu_millis,
					     &c->resources.requests.memory_bytes };
	const struct pod_opt_int *lim[2] = { &c->resources.limits.cpu_millis,
					     &c->resources.limits.memory_bytes };
	bool both_limits = true;
	for (int i = 0; i < 2; i++) {
		if (req[i]->set && req[i]->value > 0) {
			sat_add(&q->requests[i], req[i]->value);
			q->has_request[i] = true;
		}
		if (lim[i]->set && lim[i]->value > 0) {
			sat_add(&q->limits[i], lim[i]->value);
			q->has_limit[i] = true;
		} else {
			both_limits = false;
		}
	}
	if (!both_limits)
		q->guaranteed = false;
}

enum pod_qos pod_manifest_qos(const struct pod_manifest *m)
{
	struct qos_sum q = { .guaranteed = true };
	for (size_t i = 0; i < m->spec.n_containers; i++)
		qos_add(&q, &m->spec.containers[i]);
	for (size_t i = 0; i < m->spec.n_init_containers; i++)
		qos_add(&q, &m->spec.init_containers[i]);
	if (!q.has_request[0] && !q.has_request[1] && !q.has_limit[0] && !q.has_limit[1])
		return POD_QOS_BEST_EFFORT;
	for (int i = 0; i < 2; i++)
		if (q.has_request[i] && (!q.has_limit[i] || q.limits[i] != q.requests[i]))
			q.guaranteed = false;
	/* as many resources requested as limited */
	if (q.guaranteed && q.has_request[0] + q.has_request[1] == q.has_limit[0] + q.has_limit[1])
		return POD_QOS_GUARANTEED;
	return POD_QOS_BURSTABLE;
}

const char *pod_qos_name(enum pod_qos q)
{
	switch (q) {
	case POD_QOS_GUARANTEED:
		return "Guaranteed";
	case POD_QOS_BURSTABLE:
		return "Burstable";
	default:
		return "BestEffort";
	}
}
