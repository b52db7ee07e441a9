/* OCI hooks: programs the runtime runs at fixed points of the lifecycle, each given the
 * container's state as JSON on stdin.
 *
 *   prestart, createRuntime  during create, mounts done, before pivot_root; runtime namespaces
 *   createContainer          right after those, in the container's namespaces
 *   startContainer           during start, in the container, before its program runs
 *   poststart                after the program started, before start (or run) returns
 *   poststop                 after delete removed the container, before delete returns
 *
 * A failing or timed-out hook fails create or start, which then undo what they made; poststart
 * and poststop failures are logged as warnings and the lifecycle goes on, as the spec says.
 */
#ifndef BERTH_RUNTIME_HOOKS_INTERNAL_H
#define BERTH_RUNTIME_HOOKS_INTERNAL_H

#include "base/error.h"
#include "base/json.h"

#include <stdbool.h>
#include <stddef.h>

enum hook_kind {
	HOOK_PRESTART,
	HOOK_CREATE_RUNTIME,
	HOOK_CREATE_CONTAINER,
	HOOK_START_CONTAINER,
	HOOK_POSTSTART,
	HOOK_POSTSTOP,
	HOOK_KINDS
};

struct oci_hook {
	char *path;
	char **args;
	char **env;
	int timeout; /* seconds; 0: none */
};

struct oci_hooks {
	struct oci_hook *list[HOOK_KINDS];
	size_t n[HOOK_KINDS];
};

extern const char *const hook_kind_names[HOOK_KINDS];

/* node: the "hooks" object (absent or null: no hooks). */
int hooks_parse(const struct json *node, struct oci_hooks *ret, struct berth_error **err);
void hooks_clear(struct oci_hooks *h);
bool hooks_any(const struct oci_hooks *h, enum hook_kind kind);
/* Runs every hook of a kind in order, each with state_json on its stdin; stops at the first
 * failure and returns it, naming the hook ("hooks.createRuntime[1]: …"). */
int hooks_run(const struct oci_hooks *h, enum hook_kind kind, const char *state_json,
	      struct berth_error **err);
/* The same for poststart and poststop: failures become warnings. */
void hooks_run_warn(const struct oci_hooks *h, enum hook_kind kind, const char *state_json);
/* The state a hook reads: {ociVersion, id, status, pid, bundle, annotations}. */
int hooks_state_json(const char *id, const char *status, int pid, const char *bundle,
		     const char *annotations_json, char **ret);

#endif
