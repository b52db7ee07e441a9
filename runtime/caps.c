#include "runtime/caps-internal.h"
#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>

const char *const caps_set_names[CAPS_SETS] = { "bounding", "effective", "permitted",
						 "inheritable", "ambient" };

int caps_last_cap(void)
{
	static int last = -1;
	if (last < 0) {
		_cleanup_free_ char *text = NULL;
		last = read_file_at(AT_FDCWD, "/proc/sys/kernel/cap_last_cap", &text, NULL, NULL) == 0
			       ? atoi(text)
			       : CAP_LAST_CAP;
	}
	return last;
}

static int parse_set(const struct json *arr, const char *name, uint64_t *ret,
		     struct berth_error **err)
{
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: must be an array of capability names, not %s",
				       name, bjson_type_name(bjson_type_of(arr)));
	uint64_t mask = 0;
	for (size_t i = 0; i < bjson_array_size(arr); i++) {
		const char *s = bjson_string(bjson_array_get(arr, i));
		cap_value_t v;
		if (!s)
			return berth_error_set(err, EINVAL, "%s[%zu]: must be a string", name, i);
		/* libcap also takes numbers and lower case; the spec's names are CAP_ in capitals */
		if (strncmp(s, "CAP_", 4) != 0 || cap_from_name(s, &v) < 0)
			return berth_error_set(err, EINVAL, "%s[%zu]: unknown capability \"%s\"", name, i,
					       s);
		if (v > caps_last_cap()) {
			log_debug("%s[%zu]: %s is unknown to this kernel: left out", name, i, s);
			continue;
		}
		mask |= UINT64_C(1) << v;
	}
	*ret = mask;
	return 0;
}

int caps_parse(const struct json *node, const char *prefix, struct oci_caps *ret,
	       struct berth_error **err)
{
	if (bjson_type_of(node) <= JSON_NULL)
		return 0;
	if (bjson_type_of(node) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: must be an object, not %s", prefix,
				       bjson_type_name(bjson_type_of(node)));
	struct oci_caps c = { .present = true };
	for (int s = 0; s < CAPS_SETS; s++) {
		const struct json *arr = bjson_object_get(node, caps_set_names[s]);
		if (bjson_type_of(arr) <= JSON_NULL)
			continue;
		char name[128];
		snprintf(name, sizeof(name), "%s.%s", prefix, caps_set_names[s]);
		int r = parse_set(arr, name, &c.set[s], err);
		if (r < 0)
			return r;
	}
	/* the kernel only lets ambient hold what is permitted and inheritable: say so up front */
	uint64_t stray = c.set[CAPS_AMBIENT] & ~(c.set[CAPS_PERMITTED] & c.set[CAPS_INHERITABLE]);
	if (stray) {
		char *n = cap_to_name(__builtin_ctzll(stray));
		for (char *p = n; p && *p; p++)
			*p = (char)toupper((unsigned char)*p); /* the spec spells them CAP_… */
		int r = berth_error_set(err, EINVAL,
					"%s.ambient: %s must also be in permitted and inheritable", prefix,
					n ? n : "?");
		cap_free(n);
		return r;
	}
	*ret = c;
	return 0;
}

int caps_prepare(const struct oci_caps *c, struct berth_error **err)
{
	if (!c->present)
		return 0;
	for (int v = 0; v <= caps_last_cap(); v++)
		if (!(c->set[CAPS_BOUNDING] & (UINT64_C(1) << v)) &&
		    prctl(PR_CAPBSET_DROP, v, 0, 0, 0) < 0 && errno != EINVAL)
			return berth_error_setsys(err, errno, "process.capabilities.bounding: drop %d", v);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return berth_error_setsys(err, errno, "prctl(PR_SET_KEEPCAPS)");
	return 0;
}

static void set_flags(cap_t caps, cap_flag_t flag, uint64_t mask)
{
	for (int v = 0; v <= caps_last_cap(); v++)
		if (mask & (UINT64_C(1) << v)) {
			cap_value_t value = v;
			cap_set_flag(caps, flag, 1, &value, CAP_SET);
		}
}

int caps_apply(const struct oci_caps *c, struct berth_error **err)
{
	if (!c->present)
		return 0;
	cap_t caps = cap_init();
	if (!caps)
		return berth_error_setsys(err, errno, "cap_init");
	set_flags(caps, CAP_EFFECTIVE, c->set[CAPS_EFFECTIVE]);
	set_flags(caps, CAP_PERMITTED, c->set[CAPS_PERMITTED]);
	set_flags(caps, CAP_INHERITABLE, c->set[CAPS_INHERITABLE]);
	int r = cap_set_proc(caps);
	int e = errno;
	cap_free(caps);
	if (r < 0)
		return berth_error_setsys(err, e, "process.capabilities: set effective/permitted/inheritable");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		return berth_error_setsys(err, errno, "prctl(PR_SET_KEEPCAPS)");
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return berth_error_setsys(err, errno, "process.capabilities.ambient: clear");
	for (int v = 0; v <= caps_last_cap(); v++)
		if ((c->set[CAPS_AMBIENT] & (UINT64_C(1) << v)) &&
		    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, v, 0, 0) < 0)
			return berth_error_setsys(err, errno, "process.capabilities.ambient: raise %d", v);
	return 0;
}
