/* What a client asks for when it runs a pod or creates a container, in C, and the JSON form of
 * it (the CRI's field names, snake_case as in api.proto). The socket API parses requests with
 * these functions, the manager stores their canonical JSON in the database (db_pod.config_json,
 * db_container.config_json) and reads it back after a restart; the gRPC layer (issue 8) fills
 * the same structures from protobuf messages.
 *
 * Parsing is strict: an unknown field, a value of the wrong type or out of range is -EINVAL with
 * a message naming the field's path ("config.linux.resources.cpu_quota: not an integer"). A
 * parsed structure owns every string in it; *_clear frees them and leaves a zeroed structure. */
#ifndef BERTH_CRI_REQUEST_H
#define BERTH_CRI_REQUEST_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct json;
struct json_writer;

/* CRI's NamespaceMode (TARGET: a container's pid namespace joins another container's) */
enum ns_mode { NS_MODE_POD, NS_MODE_CONTAINER, NS_MODE_NODE, NS_MODE_TARGET };

/* CRI's MountPropagation */
enum mount_propagation {
	PROPAGATION_PRIVATE,	       /* rprivate */
	PROPAGATION_HOST_TO_CONTAINER, /* rslave */
	PROPAGATION_BIDIRECTIONAL,     /* rshared */
};

/* CRI's SecurityProfile.ProfileType, with "not given" apart: berth's default for a container
 * that names no profile is RuntimeDefault (the safe default), where containerd runs it
 * unconfined (kubelet always sends one, so the two agree for kubelet). */
enum seccomp_mode {
	SECCOMP_UNSET,
	SECCOMP_RUNTIME_DEFAULT,
	SECCOMP_UNCONFINED,
	SECCOMP_LOCALHOST, /* seccomp_localhost_ref: an absolute path to an OCI seccomp JSON */
};

struct port_mapping {
	char *protocol; /* "TCP" | "UDP" | "SCTP" */
	uint16_t container_port;
	uint16_t host_port;
	char *host_ip; /* or NULL */
};

struct pod_config {
	char *name, *namespace_, *uid; /* metadata: required, unique with attempt */
	uint32_t attempt;
	char *hostname;	     /* NULL: netns's default (the pod id) */
	char *log_directory; /* absolute, or NULL */
	char **dns_servers, **dns_searches,
		**dns_options; /* NULL-terminated, or NULL (none given) */
	bool has_dns;
	struct port_mapping *ports;
	size_t n_ports;
	char *labels_json; /* JSON object of strings, or NULL */
	char *annotations_json;
	char *cgroup_parent; /* linux.cgroup_parent: the pod's own cgroup, or NULL (berthd's) */
	enum ns_mode net_mode, pid_mode, ipc_mode; /* linux.security_context.namespace_options */
	bool privileged; /* linux.security_context.privileged: its containers may be privileged */
};

struct bind_mount {
	char *container_path; /* absolute */
	char *host_path;      /* absolute */
	bool readonly;
	enum mount_propagation propagation;
};

struct device_mapping {
	char *container_path; /* absolute */
	char *host_path;      /* absolute: a device node */
	char *permissions;    /* a non-empty subset of "rwm" */
};

struct hugepage_limit {
	char *page_size; /* "2MB", "1GB", ... */
	uint64_t limit;	 /* bytes */
};

struct container_config {
	char *name; /* metadata: required, unique per pod with attempt */
	uint32_t attempt;
	char *image;		/* image.image: required */
	char **command, **args; /* NULL-terminated, or NULL */
	char *working_dir;
	char **envs; /* "KEY=VALUE", NULL-terminated, or NULL */
	struct bind_mount *mounts;
	size_t n_mounts;
	char *labels_json;
	char *annotations_json;
	char *log_path; /* relative to the pod's log_directory, or absolute when it has none */
	bool tty, stdin_open, stdin_once;
	struct device_mapping *devices;
	size_t n_devices;
	/* linux.resources: 0 (NULL) is "not set" */
	int64_t cpu_period, cpu_quota, cpu_shares, memory_limit_in_bytes, memory_swap_limit_in_bytes;
	int64_t oom_score_adj;
	char *cpuset_cpus, *cpuset_mems;
	struct hugepage_limit *hugepage_limits;
	size_t n_hugepage_limits;
	char *unified_json; /* JSON object of strings (cgroup v2 file -> value), or NULL */
	/* linux.security_context */
	bool has_run_as_user, has_run_as_group;
	int64_t run_as_user, run_as_group;
	char *run_as_username;
	bool readonly_rootfs;
	bool privileged;
	/* "CAP_X" or "X" or "ALL", as given (NULL-terminated, or NULL) */
	char **add_capabilities, **drop_capabilities;
	int64_t *supplemental_groups;
	size_t n_supplemental_groups;
	bool supplemental_groups_strict; /* supplemental_groups_policy Strict: not /etc/group's */
	/* The JSON API defaults it to true when absent (berth's safe default); the gRPC API takes
	 * CRI's bool as kubelet sends it (!allowPrivilegeEscalation), as containerd does. */
	bool no_new_privs;
	enum seccomp_mode seccomp;
	char *seccomp_localhost_ref;
	char **masked_paths, **readonly_paths; /* NULL: the defaults; else exactly these */
	/* namespace_options; has_ns_options false: the pod's modes */
	bool has_ns_options;
	enum ns_mode net_mode, pid_mode, ipc_mode;
	char *target_id; /* pid_mode TARGET: the container whose pid namespace is joined */
};

/* obj: the "config" object of a request; where: its path for messages ("config"). */
int pod_config_parse(const struct json *obj, const char *where, struct pod_config *ret,
		     struct berth_error **err);
int container_config_parse(const struct json *obj, const char *where, struct container_config *ret,
			   struct berth_error **err);
/* The canonical JSON text (what the parsers read back to the same structure). */
int pod_config_to_json(const struct pod_config *c, char **ret);
int container_config_to_json(const struct container_config *c, char **ret);
int pod_config_from_text(const char *json_text, struct pod_config *ret, struct berth_error **err);
int container_config_from_text(const char *json_text, struct container_config *ret,
			       struct berth_error **err);
void pod_config_clear(struct pod_config *c);
void container_config_clear(struct container_config *c);

const char *ns_mode_name(enum ns_mode m);

/* Small strict-JSON helpers the socket API shares. Each returns 0, or -EINVAL naming
 * where.key. "Absent" (or JSON null) is fine for the optional getters and leaves *ret alone. */
int req_check_keys(const struct json *obj, const char *where, const char *const *allowed,
		   struct berth_error **err);
int req_string(const struct json *obj, const char *where, const char *key, bool required,
	       char **ret, struct berth_error **err);
int req_int64(const struct json *obj, const char *where, const char *key, int64_t min, int64_t max,
	      int64_t *ret, struct berth_error **err);
int req_bool(const struct json *obj, const char *where, const char *key, bool *ret,
	     struct berth_error **err);
int req_strv(const struct json *obj, const char *where, const char *key, char ***ret,
	     struct berth_error **err);
/* A JSON object whose values are all strings (labels, annotations), as compact text. */
int req_string_map(const struct json *obj, const char *where, const char *key, char **ret,
		   struct berth_error **err);
void req_write_strv(struct json_writer *w, const char *key, char *const *v);
/* Writes a JSON text (known to be valid) as a value; nothing when text is NULL. */
void req_write_raw(struct json_writer *w, const char *key, const char *text);

#endif
