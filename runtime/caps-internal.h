/* process.capabilities: five sets of capability names, parsed into bit masks and applied in the
 * container's init (or an exec'd process) around the switch to the container's user. */
#ifndef BERTH_RUNTIME_CAPS_INTERNAL_H
#define BERTH_RUNTIME_CAPS_INTERNAL_H

#include "base/error.h"
#include "base/json.h"

#include <stdbool.h>
#include <stdint.h>

enum { CAPS_BOUNDING, CAPS_EFFECTIVE, CAPS_PERMITTED, CAPS_INHERITABLE, CAPS_AMBIENT, CAPS_SETS };

struct oci_caps {
	bool present; /* absent: the process keeps what root has, as with runc */
	uint64_t set[CAPS_SETS];
};

extern const char *const caps_set_names[CAPS_SETS];

/* node: the "capabilities" object. A name libcap does not know is an error; a name it knows but
 * the running kernel does not is left out with a debug line (as runc and crun do). */
int caps_parse(const struct json *node, const char *prefix, struct oci_caps *ret,
	       struct berth_error **err);
/* Before the uid switch: drop the bounding set and keep the permitted set across setuid. */
int caps_prepare(const struct oci_caps *c, struct berth_error **err);
/* After the uid switch: effective, permitted, inheritable, then ambient. */
int caps_apply(const struct oci_caps *c, struct berth_error **err);
/* The highest capability the running kernel knows. */
int caps_last_cap(void);

#endif
