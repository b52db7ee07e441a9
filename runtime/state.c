#include "runtime/state-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "runtime/hooks-internal.h"
#include "cgroup/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int state_id_check(const char *id, struct berth_error **err)
{
	size_t len = strlen(id);
	if (len == 0)
		return berth_error_set(err, EINVAL, "container id: must not be empty");
	if (len > 1024)
		return berth_error_set(err, EINVAL, "container id: longer than 1024 bytes");
	/* runc's rule: a name, never a path */
	for (const char *p = id; *p; p++) {
		bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			  (*p >= '0' && *p <= '9') || (p != id && strchr("_.+-", *p));
		if (!ok)
			return berth_error_set(err, EINVAL,
					       "container id \"%s\": only letters, digits and _.+- are allowed (and it must start with a letter or digit)",
					       id);
	}
	return 0;
}

int state_root_open(const char *root, bool create, int *ret_fd, struct berth_error **err)
{
	if (create) {
		/* create the path; the leaf is private to root */
		_cleanup_free_ char *p = strdup(root);
		if (!p)
			return -ENOMEM;
		for (char *s = p + 1; *s; s++)
			if (*s == '/') {
				*s = '\0';
				(void)mkdir(p, 0711); /* EEXIST is fine; the open below reports failures */
				*s = '/';
			}
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "--root %s", root);
	}
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return berth_error_setsys(err, errno, "--root %s", root);
	*ret_fd = fd;
	return 0;
}

int state_dir_open(int root_fd, const char *id, bool exclusive, int *ret_fd,
		   struct berth_error **err)
{
	int r = state_id_check(id, err);
	if (r < 0)
		return r;
	_cleanup_close_ int fd = openat(root_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return berth_error_set(err, ENOENT, "container %s does not exist", id);
		return berth_error_setsys(err, errno, "container %s", id);
	}
	if (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0)
		return berth_error_setsys(err, errno, "lock container %s", id);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int state_save(int dir_fd, const struct stored_state *s, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", s->id);
	bjson_writer_kv_int(w, "pid", s->pid);
	bjson_writer_key(w, "pidStart");
	bjson_writer_uint(w, s->pid_start);
	bjson_writer_kv_string(w, "bundle", s->bundle);
	bjson_writer_kv_string(w, "rootfs", s->rootfs);
	bjson_writer_kv_string(w, "created", s->created);
	bjson_writer_kv_string(w, "owner", s->owner);
	if (s->annotations_json)
		bjson_writer_kv_string(w, "annotations", s->annotations_json);
	if (s->cgroup_path)
		bjson_writer_kv_string(w, "cgroupPath", s->cgroup_path);
	if (s->hooks_json)
		bjson_writer_kv_string(w, "hooks", s->hooks_json);
	bjson_writer_kv_bool(w, "ownPidNamespace", s->own_pid_ns);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = bjson_writer_finish(w, &text, &len);
	if (r < 0)
		return berth_error_set(err, -r, "encode state of %s", s->id);
	/* /run is tmpfs and lost at reboot anyway: no fsync */
	return write_file_atomic_at(dir_fd, STATE_FILE, text, len, 0600, false, err);
}

static int dup_string(const struct json *j, const char *key, char **ret)
{
	const char *s = bjson_string(bjson_object_get(j, key));
	if (!s)
		return -EINVAL;
	return (*ret = strdup(s)) ? 0 : -ENOMEM;
}

int state_load(int dir_fd, const char *id, struct stored_state **ret, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	int r = read_file_at(dir_fd, STATE_FILE, &text, NULL, err);
	if (r < 0)
		return r;
	_cleanup_(bjson_freep) struct json *j = NULL;
	if ((r = bjson_parse(text, &j, err)) < 0)
		return berth_error_wrap(err, "state of %s", id);
	_cleanup_(stored_state_freep) struct stored_state *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	int64_t pid = 0;
	uint64_t start = 0;
	if (dup_string(j, "id", &s->id) < 0 || dup_string(j, "bundle", &s->bundle) < 0 ||
	    dup_string(j, "rootfs", &s->rootfs) < 0 || dup_string(j, "created", &s->created) < 0 ||
	    dup_string(j, "owner", &s->owner) < 0 || !bjson_int64(bjson_object_get(j, "pid"), &pid) ||
	    !bjson_uint64(bjson_object_get(j, "pidStart"), &start))
		return berth_error_set(err, EINVAL, "state of %s: damaged %s", id, STATE_FILE);
	s->pid = (pid_t)pid;
	s->pid_start = start;
	if (bjson_object_get(j, "annotations"))
		(void)dup_string(j, "annotations", &s->annotations_json);
	if (bjson_object_get(j, "cgroupPath"))
		(void)dup_string(j, "cgroupPath", &s->cgroup_path);
	if (bjson_object_get(j, "hooks"))
		(void)dup_string(j, "hooks", &s->hooks_json);
	s->own_pid_ns = bjson_bool(bjson_object_get(j, "ownPidNamespace"));
	*ret = TAKE_PTR(s);
	return 0;
}

uint64_t proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: fields resume after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return 0;
	char state = p[2];
	if (state == 'Z' || state == 'X')
		return 0;
	unsigned long long start = 0;
	/* after ')': state(3) ... starttime is field 22, i.e. the 20th after the state */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d "
			  "%*d %llu",
		   &start) != 1)
		return 0;
	return start;
}

int state_open_init_pidfd(const struct stored_state *s)
{
	if (s->pid <= 0)
		return -ESRCH;
	int fd = (int)syscall(SYS_pidfd_open, s->pid, 0);
	if (fd >= 0 && proc_start_time(s->pid) == s->pid_start)
		return fd;
	if (fd >= 0)
		close(fd);
	return -ESRCH;
}

const char *state_status(int dir_fd, const struct stored_state *s)
{
	if (s->pid <= 0 || proc_start_time(s->pid) != s->pid_start)
		return "stopped";
	if (faccessat(dir_fd, START_SOCKET, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return "created";
	_cleanup_(cgroup_freep) struct cgroup *cg = NULL;
	if (s->cgroup_path && cgroup_open(s->cgroup_path, &cg, NULL) == 0 && cgroup_is_frozen(cg))
		return "paused";
	return "running";
}

int state_to_public(int dir_fd, const struct stored_state *s, struct runtime_state **ret)
{
	struct runtime_state *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->status = state_status(dir_fd, s);
	p->pid = strcmp(p->status, "stopped") == 0 ? 0 : s->pid;
	p->id = strdup(s->id);
	p->bundle = strdup(s->bundle);
	p->rootfs = strdup(s->rootfs);
	p->created = strdup(s->created);
	p->owner = strdup(s->owner);
	if (s->annotations_json)
		p->annotations_json = strdup(s->annotations_json);
	if (!p->id || !p->bundle || !p->rootfs || !p->created || !p->owner ||
	    (s->annotations_json && !p->annotations_json)) {
		runtime_state_free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

struct stored_state *stored_state_free(struct stored_state *s)
{
	if (s) {
		free(s->id);
		free(s->bundle);
		free(s->rootfs);
		free(s->created);
		free(s->owner);
		free(s->annotations_json);
		free(s->cgroup_path);
		free(s->hooks_json);
		free(s);
	}
	return NULL;
}

void stored_state_freep(struct stored_state **s)
{
	*s = stored_state_free(*s);
}

struct runtime_state *runtime_state_free(struct runtime_state *s)
{
	if (s) {
		free(s->id);
		free(s->bundle);
		free(s->rootfs);
		free(s->created);
		free(s->owner);
		free(s->annotations_json);
		free(s);
	}
	return NULL;
}

void runtime_state_freep(struct runtime_state **s)
{
	*s = runtime_state_free(*s);
}

int runtime_state_to_json(const struct runtime_state *s, bool pretty, char **ret)
{
	struct json_writer *w = bjson_writer_new(pretty);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "ociVersion", RUNTIME_OCI_VERSION);
	bjson_writer_kv_string(w, "id", s->id);
	bjson_writer_kv_int(w, "pid", s->pid);
	bjson_writer_kv_string(w, "status", s->status);
	bjson_writer_kv_string(w, "bundle", s->bundle);
	bjson_writer_kv_string(w, "rootfs", s->rootfs);
	bjson_writer_kv_string(w, "created", s->created);
	bjson_writer_kv_string(w, "owner", s->owner);
	if (s->annotations_json) {
		_cleanup_(bjson_freep) struct json *ann = NULL;
		if (bjson_parse(s->annotations_json, &ann, NULL) == 0) {
			bjson_writer_key(w, "annotations");
			bjson_writer_value(w, ann);
		}
	}
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}

void state_run_hooks_warn(const struct stored_state *s, int kind, const char *status)
{
	if (!s->hooks_json)
		return;
	_cleanup_(bjson_freep) struct json *j = NULL;
	struct oci_hooks hooks = { 0 };
	_cleanup_free_ char *state = NULL;
	if (bjson_parse(s->hooks_json, &j, NULL) < 0 || hooks_parse(j, &hooks, NULL) < 0 ||
	    hooks_state_json(s->id, status, s->pid, s->bundle, s->annotations_json, &state) < 0)
		log_warn("container %s: its stored hooks cannot be read: %s hooks not run", s->id,
			 hook_kind_names[kind]);
	else
		hooks_run_warn(&hooks, (enum hook_kind)kind, state);
	hooks_clear(&hooks);
}

int format_rfc3339_now(char **ret)
{
	char buf[64];
	format_rfc3339_now_buf(buf, sizeof(buf));
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}
