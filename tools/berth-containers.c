/* berth ps, logs, stop, kill, rm, inspect, stats and events: containers through berthd. */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "tools/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>


static const struct json *list_of(const struct json *answer, const char *key)
{
	return bjson_object_get(answer, key);
}

static const char *str_of(const struct json *j, const char *key)
{
	return bjson_string(bjson_object_get(j, key));
}

static int64_t int_of(const struct json *j, const char *key)
{
	int64_t v = 0;
	return bjson_int64(bjson_object_get(j, key), &v) ? v : 0;
}

/* ---- ps ---- */

static const char *pod_name(const struct json *pods, const char *pod_id)
{
	for (size_t k = 0; k < bjson_array_size(pods); k++) {
		const struct json *p = bjson_array_get(pods, k);
		const char *id = str_of(p, "id");
		if (id && pod_id && strcmp(id, pod_id) == 0)
			return str_of(p, "name");
	}
	return "";
}

static bool ps_shown(const struct json *c, bool all)
{
	const char *state = str_of(c, "state");
	return all || (state && strcmp(state, "running") == 0);
}

static int ps_table(const struct json *ctrs, const struct json *pods, bool all)
{
	static const char *const headers[] = { "ID", "NAME", "IMAGE", "STATE", "CREATED", "POD" };
	_cleanup_(table_freep) struct table *t = table_new(ARRAY_SIZE(headers), headers);
	if (!t)
		return cli_fail(NULL, -ENOMEM);
	for (size_t k = 0; k < bjson_array_size(ctrs); k++) {
		const struct json *c = bjson_array_get(ctrs, k);
		char id[13], ago[48], state[64];
		if (!ps_shown(c, all))
			continue;
		const char *st = str_of(c, "state");
		if (st && strcmp(st, "exited") == 0)
			snprintf(state, sizeof(state), "exited (%" PRId64 ")", int_of(c, "exit_code"));
		else
			snprintf(state, sizeof(state), "%s", st ? st : "");
		const char *row[] = { berth_cmd_short_id(str_of(c, "id"), id), str_of(c, "name"),
				      str_of(c, "image"), state,
				      berth_cmd_ago(int_of(c, "created_ns"), ago),
				      pod_name(pods, str_of(c, "pod_id")) };
		if (!table_add(t, row))
			return cli_fail(NULL, -ENOMEM);
	}
	table_print(t, stdout);
	return 0;
}

/* The containers as berthd lists them, each with its pod's name added. */
static int ps_json(const struct json *ctrs, const struct json *pods, bool all)
{
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_array(w);
	for (size_t k = 0; k < bjson_array_size(ctrs); k++) {
		const struct json *c = bjson_array_get(ctrs, k);
		if (!ps_shown(c, all))
			continue;
		bjson_writer_begin_object(w);
		for (size_t f = 0; f < bjson_object_size(c); f++) {
			bjson_writer_key(w, bjson_object_key(c, f));
			bjson_writer_value(w, bjson_object_value(c, f));
		}
		bjson_writer_kv_string(w, "pod_name", pod_name(pods, str_of(c, "pod_id")));
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	return berth_cmd_print_writer(w);
}

int berth_ps(const char *socket_path, int argc, char **argv, int i)
{
	bool all = false, quiet = false, json;
	const char *format = "table";
	const struct opt opts[] = {
		{ "all", 'a', OPT_FLAG, &all },
		{ "quiet", 'q', OPT_FLAG, &quiet },
		{ "format", 0, OPT_STRING, &format },
		{ NULL, 0, 0, NULL },
	};
	int n = 0;
	_cleanup_free_ char **v = berth_cmd_split_flags(argc, argv, i, opts, &n);
	if (!v)
		return cli_fail(NULL, -ENOMEM);
	int r = cli_parse(n, v, &i, opts, "ps");
	if (r || (r = cli_positional(n, i, 0, 0, "ps", "[-a] [-q] [--format table|json]")) ||
	    (r = berth_cmd_format("ps", format, &json)))
		return r;
	_cleanup_(bjson_freep) struct json *ctrs = NULL, *pods = NULL;
	if ((r = berth_cmd_call(socket_path, "ps", berthd_request("container.list"), &ctrs)) ||
	    (r = berth_cmd_call(socket_path, "ps", berthd_request("pod.list"), &pods)))
		return r;
	const struct json *cl = list_of(ctrs, "containers"), *pl = list_of(pods, "pods");
	if (quiet) {
		for (size_t k = 0; k < bjson_array_size(cl); k++)
			if (ps_shown(bjson_array_get(cl, k), all))
				printf("%s\n", str_of(bjson_array_get(cl, k), "id"));
		return 0;
	}
	return json ? ps_json(cl, pl, all) : ps_table(cl, pl, all);
}

/* ---- logs ---- */

/* The container's status (container.status's "status") in *ret_answer. */
static int container_status(const char *socket_path, const char *cmd, const char *id,
			    struct json **ret_answer)
{
	struct json_writer *w = berthd_request("container.status");
	if (w)
		bjson_writer_kv_string(w, "container_id", id);
	return berth_cmd_call(socket_path, cmd, w, ret_answer);
}

int berth_logs(const char *socket_path, int argc, char **argv, int i)
{
	struct log_options o;
	const char *given;
	int r = berth_logs_parse_args(argc, argv, i, "logs", "CONTAINER", &o, &given);
	if (r)
		return r;
	_cleanup_free_ char *id = NULL;
	_cleanup_(bjson_freep) struct json *st = NULL;
	if ((r = berth_cmd_resolve(socket_path, "logs", BERTHD_CONTAINER, given, &id, NULL)) ||
	    (r = container_status(socket_path, "logs", id, &st)))
		return r;
	const char *path = str_of(bjson_object_get(st, "status"), "log_path");
	if (!path)
		return cli_fail_msg("logs: container \"%s\" has no log file", given);
	struct log_source src = { .container_id = id, .log_path = path };
	struct berth_error *err = NULL;
	int sig;
	if ((r = berth_logs_print(socket_path, &src, 1, &o, &sig, &err)) < 0)
		return berth_cmd_fail("logs", err, r);
	return 0;
}

/* ---- stop, kill, rm ---- */

static int simple_call(const char *socket_path, struct json_writer *w, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	return berthd_call(socket_path, w, &answer, err);
}

static int stop_one(const char *socket_path, const char *id, const char *given, void *arg,
		    struct berth_error **err)
{
	const int64_t *timeout = arg;
	struct json_writer *w = berthd_request("container.stop");
	if (w) {
		bjson_writer_kv_string(w, "container_id", id);
		if (*timeout >= 0)
			bjson_writer_kv_int(w, "timeout", *timeout);
	}
	return simple_call(socket_path, w, err);
}

int berth_stop(const char *socket_path, int argc, char **argv, int i)
{
	const char *time = NULL;
	const struct opt opts[] = { { "time", 't', OPT_STRING, &time }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "stop");
	if (r || (r = cli_positional(argc, i, 1, -1, "stop", "[-t SECONDS] CONTAINER...")))
		return r;
	int64_t timeout = -1; /* berthd's stop_timeout */
	char *end;
	if (time) {
		errno = 0;
		timeout = strtoll(time, &end, 10);
		if (errno || end == time || *end || timeout < 0 || timeout > INT32_MAX)
			return cli_usage("stop: -t %s: expects a number of seconds", time);
	}
	return berth_cmd_for_each(socket_path, "stop", BERTHD_CONTAINER, argc, argv, i, stop_one,
				  &timeout, true);
}

static int kill_one(const char *socket_path, const char *id, const char *given, void *arg,
		    struct berth_error **err)
{
	struct json_writer *w = berthd_request("container.kill");
	if (w) {
		bjson_writer_kv_string(w, "container_id", id);
		bjson_writer_kv_string(w, "signal", arg);
	}
	return simple_call(socket_path, w, err);
}

int berth_kill(const char *socket_path, int argc, char **argv, int i)
{
	const char *sig = "KILL";
	const struct opt opts[] = { { "signal", 's', OPT_STRING, &sig }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "kill");
	if (r || (r = cli_positional(argc, i, 1, -1, "kill", "[-s SIGNAL] CONTAINER...")))
		return r;
	return berth_cmd_for_each(socket_path, "kill", BERTHD_CONTAINER, argc, argv, i, kill_one,
				  (void *)sig, true);
}

/* berth run's pod of the container, once the container is gone and it holds no other. */
static int remove_run_pod(const char *socket_path, const char *pod_id, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *pod = NULL, *ctrs = NULL;
	struct json_writer *w = berthd_request("pod.status");
	if (w)
		bjson_writer_kv_string(w, "pod_id", pod_id);
	int r = berthd_call(socket_path, w, &pod, err);
	if (r == -ENOENT) {
		berth_error_free(TAKE_PTR(*err));
		return 0;
	}
	const struct json *labels = bjson_object_get(bjson_object_get(pod, "status"), "labels");
	if (r < 0 || !bjson_object_get(labels, BERTH_RUN_LABEL))
		return r;
	if ((w = berthd_request("container.list")))
		bjson_writer_kv_string(w, "pod_id", pod_id);
	if ((r = berthd_call(socket_path, w, &ctrs, err)) < 0 ||
	    bjson_array_size(list_of(ctrs, "containers")) > 0)
		return r;
	if ((w = berthd_request("pod.remove")))
		bjson_writer_kv_string(w, "pod_id", pod_id);
	return simple_call(socket_path, w, err);
}

static int rm_one(const char *socket_path, const char *id, const char *given, void *arg,
		  struct berth_error **err)
{
	const bool *force = arg;
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct json_writer *w = berthd_request("container.status");
	if (w)
		bjson_writer_kv_string(w, "container_id", id);
	int r = berthd_call(socket_path, w, &answer, err);
	if (r < 0)
		return r;
	const struct json *st = bjson_object_get(answer, "status");
	const char *state = str_of(st, "state");
	if (!*force && state && strcmp(state, "running") == 0)
		return berth_error_set(err, EBUSY,
				       "container \"%s\" is running (stop it first, or rm -f)",
				       given);
	if ((w = berthd_request("container.remove")))
		bjson_writer_kv_string(w, "container_id", id);
	if ((r = simple_call(socket_path, w, err)) < 0)
		return r;
	return str_of(st, "pod_id") ? remove_run_pod(socket_path, str_of(st, "pod_id"), err) : 0;
}

int berth_rm(const char *socket_path, int argc, char **argv, int i)
{
	bool force = false;
	const struct opt opts[] = { { "force", 'f', OPT_FLAG, &force }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "rm");
	if (r || (r = cli_positional(argc, i, 1, -1, "rm", "[-f] CONTAINER...")))
		return r;
	return berth_cmd_for_each(socket_path, "rm", BERTHD_CONTAINER, argc, argv, i, rm_one, &force,
				  true);
}

/* ---- inspect ---- */

/* container.inspect (or pod.inspect when no container has that name) of one argument. */
static int inspect_one(const char *socket_path, const char *given, struct json **ret,
		       struct berth_error **err)
{
	_cleanup_free_ char *id = NULL;
	enum berthd_kind kind = BERTHD_CONTAINER;
	int r = berthd_resolve(socket_path, kind, given, &id, NULL, err);
	if (r == -ENOENT) {
		/* no such container: a pod, else the container's error is the one told */
		struct berth_error *pod_err = NULL;
		int pr = berthd_resolve(socket_path, BERTHD_POD, given, &id, NULL, &pod_err);
		if (pr == -ENOENT) {
			berth_error_free(pod_err);
		} else {
			berth_error_free(*err);
			*err = pod_err;
			r = pr;
			kind = BERTHD_POD;
		}
	}
	if (r < 0)
		return r;
	struct json_writer *w = berthd_request(kind == BERTHD_POD ? "pod.inspect" : "container.inspect");
	if (w)
		bjson_writer_kv_string(w, kind == BERTHD_POD ? "pod_id" : "container_id", id);
	return berthd_call(socket_path, w, ret, err);
}

int berth_inspect(const char *socket_path, int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "inspect");
	if (r || (r = cli_positional(argc, i, 1, -1, "inspect", "CONTAINER|POD...")))
		return r;
	struct json_writer *w = bjson_writer_new(true);
	int rc = 0;
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_array(w);
	for (; i < argc; i++) {
		_cleanup_(bjson_freep) struct json *answer = NULL;
		struct berth_error *err = NULL;
		if ((r = inspect_one(socket_path, argv[i], &answer, &err)) < 0) {
			rc = berth_cmd_fail("inspect", err, r);
			continue;
		}
		bjson_writer_begin_object(w);
		bjson_writer_key(w, "status");
		bjson_writer_value(w, bjson_object_get(answer, "status"));
		bjson_writer_key(w, "config");
		bjson_writer_value(w, bjson_object_get(answer, "config"));
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	r = berth_cmd_print_writer(w);
	return rc ? rc : r;
}

/* ---- stats ---- */

struct sample {
	char id[33], name[128];
	uint64_t cpu_usec, mem, mem_max, pids;
	bool has_mem_max;
	double cpu_percent;
};

static int sample_one(const char *socket_path, const struct json *c, struct sample *s,
		      struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct json_writer *w = berthd_request("container.stats");
	snprintf(s->id, sizeof(s->id), "%s", str_of(c, "id"));
	snprintf(s->name, sizeof(s->name), "%s", str_of(c, "name") ? str_of(c, "name") : "");
	if (w)
		bjson_writer_kv_string(w, "container_id", s->id);
	int r = berthd_call(socket_path, w, &answer, err);
	if (r < 0)
		return r;
	const struct json *st = bjson_object_get(answer, "stats");
	bjson_uint64(bjson_object_get(st, "cpu_usage_usec"), &s->cpu_usec);
	bjson_uint64(bjson_object_get(st, "memory_current"), &s->mem);
	s->has_mem_max = bjson_uint64(bjson_object_get(st, "memory_max"), &s->mem_max);
	bjson_uint64(bjson_object_get(st, "pids_current"), &s->pids);
	return 0;
}

static bool stats_wanted(const struct json *c, char **ids)
{
	if (!ids[0])
		return ps_shown(c, false);
	for (char **id = ids; *id; id++)
		if (strcmp(*id, str_of(c, "id")) == 0)
			return true;
	return false;
}

/* Running containers (all, or those named), sampled twice `interval` apart for their CPU use. */
static int sample_all(const char *socket_path, const struct json *ctrs, char **ids,
		      struct sample **ret, size_t *ret_n, double interval, struct berth_error **err)
{
	size_t n = bjson_array_size(ctrs);
	_cleanup_free_ struct sample *a = calloc(n ? n : 1, sizeof(*a)), *b = calloc(n ? n : 1, sizeof(*b));
	if (!a || !b)
		return berth_error_set(err, ENOMEM, "out of memory");
	for (size_t k = 0; k < n; k++)
		if (!stats_wanted(bjson_array_get(ctrs, k), ids) ||
		    sample_one(socket_path, bjson_array_get(ctrs, k), &a[k], err) < 0)
			berth_error_free(TAKE_PTR(*err)), a[k].id[0] = '\0'; /* it just exited */
	struct timespec ts = { (time_t)interval, (long)((interval - (double)(time_t)interval) * 1e9) };
	nanosleep(&ts, NULL);
	size_t m = 0;
	for (size_t k = 0; k < n; k++) {
		if (!a[k].id[0] || sample_one(socket_path, bjson_array_get(ctrs, k), &b[m], err) < 0) {
			berth_error_free(TAKE_PTR(*err));
			continue;
		}
		uint64_t used = b[m].cpu_usec > a[k].cpu_usec ? b[m].cpu_usec - a[k].cpu_usec : 0;
		b[m].cpu_percent = (double)used / (interval * 1e6) * 100.0;
		m++;
	}
	*ret = TAKE_PTR(b);
	*ret_n = m;
	return 0;
}

static int stats_json(const struct sample *s, size_t n)
{
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_array(w);
	for (size_t k = 0; k < n; k++) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "id", s[k].id);
		bjson_writer_kv_string(w, "name", s[k].name);
		bjson_writer_key(w, "cpu_percent");
		bjson_writer_uint(w, (uint64_t)(s[k].cpu_percent * 100.0 + 0.5) / 100); /* whole % */
		bjson_writer_key(w, "cpu_usage_usec");
		bjson_writer_uint(w, s[k].cpu_usec);
		bjson_writer_key(w, "memory_usage");
		bjson_writer_uint(w, s[k].mem);
		bjson_writer_key(w, "memory_limit");
		if (s[k].has_mem_max)
			bjson_writer_uint(w, s[k].mem_max);
		else
			bjson_writer_null(w);
		bjson_writer_key(w, "pids");
		bjson_writer_uint(w, s[k].pids);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	return berth_cmd_print_writer(w);
}

static int stats_print(const struct sample *s, size_t n, bool json)
{
	static const char *const headers[] = { "ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS" };
	if (json)
		return stats_json(s, n);
	_cleanup_(table_freep) struct table *t = table_new(ARRAY_SIZE(headers), headers);
	for (size_t k = 0; t && k < n; k++) {
		char id[13], cpu[16], mem[64], a[24], b[24], pct[16], pids[24];
		snprintf(cpu, sizeof(cpu), "%.2f%%", s[k].cpu_percent);
		snprintf(mem, sizeof(mem), "%s / %s", berth_cmd_size(s[k].mem, a),
			 s[k].has_mem_max ? berth_cmd_size(s[k].mem_max, b) : "unlimited");
		if (s[k].has_mem_max && s[k].mem_max)
			snprintf(pct, sizeof(pct), "%.2f%%", (double)s[k].mem * 100.0 / (double)s[k].mem_max);
		else
			snprintf(pct, sizeof(pct), "-");
		snprintf(pids, sizeof(pids), "%" PRIu64, s[k].pids);
		const char *row[] = { berth_cmd_short_id(s[k].id, id), s[k].name, cpu, mem, pct, pids };
		if (!table_add(t, row))
			t = table_free(t);
	}
	if (!t)
		return cli_fail(NULL, -ENOMEM);
	table_print(t, stdout);
	return 0;
}

/* The named containers' ids (none named: every running one is watched). */
static int stats_ids(const char *socket_path, int argc, char **argv, int i, char ***ret)
{
	_cleanup_strv_ char **ids = calloc((size_t)(argc - i) + 1, sizeof(char *));
	if (!ids)
		return cli_fail(NULL, -ENOMEM);
	for (int k = i; k < argc; k++) {
		int r = berth_cmd_resolve(socket_path, "stats", BERTHD_CONTAINER, argv[k],
					  &ids[k - i], NULL);
		if (r)
			return r;
	}
	*ret = TAKE_PTR(ids);
	return 0;
}

static int stats_round(const char *socket_path, char **ids, bool json, double interval,
		       bool clear)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	_cleanup_free_ struct sample *s = NULL;
	struct berth_error *err = NULL;
	size_t n = 0;
	int r = berth_cmd_call(socket_path, "stats", berthd_request("container.list"), &answer);
	if (r)
		return r;
	if ((r = sample_all(socket_path, list_of(answer, "containers"), ids, &s, &n, interval,
			    &err)) < 0)
		return berth_cmd_fail("stats", err, r);
	if (clear)
		fputs("\033[H\033[J", stdout); /* a live table: redrawn from the top */
	r = stats_print(s, n, json);
	fflush(stdout);
	return r;
}

int berth_stats(const char *socket_path, int argc, char **argv, int i)
{
	bool no_stream = false, json;
	const char *format = "table";
	const struct opt opts[] = {
		{ "no-stream", 0, OPT_FLAG, &no_stream },
		{ "format", 0, OPT_STRING, &format },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, "stats");
	if (r || (r = cli_positional(argc, i, 0, -1, "stats",
				     "[--no-stream] [--format table|json] [CONTAINER...]")) ||
	    (r = berth_cmd_format("stats", format, &json)))
		return r;
	_cleanup_strv_ char **ids = NULL;
	if ((r = stats_ids(socket_path, argc, argv, i, &ids)))
		return r;
	if (no_stream)
		return stats_round(socket_path, ids, json, 0.5, false);
	bool tty = isatty(STDOUT_FILENO) && !json;
	/* until interrupted (SIGINT's default ends berth: nothing to restore) */
	while ((r = stats_round(socket_path, ids, json, 1.0, tty)) == 0)
		;
	return r;
}

/* ---- events ---- */

static void print_event(const struct json *ev, const char *line, bool json)
{
	char when[64], id[13], pod[13];
	if (json) {
		printf("%s\n", line);
		return;
	}
	int64_t ns = int_of(ev, "time_ns");
	time_t secs = (time_t)(ns / 1000000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("%s.%09lldZ container %s %s (pod %s", when, (long long)(ns % 1000000000),
	       str_of(ev, "event") ? str_of(ev, "event") : "?",
	       berth_cmd_short_id(str_of(ev, "container_id"), id),
	       berth_cmd_short_id(str_of(ev, "pod_id"), pod));
	if (str_of(ev, "reason"))
		printf(", exit code %lld, %s", (long long)int_of(ev, "exit_code"), str_of(ev, "reason"));
	printf(")\n");
}

int berth_events(const char *socket_path, int argc, char **argv, int i)
{
	bool json;
	const char *format = "table";
	const struct opt opts[] = { { "format", 0, OPT_STRING, &format }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "events");
	if (r || (r = cli_positional(argc, i, 0, 0, "events", "[--format text|json]")) ||
	    (r = berth_cmd_format("events", format, &json)))
		return r;
	struct berth_error *err = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	if ((r = berthd_subscribe(socket_path, &f, &err)) < 0)
		return berth_cmd_fail("events", err, r);
	setvbuf(stdout, NULL, _IOLBF, 0); /* each event as it comes, also into a pipe */
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, f)) > 0) {
		_cleanup_(bjson_freep) struct json *ev = NULL;
		line[len - 1] = line[len - 1] == '\n' ? '\0' : line[len - 1];
		if (bjson_parse(line, &ev, &err) < 0)
			return berth_cmd_fail("events", err, -EPROTO);
		print_event(ev, line, json);
	}
	return cli_fail_msg("events: berthd closed the connection");
}
