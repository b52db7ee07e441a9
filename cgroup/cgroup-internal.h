/* cgroup/'s internals shared between its files and with the unit tests.
 *
 * Device rules: linux.resources.devices parsed into a list of rules (cgroup_devices_from_oci),
 * compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program (cgroup_devices_program), which
 * cgroup_devices_attach loads and attaches to a cgroup, replacing the device program attached
 * there before. The rule list is owned by its struct cgroup_settings. */
#ifndef BERTH_CGROUP_INTERNAL_H
#define BERTH_CGROUP_INTERNAL_H

#include "cgroup/cgroup.h"

#include <linux/bpf.h>

struct json;

#define CGROUP_DEV_ANY (-1)

struct cgroup_device_rule {
	bool allow;
	char type;            /* 'b' or 'c', or 'a' for both */
	int64_t major, minor; /* CGROUP_DEV_ANY: any */
	unsigned access;      /* BPF_DEVCG_ACC_MKNOD | _READ | _WRITE */
};

/* Parses the rule list (an array, or NULL for none); *ret is NULL when there are no rules. Errors
 * name the field: linux.resources.devices[3].access. */
int cgroup_devices_from_oci(const struct json *arr, struct cgroup_device_rule **ret,
			    size_t *ret_n, struct berth_error **err);
/* The program for n rules (n > 0), as an array of instructions, freed by the caller. */
int cgroup_devices_program(const struct cgroup_device_rule *rules, size_t n,
			   struct bpf_insn **ret, size_t *ret_n);
/* Loads the program and attaches it to the cgroup directory fd with BPF_F_ALLOW_MULTI, then
 * detaches the device programs that were attached there before (an update replaces the rules). */
int cgroup_devices_attach(int cgroup_fd, const struct cgroup_device_rule *rules, size_t n,
			  struct berth_error **err);
/* The settings' rules (NULL, 0 when linux.resources.devices asked for none). */
const struct cgroup_device_rule *cgroup_settings_devices(const struct cgroup_settings *s,
							 size_t *ret_n);

#endif
