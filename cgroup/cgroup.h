/* cgroup v2 for berth.
 *
 * A struct cgroup is a handle on one directory of the cgroup2 hierarchy: cgroup_create makes it
 * (and its parents) or opens it when it exists, cgroup_open only opens it. The handle owns a
 * directory fd (usable with clone3's CLONE_INTO_CGROUP) and is freed with cgroup_free, which
 * leaves the directory alone; cgroup_remove deletes the directory once no process is left.
 *
 * This is the core that every v2 hierarchy offers, also hybrid hosts whose v2 tree has no
 * resource controllers: membership, cgroup.kill and removal. Resource limits come later.
 */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cgroup;

/* The cgroup2 mount point (/sys/fs/cgroup on a pure v2 host). -ENOENT when none is mounted. */
BERTH_EXPORT int cgroup_mountpoint(char **ret, struct berth_error **err);
/* path: absolute, relative to the hierarchy's root, e.g. "/berth/ID". No "..", no empty parts. */
BERTH_EXPORT int cgroup_create(const char *path, struct cgroup **ret, struct berth_error **err);
BERTH_EXPORT int cgroup_open(const char *path, struct cgroup **ret, struct berth_error **err);
/* The cgroupfs path of a systemd-style cgroupsPath "slice:prefix:name", as systemd would lay it
 * out (kubelet's systemd driver writes these), without asking systemd: "a-b.slice:cri:ID" is
 * "/a.slice/a-b.slice/cri-ID.scope"; an empty slice is system.slice. */
BERTH_EXPORT int cgroup_path_from_systemd(const char *spec, char **ret, struct berth_error **err);
BERTH_EXPORT int cgroup_fd(const struct cgroup *cg);
BERTH_EXPORT const char *cgroup_path(const struct cgroup *cg);
/* The pids in the cgroup (not its children), in the order the kernel lists them. */
BERTH_EXPORT int cgroup_pids(const struct cgroup *cg, pid_t **ret, size_t *ret_n,
			     struct berth_error **err);
/* Signals every process in the cgroup; SIGKILL goes through cgroup.kill where the kernel has it,
 * which also reaches processes forked while it runs. */
BERTH_EXPORT int cgroup_kill(const struct cgroup *cg, int sig, struct berth_error **err);
/* Kills what is left and removes the directory, waiting (bounded) for the kernel to let go. */
BERTH_EXPORT int cgroup_remove(struct cgroup *cg, struct berth_error **err);
/* Freezes (or thaws) every process in the cgroup and waits until the kernel says it is done. */
BERTH_EXPORT int cgroup_freeze(const struct cgroup *cg, bool frozen, struct berth_error **err);
BERTH_EXPORT bool cgroup_is_frozen(const struct cgroup *cg);

/* Settings: an ordered list of cgroup files to write, each with the config field it came from.
 * cgroup_settings_from_oci converts linux.resources (cgroup v1 terms) to v2 files the way runc
 * and crun do, refusing by name what v2 cannot do. cgroup_apply checks that the hierarchy offers
 * every controller the files need (naming it, the hierarchy and why when it does not), enables
 * them from the root down to the cgroup, and writes the files in order. cgroup_apply_devices
 * attaches the eBPF device filter of the device rules (none: nothing to do), replacing the one
 * attached before; a runtime calls it once the container's init has made its device nodes. */
struct cgroup_settings;
struct json;
BERTH_EXPORT int cgroup_settings_from_oci(const struct json *resources,
					  struct cgroup_settings **ret, struct berth_error **err);
BERTH_EXPORT struct cgroup_settings *cgroup_settings_new(void);
BERTH_EXPORT int cgroup_settings_add(struct cgroup_settings *s, const char *field,
				     const char *file, const char *value);
/* The number of files to write; device rules (linux.resources.devices) are not among them. */
BERTH_EXPORT size_t cgroup_settings_count(const struct cgroup_settings *s);
/* Neither files nor device rules: nothing to apply. */
BERTH_EXPORT bool cgroup_settings_empty(const struct cgroup_settings *s);
BERTH_EXPORT const char *cgroup_settings_file(const struct cgroup_settings *s, size_t i);
BERTH_EXPORT const char *cgroup_settings_value(const struct cgroup_settings *s, size_t i);
BERTH_EXPORT const char *cgroup_settings_field(const struct cgroup_settings *s, size_t i);
BERTH_EXPORT struct cgroup_settings *cgroup_settings_free(struct cgroup_settings *s);
BERTH_EXPORT void cgroup_settings_freep(struct cgroup_settings **s);
BERTH_EXPORT int cgroup_apply(const struct cgroup *cg, const struct cgroup_settings *s,
			      struct berth_error **err);
BERTH_EXPORT int cgroup_apply_devices(const struct cgroup *cg, const struct cgroup_settings *s,
				      struct berth_error **err);
/* The same, but a controller the hierarchy does not offer is skipped with a warning that names
 * the limits left unapplied: for operators who explicitly accept that. */
BERTH_EXPORT int cgroup_apply_allow_missing(const struct cgroup *cg,
					    const struct cgroup_settings *s,
					    struct berth_error **err);

/* Counters of a cgroup, from its controller files; a controller that is not enabled leaves its
 * fields at 0 and its has_ flag false. */
struct cgroup_stats {
	bool has_cpu;
	uint64_t cpu_usage_usec, cpu_user_usec, cpu_system_usec;
	uint64_t cpu_nr_periods, cpu_nr_throttled, cpu_throttled_usec;
	bool has_memory;
	uint64_t memory_current, memory_max; /* max: UINT64_MAX when "max" */
	uint64_t memory_swap_current;
	uint64_t memory_oom, memory_oom_kill; /* from memory.events */
	char *memory_stat;                    /* memory.stat as the kernel wrote it */
	bool has_pids;
	uint64_t pids_current, pids_max; /* max: UINT64_MAX when "max" */
	char *io_stat;                   /* io.stat as the kernel wrote it, or NULL */
};
BERTH_EXPORT int cgroup_stats_read(const struct cgroup *cg, struct cgroup_stats *ret,
				   struct berth_error **err);
BERTH_EXPORT void cgroup_stats_clear(struct cgroup_stats *st);
/* The number of OOM kills so far (memory.events oom_kill), 0 without a memory controller. */
BERTH_EXPORT uint64_t cgroup_oom_kills(const struct cgroup *cg);
/* An inotify fd that becomes readable when memory.events changes (an OOM, a limit hit). */
BERTH_EXPORT int cgroup_watch_memory_events(const struct cgroup *cg, struct berth_error **err);

BERTH_EXPORT struct cgroup *cgroup_free(struct cgroup *cg);
BERTH_EXPORT void cgroup_freep(struct cgroup **cg);

#endif
