/* Inside cri/pod-manifest*.c: the YAML document as a small tree of nodes, built by
 * pod-manifest-yaml.c from libyaml's events and read by the schema walker in pod-manifest.c.
 * Plain scalars are resolved as YAML 1.1 does (Kubernetes reads YAML with go-yaml v2, then as
 * JSON): "yes" is a boolean, "010" an octal integer, "1.5" a float, "~" null. */
#ifndef BERTH_CRI_POD_MANIFEST_INTERNAL_H
#define BERTH_CRI_POD_MANIFEST_INTERNAL_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ynode_kind { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };
enum yscalar { YSCALAR_STR, YSCALAR_NULL, YSCALAR_BOOL, YSCALAR_INT, YSCALAR_FLOAT };

struct ynode {
	enum ynode_kind kind;
	enum yscalar scalar; /* YNODE_SCALAR: what the text resolves to */
	bool int_ok;	     /* YSCALAR_INT: ival holds it (false: out of range) */
	bool bval;	     /* YSCALAR_BOOL */
	int64_t ival;
	char *text;	     /* YNODE_SCALAR, NUL-terminated (no NUL inside) */
	size_t line;	     /* 1-based */
	struct ynode **kids; /* YNODE_SEQ: items; YNODE_MAP: key, value, key, value ... */
	size_t n;	     /* number of kids (twice the number of pairs in a map) */
	size_t cap;
};

/* Longest manifest read, deepest nesting and most nodes accepted. */
#define POD_MANIFEST_MAX_SIZE (4u << 20)
#define YNODE_MAX_DEPTH 64
#define YNODE_MAX_NODES 200000

/* Parses exactly one YAML document; map keys are scalars. Errors: "<file>: line L column C:
 * <what>" (-EINVAL), -ENOMEM. */
int ynode_parse(const char *text, size_t len, const char *file, struct ynode **ret,
		struct berth_error **err);
void ynode_free(struct ynode *n);

/* ---- The schema walker (pod-manifest.c) and the Pod v1 schema (pod-manifest-schema.c) ---- */

struct pod_manifest;

/* How a field is read, hashed and freed; each has one row in pod-manifest.c's type table. */
enum field_type {
	FT_STR,	      /* char * */
	FT_INT,	      /* int64_t, in [min, max] */
	FT_OPT_INT,   /* struct pod_opt_int, in [min, max] */
	FT_BOOL,      /* bool */
	FT_OPT_BOOL,  /* struct pod_opt_bool */
	FT_ENUM,      /* an enum (int-sized), from `values` */
	FT_STRV,      /* char **, NULL-terminated; NULL when empty */
	FT_INTV,      /* int64_t * with a size_t count at count_off */
	FT_KV,	      /* struct pod_kv_list */
	FT_RESOURCES, /* struct pod_resource_list */
	FT_QUANTITY,  /* struct pod_opt_int, bytes */
	FT_PORT,      /* struct pod_port_ref */
	FT_OBJ,	      /* an embedded struct described by `sub` */
	FT_PTR,	      /* a pointer to a struct described by `sub`, NULL when absent */
	FT_LIST,      /* an array of `sub` structs with a size_t count at count_off */
	FT_UNSUPPORTED, /* a Pod v1 field berth refuses */
	FT_COUNT
};

#define FIELD_REQUIRED 1u

struct enum_value {
	const char *name;
	int value;
	bool unsupported; /* a value Kubernetes has and berth refuses */
};

/* One field of an object. String checks return NULL when s is fine, else what it must be
 * ("a DNS-1123 label (...)"). */
struct field {
	const char *name;
	enum field_type type;
	unsigned flags;
	size_t off;
	size_t count_off;
	const struct schema *sub;
	const struct enum_value *values; /* ends with a NULL name */
	int64_t min, max;
	const char *(*check)(const char *s);	   /* FT_STR, FT_STRV items, FT_KV keys */
	const char *(*check_value)(const char *s); /* FT_KV values */
};

struct decoder;

/* An object: its size, fields (ending with a NULL name), defaults set before decoding (no
 * allocation: the object may be freed half-built) and checks across its fields after. */
struct schema {
	size_t size;
	const struct field *fields;
	void (*init_cb)(void *obj);
	int (*finish_cb)(struct decoder *d, void *obj);
};

#define DECODER_PATH_MAX 512

struct decoder {
	const char *file;
	struct berth_error **err;
	char path[DECODER_PATH_MAX]; /* of the node being read: "spec.containers[0].name" */
	size_t path_len;
	struct pod_manifest *manifest;
};

/* Appends ".key" (or "key" at the root) or "[i]" to d->path; returns the length to pop back to. */
size_t decoder_push_key(struct decoder *d, const char *key);
size_t decoder_push_index(struct decoder *d, size_t i);
void decoder_pop(struct decoder *d, size_t len);
/* Sets the one-line error "<file>: <path>: <what>" and returns -EINVAL. decoder_fail_at names
 * a field below the current path: sub is "name" or "containers[1].name". */
int decoder_fail(struct decoder *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int decoder_fail_at(struct decoder *d, const char *sub, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The index of the first name (in order) equal to an earlier one; NULL names are skipped.
 * SIZE_MAX: none; SIZE_MAX - 1: out of memory. */
size_t first_duplicate(const char *const *names, size_t n);

extern const struct schema pod_manifest_schema;

#endif
