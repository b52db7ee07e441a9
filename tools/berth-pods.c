/* berth pod run|ls|inspect|stop|rm|logs: pod sandboxes through berthd. */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const char *str_of(const struct json *j, const char *key)
{
	return bjson_string(bjson_object_get(j, key));
}

/* ---- making pods (also berth run's) ---- */

struct port_spec {
	char ip[64];
	long host, ctr;
	const char *protocol;
};

static bool port_number(const char *s, size_t len, long *ret)
{
	long v = 0;
	if (len == 0 || len > 5 || strspn(s, "0123456789") < len)
		return false;
	for (size_t k = 0; k < len; k++)
		v = v * 10 + (s[k] - '0');
	*ret = v;
	return v >= 1 && v <= 65535;
}

/* [IP:]HOST:CTR[/tcp|/udp] */
static bool parse_port(const char *s, struct port_spec *p)
{
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	const char *last = memrchr(s, ':', len);
	const char *first = last ? memchr(s, ':', (size_t)(last - s)) : NULL;
	const char *host = first ? first + 1 : s;
	p->protocol = !slash || strcmp(slash, "/tcp") == 0 ? "TCP"
		      : strcmp(slash, "/udp") == 0	   ? "UDP"
							   : NULL;
	p->ip[0] = '\0';
	if (first && (size_t)(first - s) < sizeof(p->ip))
		snprintf(p->ip, sizeof(p->ip), "%.*s", (int)(first - s), s);
	return p->protocol && last && !(first && !p->ip[0]) &&
	       port_number(host, (size_t)(last - host), &p->host) &&
	       port_number(last + 1, len - (size_t)(last + 1 - s), &p->ctr);
}

int berth_cmd_check_port(const char *cmd, const char *spec)
{
	struct port_spec p;
	if (!parse_port(spec, &p))
		return cli_usage("%s: -p %s: expects [IP:]HOST:CONTAINER[/tcp|/udp], ports 1-65535",
				 cmd, spec);
	return 0;
}

static void write_ports(struct json_writer *w, char **ports)
{
	bjson_writer_key(w, "port_mappings");
	bjson_writer_begin_array(w);
	for (char **v = ports; v && *v; v++) {
		struct port_spec p;
		if (!parse_port(*v, &p))
			continue; /* checked before (berth_cmd_check_port) */
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "protocol", p.protocol);
		bjson_writer_kv_int(w, "container_port", p.ctr);
		bjson_writer_kv_int(w, "host_port", p.host);
		if (p.ip[0])
			bjson_writer_kv_string(w, "host_ip", p.ip);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void write_labels(struct json_writer *w, const struct pod_spec *spec)
{
	bjson_writer_key(w, "labels");
	bjson_writer_begin_object(w);
	if (spec->run_label)
		bjson_writer_kv_string(w, BERTH_RUN_LABEL, "true");
	for (char **v = spec->labels; v && *v; v++) {
		const char *eq = strchr(*v, '=');
		_cleanup_free_ char *key = strndup(*v, eq ? (size_t)(eq - *v) : strlen(*v));
		if (key) {
			bjson_writer_key(w, key);
			bjson_writer_string(w, eq ? eq + 1 : "");
		}
	}
	bjson_writer_end_object(w);
}

int berth_cmd_pod_create(const char *socket_path, const char *cmd, const struct pod_spec *spec,
			 char **ret_id)
{
	char uid[33] = "";
	if (berth_cmd_random_hex(uid, 16) < 0)
		return cli_fail_msg("%s: no random bytes for the pod's uid", cmd);
	struct json_writer *w = berthd_request("pod.run");
	if (w) {
		bjson_writer_key(w, "config");
		bjson_writer_begin_object(w);
		bjson_writer_key(w, "metadata");
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "name", spec->name);
		bjson_writer_kv_string(w, "namespace", "default");
		bjson_writer_kv_string(w, "uid", uid);
		bjson_writer_end_object(w);
		if (spec->hostname)
			bjson_writer_kv_string(w, "hostname", spec->hostname);
		write_ports(w, spec->ports);
		write_labels(w, spec);
		bjson_writer_end_object(w);
	}
	_cleanup_(bjson_freep) struct json *answer = NULL;
	int r = berth_cmd_call(socket_path, cmd, w, &answer);
	if (r)
		return r;
	const char *id = str_of(answer, "pod_id");
	if (!id || !(*ret_id = strdup(id)))
		return cli_fail_msg("%s: berthd's answer carries no pod_id", cmd);
	return 0;
}

/* ---- pod run ---- */

static int pod_run(const char *socket_path, int argc, char **argv, int i)
{
	struct pod_spec spec = { 0 };
	const struct opt opts[] = {
		{ "name", 0, OPT_STRING, &spec.name },
		{ "hostname", 0, OPT_STRING, &spec.hostname },
		{ "publish", 'p', OPT_LIST, &spec.ports },
		{ "label", 'l', OPT_LIST, &spec.labels },
		{ NULL, 0, 0, NULL },
	};
	char hex[9] = "", gen[16];
	_cleanup_free_ char *id = NULL;
	int r = cli_parse(argc, argv, &i, opts, "pod run");
	if (r == 0)
		r = cli_positional(argc, i, 0, 0, "pod run",
				   "[--name N] [--hostname H] [-p HOST:CTR[/udp]] [-l K=V]");
	for (char **v = spec.ports; r == 0 && v && *v; v++)
		r = berth_cmd_check_port("pod run", *v);
	if (r == 0 && !spec.name) {
		r = berth_cmd_random_hex(hex, 4) < 0 ? cli_fail_msg("pod run: no random bytes") : 0;
		snprintf(gen, sizeof(gen), "berth-%s", hex);
		spec.name = gen;
	}
	if (r == 0 && (r = berth_cmd_pod_create(socket_path, "pod run", &spec, &id)) == 0)
		printf("%s\n", id);
	free(spec.ports);
	free(spec.labels);
	return r;
}

/* ---- pod ls ---- */

static size_t containers_in(const struct json *ctrs, const char *pod_id)
{
	size_t n = 0;
	for (size_t k = 0; k < bjson_array_size(ctrs); k++) {
		const char *p = str_of(bjson_array_get(ctrs, k), "pod_id");
		n += p && pod_id && strcmp(p, pod_id) == 0;
	}
	return n;
}

/* The kubelet loop's status of a pod that came from a manifest (by namespace and name), or NULL. */
static const struct json *static_status(const struct json *statics, const struct json *pod)
{
	for (size_t k = 0; k < bjson_array_size(statics); k++) {
		const struct json *s = bjson_array_get(statics, k);
		const struct json *md = bjson_object_get(s, "metadata");
		const char *name = str_of(md, "name"), *ns = str_of(md, "namespace");
		if (name && ns && bjson_object_get(s, "status") && strcmp(name, str_of(pod, "name")) == 0 &&
		    strcmp(ns, str_of(pod, "namespace")) == 0)
			return bjson_object_get(s, "status");
	}
	return NULL;
}

/* PHASE, READY ("1/2") and RESTARTS of a static pod, Kubernetes' words; "-" for the others. */
static void static_columns(const struct json *st, char phase[32], char ready[24],
			   char restarts[24])
{
	snprintf(phase, 32, "-");
	snprintf(ready, 24, "-");
	snprintf(restarts, 24, "-");
	if (!st)
		return;
	const struct json *cs = bjson_object_get(st, "containerStatuses");
	size_t n = bjson_array_size(cs), up = 0;
	int64_t total = 0;
	for (size_t k = 0; k < n; k++) {
		const struct json *c = bjson_array_get(cs, k);
		int64_t rc = 0;
		up += bjson_bool(bjson_object_get(c, "ready"));
		if (bjson_int64(bjson_object_get(c, "restartCount"), &rc))
			total += rc;
	}
	snprintf(phase, 32, "%s", str_of(st, "phase") ? str_of(st, "phase") : "-");
	snprintf(ready, 24, "%zu/%zu", up, n);
	snprintf(restarts, 24, "%lld", (long long)total);
}

static int pod_table(const struct json *pods, const struct json *ctrs, const struct json *statics)
{
	static const char *const headers[] = { "ID",	  "NAME",	"NAMESPACE", "STATE",
						"PHASE",   "READY",	"RESTARTS",  "CREATED",
						"CONTAINERS", "IP" };
	_cleanup_(table_freep) struct table *t = table_new(ARRAY_SIZE(headers), headers);
	for (size_t k = 0; t && k < bjson_array_size(pods); k++) {
		const struct json *p = bjson_array_get(pods, k);
		char id[13], ago[48], count[24], phase[32], ready[24], restarts[24];
		int64_t created = 0;
		bjson_int64(bjson_object_get(p, "created_ns"), &created);
		snprintf(count, sizeof(count), "%zu", containers_in(ctrs, str_of(p, "id")));
		static_columns(static_status(statics, p), phase, ready, restarts);
		const char *row[] = { berth_cmd_short_id(str_of(p, "id"), id), str_of(p, "name"),
				      str_of(p, "namespace"), str_of(p, "state"), phase, ready,
				      restarts, berth_cmd_ago(created, ago), count, str_of(p, "ip4") };
		if (!table_add(t, row))
			t = table_free(t);
	}
	if (!t)
		return cli_fail(NULL, -ENOMEM);
	table_print(t, stdout);
	/* a manifest that is not running because it is invalid says so, in the parser's words */
	for (size_t k = 0; k < bjson_array_size(statics); k++) {
		const struct json *s = bjson_array_get(statics, k);
		if (str_of(s, "error"))
			fprintf(stderr, "berth: pod ls: %s\n", str_of(s, "error"));
	}
	return 0;
}

static int pod_ls(const char *socket_path, int argc, char **argv, int i)
{
	bool quiet = false, json;
	const char *format = "table";
	const struct opt opts[] = {
		{ "quiet", 'q', OPT_FLAG, &quiet },
		{ "format", 0, OPT_STRING, &format },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, "pod ls");
	if (r || (r = cli_positional(argc, i, 0, 0, "pod ls", "[-q] [--format table|json]")) ||
	    (r = berth_cmd_format("pod ls", format, &json)))
		return r;
	_cleanup_(bjson_freep) struct json *pods = NULL, *ctrs = NULL, *statics = NULL;
	if ((r = berth_cmd_call(socket_path, "pod ls", berthd_request("pod.list"), &pods)) ||
	    (r = berth_cmd_call(socket_path, "pod ls", berthd_request("container.list"), &ctrs)) ||
	    (r = berth_cmd_call(socket_path, "pod ls", berthd_request("static.list"), &statics)))
		return r;
	const struct json *pl = bjson_object_get(pods, "pods");
	if (json)
		return berth_cmd_print_json(pl);
	if (quiet) {
		for (size_t k = 0; k < bjson_array_size(pl); k++)
			printf("%s\n", str_of(bjson_array_get(pl, k), "id"));
		return 0;
	}
	return pod_table(pl, bjson_object_get(ctrs, "containers"), bjson_object_get(statics, "pods"));
}

/* ---- pod inspect, stop, rm ---- */

static int pod_call(const char *socket_path, const char *op, const char *id, struct json **ret,
		    struct berth_error **err)
{
	struct json_writer *w = berthd_request(op);
	if (w)
		bjson_writer_kv_string(w, "pod_id", id);
	return berthd_call(socket_path, w, ret, err);
}

/* The pod's containers (container.list of the pod). */
static int pod_containers(const char *socket_path, const char *id, struct json **ret,
			  struct berth_error **err)
{
	return pod_call(socket_path, "container.list", id, ret, err);
}

static int inspect_one(const char *socket_path, const char *id, struct json_writer *out,
		       struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *pod = NULL, *ctrs = NULL, *statics = NULL;
	int r = pod_call(socket_path, "pod.inspect", id, &pod, err);
	if (r < 0 || (r = pod_containers(socket_path, id, &ctrs, err)) < 0 ||
	    (r = berthd_call(socket_path, berthd_request("static.list"), &statics, err)) < 0)
		return r;
	bjson_writer_begin_object(out);
	bjson_writer_key(out, "status");
	bjson_writer_value(out, bjson_object_get(pod, "status"));
	bjson_writer_key(out, "config");
	bjson_writer_value(out, bjson_object_get(pod, "config"));
	bjson_writer_key(out, "containers");
	bjson_writer_value(out, bjson_object_get(ctrs, "containers"));
	/* a pod from a manifest: its Kubernetes status, as the kubelet loop keeps it */
	const struct json *st = static_status(bjson_object_get(statics, "pods"),
					      bjson_object_get(pod, "status"));
	if (st) {
		bjson_writer_key(out, "podStatus");
		bjson_writer_value(out, st);
	}
	bjson_writer_end_object(out);
	return 0;
}

static int inspect_act(const char *socket_path, const char *id, const char *given, void *out,
		       struct berth_error **err)
{
	return inspect_one(socket_path, id, out, err);
}

static int pod_inspect(const char *socket_path, int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "pod inspect");
	if (r || (r = cli_positional(argc, i, 1, -1, "pod inspect", "POD...")))
		return r;
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return cli_fail(NULL, -ENOMEM);
	bjson_writer_begin_array(w);
	int rc = berth_cmd_for_each(socket_path, "pod inspect", BERTHD_POD, argc, argv, i,
				    inspect_act, w, false);
	bjson_writer_end_array(w);
	r = berth_cmd_print_writer(w);
	return rc ? rc : r;
}

static int stop_act(const char *socket_path, const char *id, const char *given, void *arg,
		    struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	return pod_call(socket_path, "pod.stop", id, &answer, err);
}

static int pod_stop(const char *socket_path, int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "pod stop");
	if (r || (r = cli_positional(argc, i, 1, -1, "pod stop", "POD...")))
		return r;
	return berth_cmd_for_each(socket_path, "pod stop", BERTHD_POD, argc, argv, i, stop_act, NULL,
				  true);
}

static bool any_running(const struct json *ctrs)
{
	for (size_t k = 0; k < bjson_array_size(ctrs); k++) {
		const char *state = str_of(bjson_array_get(ctrs, k), "state");
		if (state && strcmp(state, "running") == 0)
			return true;
	}
	return false;
}

static int rm_act(const char *socket_path, const char *id, const char *given, void *arg,
		  struct berth_error **err)
{
	const bool *force = arg;
	_cleanup_(bjson_freep) struct json *ctrs = NULL, *answer = NULL;
	int r = pod_containers(socket_path, id, &ctrs, err);
	if (r < 0)
		return r;
	if (!*force && any_running(bjson_object_get(ctrs, "containers")))
		return berth_error_set(err, EBUSY,
				       "pod \"%s\" has running containers (stop it first, or rm -f)",
				       given);
	return pod_call(socket_path, "pod.remove", id, &answer, err);
}

static int pod_rm(const char *socket_path, int argc, char **argv, int i)
{
	bool force = false;
	const struct opt opts[] = { { "force", 'f', OPT_FLAG, &force }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "pod rm");
	if (r || (r = cli_positional(argc, i, 1, -1, "pod rm", "[-f] POD...")))
		return r;
	return berth_cmd_for_each(socket_path, "pod rm", BERTHD_POD, argc, argv, i, rm_act, &force,
				  true);
}

/* ---- pod logs ---- */

/* One source a container that has a log file, each line prefixed "NAME | ". */
static int log_sources(const struct json *ctrs, struct log_source **ret, char ***ret_prefixes,
		       size_t *ret_n)
{
	size_t n = bjson_array_size(ctrs), m = 0;
	_cleanup_free_ struct log_source *src = calloc(n ? n : 1, sizeof(*src));
	_cleanup_strv_ char **prefixes = calloc(n + 1, sizeof(char *));
	if (!src || !prefixes)
		return -ENOMEM;
	for (size_t k = 0; k < n; k++) {
		const struct json *c = bjson_array_get(ctrs, k);
		if (!str_of(c, "log_path") || !str_of(c, "id"))
			continue;
		if (asprintf(&prefixes[m], "%s | ", str_of(c, "name") ? str_of(c, "name") : "?") < 0)
			return -ENOMEM;
		src[m] = (struct log_source){ .container_id = str_of(c, "id"),
					      .log_path = str_of(c, "log_path"),
					      .prefix = prefixes[m] };
		m++;
	}
	*ret = TAKE_PTR(src);
	*ret_prefixes = TAKE_PTR(prefixes);
	*ret_n = m;
	return 0;
}

static int pod_logs(const char *socket_path, int argc, char **argv, int i)
{
	struct log_options o;
	const char *given;
	int r = berth_logs_parse_args(argc, argv, i, "pod logs", "POD", &o, &given);
	if (r)
		return r;
	_cleanup_free_ char *id = NULL;
	_cleanup_(bjson_freep) struct json *ctrs = NULL;
	_cleanup_free_ struct log_source *src = NULL;
	_cleanup_strv_ char **prefixes = NULL;
	struct berth_error *err = NULL;
	size_t n = 0;
	int sig;
	if ((r = berth_cmd_resolve(socket_path, "pod logs", BERTHD_POD, given, &id, NULL)))
		return r;
	if ((r = pod_containers(socket_path, id, &ctrs, &err)) < 0)
		return berth_cmd_fail("pod logs", err, r);
	if ((r = log_sources(bjson_object_get(ctrs, "containers"), &src, &prefixes, &n)) < 0)
		return cli_fail(NULL, r);
	if ((r = berth_logs_print(socket_path, src, n, &o, &sig, &err)) < 0)
		return berth_cmd_fail("pod logs", err, r);
	return 0;
}

static const struct {
	const char *name;
	berth_cmd_fn *fn;
} pod_commands[] = {
	{ "run", pod_run },   { "ls", pod_ls },	    { "list", pod_ls }, { "inspect", pod_inspect },
	{ "stop", pod_stop }, { "rm", pod_rm },	    { "remove", pod_rm }, { "logs", pod_logs },
};

int berth_pod(const char *socket_path, int argc, char **argv, int i)
{
	if (i >= argc)
		return cli_usage("pod: usage: berth pod run|ls|inspect|stop|rm|logs ...");
	for (size_t k = 0; k < ARRAY_SIZE(pod_commands); k++)
		if (strcmp(argv[i], pod_commands[k].name) == 0)
			return pod_commands[k].fn(socket_path, argc, argv, i + 1);
	return cli_usage("pod: unknown command \"%s\"", argv[i]);
}
