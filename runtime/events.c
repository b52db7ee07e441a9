/* events: a container's cgroup counters as runc's event JSON, once (--stats) or every interval,
 * and an "oom" event whenever memory.events counts a new OOM kill (watched with inotify). */
#include "runtime/runtime.h"
#include "runtime/container-internal.h"
#include "runtime/state-internal.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "cgroup/cgroup.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void write_u64_or_max(struct json_writer *w, const char *key, uint64_t v)
{
	bjson_writer_key(w, key);
	bjson_writer_uint(w, v == UINT64_MAX ? 0 : v); /* runc reports an unlimited limit as 0 */
}

/* memory.stat "key value" lines as a JSON object of numbers */
static void write_raw(struct json_writer *w, const char *text)
{
	bjson_writer_key(w, "raw");
	bjson_writer_begin_object(w);
	for (const char *p = text; p && *p;) {
		const char *sp = strchr(p, ' '), *nl = strchrnul(p, '\n');
		if (sp && sp < nl) {
			char key[128];
			snprintf(key, sizeof(key), "%.*s", (int)(sp - p), p);
			bjson_writer_key(w, key);
			bjson_writer_uint(w, strtoull(sp + 1, NULL, 10));
		}
		p = *nl ? nl + 1 : nl;
	}
	bjson_writer_end_object(w);
}

int runtime_stats_to_json(const char *id, const struct cgroup_stats *st, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "type", "stats");
	bjson_writer_kv_string(w, "id", id);
	bjson_writer_key(w, "data");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "cpu");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "usage");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "total");
	bjson_writer_uint(w, st->cpu_usage_usec * 1000); /* runc reports nanoseconds */
	bjson_writer_key(w, "user");
	bjson_writer_uint(w, st->cpu_user_usec * 1000);
	bjson_writer_key(w, "kernel");
	bjson_writer_uint(w, st->cpu_system_usec * 1000);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "throttling");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "periods");
	bjson_writer_uint(w, st->cpu_nr_periods);
	bjson_writer_key(w, "throttledPeriods");
	bjson_writer_uint(w, st->cpu_nr_throttled);
	bjson_writer_key(w, "throttledTime");
	bjson_writer_uint(w, st->cpu_throttled_usec * 1000);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	if (st->has_memory) {
		bjson_writer_key(w, "memory");
		bjson_writer_begin_object(w);
		bjson_writer_key(w, "usage");
		bjson_writer_begin_object(w);
		write_u64_or_max(w, "usage", st->memory_current);
		write_u64_or_max(w, "limit", st->memory_max);
		bjson_writer_end_object(w);
		bjson_writer_key(w, "swap");
		bjson_writer_begin_object(w);
		write_u64_or_max(w, "usage", st->memory_swap_current);
		bjson_writer_end_object(w);
		bjson_writer_key(w, "oomKills");
		bjson_writer_uint(w, st->memory_oom_kill);
		write_raw(w, st->memory_stat);
		bjson_writer_end_object(w);
	}
	if (st->has_pids) {
		bjson_writer_key(w, "pids");
		bjson_writer_begin_object(w);
		write_u64_or_max(w, "current", st->pids_current);
		write_u64_or_max(w, "limit", st->pids_max);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

static int open_cgroup_of(const char *state_root, const char *id, struct stored_state **ret_s,
			  struct cgroup **ret_cg, struct berth_error **err)
{
	_cleanup_close_ int dir_fd = -EBADF;
	int r = open_and_load(state_root, id, false, &dir_fd, ret_s, err);
	if (r < 0)
		return r;
	if (strcmp(state_status(dir_fd, *ret_s), "stopped") == 0)
		return berth_error_set(err, EINVAL, "container %s is stopped", id);
	if (!(*ret_s)->cgroup_path)
		return berth_error_set(err, ENOTSUP,
				       "container %s has no cgroup (no cgroup2 hierarchy was mounted)", id);
	return cgroup_open((*ret_s)->cgroup_path, ret_cg, err);
}

int runtime_container_stats(const char *state_root, const char *id, struct cgroup_stats *ret,
			    struct berth_error **err)
{
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	int r = open_cgroup_of(state_root, id, &s, &cg, err);
	return r < 0 ? r : cgroup_stats_read(cg, ret, err);
}

static int emit_stats(const struct cgroup *cg, const char *id, runtime_event_cb cb, void *userdata,
		      struct berth_error **err)
{
	struct cgroup_stats st;
	_cleanup_free_ char *json = NULL;
	int r = cgroup_stats_read(cg, &st, err);
	if (r < 0)
		return r;
	r = runtime_stats_to_json(id, &st, &json);
	cgroup_stats_clear(&st);
	if (r < 0)
		return berth_error_set(err, -r, "encode the stats of %s", id);
	return cb(json, userdata);
}

int runtime_container_events(const char *state_root, const char *id, bool once, int interval_ms,
			     runtime_event_cb cb, void *userdata, struct berth_error **err)
{
	_cleanup_(stored_state_freep) struct stored_state *s = NULL;
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	int r = open_cgroup_of(state_root, id, &s, &cg, err);
	if (r < 0)
		return r;
	if (once)
		return emit_stats(cg, id, cb, userdata, err);
	_cleanup_close_ int pidfd = state_open_init_pidfd(s);
	if (pidfd < 0)
		return berth_error_set(err, ESRCH, "container %s is stopped", id);
	/* without a memory controller there is nothing to watch: stats only */
	_cleanup_close_ int watch = cgroup_watch_memory_events(cg, NULL);
	uint64_t ooms = cgroup_oom_kills(cg);
	for (;;) {
		struct pollfd p[2] = { { .fd = pidfd, .events = POLLIN }, { .fd = watch, .events = POLLIN } };
		int n = poll(p, watch >= 0 ? 2 : 1, interval_ms);
		if (n < 0 && errno != EINTR)
			return berth_error_setsys(err, errno, "events: poll");
		if (n > 0 && p[1].revents) {
			char drain[4096];
			while (read(watch, drain, sizeof(drain)) > 0)
				;
			uint64_t now = cgroup_oom_kills(cg);
			for (; ooms < now; ooms++) {
				char line[1200];
				snprintf(line, sizeof(line), "{\"type\":\"oom\",\"id\":\"%s\"}", id);
				if ((r = cb(line, userdata)) < 0)
					return r;
			}
		}
		if (n > 0 && p[0].revents)
			return 0; /* the container's init is gone: so is the container */
		if (n == 0 && (r = emit_stats(cg, id, cb, userdata, err)) < 0)
			return r;
	}
}
