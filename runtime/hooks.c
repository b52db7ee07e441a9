#include "runtime/hooks-internal.h"
#include "runtime/runtime.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"
#include "base/process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const hook_kind_names[HOOK_KINDS] = { "prestart",	    "createRuntime",
						   "createContainer", "startContainer",
						   "poststart",	    "poststop" };

static int dup_strv(const struct json *arr, const char *name, char ***ret, struct berth_error **err)
{
	if (bjson_type_of(arr) <= JSON_NULL)
		return 0;
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: must be an array of strings", name);
	size_t n = bjson_array_size(arr);
	char **v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	*ret = v;
	for (size_t i = 0; i < n; i++) {
		const char *s = bjson_string(bjson_array_get(arr, i));
		if (!s)
			return berth_error_set(err, EINVAL, "%s[%zu]: must be a string", name, i);
		if (!(v[i] = strdup(s)))
			return -ENOMEM;
	}
	return 0;
}

static int parse_hook(const struct json *o, const char *item, struct oci_hook *h,
		      struct berth_error **err)
{
	char name[128];
	if (bjson_type_of(o) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: must be an object", item);
	const char *path = bjson_string(bjson_object_get(o, "path"));
	if (!path)
		return berth_error_set(err, EINVAL, "%s.path: missing (must be a string)", item);
	if (path[0] != '/')
		return berth_error_set(err, EINVAL, "%s.path: %s: must be an absolute path", item, path);
	if (!(h->path = strdup(path)))
		return -ENOMEM;
	int r;
	snprintf(name, sizeof(name), "%s.args", item);
	if ((r = dup_strv(bjson_object_get(o, "args"), name, &h->args, err)) < 0)
		return r;
	snprintf(name, sizeof(name), "%s.env", item);
	if ((r = dup_strv(bjson_object_get(o, "env"), name, &h->env, err)) < 0)
		return r;
	const struct json *t = bjson_object_get(o, "timeout");
	if (bjson_type_of(t) > JSON_NULL) {
		int64_t v;
		if (!bjson_int64(t, &v) || v <= 0 || v > 86400)
			return berth_error_set(err, EINVAL,
					       "%s.timeout: must be a number of seconds above 0", item);
		h->timeout = (int)v;
	}
	if (!h->args) {
		/* argv[0] is the path when no args are given */
		h->args = calloc(2, sizeof(char *));
		if (!h->args || !(h->args[0] = strdup(h->path)))
			return -ENOMEM;
	}
	return 0;
}

int hooks_parse(const struct json *node, struct oci_hooks *ret, struct berth_error **err)
{
	if (bjson_type_of(node) <= JSON_NULL)
		return 0;
	if (bjson_type_of(node) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "hooks: must be an object");
	for (int k = 0; k < HOOK_KINDS; k++) {
		const struct json *arr = bjson_object_get(node, hook_kind_names[k]);
		if (bjson_type_of(arr) <= JSON_NULL)
			continue;
		if (bjson_type_of(arr) != JSON_ARRAY)
			return berth_error_set(err, EINVAL, "hooks.%s: must be an array",
					       hook_kind_names[k]);
		size_t n = bjson_array_size(arr);
		ret->list[k] = calloc(n ? n : 1, sizeof(struct oci_hook));
		if (!ret->list[k])
			return -ENOMEM;
		for (size_t i = 0; i < n; i++) {
			char item[64];
			snprintf(item, sizeof(item), "hooks.%s[%zu]", hook_kind_names[k], i);
			ret->n[k] = i + 1;
			int r = parse_hook(bjson_array_get(arr, i), item, &ret->list[k][i], err);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

void hooks_clear(struct oci_hooks *h)
{
	for (int k = 0; k < HOOK_KINDS; k++) {
		for (size_t i = 0; i < h->n[k]; i++) {
			free(h->list[k][i].path);
			strv_free(h->list[k][i].args);
			strv_free(h->list[k][i].env);
		}
		free(h->list[k]);
		h->list[k] = NULL;
		h->n[k] = 0;
	}
}

bool hooks_any(const struct oci_hooks *h, enum hook_kind kind)
{
	return h->n[kind] > 0;
}

static int run_one(const struct oci_hook *h, const char *item, const char *state,
		   struct berth_error **err)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return berth_error_setsys(err, errno, "%s: pipe", item);
	int pidfd = -1;
	pid_t pid = process_clone(0, -1, &pidfd);
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		return berth_error_setsys(err, -pid, "%s: start %s", item, h->path);
	}
	if (pid == 0) {
		process_reset_signals();
		if (dup2(pipefd[0], STDIN_FILENO) < 0)
			_exit(126);
		execve(h->path, h->args, h->env ? h->env : (char *[]){ NULL });
		_exit(127);
	}
	close(pipefd[0]);
	/* a hook that does not read its stdin must not block us: ignore EPIPE */
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGPIPE, &ign, &old);
	(void)write_all(pipefd[1], state, strlen(state));
	sigaction(SIGPIPE, &old, NULL);
	close(pipefd[1]);
	int status = process_wait(pidfd, h->timeout ? h->timeout * 1000 : -1);
	close(pidfd);
	if (status == -ETIMEDOUT)
		return berth_error_set(err, ETIMEDOUT, "%s: %s timed out after %d s", item, h->path,
				       h->timeout);
	if (status < 0)
		return berth_error_setsys(err, -status, "%s: wait for %s", item, h->path);
	if (status == 127)
		return berth_error_set(err, ENOENT, "%s: %s could not be run (exit status 127)", item,
				       h->path);
	if (status != 0)
		return berth_error_set(err, EIO, "%s: %s failed with exit status %d", item, h->path,
				       status);
	return 0;
}

int hooks_run(const struct oci_hooks *h, enum hook_kind kind, const char *state_json,
	      struct berth_error **err)
{
	for (size_t i = 0; i < h->n[kind]; i++) {
		char item[64];
		snprintf(item, sizeof(item), "hooks.%s[%zu]", hook_kind_names[kind], i);
		int r = run_one(&h->list[kind][i], item, state_json, err);
		if (r < 0)
			return r;
	}
	return 0;
}

void hooks_run_warn(const struct oci_hooks *h, enum hook_kind kind, const char *state_json)
{
	for (size_t i = 0; i < h->n[kind]; i++) {
		char item[64];
		struct berth_error *err = NULL;
		snprintf(item, sizeof(item), "hooks.%s[%zu]", hook_kind_names[kind], i);
		if (run_one(&h->list[kind][i], item, state_json, &err) < 0)
			log_warn("%s (the container goes on, as the runtime-spec says)", err->msg);
		berth_error_free(err);
	}
}

int hooks_state_json(const char *id, const char *status, int pid, const char *bundle,
		     const char *annotations_json, char **ret)
{
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "ociVersion", RUNTIME_OCI_VERSION);
	bjson_writer_kv_string(w, "id", id);
	bjson_writer_kv_string(w, "status", status);
	if (pid > 0)
		bjson_writer_kv_int(w, "pid", pid);
	bjson_writer_kv_string(w, "bundle", bundle);
	if (annotations_json) {
		_cleanup_(bjson_freep) struct json *ann = NULL;
		if (bjson_parse(annotations_json, &ann, NULL) == 0) {
			bjson_writer_key(w, "annotations");
			bjson_writer_value(w, ann);
		}
	}
	bjson_writer_end_object(w);
	return bjson_writer_finish(w, ret, NULL);
}
