/* berth: the command line for people: `berth image …` over libberth's image store; the
 * containers and pods of berthd through its socket: run, ps, logs, stop, kill, rm, inspect, stats,
 * events, pod … (tools/berth-*.c), exec, attach and port-forward (tools/berth-stream.c), info and
 * version. */
#include "base/cleanup.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "image/image.h"
#include "tools/berth-cmd.h"
#include "tools/berth-stream.h"
#include "tools/berthd-client.h"
#include "tools/cli.h"
#include "tools/options.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "berth"

struct global {
	const char *root;
	const char *registries;
	const char *authfile;
	const char *max_layer_size;
	const char *max_layer_entries;
	const char *parallel;
	const char *socket;
	bool allow_devices;
	bool debug;
};

static struct global g;

static void usage(FILE *f)
{
	fputs("usage: " PROG " [--root DIR] [--registries FILE] [--authfile FILE] [--parallel N]\n"
	      "             [--max-layer-size SIZE] [--max-layer-entries N] [--allow-devices]\n"
	      "             [--socket PATH] [--debug] COMMAND\n"
	      "\n"
	      "--socket (else $BERTH_SOCKET, else " BERTHD_DEFAULT_SOCKET "): berthd's socket, for\n"
	      "every command but image. Containers and pods are named by id, unique id prefix or\n"
	      "name. Exit status: 0, 1 (an error), 2 (bad usage); run, exec and attach: the\n"
	      "process's.\n"
	      "\n"
	      "commands:\n"
	      "  run [--rm] [-d] [-i] [-t] [-q] [--name N] [-e K=V] [-v SRC:DST[:ro]] "
	      "[-p HOST:CTR[/udp]] [--memory M] [--cpus C] [--user U] [--workdir D] "
	      "[--entrypoint E] IMAGE [CMD...]\n"
	      "  ps [-a] [-q] [--format table|json]\n"
	      "  logs [-f] [--tail N] [--since T] [--timestamps] CONTAINER\n"
	      "  stop [-t SECONDS] CONTAINER...\n"
	      "  kill [-s SIGNAL] CONTAINER...\n"
	      "  rm [-f] CONTAINER...\n"
	      "  inspect CONTAINER|POD...\n"
	      "  stats [--no-stream] [--format table|json] [CONTAINER...]\n"
	      "  events [--format text|json]\n"
	      "  pod run [--name N] [--hostname H] [-p HOST:CTR[/udp]] [-l K=V]\n"
	      "  pod ls [-q] [--format table|json]\n"
	      "  pod inspect POD...\n"
	      "  pod stop POD...\n"
	      "  pod rm [-f] POD...\n"
	      "  pod logs [-f] [--tail N] [--since T] [--timestamps] POD\n"
	      "  apply -f FILE\n"
	      "  delete -f FILE\n"
	      "  image pull [--platform OS/ARCH[/VARIANT]] [-q] [--format text|json] NAME\n"
	      "  image ls [-q] [--format table|json]\n"
	      "  image inspect NAME\n"
	      "  image rm NAME...\n"
	      "  image prune [--all]\n"
	      "  image check\n"
	      "  image du\n"
	      "  image import FILE\n"
	      "  image export NAME... FILE\n"
	      "  image mount NAME DIR\n"
	      "  image unmount DIR\n"
	      "  exec [-i] [-t] CONTAINER CMD [ARG...]\n"
	      "  attach [-i] [-t] CONTAINER\n"
	      "  port-forward POD [LOCAL:]REMOTE...\n"
	      "  info [--format text|json]\n"
	      "  version [--format text|json]\n",
	      f);
}

/* A count, or a size with an optional K, M, G or T suffix (powers of 1024). */
static int parse_size(const char *s, const char *option, uint64_t *ret)
{
	if (!s)
		return 0;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	static const char suffixes[] = "KMGT";
	const char *suffix = *end ? strchr(suffixes, *end) : NULL;
	unsigned shift = suffix ? 10 * (unsigned)(suffix - suffixes + 1) : 0;
	if (errno || end == s || *s == '-' || (*end && (!suffix || end[1])) || v == 0 || v > (UINT64_MAX >> shift))
		return cli_usage("--%s %s: expects a positive number (a size may end in K, M, G or T)", option, s);
	*ret = (uint64_t)v << shift;
	return 0;
}

static int open_store(struct image_store **ret)
{
	struct image_store_options o = {
		.root = g.root, .registries_config = g.registries, .auth_file = g.authfile,
		.allow_devices = g.allow_devices,
	};
	uint64_t parallel = 0;
	int r;
	if ((r = parse_size(g.max_layer_size, "max-layer-size", &o.max_layer_bytes)) ||
	    (r = parse_size(g.max_layer_entries, "max-layer-entries", &o.max_layer_entries)) ||
	    (r = parse_size(g.parallel, "parallel", &parallel)))
		return r;
	if (parallel > 64)
		return cli_usage("--parallel %s: at most 64", g.parallel);
	o.max_parallel = (unsigned)parallel;
	struct berth_error *err = NULL;
	r = image_store_open(&o, ret, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static void image_store_freep(struct image_store **s)
{
	image_store_free(*s);
}

#define _cleanup_store_ _cleanup_(image_store_freep)

/* Sizes for people: 1000-based like docker and nerdctl. */
static const char *human_size(uint64_t n, char buf[16])
{
	static const char *const units[] = { "B", "kB", "MB", "GB", "TB" };
	double v = (double)n;
	size_t u = 0;
	while (v >= 1000 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1000;
		u++;
	}
	snprintf(buf, 16, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static const char *short_digest(const char *d)
{
	static __thread char buf[20];
	const char *hex = d && strncmp(d, "sha256:", 7) == 0 ? d + 7 : (d ? d : "");
	snprintf(buf, sizeof(buf), "%.12s", hex);
	return buf;
}

/* ---- pull progress ---- */

struct layer_line {
	char digest[80];
	uint64_t done, total;
	const char *state;
	double started;
};

struct progress {
	bool tty;
	bool quiet;
	size_t n;
	struct layer_line lines[256];
	size_t drawn;
	double last_draw;
};

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct layer_line *progress_line(struct progress *p, const char *digest)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->lines[i].digest, digest) == 0)
			return &p->lines[i];
	if (p->n == ARRAY_SIZE(p->lines))
		return NULL;
	struct layer_line *l = &p->lines[p->n++];
	snprintf(l->digest, sizeof(l->digest), "%s", digest);
	l->state = "waiting";
	l->started = now_seconds();
	return l;
}

static void draw_line(const struct layer_line *l)
{
	char a[16], b[16], rate[16];
	double secs = now_seconds() - l->started;
	double bps = secs > 0.05 ? (double)l->done / secs : 0;
	fprintf(stderr, "\r\033[K%s: %-11s %s / %s", short_digest(l->digest), l->state, human_size(l->done, a),
		human_size(l->total, b));
	if (strcmp(l->state, "downloading") == 0 && bps > 0) {
		double eta = (double)(l->total - l->done) / bps;
		fprintf(stderr, "  %s/s  ETA %.0fs", human_size((uint64_t)bps, rate), eta);
	}
	fputc('\n', stderr);
}

/* Redraws every layer's line in place (at most 10 times a second, and on every state change). */
static void draw_all(struct progress *p, bool force)
{
	double t = now_seconds();
	if (!force && t - p->last_draw < 0.1)
		return;
	p->last_draw = t;
	if (p->drawn)
		fprintf(stderr, "\033[%zuA", p->drawn);
	for (size_t i = 0; i < p->n; i++)
		draw_line(&p->lines[i]);
	p->drawn = p->n;
	fflush(stderr);
}

static void plain_line(const struct layer_line *l)
{
	char a[16];
	fprintf(stderr, "%s: %s %s\n", short_digest(l->digest), l->state, human_size(l->total, a));
}

static void on_progress(void *opaque, const struct image_progress *ev)
{
	struct progress *p = opaque;
	if (p->quiet)
		return;
	if (ev->phase == IMAGE_PROGRESS_RESOLVED) {
		if (!p->tty)
			fprintf(stderr, "resolved: %" PRIu64 " layers\n", ev->total);
		return;
	}
	struct layer_line *l = progress_line(p, ev->digest);
	if (!l)
		return;
	const char *before = l->state;
	l->done = ev->done;
	l->total = ev->total;
	switch (ev->phase) {
	case IMAGE_PROGRESS_DOWNLOADING:
		l->state = "downloading";
		break;
	case IMAGE_PROGRESS_UNPACKING:
		l->state = "unpacking";
		break;
	case IMAGE_PROGRESS_LAYER_DONE:
		l->state = "done";
		break;
	case IMAGE_PROGRESS_LAYER_EXISTS:
		l->state = "exists";
		break;
	default:
		break;
	}
	if (p->tty)
		draw_all(p, before != l->state);
	else if (before != l->state)
		plain_line(l);
}

/* --format json: the result, or the error with its errno's name, as one JSON object on stdout,
 * for programs (berthd runs its pulls this way and maps the name back to a gRPC status). */
static int print_pull_json(const char *name, const char *digest, const struct berth_error *err,
			   int r)
{
	struct json_writer *w = bjson_writer_new(false);
	bjson_writer_begin_object(w);
	if (r < 0) {
		int code = err ? err->code : -r;
		const char *code_name = strerrorname_np(code);
		bjson_writer_key(w, "error");
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "message", err && err->msg ? err->msg : strerror(code));
		bjson_writer_kv_string(w, "code", code_name ? code_name : "EIO");
		bjson_writer_end_object(w);
	} else {
		bjson_writer_kv_string(w, "name", name);
		bjson_writer_kv_string(w, "digest", digest);
	}
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	if (bjson_writer_finish(w, &text, NULL) < 0)
		return -ENOMEM;
	printf("%s\n", text);
	return 0;
}

static int cmd_pull(int argc, char **argv, int i)
{
	const char *platform = NULL, *format = "text";
	bool quiet = false;
	const struct opt opts[] = {
		{ "platform", 0, OPT_STRING, &platform },
		{ "quiet", 'q', OPT_FLAG, &quiet },
		{ "format", 0, OPT_STRING, &format },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, "image pull");
	if (r || (r = cli_positional(argc, i, 1, 1, "image pull",
				     "[--platform OS/ARCH[/VARIANT]] [-q] [--format text|json] NAME")))
		return r;
	bool json = strcmp(format, "json") == 0;
	if (!json && strcmp(format, "text") != 0)
		return cli_usage("image pull: --format %s: expects text or json", format);
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	_cleanup_free_ struct progress *p = calloc(1, sizeof(*p));
	if (!p)
		return cli_fail(NULL, -ENOMEM);
	p->tty = isatty(STDERR_FILENO);
	p->quiet = quiet || json;
	struct berth_error *err = NULL;
	_cleanup_free_ char *digest = NULL, *name = NULL;
	r = image_reference_normalize(argv[i], &name, &err);
	if (r == 0)
		r = image_pull(s, argv[i], platform, on_progress, p, &digest, &err);
	if (p->tty && p->n)
		draw_all(p, true);
	if (json && print_pull_json(name, digest, err, r) < 0)
		return cli_fail(err, -ENOMEM);
	if (r < 0)
		return cli_fail(err, r);
	if (quiet && !json)
		printf("%s\n", digest);
	else if (!json)
		printf("%s %s\n", name, digest);
	return 0;
}

/* ---- ls, inspect ---- */

static void print_created(const char *created, char buf[32])
{
	/* "2024-01-02T03:04:05.123Z" -> "2024-01-02 03:04" */
	if (!created || strlen(created) < 16) {
		snprintf(buf, 32, "-");
		return;
	}
	snprintf(buf, 32, "%.10s %.5s", created, created + 11);
}

static int print_list_json(const struct image_summary *v, size_t n)
{
	struct json_writer *w = bjson_writer_new(true);
	bjson_writer_begin_array(w);
	for (size_t k = 0; k < n; k++) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "name", v[k].name);
		bjson_writer_kv_string(w, "digest", v[k].digest);
		bjson_writer_kv_string(w, "configDigest", v[k].config_digest);
		bjson_writer_key(w, "created");
		if (v[k].created)
			bjson_writer_string(w, v[k].created);
		else
			bjson_writer_null(w);
		bjson_writer_kv_string(w, "platform", v[k].platform);
		bjson_writer_key(w, "size");
		bjson_writer_uint(w, v[k].size);
		bjson_writer_key(w, "unpackedSize");
		bjson_writer_uint(w, v[k].unpacked_size);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	_cleanup_free_ char *text = NULL;
	int r = bjson_writer_finish(w, &text, NULL);
	if (r < 0)
		return cli_fail(NULL, r);
	printf("%s\n", text);
	return 0;
}

static void print_list_table(const struct image_summary *v, size_t n)
{
	int width = 4;
	for (size_t k = 0; k < n; k++)
		if ((int)strlen(v[k].name) > width)
			width = (int)strlen(v[k].name);
	printf("%-*s  %-12s  %-9s  %-9s  %s\n", width, "NAME", "DIGEST", "SIZE", "UNPACKED", "CREATED");
	for (size_t k = 0; k < n; k++) {
		char a[16], b[16], c[32];
		print_created(v[k].created, c);
		printf("%-*s  %-12s  %-9s  %-9s  %s\n", width, v[k].name, short_digest(v[k].digest),
		       human_size(v[k].size, a), human_size(v[k].unpacked_size, b), c);
	}
}

static int cmd_ls(int argc, char **argv, int i)
{
	const char *format = "table";
	bool quiet = false;
	const struct opt opts[] = {
		{ "format", 0, OPT_STRING, &format },
		{ "quiet", 'q', OPT_FLAG, &quiet },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, "image ls");
	if (r || (r = cli_positional(argc, i, 0, 0, "image ls", "[-q] [--format table|json]")))
		return r;
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)
		return cli_usage("image ls: --format %s: expects table or json", format);
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	struct image_summary *v = NULL;
	size_t n = 0;
	struct berth_error *err = NULL;
	r = image_list(s, &v, &n, &err);
	if (r < 0)
		return cli_fail(err, r);
	if (quiet)
		for (size_t k = 0; k < n; k++)
			printf("%s\n", v[k].name);
	else if (strcmp(format, "json") == 0)
		r = print_list_json(v, n);
	else
		print_list_table(v, n);
	image_summary_free(v, n);
	return r;
}

static int cmd_inspect(int argc, char **argv, int i)
{
	const char *format = "json";
	const struct opt opts[] = { { "format", 0, OPT_STRING, &format }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image inspect");
	if (r || (r = cli_positional(argc, i, 1, 1, "image inspect", "NAME")))
		return r;
	if (strcmp(format, "json") != 0)
		return cli_usage("image inspect: --format %s: only json is supported", format);
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	_cleanup_free_ char *json = NULL;
	struct berth_error *err = NULL;
	r = image_inspect(s, argv[i], &json, &err);
	if (r < 0)
		return cli_fail(err, r);
	printf("%s\n", json);
	return 0;
}

/* ---- rm, prune, check, du ---- */

static int cmd_rm(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image rm");
	if (r || (r = cli_positional(argc, i, 1, -1, "image rm", "NAME...")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	int rc = 0;
	for (; i < argc; i++) {
		struct berth_error *err = NULL;
		r = image_remove(s, argv[i], &err);
		if (r < 0)
			rc = cli_fail(err, r);
		else
			printf("%s\n", argv[i]);
	}
	return rc;
}

static void print_gc(const struct image_gc_result *res)
{
	char a[16];
	printf("removed %" PRIu64 " blobs and %" PRIu64 " snapshots, freed %s\n", res->blobs_removed,
	       res->snapshots_removed, human_size(res->bytes_freed, a));
}

static int cmd_prune(int argc, char **argv, int i)
{
	bool all = false;
	const struct opt opts[] = { { "all", 'a', OPT_FLAG, &all }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image prune");
	if (r || (r = cli_positional(argc, i, 0, 0, "image prune", "[--all]")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	struct image_gc_result res = { 0 };
	struct berth_error *err = NULL;
	r = image_prune(s, all, &res, &err);
	if (r < 0)
		return cli_fail(err, r);
	print_gc(&res);
	return 0;
}

static int cmd_check(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image check");
	if (r || (r = cli_positional(argc, i, 0, 0, "image check", "")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	_cleanup_strv_ char **problems = NULL;
	struct berth_error *err = NULL;
	r = image_check(s, &problems, &err);
	if (r < 0)
		return cli_fail(err, r);
	if (!problems || !problems[0]) {
		printf("ok\n");
		return 0;
	}
	for (char **p = problems; *p; p++)
		printf("%s\n", *p);
	return 1;
}

static int cmd_du(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image du");
	if (r || (r = cli_positional(argc, i, 0, 0, "image du", "")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	struct image_disk_usage du;
	struct berth_error *err = NULL;
	r = image_disk_usage(s, &du, &err);
	if (r < 0)
		return cli_fail(err, r);
	printf("bytes %" PRIu64 "\ninodes %" PRIu64 "\n", du.bytes, du.inodes);
	return 0;
}

/* ---- import, export, mount ---- */

static int cmd_import(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image import");
	if (r || (r = cli_positional(argc, i, 1, 1, "image import", "FILE")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	_cleanup_strv_ char **names = NULL;
	struct berth_error *err = NULL;
	r = image_import(s, argv[i], &names, &err);
	if (r < 0)
		return cli_fail(err, r);
	for (char **n = names; n && *n; n++)
		printf("%s\n", *n);
	return 0;
}

static int cmd_export(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image export");
	if (r || (r = cli_positional(argc, i, 2, -1, "image export", "NAME... FILE")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	struct berth_error *err = NULL;
	r = image_export(s, (const char *const *)argv + i, (size_t)(argc - i - 1), argv[argc - 1], &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int cmd_mount(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image mount");
	if (r || (r = cli_positional(argc, i, 2, 2, "image mount", "NAME DIR")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	struct berth_error *err = NULL;
	r = image_rootfs_create(s, argv[i], argv[i + 1], &err);
	if (r < 0)
		return cli_fail(err, r);
	printf("%s/rootfs\n", argv[i + 1]);
	return 0;
}

static int cmd_unmount(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "image unmount");
	if (r || (r = cli_positional(argc, i, 1, 1, "image unmount", "DIR")))
		return r;
	_cleanup_store_ struct image_store *s = NULL;
	if ((r = open_store(&s)))
		return r;
	struct berth_error *err = NULL;
	r = image_rootfs_remove(s, argv[i], &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv, int i);
} image_commands[] = {
	{ "pull", cmd_pull },	  { "ls", cmd_ls },	    { "list", cmd_ls },	    { "inspect", cmd_inspect },
	{ "rm", cmd_rm },	  { "remove", cmd_rm },	    { "prune", cmd_prune }, { "check", cmd_check },
	{ "du", cmd_du },	  { "import", cmd_import }, { "load", cmd_import }, { "export", cmd_export },
	{ "save", cmd_export }, { "mount", cmd_mount },   { "unmount", cmd_unmount },
};

static int cmd_image(int argc, char **argv, int i)
{
	if (i >= argc)
		return cli_usage("image: usage: " PROG " image pull|ls|inspect|rm|prune|check|du|import|export|mount|unmount ...");
	for (size_t k = 0; k < ARRAY_SIZE(image_commands); k++)
		if (strcmp(argv[i], image_commands[k].name) == 0)
			return image_commands[k].fn(argc, argv, i + 1);
	return cli_usage("image: unknown command \"%s\"", argv[i]);
}

/* The commands that go through berthd (tools/berth-stream.c). */
static const struct {
	const char *name;
	int (*fn)(const char *socket_path, int argc, char **argv, int i);
} berthd_commands[] = {
	{ "run", berth_run },	   { "ps", berth_ps },
	{ "logs", berth_logs },	   { "stop", berth_stop },
	{ "kill", berth_kill },	   { "rm", berth_rm },
	{ "inspect", berth_inspect }, { "stats", berth_stats },
	{ "events", berth_events },   { "pod", berth_pod },
	{ "pods", berth_pod },	   { "info", berth_info },
	{ "version", berth_version }, { "exec", berth_exec },
	{ "attach", berth_attach },   { "port-forward", berth_port_forward },
	{ "apply", berth_apply },     { "delete", berth_delete },
};

int main(int argc, char **argv)
{
	bool version = false, help = false;
	const struct opt opts[] = {
		{ "root", 0, OPT_STRING, &g.root },
		{ "registries", 0, OPT_STRING, &g.registries },
		{ "authfile", 0, OPT_STRING, &g.authfile },
		{ "max-layer-size", 0, OPT_STRING, &g.max_layer_size },
		{ "max-layer-entries", 0, OPT_STRING, &g.max_layer_entries },
		{ "parallel", 0, OPT_STRING, &g.parallel },
		{ "socket", 0, OPT_STRING, &g.socket },
		{ "allow-devices", 0, OPT_FLAG, &g.allow_devices },
		{ "debug", 0, OPT_FLAG, &g.debug },
		{ "version", 'v', OPT_FLAG, &version },
		{ "help", 'h', OPT_FLAG, &help },
		{ NULL, 0, 0, NULL },
	};
	cli_init(PROG, 2, NULL);
	int i = 1;
	int r = cli_parse(argc, argv, &i, opts, PROG);
	if (r)
		return r;
	if (version) {
		printf(PROG " version %s\n", BERTH_VERSION);
		return 0;
	}
	if (help || (i < argc && strcmp(argv[i], "help") == 0)) {
		usage(stdout);
		return 0;
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	log_setup(PROG, STDERR_FILENO, false, g.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	if (g.root && g.root[0] != '/')
		return cli_usage("--root %s: must be an absolute path", g.root);
	if (strcmp(argv[i], "image") == 0 || strcmp(argv[i], "images") == 0)
		return cmd_image(argc, argv, i + 1);
	for (size_t k = 0; k < ARRAY_SIZE(berthd_commands); k++)
		if (strcmp(argv[i], berthd_commands[k].name) == 0)
			return berthd_commands[k].fn(berthd_socket_path(g.socket), argc, argv, i + 1);
	return cli_usage("unknown command \"%s\" (see " PROG " --help)", argv[i]);
}
