/* berth-runtime: an OCI runtime with runc's command line, over libberth's runtime module. */
#include "base/cleanup.h"
#include "base/error.h"
#include "base/log.h"
#include "runtime/runtime.h"
#include "tools/cli.h"
#include "tools/options.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROG "berth-runtime"

struct global {
	const char *root;
	const char *log;
	const char *log_format;
	bool debug;
	bool systemd_cgroup;
	bool allow_missing_controllers;
	const char *rootless;
	const char *criu;
};

static struct global g = { .root = RUNTIME_DEFAULT_ROOT };

static int parse_uint_opt(const char *s, const char *name, unsigned *ret)
{
	char *end;
	errno = 0;
	unsigned long v = s ? strtoul(s, &end, 10) : 0;
	if (s && (errno || *end || !*s || v > 1024 * 1024)) {
		return cli_fail_msg("--%s %s: expects a number", name, s);
	}
	*ret = (unsigned)v;
	return 0;
}

struct create_args {
	const char *bundle, *pid_file, *console_socket, *preserve_fds;
	bool no_pivot, no_new_keyring, detach, keep;
};

static int cmd_create_or_run(int argc, char **argv, int i, bool run)
{
	const char *cmd = run ? "run" : "create";
	struct create_args a = { .bundle = "." };
	const struct opt opts[] = {
		{ "bundle", 'b', OPT_STRING, &a.bundle },
		{ "pid-file", 0, OPT_STRING, &a.pid_file },
		{ "console-socket", 0, OPT_STRING, &a.console_socket },
		{ "preserve-fds", 0, OPT_STRING, &a.preserve_fds },
		{ "no-pivot", 0, OPT_FLAG, &a.no_pivot },
		/* berth never creates a session keyring, which is what this flag asks for */
		{ "no-new-keyring", 0, OPT_FLAG, &a.no_new_keyring },
		{ run ? "detach" : "", run ? 'd' : 0, OPT_FLAG, &a.detach },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, cmd);
	if (r || (r = cli_positional(argc, i, 1, 1, cmd, "[options] CONTAINER-ID")))
		return r;
	struct runtime_create_options o = {
		.state_root = g.root, .id = argv[i], .bundle = a.bundle, .pid_file = a.pid_file,
		.console_socket = a.console_socket, .no_pivot = a.no_pivot, .detach = a.detach,
		.systemd_cgroup = g.systemd_cgroup,
		.allow_missing_controllers = g.allow_missing_controllers,
	};
	if ((r = parse_uint_opt(a.preserve_fds, "preserve-fds", &o.preserve_fds)))
		return r;
	struct berth_error *err = NULL;
	if (!run) {
		r = runtime_container_create(&o, &err);
		return r < 0 ? cli_fail(err, r) : 0;
	}
	int status = 0;
	r = runtime_container_run(&o, &status, &err);
	return r < 0 ? cli_fail(err, r) : status;
}

static int cmd_id_only(int argc, char **argv, int i, const char *cmd,
		       int (*fn)(const char *, const char *, struct berth_error **))
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, cmd);
	if (r || (r = cli_positional(argc, i, 1, 1, cmd, "CONTAINER-ID")))
		return r;
	struct berth_error *err = NULL;
	r = fn(g.root, argv[i], &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int print_json_state(const struct runtime_state *s)
{
	_cleanup_free_ char *text = NULL;
	int r = runtime_state_to_json(s, true, &text);
	if (r < 0)
		return cli_fail(NULL, r);
	printf("%s\n", text);
	return 0;
}

static int cmd_state(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "state");
	if (r || (r = cli_positional(argc, i, 1, 1, "state", "CONTAINER-ID")))
		return r;
	struct berth_error *err = NULL;
	_cleanup_(runtime_state_freep) struct runtime_state *s = NULL;
	r = runtime_container_state(g.root, argv[i], &s, &err);
	return r < 0 ? cli_fail(err, r) : print_json_state(s);
}

static int cmd_kill(int argc, char **argv, int i)
{
	bool all = false;
	const struct opt opts[] = { { "all", 'a', OPT_FLAG, &all }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "kill");
	if (r || (r = cli_positional(argc, i, 1, 2, "kill", "[--all] CONTAINER-ID [SIGNAL]")))
		return r;
	const char *name = i + 1 < argc ? argv[i + 1] : "SIGTERM";
	int sig = runtime_signal_parse(name);
	if (sig < 0)
		return cli_fail_msg("kill: unknown signal \"%s\"", name);
	struct berth_error *err = NULL;
	r = runtime_container_kill(g.root, argv[i], sig, all, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int cmd_delete(int argc, char **argv, int i)
{
	bool force = false;
	const struct opt opts[] = { { "force", 'f', OPT_FLAG, &force }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "delete");
	if (r || (r = cli_positional(argc, i, 1, 1, "delete", "[--force] CONTAINER-ID")))
		return r;
	struct berth_error *err = NULL;
	r = runtime_container_delete(g.root, argv[i], force, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int check_format(const char *format, const char *cmd)
{
	if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0) {
		return cli_fail_msg("%s: --format %s: expects table or json", cmd, format);
	}
	return 0;
}

static void print_list_table(struct runtime_state **v, size_t n)
{
	int w = 2;
	for (size_t k = 0; k < n; k++)
		if ((int)strlen(v[k]->id) > w)
			w = (int)strlen(v[k]->id);
	printf("%-*s   %-8s   %-10s   %-40s   %-30s   %s\n", w, "ID", "PID", "STATUS", "BUNDLE",
	       "CREATED", "OWNER");
	for (size_t k = 0; k < n; k++)
		printf("%-*s   %-8d   %-10s   %-40s   %-30s   %s\n", w, v[k]->id, v[k]->pid,
		       v[k]->status, v[k]->bundle, v[k]->created, v[k]->owner);
}

static int cmd_list(int argc, char **argv, int i)
{
	const char *format = "table";
	bool quiet = false;
	const struct opt opts[] = { { "format", 'f', OPT_STRING, &format },
				    { "quiet", 'q', OPT_FLAG, &quiet },
				    { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "list");
	if (r || (r = cli_positional(argc, i, 0, 0, "list", "[--format table|json] [--quiet]")) ||
	    (r = check_format(format, "list")))
		return r;
	struct berth_error *err = NULL;
	struct runtime_state **v = NULL;
	size_t n = 0;
	if ((r = runtime_container_list(g.root, &v, &n, &err)) < 0)
		return cli_fail(err, r);
	if (quiet) {
		for (size_t k = 0; k < n; k++)
			printf("%s\n", v[k]->id);
	} else if (strcmp(format, "json") == 0) {
		/* runc prints the states as one JSON array (null when empty: we print []) */
		printf("[");
		for (size_t k = 0; k < n; k++) {
			_cleanup_free_ char *text = NULL;
			if (runtime_state_to_json(v[k], false, &text) == 0)
				printf("%s%s", k ? "," : "", text);
		}
		printf("]\n");
	} else {
		print_list_table(v, n);
	}
	for (size_t k = 0; k < n; k++)
		runtime_state_free(v[k]);
	free(v);
	return 0;
}

static void print_ps_table(const pid_t *pids, size_t n)
{
	printf("%-8s %s\n", "PID", "CMD");
	for (size_t k = 0; k < n; k++) {
		char path[64], cmdline[4096];
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pids[k]);
		_cleanup_fclose_ FILE *f = fopen(path, "re");
		size_t len = f ? fread(cmdline, 1, sizeof(cmdline) - 1, f) : 0;
		if (len == 0)
			continue;
		cmdline[len] = '\0';
		for (size_t c = 0; c + 1 < len; c++)
			if (cmdline[c] == '\0')
				cmdline[c] = ' ';
		printf("%-8d %s\n", pids[k], cmdline);
	}
}

static int cmd_ps(int argc, char **argv, int i)
{
	const char *format = "table";
	const struct opt opts[] = { { "format", 'f', OPT_STRING, &format }, { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "ps");
	if (r || (r = cli_positional(argc, i, 1, 1, "ps", "[--format table|json] CONTAINER-ID")) ||
	    (r = check_format(format, "ps")))
		return r;
	struct berth_error *err = NULL;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	if ((r = runtime_container_pids(g.root, argv[i], &pids, &n, &err)) < 0)
		return cli_fail(err, r);
	if (strcmp(format, "json") == 0) {
		printf("[");
		for (size_t k = 0; k < n; k++)
			printf("%s%d", k ? "," : "", pids[k]);
		printf("]\n");
	} else {
		print_ps_table(pids, n);
	}
	return 0;
}

static int parse_user(const char *s, struct runtime_exec_options *o)
{
	char *end;
	errno = 0;
	unsigned long uid = strtoul(s, &end, 10), gid = 0;
	if (!errno && end != s && *end == ':') {
		const char *g2 = end + 1;
		gid = strtoul(g2, &end, 10);
		if (end == g2)
			end = (char *)"x";
	}
	if (errno || end == s || *end || uid >= UINT_MAX || gid >= UINT_MAX)
		return cli_fail_msg("exec: --user %s: expects UID[:GID] (numbers)", s);
	o->has_user = true;
	o->uid = (uid_t)uid;
	o->gid = (gid_t)gid;
	return 0;
}

static int cmd_exec(int argc, char **argv, int i)
{
	const char *process = NULL, *cwd = NULL, *user = NULL, *pid_file = NULL, *console = NULL,
		   *preserve = NULL;
	_cleanup_free_ char **env = NULL;
	bool tty = false, detach = false;
	const struct opt opts[] = {
		{ "process", 'p', OPT_STRING, &process },
		{ "env", 'e', OPT_LIST, &env },
		{ "cwd", 0, OPT_STRING, &cwd },
		{ "user", 'u', OPT_STRING, &user },
		{ "tty", 't', OPT_FLAG, &tty },
		{ "detach", 'd', OPT_FLAG, &detach },
		{ "pid-file", 0, OPT_STRING, &pid_file },
		{ "console-socket", 0, OPT_STRING, &console },
		{ "preserve-fds", 0, OPT_STRING, &preserve },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, "exec");
	if (r || (r = cli_positional(argc, i, process ? 1 : 2, process ? 1 : INT_MAX, "exec",
				 "[options] CONTAINER-ID COMMAND [ARGS...] (or -p process.json CONTAINER-ID)")))
		return r;
	struct runtime_exec_options o = {
		.state_root = g.root, .id = argv[i], .process_file = process,
		.args = process ? NULL : argv + i + 1, .env = env, .cwd = cwd, .tty = tty,
		.detach = detach, .pid_file = pid_file, .console_socket = console,
	};
	if ((user && (r = parse_user(user, &o))) ||
	    (r = parse_uint_opt(preserve, "preserve-fds", &o.preserve_fds)))
		return r;
	struct berth_error *err = NULL;
	int status = 0;
	r = runtime_container_exec(&o, &status, &err);
	return r < 0 ? cli_fail(err, r) : status;
}

static int cmd_spec(int argc, char **argv, int i)
{
	const char *bundle = ".";
	bool rootless = false;
	const struct opt opts[] = { { "bundle", 'b', OPT_STRING, &bundle },
				    { "rootless", 0, OPT_FLAG, &rootless },
				    { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "spec");
	if (r || (r = cli_positional(argc, i, 0, 0, "spec", "[--bundle DIR] [--rootless]")))
		return r;
	struct berth_error *err = NULL;
	_cleanup_free_ char *text = NULL;
	if ((r = runtime_spec_generate(rootless, &text, &err)) < 0)
		return cli_fail(err, r);
	_cleanup_close_ int dfd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		berth_error_setsys(&err, errno, "spec: --bundle %s", bundle);
		return cli_fail(err, -errno);
	}
	int fd = openat(dfd, "config.json", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	_cleanup_fclose_ FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		int e = errno;
		berth_error_setsys(&err, e, "spec: %s/config.json%s", bundle,
				   e == EEXIST ? " (remove it first)" : "");
		return cli_fail(err, -e);
	}
	if (fprintf(f, "%s\n", text) < 0 || fflush(f) != 0) {
		berth_error_setsys(&err, errno, "spec: write %s/config.json", bundle);
		return cli_fail(err, -EIO);
	}
	return 0;
}

static int cmd_features(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "features");
	if (r || (r = cli_positional(argc, i, 0, 0, "features", "")))
		return r;
	struct berth_error *err = NULL;
	_cleanup_free_ char *text = NULL;
	if ((r = runtime_features_generate(&text, &err)) < 0)
		return cli_fail(err, r);
	printf("%s\n", text);
	return 0;
}

static int cmd_pause_resume(int argc, char **argv, int i, bool pause)
{
	const char *cmd = pause ? "pause" : "resume";
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, cmd);
	if (r || (r = cli_positional(argc, i, 1, 1, cmd, "CONTAINER-ID")))
		return r;
	struct berth_error *err = NULL;
	r = runtime_container_pause(g.root, argv[i], pause, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

/* 123, 64k, 50M, 2g (powers of 1024, as runc reads them); -1 is unlimited. */
static bool parse_size(const char *s, long long *ret)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s)
		return false;
	long long mult = 1;
	switch (*end) {
	case 'k': case 'K': mult = 1LL << 10; end++; break;
	case 'm': case 'M': mult = 1LL << 20; end++; break;
	case 'g': case 'G': mult = 1LL << 30; end++; break;
	default: break;
	}
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end || (v < 0 && v != -1))
		return false;
	*ret = v < 0 ? v : v * mult;
	return true;
}

struct update_flag {
	const char *name;
	const char *section;
	const char *key;
	bool size;
	const char *value;
};

/* The flags become a runtime-spec linux.resources object, so update shares create's checks. */
static int update_json(struct update_flag *flags, size_t n, char **ret)
{
	size_t len = 0, cap = 1024;
	char *out = malloc(cap);
	if (!out)
		return -1;
	len += (size_t)snprintf(out + len, cap - len, "{");
	const char *open_section = NULL;
	for (size_t k = 0; k < n; k++) {
		if (!flags[k].value)
			continue;
		long long v = 0;
		bool is_string = strcmp(flags[k].key, "cpus") == 0 || strcmp(flags[k].key, "mems") == 0;
		if (!is_string && !parse_size(flags[k].value, &v)) {
			free(out);
			return cli_fail_msg("update: --%s %s: expects a number%s", flags[k].name,
					flags[k].value, flags[k].size ? " (with k, m or g)" : "");
		}
		if (!open_section || strcmp(open_section, flags[k].section) != 0)
			len += (size_t)snprintf(out + len, cap - len, "%s\"%s\":{",
						open_section ? "}," : "", flags[k].section);
		else
			len += (size_t)snprintf(out + len, cap - len, ",");
		open_section = flags[k].section;
		if (is_string)
			len += (size_t)snprintf(out + len, cap - len, "\"%s\":\"%s\"", flags[k].key,
						flags[k].value);
		else
			len += (size_t)snprintf(out + len, cap - len, "\"%s\":%lld", flags[k].key, v);
		if (len >= cap - 64) {
			free(out);
			return cli_fail_msg("update: %s", "too many flags");
		}
	}
	snprintf(out + len, cap - len, "%s}", open_section ? "}" : "");
	*ret = out;
	return 0;
}

static int cmd_update(int argc, char **argv, int i)
{
	/* grouped by section: update_json opens each section once */
	struct update_flag flags[] = {
		{ "memory", "memory", "limit", true, NULL },
		{ "memory-swap", "memory", "swap", true, NULL },
		{ "memory-reservation", "memory", "reservation", true, NULL },
		{ "cpu-share", "cpu", "shares", false, NULL },
		{ "cpu-quota", "cpu", "quota", false, NULL },
		{ "cpu-period", "cpu", "period", false, NULL },
		{ "cpuset-cpus", "cpu", "cpus", false, NULL },
		{ "cpuset-mems", "cpu", "mems", false, NULL },
		{ "pids-limit", "pids", "limit", false, NULL },
	};
	const char *resources = NULL;
	const struct opt opts[] = {
		{ "memory", 'm', OPT_STRING, &flags[0].value },
		{ "memory-swap", 0, OPT_STRING, &flags[1].value },
		{ "memory-reservation", 0, OPT_STRING, &flags[2].value },
		{ "cpu-share", 0, OPT_STRING, &flags[3].value },
		{ "cpu-quota", 0, OPT_STRING, &flags[4].value },
		{ "cpu-period", 0, OPT_STRING, &flags[5].value },
		{ "cpuset-cpus", 0, OPT_STRING, &flags[6].value },
		{ "cpuset-mems", 0, OPT_STRING, &flags[7].value },
		{ "pids-limit", 0, OPT_STRING, &flags[8].value },
		{ "resources", 'r', OPT_STRING, &resources },
		{ NULL, 0, 0, NULL },
	};
	int r = cli_parse(argc, argv, &i, opts, "update");
	if (r || (r = cli_positional(argc, i, 1, 1, "update",
				 "[--memory N] [--memory-swap N] [--cpu-quota N] ... [-r FILE] CONTAINER-ID")))
		return r;
	_cleanup_free_ char *json = NULL;
	struct berth_error *err = NULL;
	if (resources) {
		/* -r FILE (or - for standard input): a linux.resources object, as runc takes it */
		_cleanup_fclose_ FILE *f = strcmp(resources, "-") == 0 ? NULL : fopen(resources, "re");
		FILE *in = strcmp(resources, "-") == 0 ? stdin : f;
		if (!in) {
			berth_error_setsys(&err, errno, "update: --resources %s", resources);
			return cli_fail(err, -EIO);
		}
		size_t cap = 0;
		if (getdelim(&json, &cap, '\0', in) < 0) {
			berth_error_setsys(&err, errno ? errno : EINVAL, "update: read %s", resources);
			return cli_fail(err, -EIO);
		}
	} else if ((r = update_json(flags, ARRAY_SIZE(flags), &json)) != 0) {
		return r < 0 ? cli_fail(NULL, -ENOMEM) : r;
	}
	r = runtime_container_update(g.root, argv[i], json, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static int print_event_cb(const char *json, void *userdata)
{
	(void)userdata;
	/* one line per event, flushed: events is read as a stream */
	return printf("%s\n", json) < 0 || fflush(stdout) != 0 ? -EIO : 0;
}

static int cmd_events(int argc, char **argv, int i)
{
	bool stats = false;
	const char *interval = "5s";
	const struct opt opts[] = { { "stats", 0, OPT_FLAG, &stats },
				    { "interval", 0, OPT_STRING, &interval },
				    { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "events");
	if (r || (r = cli_positional(argc, i, 1, 1, "events", "[--stats] [--interval 5s] CONTAINER-ID")))
		return r;
	/* 5s, 500ms, or plain seconds */
	char *end;
	double v = strtod(interval, &end);
	double ms = strcmp(end, "ms") == 0 ? v : (strcmp(end, "s") == 0 || !*end) ? v * 1000 : -1;
	if (end == interval || ms < 1 || ms > 86400000)
		return cli_fail_msg("events: --interval %s: expects a duration like 5s or 500ms", interval);
	struct berth_error *err = NULL;
	r = runtime_container_events(g.root, argv[i], stats, (int)ms, print_event_cb, NULL, &err);
	return r < 0 ? cli_fail(err, r) : 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: " PROG " [global options] COMMAND [options] [arguments]\n\n"
		"An OCI runtime with runc's command line.\n\n"
		"commands:\n"
		"  create    create a container; its program waits for start\n"
		"  start     run the program of a created container\n"
		"  run       create and start a container (waits for it unless --detach)\n"
		"  state     print a container's state as JSON\n"
		"  kill      send a signal to a container's init (--all: every process)\n"
		"  delete    remove a container (--force: kill it first)\n"
		"  list      list containers (--format table|json, --quiet)\n"
		"  ps        list a container's processes (--format table|json)\n"
		"  exec      run a new process in a running container\n"
		"  pause     freeze every process of a container (cgroup.freeze)\n"
		"  resume    thaw a paused container\n"
		"  update    change a running container's cgroup limits\n"
		"  events    a container's stats (--stats: once) and OOM events\n"
		"  spec      write a default config.json\n"
		"  features  print the runtime-spec features document\n\n"
		"global options:\n"
		"  --root DIR          state directory (default " RUNTIME_DEFAULT_ROOT ")\n"
		"  --log FILE          also write errors (and debug lines) to FILE\n"
		"  --log-format FMT    text or json (runc's JSON lines)\n"
		"  --debug             log debug lines\n"
		"  --systemd-cgroup    cgroupsPath is slice:prefix:name\n"
		"  --allow-missing-controllers\n"
		"                      run when the host lacks a controller a limit needs (warns)\n"
		"  --version, -v       print the version\n"
		"  --help, -h          print this help\n");
}

static int setup_logging(void)
{
	bool json = false;
	if (g.log_format) {
		if (strcmp(g.log_format, "json") == 0)
			json = true;
		else if (strcmp(g.log_format, "text") != 0)
			return cli_fail_msg("--log-format %s: expects text or json", g.log_format);
	}
	int fd = STDERR_FILENO;
	if (g.log) {
		/* high fd: the container's --preserve-fds range starts at 3 */
		int raw = open(g.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
		if (raw < 0) {
			struct berth_error *err = NULL;
			berth_error_setsys(&err, errno, "--log %s", g.log);
			g.log = NULL;
			return cli_fail(err, -EIO);
		}
		fd = fcntl(raw, F_DUPFD_CLOEXEC, 100);
		close(raw);
	}
	log_setup(PROG, fd, json, g.debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	return 0;
}

static int refuse_unsupported_globals(void)
{
	if (g.rootless && strcmp(g.rootless, "false") != 0 && strcmp(g.rootless, "auto") != 0)
		return cli_fail_msg("--rootless %s: rootless containers are not supported yet", g.rootless);
	if (g.criu)
		return cli_fail_msg("%s: checkpoint and restore are not supported", "--criu");
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(int, char **, int);
} commands[] = {
	{ "state", cmd_state }, { "kill", cmd_kill },	      { "delete", cmd_delete },
	{ "list", cmd_list },	{ "ps", cmd_ps },	      { "exec", cmd_exec },
	{ "spec", cmd_spec },	{ "features", cmd_features },
};

static int start_cmd(int argc, char **argv, int i)
{
	return cmd_id_only(argc, argv, i, "start", runtime_container_start);
}

static void log_error_line(const char *msg)
{
	if (g.log)
		log_error("%s", msg);
}

int main(int argc, char **argv)
{
	cli_init(PROG, 1, log_error_line);
	bool version = false, help = false;
	const struct opt opts[] = {
		{ "root", 0, OPT_STRING, &g.root },
		{ "log", 0, OPT_STRING, &g.log },
		{ "log-format", 0, OPT_STRING, &g.log_format },
		{ "debug", 0, OPT_FLAG, &g.debug },
		{ "systemd-cgroup", 0, OPT_FLAG, &g.systemd_cgroup },
		{ "allow-missing-controllers", 0, OPT_FLAG, &g.allow_missing_controllers },
		{ "rootless", 0, OPT_STRING, &g.rootless },
		{ "criu", 0, OPT_STRING, &g.criu },
		{ "version", 'v', OPT_FLAG, &version },
		{ "help", 'h', OPT_FLAG, &help },
		{ NULL, 0, 0, NULL },
	};
	int i = 1;
	int r = cli_parse(argc, argv, &i, opts, PROG);
	if (r)
		return r;
	if (version) {
		printf(PROG " version %s\nspec: %s\n", BERTH_VERSION, RUNTIME_OCI_VERSION);
		return 0;
	}
	if (help || i >= argc || strcmp(argv[i], "help") == 0) {
		usage(help || i < argc ? stdout : stderr);
		return help || i < argc ? 0 : 1;
	}
	if ((r = setup_logging()) || (r = refuse_unsupported_globals()))
		return r;
	if (g.root[0] != '/')
		return cli_fail_msg("--root %s: must be an absolute path", g.root);
	const char *cmd = argv[i++];
	if (strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0 || strcmp(cmd, "exec") == 0) {
		/* what a container can reach of us must be a sealed copy (CVE-2019-5736) */
		struct berth_error *err = NULL;
		r = runtime_exe_reexec_sealed(argv, environ, &err);
		if (r < 0)
			return cli_fail(err, r);
	}
	if (strcmp(cmd, "create") == 0 || strcmp(cmd, "run") == 0)
		return cmd_create_or_run(argc, argv, i, cmd[0] == 'r');
	if (strcmp(cmd, "start") == 0)
		return start_cmd(argc, argv, i);
	for (size_t k = 0; k < ARRAY_SIZE(commands); k++)
		if (strcmp(cmd, commands[k].name) == 0)
			return commands[k].fn(argc, argv, i);
	if (strcmp(cmd, "pause") == 0 || strcmp(cmd, "resume") == 0)
		return cmd_pause_resume(argc, argv, i, cmd[0] == 'p');
	if (strcmp(cmd, "update") == 0)
		return cmd_update(argc, argv, i);
	if (strcmp(cmd, "events") == 0)
		return cmd_events(argc, argv, i);
	if (strcmp(cmd, "checkpoint") == 0 || strcmp(cmd, "restore") == 0)
		return cli_fail_msg("%s: checkpoint and restore are not supported", cmd);
	return cli_fail_msg("unknown command \"%s\" (see " PROG " --help)", cmd);
}
