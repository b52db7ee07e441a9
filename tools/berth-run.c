/* berth run: a container in a pod sandbox of its own, as `docker run` does it. The image is
 * pulled when missing; the pod (named as the container, labelled io.berth.run) is made, the
 * container created and started; then berth either returns at once (-d), attaches (-i, -t), or
 * follows the container's log file from its start and exits with its exit code. */
#include "tools/berth-cmd.h"

#include "base/cleanup.h"
#include "image/image.h"
#include "tools/berth-stream.h"
#include "tools/cli.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define CPU_PERIOD 100000 /* µs, as docker's --cpus uses */

struct run_args {
	bool rm, detach, in, tty, quiet;
	const char *name, *memory, *cpus, *user, *workdir, *entrypoint;
	char **env, **volumes, **ports;
	const char *image;
	char **cmd; /* NULL-terminated, argv's */
	/* derived */
	int64_t memory_bytes, cpu_quota;
	char *gen_name; /* berth-<8 hex> when no --name */
};

static void run_args_clear(struct run_args *a)
{
	free(a->env);
	free(a->volumes);
	free(a->ports);
	free(a->gen_name);
}

/* ---- checking the options ---- */

/* 512m, 1g, 100000 (bytes): docker's --memory, 1024-based. */
static int parse_memory(const char *s, int64_t *ret)
{
	static const char units[] = "bkmgt";
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	const char *u = *end ? strchr(units, *end | 0x20) : units;
	unsigned shift = u ? 10 * (unsigned)(u - units) : 0;
	if (errno || end == s || v <= 0 || !u || (*end && end[1] && !((end[1] | 0x20) == 'b' && !end[2])) ||
	    v > (INT64_MAX >> shift))
		return cli_usage("run: --memory %s: expects a size like 512m or 1g", s);
	*ret = (int64_t)v << shift;
	return 0;
}

static int parse_cpus(const char *s, int64_t *ret)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1024)
		return cli_usage("run: --cpus %s: expects a number of CPUs like 0.5 or 2", s);
	*ret = (int64_t)(v * CPU_PERIOD + 0.5);
	return 0;
}

static int check_volume(const char *s)
{
	const char *c1 = strchr(s, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c1 || c1 == s || c1[1] != '/' || (c2 && strcmp(c2, ":ro") != 0 && strcmp(c2, ":rw") != 0))
		return cli_usage("run: -v %s: expects SRC:DST[:ro], DST an absolute path", s);
	return 0;
}

static int check_args(struct run_args *a)
{
	int r = 0;
	if (a->memory && (r = parse_memory(a->memory, &a->memory_bytes)))
		return r;
	if (a->cpus && (r = parse_cpus(a->cpus, &a->cpu_quota)))
		return r;
	for (char **v = a->ports; v && *v && r == 0; v++)
		r = berth_cmd_check_port("run", *v);
	for (char **v = a->volumes; v && *v && r == 0; v++)
		r = check_volume(*v);
	for (char **v = a->env; v && *v && r == 0; v++)
		if (*v[0] == '=' )
			r = cli_usage("run: -e %s: expects KEY=VALUE", *v);
	if (r == 0 && a->detach && (a->in || a->tty))
		r = cli_usage("run: -d runs in the background: it cannot go with -i or -t");
	if (r == 0 && a->detach && a->rm)
		r = cli_usage("run: -d and --rm: berth would not be there to remove the container");
	return r;
}

static int parse_args(int argc, char **argv, int i, struct run_args *a, char ***ret_words)
{
	const struct opt opts[] = {
		{ "rm", 0, OPT_FLAG, &a->rm },
		{ "detach", 'd', OPT_FLAG, &a->detach },
		{ "interactive", 'i', OPT_FLAG, &a->in },
		{ "tty", 't', OPT_FLAG, &a->tty },
		{ "quiet", 'q', OPT_FLAG, &a->quiet },
		{ "name", 0, OPT_STRING, &a->name },
		{ "env", 'e', OPT_LIST, &a->env },
		{ "volume", 'v', OPT_LIST, &a->volumes },
		{ "publish", 'p', OPT_LIST, &a->ports },
		{ "memory", 'm', OPT_STRING, &a->memory },
		{ "cpus", 0, OPT_STRING, &a->cpus },
		{ "user", 'u', OPT_STRING, &a->user },
		{ "workdir", 'w', OPT_STRING, &a->workdir },
		{ "entrypoint", 0, OPT_STRING, &a->entrypoint },
		{ NULL, 0, 0, NULL },
	};
	int n = 0;
	_cleanup_free_ char **v = berth_cmd_split_flags(argc, argv, i, opts, &n);
	if (!v)
		return cli_fail(NULL, -ENOMEM);
	int r = cli_parse(n, v, &i, opts, "run");
	if (r || (r = cli_positional(n, i, 1, -1, "run", "[OPTIONS] IMAGE [CMD...]")) ||
	    (r = check_args(a)))
		return r;
	a->image = v[i];
	a->cmd = v + i + 1;
	*ret_words = TAKE_PTR(v);
	return 0;
}

/* ---- the image ---- */

static bool image_present(const struct json *images, const char *name)
{
	for (size_t k = 0; k < bjson_array_size(images); k++) {
		const char *n = bjson_string(bjson_object_get(bjson_array_get(images, k), "name"));
		if (n && strcmp(n, name) == 0)
			return true;
	}
	return false;
}

static int ensure_image(const char *socket_path, const struct run_args *a)
{
	_cleanup_free_ char *name = NULL;
	_cleanup_(bjson_freep) struct json *list = NULL, *pulled = NULL;
	struct berth_error *err = NULL;
	int r = image_reference_normalize(a->image, &name, &err);
	if (r < 0)
		return berth_cmd_fail("run", err, r);
	if ((r = berth_cmd_call(socket_path, "run", berthd_request("image.list"), &list)))
		return r;
	if (image_present(bjson_object_get(list, "images"), name))
		return 0;
	if (!a->quiet)
		fprintf(stderr, "pulling %s\n", name);
	struct json_writer *w = berthd_request("image.pull");
	if (w)
		bjson_writer_kv_string(w, "image", name);
	if ((r = berth_cmd_call(socket_path, "run", w, &pulled)))
		return r;
	if (!a->quiet)
		fprintf(stderr, "pulled %s %s\n", name,
			bjson_string(bjson_object_get(bjson_object_get(pulled, "image"), "digest")));
	return 0;
}

/* ---- the pod and the container ---- */

static void write_strv(struct json_writer *w, const char *key, char *const *v)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	for (; v && *v; v++)
		bjson_writer_string(w, *v);
	bjson_writer_end_array(w);
}

static void write_envs(struct json_writer *w, char **env)
{
	bjson_writer_key(w, "envs");
	bjson_writer_begin_array(w);
	for (char **v = env; v && *v; v++) {
		const char *eq = strchr(*v, '=');
		_cleanup_free_ char *key = strndup(*v, eq ? (size_t)(eq - *v) : strlen(*v));
		/* KEY alone passes berth's own value on, as docker does */
		const char *value = eq ? eq + 1 : getenv(*v);
		if (!key || (!eq && !value))
			continue;
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "key", key);
		bjson_writer_kv_string(w, "value", value);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void write_mounts(struct json_writer *w, char **volumes)
{
	bjson_writer_key(w, "mounts");
	bjson_writer_begin_array(w);
	for (char **v = volumes; v && *v; v++) {
		const char *c1 = strchr(*v, ':');
		const char *c2 = strchr(c1 + 1, ':');
		_cleanup_free_ char *src = strndup(*v, (size_t)(c1 - *v));
		_cleanup_free_ char *dst = c2 ? strndup(c1 + 1, (size_t)(c2 - c1 - 1)) : strdup(c1 + 1);
		/* a relative source is the caller's: berthd resolves nothing against its own cwd */
		_cleanup_free_ char *abs = src ? realpath(src, NULL) : NULL;
		if (!src || !dst)
			continue;
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "container_path", dst);
		bjson_writer_kv_string(w, "host_path", abs ? abs : src);
		bjson_writer_kv_bool(w, "readonly", c2 && strcmp(c2, ":ro") == 0);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void write_int_value(struct json_writer *w, const char *key, long long v)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "value", v);
	bjson_writer_end_object(w);
}

/* --user: UID[:GID] as numbers, or a name looked up in the image's /etc/passwd. */
static void write_user(struct json_writer *w, const char *user)
{
	char *end;
	errno = 0;
	long long uid = strtoll(user, &end, 10);
	if (errno || end == user || (*end && *end != ':')) {
		bjson_writer_kv_string(w, "run_as_username", user);
		return;
	}
	write_int_value(w, "run_as_user", uid);
	if (*end == ':' && end[1])
		write_int_value(w, "run_as_group", strtoll(end + 1, NULL, 10));
}

static void write_linux(struct json_writer *w, const struct run_args *a)
{
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "resources");
	bjson_writer_begin_object(w);
	if (a->memory_bytes)
		bjson_writer_kv_int(w, "memory_limit_in_bytes", a->memory_bytes);
	if (a->cpu_quota) {
		bjson_writer_kv_int(w, "cpu_period", CPU_PERIOD);
		bjson_writer_kv_int(w, "cpu_quota", a->cpu_quota);
	}
	bjson_writer_end_object(w);
	if (a->user) {
		bjson_writer_key(w, "security_context");
		bjson_writer_begin_object(w);
		write_user(w, a->user);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
}

static struct json_writer *container_request(const char *pod_id, const char *name,
					     const struct run_args *a)
{
	struct json_writer *w = berthd_request("container.create");
	if (!w)
		return NULL;
	bjson_writer_kv_string(w, "pod_id", pod_id);
	bjson_writer_key(w, "config");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "metadata");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "name", name);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "image");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "image", a->image);
	bjson_writer_end_object(w);
	/* --entrypoint replaces the image's Entrypoint (and drops its Cmd), as in docker */
	if (a->entrypoint)
		write_strv(w, "command", (char *const[]){ (char *)a->entrypoint, NULL });
	if (a->cmd[0])
		write_strv(w, "args", a->cmd);
	if (a->workdir)
		bjson_writer_kv_string(w, "working_dir", a->workdir);
	write_envs(w, a->env);
	write_mounts(w, a->volumes);
	bjson_writer_kv_bool(w, "tty", a->tty);
	bjson_writer_kv_bool(w, "stdin", a->in);
	bjson_writer_kv_bool(w, "stdin_once", a->in);
	write_linux(w, a);
	bjson_writer_end_object(w);
	return w;
}

static int simple(const char *socket_path, const char *op, const char *key, const char *id)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct json_writer *w = berthd_request(op);
	if (w)
		bjson_writer_kv_string(w, key, id);
	return berth_cmd_call(socket_path, "run", w, &answer);
}

/* --name taken: docker refuses it, and names must stay unique for names to find containers. */
static int check_name_free(const char *socket_path, const char *name)
{
	_cleanup_free_ char *id = NULL;
	struct berth_error *err = NULL;
	int r = berthd_resolve(socket_path, BERTHD_CONTAINER, name, &id, NULL, &err);
	if (r == -ENOENT) {
		berth_error_free(err);
		return 0;
	}
	if (r < 0)
		return berth_cmd_fail("run", err, r);
	/* a name that only prefixes an id is free */
	if (strncmp(id, name, strlen(name)) == 0 && strlen(name) < strlen(id))
		return 0;
	return cli_fail_msg("run: container \"%s\": the name is in use (by %.12s)", name, id);
}

/* ---- after start ---- */

/* The container's exit code (128 + N for signal N), or -1 with the error reported. */
static int exit_code(const char *socket_path, const char *id)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct json_writer *w = berthd_request("container.status");
	if (w)
		bjson_writer_kv_string(w, "container_id", id);
	if (berth_cmd_call(socket_path, "run", w, &answer))
		return -1;
	const struct json *st = bjson_object_get(answer, "status");
	int64_t code = 0, sig = 0;
	bjson_int64(bjson_object_get(st, "exit_code"), &code);
	bjson_int64(bjson_object_get(st, "signal"), &sig);
	return sig > 0 && code == 0 ? 128 + (int)sig : (int)code;
}

static int take_signals(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Follows the output to the container's exit; a signal stops the container (with the grace
 * `stop` gives) and makes the exit status 128 + the signal. */
static int stream_output(const char *socket_path, const char *id, int sfd)
{
	_cleanup_(bjson_freep) struct json *answer = NULL;
	struct json_writer *w = berthd_request("container.status");
	if (w)
		bjson_writer_kv_string(w, "container_id", id);
	int r = berth_cmd_call(socket_path, "run", w, &answer);
	if (r)
		return -1;
	const char *path = bjson_string(bjson_object_get(bjson_object_get(answer, "status"), "log_path"));
	if (!path)
		return cli_fail_msg("run: the container has no log file"), -1;
	struct log_source src = { .container_id = id, .log_path = path };
	struct log_options o = { .follow = true, .tail = -1, .signal_fd = sfd };
	struct berth_error *err = NULL;
	int sig = 0;
	if ((r = berth_logs_print(socket_path, &src, 1, &o, &sig, &err)) < 0)
		return berth_cmd_fail("run", err, r), -1;
	if (sig) {
		if (simple(socket_path, "container.stop", "container_id", id))
			return -1;
		return 128 + sig;
	}
	return exit_code(socket_path, id);
}

static int attach(const char *socket_path, const char *id, const struct run_args *a)
{
	char *words[] = { "attach", a->in ? "-i" : "-t", a->tty ? "-t" : "-i", (char *)id, NULL };
	/* attach takes the session from here: stdin, the terminal, the exit status */
	return berth_attach(socket_path, 4, words, 1);
}

static int start_and_wait(const char *socket_path, const char *id, const struct run_args *a,
			  int sfd)
{
	if (simple(socket_path, "container.start", "container_id", id))
		return -1;
	if (a->detach) {
		printf("%s\n", id);
		return 0;
	}
	if (!a->in && !a->tty)
		return stream_output(socket_path, id, sfd);
	int rc = attach(socket_path, id, a);
	/* the session's status is the exit code, but an attach ended by Ctrl-C is not: ask */
	int code = exit_code(socket_path, id);
	return code >= 0 && rc == 0 ? code : rc;
}

int berth_run(const char *socket_path, int argc, char **argv, int i)
{
	struct run_args a = { 0 };
	_cleanup_free_ char **words = NULL;
	char hex[9] = "";
	int r = parse_args(argc, argv, i, &a, &words);
	if (r) {
		run_args_clear(&a);
		return r;
	}
	if (!a.name && berth_cmd_random_hex(hex, 4) == 0 && asprintf(&a.gen_name, "berth-%s", hex) < 0)
		a.gen_name = NULL;
	const char *name = a.name ? a.name : a.gen_name;
	/* before anything runs: a Ctrl-C from here on stops what was made, not berth alone */
	_cleanup_close_ int sfd = a.in || a.tty || a.detach ? -EBADF : take_signals();
	_cleanup_free_ char *pod_id = NULL, *id = NULL;
	_cleanup_(bjson_freep) struct json *made = NULL;
	if (!name) {
		r = cli_fail(NULL, -ENOMEM);
		goto out;
	}
	const struct pod_spec spec = { .name = name, .ports = a.ports, .run_label = true };
	if ((r = check_name_free(socket_path, name)) || (r = ensure_image(socket_path, &a)) ||
	    (r = berth_cmd_pod_create(socket_path, "run", &spec, &pod_id)))
		goto out;
	if ((r = berth_cmd_call(socket_path, "run", container_request(pod_id, name, &a), &made))) {
		(void)simple(socket_path, "pod.remove", "pod_id", pod_id); /* the error told is create's */
		goto out;
	}
	const char *cid = bjson_string(bjson_object_get(made, "container_id"));
	id = cid ? strdup(cid) : NULL;
	r = id ? start_and_wait(socket_path, id, &a, sfd) : cli_fail_msg("run: no container_id");
	if (r < 0)
		r = 1;
	if (a.rm && simple(socket_path, "pod.remove", "pod_id", pod_id))
		r = r ? r : 1;
out:
	run_args_clear(&a);
	return r;
}
