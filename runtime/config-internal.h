/* The OCI runtime-spec config.json, parsed and validated into plain structs.
 *
 * oci_config_parse reads the JSON text, checks every field berth implements, and refuses every
 * field it does not implement yet (naming it), so a config is either fully honoured or rejected
 * before anything is created. The config owns all its strings and its JSON tree (annotations
 * point into it); free with oci_config_free.
 */
#ifndef BERTH_RUNTIME_CONFIG_INTERNAL_H
#define BERTH_RUNTIME_CONFIG_INTERNAL_H

#include "base/error.h"
#include "base/json.h"
#include "runtime/caps-internal.h"
#include "runtime/hooks-internal.h"
#include "runtime/seccomp-internal.h"
#include "cgroup/cgroup.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct oci_mount {
	char *destination;
	char *source;
	char *type;
	unsigned long flags;       /* MS_* set on mount */
	unsigned long propagation; /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE (| MS_REC), applied after */
	uint64_t attr_set;         /* MOUNT_ATTR_* applied recursively (rro, rnosuid, …) */
	uint64_t attr_clr;
	bool bind;
	bool recursive_bind;
	bool idmap;           /* idmap/ridmap: the mount shows ids through the container's maps */
	bool idmap_recursive; /* ridmap */
	char *data;           /* filesystem options, comma-separated */
};

struct oci_namespace {
	int type; /* CLONE_NEW* */
	char *path;
};

struct oci_device {
	char *path;
	mode_t type; /* S_IFCHR, S_IFBLK or S_IFIFO */
	uint32_t major, minor;
	mode_t mode;
	bool has_mode;
	uid_t uid;
	gid_t gid;
	bool has_uid, has_gid;
};

struct oci_rlimit {
	int resource;
	uint64_t soft, hard;
};

struct oci_process {
	bool terminal;
	bool has_console_size;
	unsigned short console_height, console_width;
	uid_t uid;
	gid_t gid;
	bool has_umask;
	mode_t umask;
	gid_t *additional_gids;
	size_t n_additional_gids;
	char **args;
	char **env;
	char *cwd;
	struct oci_rlimit *rlimits;
	size_t n_rlimits;
	bool no_new_privileges;
	struct oci_caps caps;
	bool has_oom_score_adj;
	int oom_score_adj;
};

struct oci_sysctl {
	char *key;
	char *value;
};

struct oci_id_mapping {
	uint32_t container_id, host_id, size;
};

struct oci_time_offset {
	bool set;
	int64_t secs;
	uint32_t nanosecs;
};

struct oci_config {
	struct json *tree;
	char *oci_version;
	char *root_path;
	bool root_readonly;
	char *hostname;
	char *domainname;
	struct oci_process process;
	struct oci_mount *mounts;
	size_t n_mounts;
	struct oci_namespace *namespaces;
	size_t n_namespaces;
	struct oci_device *devices;
	size_t n_devices;
	char **masked_paths;
	char **readonly_paths;
	unsigned long rootfs_propagation; /* 0: berth's default (rslave) */
	char *cgroups_path;
	struct oci_sysctl *sysctls;
	size_t n_sysctls;
	struct oci_time_offset boottime, monotonic;
	struct oci_id_mapping *uid_mappings, *gid_mappings;
	size_t n_uid_mappings, n_gid_mappings;
	struct oci_seccomp *seccomp; /* NULL: no filter */
	struct cgroup_settings *resources; /* linux.resources as cgroup v2 files; NULL: none */
	struct oci_hooks hooks;
	const struct json *hooks_node;  /* points into tree (kept in the state for start/delete) */
	const struct json *annotations; /* points into tree */
};

int oci_config_parse(const char *text, struct oci_config **ret, struct berth_error **err);
struct oci_config *oci_config_free(struct oci_config *c);
void oci_config_freep(struct oci_config **c);

/* Parses a "process" object (also the -p process.json of exec). prefix names it in errors. */
int oci_process_parse(const struct json *node, const char *prefix, struct oci_process *ret,
		      struct berth_error **err);
void oci_process_clear(struct oci_process *p);

/* Lookups shared with the command line. */
const struct oci_namespace *oci_config_namespace(const struct oci_config *c, int type);
int oci_namespace_type_from_name(const char *name);
const char *oci_namespace_name(int type);
int oci_rlimit_from_name(const char *name);
/* Parses one mount option into m; returns false when the option is unknown to berth (it then
 * goes to the filesystem as data). */
bool oci_mount_option_apply(struct oci_mount *m, const char *opt);
/* Every mount option berth knows, for the features document. NULL-terminated. */
extern const char *const oci_mount_option_names[];
extern const char *const oci_namespace_names[];

#endif
