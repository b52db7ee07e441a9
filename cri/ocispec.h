/* A container's OCI config.json, built the way Kubernetes runtimes build it: the runtime's
 * defaults (runtime_spec_generate: capabilities, rlimits, mounts, masked paths), the image's
 * config (Entrypoint, Cmd, Env, WorkingDir, User) and the CRI request over it, the pod's
 * namespaces joined by path, its /etc files bind-mounted, the container's cgroup under the pod's.
 * Pure functions of their inputs, except that user and group names are looked up in the
 * container's root filesystem (its /etc/passwd and /etc/group, opened with openat2 and
 * RESOLVE_IN_ROOT, so a symlink in the image cannot point the lookup outside it). */
#ifndef BERTH_CRI_OCISPEC_H
#define BERTH_CRI_OCISPEC_H

#include "base/error.h"
#include "cri/request.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json;

struct ocispec_input {
	const char *rootfs;		    /* required: the mounted root filesystem */
	const struct json *image_config;    /* the image config's "config" object, or NULL */
	const struct container_config *req; /* required */
	/* the pod's pinned namespaces; NULL: the node's (host networking), except pid */
	const char *netns_path, *ipcns_path, *utsns_path;
	const char *pidns_path; /* the pod's shared PID namespace, or NULL */
	bool pid_host;		/* no pidns_path: the node's PID namespace, not a new one */
	const char *hosts_path, *hostname_path, *resolv_conf_path; /* bind-mounted, or NULL */
	const char *hostname;	  /* HOSTNAME in the environment, or NULL */
	const char *cgroups_path; /* linux.cgroupsPath, or NULL */
	bool pod_privileged;	  /* the pod's security_context.privileged */
	/* the pid namespace of req->target_id's container (/proc/<pid>/ns/pid) when req's pid
	 * mode is TARGET; NULL: that container is not running */
	const char *target_pidns_path;
	char *const *annotations; /* key, value, key, value, ..., NULL */
};

/* The mapping follows containerd's CRI plugin: privileged (the pod must be privileged too) gives
 * every capability, every host device, no seccomp filter and no masked or read-only paths, and
 * writable /sys; capabilities start from the default set (add "ALL", drop "ALL", then the named
 * ones); seccomp RuntimeDefault (also when none is named) is berth's built-in default profile,
 * Localhost reads and validates an OCI seccomp JSON file; namespace modes must agree with the
 * pod's; mount propagation HOST_TO_CONTAINER is rslave and BIDIRECTIONAL rshared (the host path
 * must then be on a shared mount, and the rootfs propagation follows); devices are host device
 * nodes, their r/w permissions applied to the node's mode (there is no device cgroup). */
int ocispec_generate(const struct ocispec_input *in, char **ret, struct berth_error **err);

/* The process's arguments as Kubernetes merges them: command (+ args), else the image's
 * Entrypoint + (args, else the image's Cmd). -EINVAL when that leaves nothing to run. */
int ocispec_command(const struct json *image_config, char *const *command, char *const *args,
		    char ***ret, struct berth_error **err);

struct ocispec_user {
	uint32_t uid, gid;
	uint32_t *additional_gids;
	size_t n_additional;
};

/* The user a container runs as: the request's run_as_username / run_as_user / run_as_group,
 * else the image's User ("name", "uid", "name:group", "uid:gid"), else root. Names are looked up
 * in rootfs's /etc/passwd and /etc/group; supplementary groups are the groups that list the
 * user's name. */
int ocispec_user_resolve(const char *rootfs, const struct container_config *req,
			 const char *image_user, struct ocispec_user *ret,
			 struct berth_error **err);
void ocispec_user_clear(struct ocispec_user *u);

/* An exec's terminal: none unless on; its size at start when cols and rows are not 0. */
struct ocispec_terminal {
	bool on;
	unsigned cols, rows;
};

/* An exec's runtime-spec process object: the container's own process (from its config.json
 * text) with args replaced, with a terminal when term says so (NULL: none). */
int ocispec_exec_process(const char *config_json, char *const *argv,
			 const struct ocispec_terminal *term, char **ret, struct berth_error **err);

#endif
