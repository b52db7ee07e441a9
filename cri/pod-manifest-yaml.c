/* cri/pod-manifest-yaml.c: one YAML (or JSON) document into a tree of ynodes, with libyaml's
 * event parser (not its document loader, which follows aliases into shared and even cyclic
 * nodes). Aliases and application tags are refused; the tree is bounded in depth and size. */
#include "cri/pod-manifest-internal.h"

#include "base/cleanup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

struct builder {
	const char *file;
	struct berth_error **err;
	struct ynode *root;
	struct ynode *stack[YNODE_MAX_DEPTH];
	size_t depth;
	size_t nodes;
	size_t documents;
};

void ynode_free(struct ynode *n)
{
	if (!n)
		return;
	for (size_t i = 0; i < n->n; i++)
		ynode_free(n->kids[i]);
	free(n->kids);
	free(n->text);
	free(n);
}

static int fail_at(struct builder *b, const yaml_mark_t *mark, const char *what)
{
	return berth_error_set(b->err, EINVAL, "%s: line %zu column %zu: %s", b->file,
			       mark->line + 1, mark->column + 1, what);
}

static bool text_in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

static const char *const null_words[] = { "", "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
					  "on", "On", "ON", NULL };
static const char *const false_words[] = { "n", "N", "no", "No", "NO", "false", "False", "FALSE",
					   "off", "Off", "OFF", NULL };
static const char *const float_words[] = { ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF",
					   "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", NULL };

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* YAML 1.1 integers: [-+] then 0x hex, 0b binary, 0 octal or decimal, '_' allowed between digits.
 * Returns false when s is not one; *ok tells whether it fits in int64. */
static bool resolve_int(const char *s, int64_t *ret, bool *ok)
{
	bool neg = *s == '-';
	unsigned base = 10;
	uint64_t v = 0;
	bool overflow = false, digits = false;

	if (*s == '-' || *s == '+')
		s++;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'b')) {
		base = s[1] == 'x' ? 16 : 2;
		s += 2;
	} else if (s[0] == '0' && s[1]) {
		base = 8;
	}
	for (; *s; s++) {
		if (*s == '_' && digits)
			continue;
		unsigned d = (unsigned)digit_value(*s);
		if (d >= base)
			return false;
		digits = true;
		if (v > (UINT64_MAX - d) / base)
			overflow = true;
		else
			v = v * base + d;
	}
	if (!digits)
		return false;
	*ok = !overflow && v <= (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX);
	*ret = *ok ? (neg ? (int64_t)(0 - v) : (int64_t)v) : 0;
	return true;
}

static bool resolve_float(const char *s)
{
	if (text_in(s, float_words))
		return true;
	if (!strchr("+-.0123456789", s[0]) || strpbrk(s, "xXnN"))
		return false;
	char *end;
	(void)strtod(s, &end);
	return end != s && *end == '\0';
}

static void resolve_plain(struct ynode *n)
{
	if (text_in(n->text, null_words))
		n->scalar = YSCALAR_NULL;
	else if (text_in(n->text, true_words) || text_in(n->text, false_words)) {
		n->scalar = YSCALAR_BOOL;
		n->bval = text_in(n->text, true_words);
	} else if (resolve_int(n->text, &n->ival, &n->int_ok))
		n->scalar = YSCALAR_INT;
	else if (resolve_float(n->text))
		n->scalar = YSCALAR_FLOAT;
	else
		n->scalar = YSCALAR_STR;
}

static bool tag_allowed(const yaml_char_t *tag, const char *core)
{
	return !tag || strcmp((const char *)tag, core) == 0 || strcmp((const char *)tag, "!") == 0;
}

static int new_node(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind,
		    struct ynode **ret)
{
	if (++b->nodes > YNODE_MAX_NODES)
		return fail_at(b, &ev->start_mark, "too many nodes");
	struct ynode *n = calloc(1, sizeof(*n));
	if (!n)
		return -ENOMEM;
	n->kind = kind;
	n->line = ev->start_mark.line + 1;
	*ret = n;
	return 0;
}

static int make_scalar(struct builder *b, const yaml_event_t *ev, struct ynode **ret)
{
	const char *value = (const char *)ev->data.scalar.value;
	size_t len = ev->data.scalar.length;
	struct ynode *n = NULL;

	if (!tag_allowed(ev->data.scalar.tag, YAML_STR_TAG))
		return fail_at(b, &ev->start_mark, "YAML tags are not supported by berth");
	if (memchr(value, '\0', len))
		return fail_at(b, &ev->start_mark, "NUL character in a string");
	int r = new_node(b, ev, YNODE_SCALAR, &n);
	if (r < 0)
		return r;
	n->text = strndup(value, len);
	if (!n->text) {
		free(n);
		return -ENOMEM;
	}
	if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag)
		resolve_plain(n);
	*ret = n;
	return 0;
}

static int append(struct ynode *parent, struct ynode *kid)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct ynode **k = realloc(parent->kids, cap * sizeof(*k));
		if (!k)
			return -ENOMEM;
		parent->kids = k;
		parent->cap = cap;
	}
	parent->kids[parent->n++] = kid;
	return 0;
}

/* Hangs n under the innermost open collection (or makes it the root) and, for a collection,
 * opens it. On failure n is freed. */
static int attach(struct builder *b, const yaml_event_t *ev, struct ynode *n)
{
	int r = 0;
	if (b->depth == 0) {
		b->root = n;
	} else {
		struct ynode *parent = b->stack[b->depth - 1];
		if (parent->kind == YNODE_MAP && parent->n % 2 == 0 && n->kind != YNODE_SCALAR)
			r = fail_at(b, &ev->start_mark, "a map key must be a string");
		if (r == 0)
			r = append(parent, n);
		if (r < 0) {
			ynode_free(n);
			return r;
		}
	}
	if (n->kind == YNODE_SCALAR)
		return 0;
	if (b->depth == YNODE_MAX_DEPTH)
		return fail_at(b, &ev->start_mark, "nested too deeply");
	b->stack[b->depth++] = n;
	return 0;
}

static int on_collection(struct builder *b, const yaml_event_t *ev, enum ynode_kind kind)
{
	const yaml_char_t *tag = kind == YNODE_MAP ? ev->data.mapping_start.tag
						   : ev->data.sequence_start.tag;
	struct ynode *n = NULL;
	if (!tag_allowed(tag, kind == YNODE_MAP ? YAML_MAP_TAG : YAML_SEQ_TAG))
		return fail_at(b, &ev->start_mark, "YAML tags are not supported by berth");
	int r = new_node(b, ev, kind, &n);
	return r < 0 ? r : attach(b, ev, n);
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	struct ynode *n = NULL;
	int r;

	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->documents++ > 0)
			return fail_at(b, &ev->start_mark,
				       "more than one YAML document: a manifest holds one Pod");
		return 0;
	case YAML_SCALAR_EVENT:
		r = make_scalar(b, ev, &n);
		return r < 0 ? r : attach(b, ev, n);
	case YAML_SEQUENCE_START_EVENT:
		return on_collection(b, ev, YNODE_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_collection(b, ev, YNODE_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		b->depth--;
		return 0;
	case YAML_ALIAS_EVENT:
		return fail_at(b, &ev->start_mark, "YAML aliases are not supported by berth");
	default:
		return 0;
	}
}

static int syntax_error(struct builder *b, const yaml_parser_t *p)
{
	if (p->error == YAML_MEMORY_ERROR)
		return -ENOMEM;
	char what[256];
	snprintf(what, sizeof(what), "%s%s%s", p->problem ? p->problem : "invalid YAML",
		 p->context ? " " : "", p->context ? p->context : "");
	return fail_at(b, &p->problem_mark, what);
}

int ynode_parse(const char *text, size_t len, const char *file, struct ynode **ret,
		struct berth_error **err)
{
	struct builder b = { .file = file, .err = err };
	yaml_parser_t p;
	bool done = false;
	int r = 0;

	if (!yaml_parser_initialize(&p))
		return -ENOMEM;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && r == 0) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			r = syntax_error(&b, &p);
			break;
		}
		done = ev.type == YAML_STREAM_END_EVENT;
		r = on_event(&b, &ev);
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	if (r == 0 && !b.root)
		r = berth_error_set(err, EINVAL, "%s: empty manifest", file);
	if (r < 0) {
		ynode_free(b.root);
		return r;
	}
	*ret = b.root;
	return 0;
}
