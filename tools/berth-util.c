/* What the berthd commands of berth share: errors, calls, --format, tables, times and sizes. */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int berth_cmd_fail(const char *cmd, struct berth_error *err, int r)
{
	berth_error_wrap(&err, "%s", cmd);
	return cli_fail(err, r);
}

int berth_cmd_call(const char *socket_path, const char *cmd, struct json_writer *w,
		   struct json **ret)
{
	struct berth_error *err = NULL;
	int r = berthd_call(socket_path, w, ret, &err);
	return r < 0 ? berth_cmd_fail(cmd, err, r) : 0;
}

int berth_cmd_resolve(const char *socket_path, const char *cmd, enum berthd_kind kind,
		      const char *given, char **ret_id, char **ret_state)
{
	struct berth_error *err = NULL;
	int r = berthd_resolve(socket_path, kind, given, ret_id, ret_state, &err);
	return r < 0 ? berth_cmd_fail(cmd, err, r) : 0;
}

int berth_cmd_for_each(const char *socket_path, const char *cmd, enum berthd_kind kind, int argc,
		       char **argv, int i, berth_cmd_each_fn *act, void *arg, bool print)
{
	int rc = 0;
	for (; i < argc; i++) {
		_cleanup_free_ char *id = NULL;
		struct berth_error *err = NULL;
		int r = berthd_resolve(socket_path, kind, argv[i], &id, NULL, &err);
		if (r == 0)
			r = act(socket_path, id, argv[i], arg, &err);
		if (r < 0)
			rc = berth_cmd_fail(cmd, err, r);
		else if (print)
			printf("%s\n", argv[i]);
	}
	return rc;
}

int berth_cmd_format(const char *cmd, const char *format, bool *ret_json)
{
	*ret_json = strcmp(format, "json") == 0;
	if (!*ret_json && strcmp(format, "table") != 0 && strcmp(format, "text") != 0)
		return cli_usage("%s: --format %s: expects table or json", cmd, format);
	return 0;
}

int berth_cmd_print_writer(struct json_writer *w)
{
	_cleanup_free_ char *text = NULL;
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	int r = bjson_writer_finish(w, &text, NULL);
	if (r < 0)
		return cli_fail(NULL, r);
	printf("%s\n", text);
	return 0;
}

int berth_cmd_print_json(const struct json *j)
{
	struct json_writer *w = bjson_writer_new(true);
	if (w)
		bjson_writer_value(w, j);
	return berth_cmd_print_writer(w);
}

static const struct opt *short_flag(const struct opt *opts, char c)
{
	for (const struct opt *o = opts; o->name; o++)
		if (o->short_name == c && o->kind == OPT_FLAG)
			return o;
	return NULL;
}

static bool splittable(const char *a, const struct opt *opts)
{
	if (a[0] != '-' || !a[1] || a[1] == '-' || !a[2])
		return false;
	for (const char *c = a + 1; *c; c++)
		if (!short_flag(opts, *c))
			return false;
	return true;
}

/* Whether word a is an option that takes the next word as its value. */
static bool takes_value(const char *a, const struct opt *opts)
{
	const char *name = a + (a[1] == '-' ? 2 : 1);
	if (strchr(name, '='))
		return false;
	for (const struct opt *o = opts; o->name; o++)
		if (o->kind != OPT_FLAG &&
		    (strcmp(o->name, name) == 0 || (name[0] == o->short_name && !name[1])))
			return true;
	return false;
}

char **berth_cmd_split_flags(int argc, char **argv, int i, const struct opt *opts, int *ret_argc)
{
	/* the flag words: "-x" for each letter, kept in a static table of two-byte strings */
	static char words[128][3];
	size_t cap = (size_t)argc + 1;
	for (int k = i; k < argc; k++)
		cap += strlen(argv[k]);
	char **v = calloc(cap, sizeof(char *));
	if (!v)
		return NULL;
	int n = 0, k = 0;
	for (; k < i; k++)
		v[n++] = argv[k];
	for (; k < argc && argv[k][0] == '-' && argv[k][1] && strcmp(argv[k], "--") != 0; k++) {
		if (!splittable(argv[k], opts)) {
			v[n++] = argv[k];
			if (takes_value(argv[k], opts) && k + 1 < argc)
				v[n++] = argv[++k];
			continue;
		}
		for (const char *c = argv[k] + 1; *c; c++) {
			unsigned char u = (unsigned char)*c & 0x7f;
			words[u][0] = '-';
			words[u][1] = (char)u;
			v[n++] = words[u];
		}
	}
	for (; k < argc; k++)
		v[n++] = argv[k];
	*ret_argc = n;
	return v;
}

int64_t berth_cmd_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int berth_cmd_random_hex(char *buf, size_t nbytes)
{
	unsigned char raw[16];
	if (nbytes > sizeof(raw) || getrandom(raw, nbytes, 0) != (ssize_t)nbytes)
		return -EIO;
	for (size_t k = 0; k < nbytes; k++)
		snprintf(buf + 2 * k, 3, "%02x", raw[k]);
	return 0;
}

const char *berth_cmd_ago(int64_t ns, char buf[48])
{
	static const struct {
		int64_t secs;
		const char *unit;
	} units[] = { { 86400 * 365, "year" }, { 86400 * 30, "month" }, { 86400 * 7, "week" },
		      { 86400, "day" },	       { 3600, "hour" },	{ 60, "minute" },
		      { 1, "second" } };
	if (ns <= 0) {
		snprintf(buf, 48, "-");
		return buf;
	}
	int64_t secs = (berth_cmd_now_ns() - ns) / 1000000000;
	if (secs < 1) {
		snprintf(buf, 48, "Less than a second ago");
		return buf;
	}
	for (size_t k = 0; k < ARRAY_SIZE(units); k++) {
		int64_t v = secs / units[k].secs;
		if (v >= 1) {
			snprintf(buf, 48, "%lld %s%s ago", (long long)v, units[k].unit,
				 v == 1 ? "" : "s");
			break;
		}
	}
	return buf;
}

const char *berth_cmd_size(uint64_t n, char buf[24])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 24, u ? "%.1f%s" : "%.0f%s", v, units[u]);
	return buf;
}

const char *berth_cmd_short_id(const char *id, char buf[13])
{
	snprintf(buf, 13, "%s", id ? id : "");
	return buf;
}

/* ---- tables ---- */

struct table {
	size_t ncols, nrows, cap;
	char **cells; /* row-major; row 0 the headers */
};

struct table *table_new(size_t ncols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));
	if (t) {
		t->ncols = ncols;
		if (!table_add(t, headers))
			t = table_free(t);
	}
	return t;
}

bool table_add(struct table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		char **nc = reallocarray(t->cells, cap * t->ncols, sizeof(char *));
		if (!nc)
			return false;
		t->cells = nc;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t c = 0; c < t->ncols; c++) {
		if (!(row[c] = strdup(cells[c] ? cells[c] : ""))) {
			while (c-- > 0)
				free(row[c]);
			return false;
		}
	}
	t->nrows++;
	return true;
}

void table_print(const struct table *t, FILE *f)
{
	size_t width[16] = { 0 };
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t c = 0; c < t->ncols && c < ARRAY_SIZE(width); c++) {
			size_t n = strlen(t->cells[r * t->ncols + c]);
			width[c] = n > width[c] ? n : width[c];
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t c = 0; c < t->ncols; c++) {
			const char *cell = t->cells[r * t->ncols + c];
			if (c + 1 == t->ncols)
				fprintf(f, "%s\n", cell); /* the last column is not padded */
			else
				fprintf(f, "%-*s  ", (int)width[c < 16 ? c : 15], cell);
		}
	}
}

struct table *table_free(struct table *t)
{
	if (!t)
		return NULL;
	for (size_t k = 0; k < t->nrows * t->ncols; k++)
		free(t->cells[k]);
	free(t->cells);
	free(t);
	return NULL;
}

void table_freep(struct table **t)
{
	table_free(*t);
}
