#include "cgroup/cgroup-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <linux/magic.h>

struct cgroup {
	char *mount; /* where the hierarchy is mounted */
	char *path;  /* relative to the hierarchy root, starting with '/' */
	int root_fd;
	int fd;
};

int cgroup_mountpoint(char **ret, struct berth_error **err)
{
	/* The usual places first: a statfs is far cheaper than reading mountinfo. */
	static const char *const candidates[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	for (size_t i = 0; i < ARRAY_SIZE(candidates); i++) {
		struct statfs sfs;
		if (statfs(candidates[i], &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC) {
			*ret = strdup(candidates[i]);
			return *ret ? 0 : -ENOMEM;
		}
	}
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return berth_error_setsys(err, errno, "open /proc/self/mountinfo");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (getline(&line, &cap, f) > 0) {
		/* ... mount-point ... - fstype source options */
		char *sep = strstr(line, " - ");
		if (!sep || strncmp(sep + 3, "cgroup2 ", 8) != 0)
			continue;
		char mnt[4096];
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
			*ret = strdup(mnt);
			return *ret ? 0 : -ENOMEM;
		}
	}
	return berth_error_set(err, ENOENT, "no cgroup2 hierarchy is mounted");
}

static int check_path(const char *path, struct berth_error **err)
{
	if (path[0] != '/')
		return berth_error_set(err, EINVAL, "cgroup path %s: must be absolute", path);
	for (const char *p = path; *p;) {
		while (*p == '/')
			p++;
		const char *e = strchrnul(p, '/');
		if ((e - p == 1 && p[0] == '.') || (e - p == 2 && p[0] == '.' && p[1] == '.'))
			return berth_error_set(err, EINVAL, "cgroup path %s: . and .. are not allowed", path);
		p = e;
	}
	return 0;
}

static int cgroup_new(const char *path, bool create, struct cgroup **ret, struct berth_error **err)
{
	int r = check_path(path, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *mnt = NULL;
	if ((r = cgroup_mountpoint(&mnt, err)) < 0)
		return r;
	_cleanup_close_ int root_fd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return berth_error_setsys(err, errno, "open %s", mnt);

	/* Walk down one component at a time with *at calls, creating what is missing. */
	_cleanup_close_ int fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
	_cleanup_free_ char *copy = strdup(path);
	if (fd < 0 || !copy)
		return berth_error_setsys(err, errno ? errno : ENOMEM, "cgroup %s", path);
	char *save = NULL;
	for (char *part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		if (create && mkdirat(fd, part, 0755) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "create cgroup %s%s", mnt, path);
		int next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
			return berth_error_setsys(err, errno, "open cgroup %s%s", mnt, path);
		close(fd);
		fd = next;
	}
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg || !(cg->path = strdup(path))) {
		free(cg);
		return -ENOMEM;
	}
	cg->mount = TAKE_PTR(mnt);
	cg->root_fd = TAKE_FD(root_fd);
	cg->fd = TAKE_FD(fd);
	*ret = cg;
	return 0;
}

int cgroup_create(const char *path, struct cgroup **ret, struct berth_error **err)
{
	return cgroup_new(path, true, ret, err);
}

int cgroup_open(const char *path, struct cgroup **ret, struct berth_error **err)
{
	return cgroup_new(path, false, ret, err);
}

/* "a-b-c.slice" → "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" (the root slice) → "". */
static int expand_slice(const char *slice, const char *spec, char **ret, struct berth_error **err)
{
	size_t len = strlen(slice);
	if (len < 6 || strcmp(slice + len - 6, ".slice") != 0 || strchr(slice, '/'))
		return berth_error_set(err, EINVAL, "cgroupsPath %s: \"%s\" is not a slice name", spec,
				       slice);
	if (strcmp(slice, "-.slice") == 0)
		return (*ret = strdup("")) ? 0 : -ENOMEM;
	size_t base = len - 6;
	if (slice[0] == '-' || slice[base - 1] == '-' || strstr(slice, "--"))
		return berth_error_set(err, EINVAL, "cgroupsPath %s: \"%s\" is not a valid slice name",
				       spec, slice);
	_cleanup_free_ char *out = malloc(len * len + 16);
	if (!out)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i <= base; i++)
		if (i == base || slice[i] == '-')
			n += (size_t)sprintf(out + n, "/%.*s.slice", (int)i, slice);
	*ret = TAKE_PTR(out);
	return 0;
}

int cgroup_path_from_systemd(const char *spec, char **ret, struct berth_error **err)
{
	const char *c1 = strchr(spec, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (!c2 || strchr(c2 + 1, ':'))
		return berth_error_set(err, EINVAL, "cgroupsPath %s: expects slice:prefix:name", spec);
	_cleanup_free_ char *slice = strndup(spec, (size_t)(c1 - spec));
	_cleanup_free_ char *prefix = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
	const char *name = c2 + 1;
	if (!slice || !prefix)
		return -ENOMEM;
	if (!*name || strchr(name, '/') || strchr(prefix, '/'))
		return berth_error_set(err, EINVAL, "cgroupsPath %s: prefix and name must be names",
				       spec);
	_cleanup_free_ char *dir = NULL;
	int r = expand_slice(*slice ? slice : "system.slice", spec, &dir, err);
	if (r < 0)
		return r;
	size_t nl = strlen(name);
	bool is_slice = nl > 6 && strcmp(name + nl - 6, ".slice") == 0;
	int n = is_slice ? asprintf(ret, "%s/%s", dir, name)
			 : asprintf(ret, "%s/%s%s%s.scope", dir, prefix, *prefix ? "-" : "", name);
	return n < 0 ? -ENOMEM : 0;
}

int cgroup_fd(const struct cgroup *cg)
{
	return cg->fd;
}

const char *cgroup_path(const struct cgroup *cg)
{
	return cg->path;
}

int cgroup_pids(const struct cgroup *cg, pid_t **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(cg->fd, "cgroup.procs", &text, NULL, err);
	if (r < 0)
		return r;
	size_t n = 0, cap = 16;
	_cleanup_free_ pid_t *pids = malloc(cap * sizeof(pid_t));
	if (!pids)
		return -ENOMEM;
	for (char *p = text, *end; *p; p = end) {
		long v = strtol(p, &end, 10);
		if (end == p)
			break;
		if (n == cap) {
			pid_t *np = realloc(pids, (cap *= 2) * sizeof(pid_t));
			if (!np)
				return -ENOMEM;
			pids = np;
		}
		pids[n++] = (pid_t)v;
	}
	*ret = TAKE_PTR(pids);
	*ret_n = n;
	return 0;
}

int cgroup_kill(const struct cgroup *cg, int sig, struct berth_error **err)
{
	if (sig == SIGKILL && write_file_at(cg->fd, "cgroup.kill", "1", NULL) == 0)
		return 0;
	_cleanup_free_ pid_t *pids = NULL;
	size_t n = 0;
	int r = cgroup_pids(cg, &pids, &n, err);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (kill(pids[i], sig) < 0 && errno != ESRCH)
			return berth_error_setsys(err, errno, "kill %d", pids[i]);
	return 0;
}

static bool cgroup_is_populated(const struct cgroup *cg)
{
	_cleanup_free_ char *events = NULL;
	if (read_file_at(cg->fd, "cgroup.events", &events, NULL, NULL) < 0)
		return false;
	return strstr(events, "populated 1") != NULL;
}

int cgroup_remove(struct cgroup *cg, struct berth_error **err)
{
	/* Removal fails with EBUSY while a process is in the cgroup, including one that is still
	 * exiting after SIGKILL; wait for the kernel, up to about 5 s. */
	for (int attempt = 0; attempt < 500; attempt++) {
		if (unlinkat(cg->root_fd, cg->path + 1, AT_REMOVEDIR) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return berth_error_setsys(err, errno, "remove cgroup %s", cg->path);
		if (cgroup_is_populated(cg))
			(void)cgroup_kill(cg, SIGKILL, NULL); /* best effort; we retry anyway */
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	return berth_error_set(err, EBUSY, "remove cgroup %s: still busy after 5 s", cg->path);
}

/* ---- controllers and settings ---- */

static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ' || p[-1] == ',') &&
		    (p[n] == '\0' || p[n] == ' ' || p[n] == '\n' || p[n] == ','))
			return true;
	return false;
}

/* Why a controller is missing from the v2 hierarchy: on hybrid hosts v1 holds it. */
static const char *missing_reason(const char *ctrl)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	while (f && getline(&line, &cap, f) > 0) {
		char *sep = strstr(line, " - cgroup ");
		if (sep && word_in(sep, ctrl))
			return "the host uses cgroup v1 for it";
	}
	return "the kernel does not offer it";
}

static int enable_controller(const struct cgroup *cg, const char *ctrl, const char *field,
			     struct berth_error **err)
{
	_cleanup_free_ char *available = NULL;
	if (read_file_at(cg->root_fd, "cgroup.controllers", &available, NULL, err) < 0)
		return berth_error_wrap(err, "%s", cg->mount);
	if (!word_in(available, ctrl))
		return berth_error_set(err, ENOTSUP, "%s: %s controller not enabled in cgroup2 at %s: %s",
				       field, ctrl, cg->mount, missing_reason(ctrl));
	/* +ctrl in cgroup.subtree_control of every ancestor, from the root down */
	char plus[64];
	snprintf(plus, sizeof(plus), "+%s", ctrl);
	_cleanup_close_ int dir = fcntl(cg->root_fd, F_DUPFD_CLOEXEC, 3);
	_cleanup_free_ char *copy = strdup(cg->path);
	if (dir < 0 || !copy)
		return -ENOMEM;
	char *save = NULL, *next = NULL;
	for (char *part = strtok_r(copy, "/", &save); part; part = next) {
		next = strtok_r(NULL, "/", &save);
		if (write_file_at(dir, "cgroup.subtree_control", plus, err) < 0)
			return berth_error_wrap(err, "%s: enable the %s controller", field, ctrl);
		if (!next)
			break;
		int fd = openat(dir, part, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return berth_error_setsys(err, errno, "%s: open %s", field, part);
		close(dir);
		dir = fd;
	}
	return 0;
}

static void controller_of(const char *file, char ctrl[static 32])
{
	snprintf(ctrl, 32, "%.*s", (int)strcspn(file, "."), file);
}

static int apply(const struct cgroup *cg, const struct cgroup_settings *s, bool allow_missing,
		 struct berth_error **err)
{
	char done[16][32], missing[16][32];
	size_t n_done = 0, n_missing = 0;
	for (size_t i = 0; i < cgroup_settings_count(s); i++) {
		char ctrl[32];
		controller_of(cgroup_settings_file(s, i), ctrl);
		bool seen = false;
		for (size_t k = 0; k < n_done; k++)
			seen |= strcmp(done[k], ctrl) == 0;
		for (size_t k = 0; k < n_missing; k++)
			seen |= strcmp(missing[k], ctrl) == 0;
		if (seen)
			continue;
		struct berth_error *e = NULL;
		int r = enable_controller(cg, ctrl, cgroup_settings_field(s, i), &e);
		if (r == -ENOTSUP && allow_missing && n_missing < 16) {
			log_warn("%s; its limits are NOT applied (allowed by the operator)", e->msg);
			berth_error_free(e);
			snprintf(missing[n_missing++], sizeof(missing[0]), "%s", ctrl);
			continue;
		}
		if (r < 0) {
			if (err && !*err)
				*err = e;
			else
				berth_error_free(e);
			return r;
		}
		if (n_done < 16)
			snprintf(done[n_done++], sizeof(done[0]), "%s", ctrl);
	}
	for (size_t i = 0; i < cgroup_settings_count(s); i++) {
		char ctrl[32];
		bool skip = false;
		controller_of(cgroup_settings_file(s, i), ctrl);
		for (size_t k = 0; k < n_missing; k++)
			skip |= strcmp(missing[k], ctrl) == 0;
		if (skip)
			continue;
		int r = write_file_at(cg->fd, cgroup_settings_file(s, i), cgroup_settings_value(s, i),
				      err);
		if (r < 0)
			return berth_error_wrap(err, "%s: set %s to \"%s\"", cgroup_settings_field(s, i),
						cgroup_settings_file(s, i), cgroup_settings_value(s, i));
	}
	return 0;
}

int cgroup_apply_devices(const struct cgroup *cg, const struct cgroup_settings *s,
			 struct berth_error **err)
{
	size_t n_rules;
	const struct cgroup_device_rule *rules = cgroup_settings_devices(s, &n_rules);
	return n_rules > 0 ? cgroup_devices_attach(cg->fd, rules, n_rules, err) : 0;
}

int cgroup_apply(const struct cgroup *cg, const struct cgroup_settings *s,
		 struct berth_error **err)
{
	return apply(cg, s, false, err);
}

int cgroup_apply_allow_missing(const struct cgroup *cg, const struct cgroup_settings *s,
			       struct berth_error **err)
{
	return apply(cg, s, true, err);
}

static bool events_say(const struct cgroup *cg, const char *what)
{
	_cleanup_free_ char *events = NULL;
	return read_file_at(cg->fd, "cgroup.events", &events, NULL, NULL) == 0 &&
	       strstr(events, what) != NULL;
}

bool cgroup_is_frozen(const struct cgroup *cg)
{
	return events_say(cg, "frozen 1");
}

int cgroup_freeze(const struct cgroup *cg, bool frozen, struct berth_error **err)
{
	int r = write_file_at(cg->fd, "cgroup.freeze", frozen ? "1" : "0", err);
	if (r < 0)
		return berth_error_wrap(err, "%s cgroup %s", frozen ? "freeze" : "thaw", cg->path);
	/* the kernel reports completion in cgroup.events; an empty cgroup counts as frozen */
	for (int i = 0; i < 5000; i++) {
		if (events_say(cg, frozen ? "frozen 1" : "frozen 0"))
			return 0;
		nanosleep(&(struct timespec){ .tv_nsec = 1000 * 1000 }, NULL);
	}
	return berth_error_set(err, ETIMEDOUT, "%s cgroup %s: not done after 5 s",
			       frozen ? "freeze" : "thaw", cg->path);
}

/* ---- stats ---- */

/* "key value" lines: the value of key, or false when it is not there. */
static bool keyed_value(const char *text, const char *key, uint64_t *ret)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
			*ret = strtoull(p + kl + 1, NULL, 10);
			return true;
		}
	}
	return false;
}

/* A single-value file; "max" reads as UINT64_MAX. */
static bool single_value(const struct cgroup *cg, const char *file, uint64_t *ret)
{
	_cleanup_free_ char *text = NULL;
	if (read_file_at(cg->fd, file, &text, NULL, NULL) < 0)
		return false;
	*ret = strncmp(text, "max", 3) == 0 ? UINT64_MAX : strtoull(text, NULL, 10);
	return true;
}

int cgroup_stats_read(const struct cgroup *cg, struct cgroup_stats *ret, struct berth_error **err)
{
	struct cgroup_stats st = { 0 };
	_cleanup_free_ char *cpu = NULL, *events = NULL;
	if (read_file_at(cg->fd, "cpu.stat", &cpu, NULL, NULL) == 0) {
		/* usage is always there (core); throttling only with the cpu controller */
		keyed_value(cpu, "usage_usec", &st.cpu_usage_usec);
		keyed_value(cpu, "user_usec", &st.cpu_user_usec);
		keyed_value(cpu, "system_usec", &st.cpu_system_usec);
		keyed_value(cpu, "nr_periods", &st.cpu_nr_periods);
		keyed_value(cpu, "nr_throttled", &st.cpu_nr_throttled);
		keyed_value(cpu, "throttled_usec", &st.cpu_throttled_usec);
		st.has_cpu = true;
	}
	if (single_value(cg, "memory.current", &st.memory_current)) {
		st.has_memory = true;
		single_value(cg, "memory.max", &st.memory_max);
		single_value(cg, "memory.swap.current", &st.memory_swap_current);
		if (read_file_at(cg->fd, "memory.events", &events, NULL, NULL) == 0) {
			keyed_value(events, "oom", &st.memory_oom);
			keyed_value(events, "oom_kill", &st.memory_oom_kill);
		}
		(void)read_file_at(cg->fd, "memory.stat", &st.memory_stat, NULL, NULL);
	}
	if (single_value(cg, "pids.current", &st.pids_current)) {
		st.has_pids = true;
		single_value(cg, "pids.max", &st.pids_max);
	}
	(void)read_file_at(cg->fd, "io.stat", &st.io_stat, NULL, NULL); /* absent without io */
	if (!st.has_cpu)
		return berth_error_set(err, EIO, "cgroup %s: cpu.stat cannot be read", cg->path);
	*ret = st;
	return 0;
}

void cgroup_stats_clear(struct cgroup_stats *st)
{
	free(st->memory_stat);
	free(st->io_stat);
	*st = (struct cgroup_stats){ 0 };
}

uint64_t cgroup_oom_kills(const struct cgroup *cg)
{
	_cleanup_free_ char *events = NULL;
	uint64_t n = 0;
	if (read_file_at(cg->fd, "memory.events", &events, NULL, NULL) == 0)
		keyed_value(events, "oom_kill", &n);
	return n;
}

int cgroup_watch_memory_events(const struct cgroup *cg, struct berth_error **err)
{
	_cleanup_close_ int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return berth_error_setsys(err, errno, "inotify_init1");
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d/memory.events", cg->fd);
	if (inotify_add_watch(fd, path, IN_MODIFY) < 0)
		return berth_error_setsys(err, errno, "watch %s/memory.events", cg->path);
	return TAKE_FD(fd);
}

struct cgroup *cgroup_free(struct cgroup *cg)
{
	if (cg) {
		closep(&cg->fd);
		closep(&cg->root_fd);
		free(cg->path);
		free(cg->mount);
		free(cg);
	}
	return NULL;
}

void cgroup_freep(struct cgroup **cg)
{
	*cg = cgroup_free(*cg);
}
