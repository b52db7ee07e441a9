/* linux.resources → cgroup v2 files. The OCI fields are cgroup v1's; each is converted the way
 * runc and crun convert it, and a field v2 has no counterpart for is refused by name. */
#include "cgroup/cgroup-internal.h"
#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct cgroup_write {
	char *file;
	char *value;
	char *field; /* the config field it came from, for errors */
};

struct cgroup_settings {
	struct cgroup_write *w;
	size_t n;
	struct cgroup_device_rule *devices; /* linux.resources.devices, NULL for none */
	size_t n_devices;
};

struct cgroup_settings *cgroup_settings_new(void)
{
	return calloc(1, sizeof(struct cgroup_settings));
}

struct cgroup_settings *cgroup_settings_free(struct cgroup_settings *s)
{
	if (s) {
		for (size_t i = 0; i < s->n; i++) {
			free(s->w[i].file);
			free(s->w[i].value);
			free(s->w[i].field);
		}
		free(s->w);
		free(s->devices);
		free(s);
	}
	return NULL;
}

void cgroup_settings_freep(struct cgroup_settings **s)
{
	*s = cgroup_settings_free(*s);
}

size_t cgroup_settings_count(const struct cgroup_settings *s)
{
	return s ? s->n : 0;
}

bool cgroup_settings_empty(const struct cgroup_settings *s)
{
	return !s || (s->n == 0 && s->n_devices == 0);
}

const struct cgroup_device_rule *cgroup_settings_devices(const struct cgroup_settings *s,
							 size_t *ret_n)
{
	*ret_n = s ? s->n_devices : 0;
	return s ? s->devices : NULL;
}

const char *cgroup_settings_file(const struct cgroup_settings *s, size_t i)
{
	return s->w[i].file;
}

const char *cgroup_settings_value(const struct cgroup_settings *s, size_t i)
{
	return s->w[i].value;
}

const char *cgroup_settings_field(const struct cgroup_settings *s, size_t i)
{
	return s->w[i].field;
}

int cgroup_settings_add(struct cgroup_settings *s, const char *field, const char *file,
			const char *value)
{
	struct cgroup_write *nw = realloc(s->w, (s->n + 1) * sizeof(*nw));
	if (!nw)
		return -ENOMEM;
	s->w = nw;
	struct cgroup_write *w = &s->w[s->n];
	w->file = strdup(file);
	w->value = strdup(value);
	w->field = strdup(field);
	if (!w->file || !w->value || !w->field) {
		free(w->file);
		free(w->value);
		free(w->field);
		return -ENOMEM;
	}
	s->n++;
	return 0;
}

static int addf(struct cgroup_settings *s, const char *field, const char *file, const char *fmt,
		...) __attribute__((format(printf, 4, 5)));
static int addf(struct cgroup_settings *s, const char *field, const char *file, const char *fmt,
		...)
{
	char value[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	return cgroup_settings_add(s, field, file, value);
}

/* ---- typed reads: absent is "not set" ---- */

static const struct json *get(const struct json *o, const char *key)
{
	const struct json *j = bjson_object_get(o, key);
	return bjson_type_of(j) == JSON_NULL ? NULL : j;
}

static int get_i64(const struct json *o, const char *prefix, const char *key, int64_t *ret,
		   bool *has, struct berth_error **err)
{
	const struct json *j = get(o, key);
	*has = false;
	if (!j)
		return 0;
	if (!bjson_int64(j, ret))
		return berth_error_set(err, EINVAL, "%s.%s: must be an integer", prefix, key);
	*has = true;
	return 0;
}

static int get_u64(const struct json *o, const char *prefix, const char *key, uint64_t *ret,
		   bool *has, struct berth_error **err)
{
	const struct json *j = get(o, key);
	*has = false;
	if (!j)
		return 0;
	if (!bjson_uint64(j, ret))
		return berth_error_set(err, EINVAL, "%s.%s: must be an integer of 0 or more", prefix,
				       key);
	*has = true;
	return 0;
}

static int refuse(const struct json *o, const char *prefix, const char *key, const char *why,
		  struct berth_error **err)
{
	const struct json *j = get(o, key);
	if (!j || (bjson_type_of(j) == JSON_BOOL && !bjson_bool(j)))
		return 0;
	return berth_error_set(err, ENOTSUP, "%s.%s: %s", prefix, key, why);
}

static int expect_object(const struct json *j, const char *name, struct berth_error **err)
{
	if (j && bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: must be an object", name);
	return 0;
}

/* ---- sections ---- */

static int memory(const struct json *m, struct cgroup_settings *s, struct berth_error **err)
{
	const char *p = "linux.resources.memory";
	int64_t limit = 0, reservation = 0, swap = 0;
	bool has_limit, has_res, has_swap;
	int r;
	if ((r = expect_object(m, p, err)) < 0 || !m)
		return r;
	if ((r = refuse(m, p, "kernel", "kernel memory limits do not exist in cgroup v2", err)) < 0 ||
	    (r = refuse(m, p, "kernelTCP", "kernel TCP limits do not exist in cgroup v2", err)) < 0 ||
	    (r = refuse(m, p, "swappiness", "cgroup v2 has no per-cgroup swappiness", err)) < 0 ||
	    (r = refuse(m, p, "disableOOMKiller", "cgroup v2 cannot disable the OOM killer", err)) < 0 ||
	    (r = get_i64(m, p, "limit", &limit, &has_limit, err)) < 0 ||
	    (r = get_i64(m, p, "reservation", &reservation, &has_res, err)) < 0 ||
	    (r = get_i64(m, p, "swap", &swap, &has_swap, err)) < 0)
		return r;
	if (has_limit && limit != 0 &&
	    (r = limit < 0 ? addf(s, p, "memory.max", "max")
			   : addf(s, p, "memory.max", "%" PRId64, limit)) < 0)
		return r;
	if (has_res && reservation != 0 &&
	    (r = reservation < 0 ? addf(s, p, "memory.low", "max")
				 : addf(s, p, "memory.low", "%" PRId64, reservation)) < 0)
		return r;
	if (has_swap && swap != 0) {
		/* OCI's swap is memory+swap (v1's memsw); v2 limits swap alone */
		if (swap < 0)
			return addf(s, p, "memory.swap.max", "max");
		if (!has_limit || limit <= 0)
			return berth_error_set(err, EINVAL,
					       "%s.swap: a swap limit needs a memory limit (swap counts memory+swap)",
					       p);
		if (swap < limit)
			return berth_error_set(err, EINVAL,
					       "%s.swap: %" PRId64 " is below limit %" PRId64
					       " (swap counts memory+swap)",
					       p, swap, limit);
		return addf(s, p, "memory.swap.max", "%" PRId64, swap - limit);
	}
	return 0;
}

static int cpu(const struct json *c, struct cgroup_settings *s, struct berth_error **err)
{
	const char *p = "linux.resources.cpu";
	uint64_t shares = 0, period = 0, burst = 0;
	int64_t quota = 0, idle = 0;
	bool has_shares, has_period, has_quota, has_burst, has_idle;
	int r;
	if ((r = expect_object(c, p, err)) < 0 || !c)
		return r;
	if ((r = refuse(c, p, "realtimeRuntime", "real-time scheduling limits do not exist in cgroup v2",
			err)) < 0 ||
	    (r = refuse(c, p, "realtimePeriod", "real-time scheduling limits do not exist in cgroup v2",
			err)) < 0 ||
	    (r = get_u64(c, p, "shares", &shares, &has_shares, err)) < 0 ||
	    (r = get_i64(c, p, "quota", &quota, &has_quota, err)) < 0 ||
	    (r = get_u64(c, p, "period", &period, &has_period, err)) < 0 ||
	    (r = get_u64(c, p, "burst", &burst, &has_burst, err)) < 0 ||
	    (r = get_i64(c, p, "idle", &idle, &has_idle, err)) < 0)
		return r;
	if (has_shares && shares != 0) {
		if (shares < 2 || shares > 262144)
			return berth_error_set(err, EINVAL, "%s.shares: must be from 2 to 262144", p);
		/* runc's and crun's conversion of [2, 262144] onto cpu.weight's [1, 10000] */
		if ((r = addf(s, p, "cpu.weight", "%" PRIu64, 1 + ((shares - 2) * 9999) / 262142)) < 0)
			return r;
	}
	if ((has_quota && quota != 0) || (has_period && period != 0)) {
		char q[32];
		if (quota > 0)
			snprintf(q, sizeof(q), "%" PRId64, quota);
		else
			snprintf(q, sizeof(q), "max");
		if ((r = has_period && period ? addf(s, p, "cpu.max", "%s %" PRIu64, q, period)
					      : addf(s, p, "cpu.max", "%s", q)) < 0)
			return r;
	}
	if (has_burst && (r = addf(s, p, "cpu.max.burst", "%" PRIu64, burst)) < 0)
		return r;
	if (has_idle && (r = addf(s, p, "cpu.idle", "%" PRId64, idle)) < 0)
		return r;
	const char *cpus = bjson_string(get(c, "cpus")), *mems = bjson_string(get(c, "mems"));
	if (cpus && *cpus && (r = cgroup_settings_add(s, p, "cpuset.cpus", cpus)) < 0)
		return r;
	if (mems && *mems && (r = cgroup_settings_add(s, p, "cpuset.mems", mems)) < 0)
		return r;
	return 0;
}

static int device_list(const struct json *arr, const char *name, const char *key,
		       struct cgroup_settings *s, struct berth_error **err)
{
	if (!arr)
		return 0;
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: must be an array", name);
	for (size_t i = 0; i < bjson_array_size(arr); i++) {
		const struct json *d = bjson_array_get(arr, i);
		uint64_t major, minor, v;
		bool hm, hn, hv;
		char item[128];
		snprintf(item, sizeof(item), "%s[%zu]", name, i);
		int r;
		if ((r = get_u64(d, item, "major", &major, &hm, err)) < 0 ||
		    (r = get_u64(d, item, "minor", &minor, &hn, err)) < 0 ||
		    (r = get_u64(d, item, strcmp(key, "weight") ? "rate" : "weight", &v, &hv, err)) < 0)
			return r;
		if (!hm || !hn || !hv)
			return berth_error_set(err, EINVAL, "%s: major, minor and %s are required", item,
					       strcmp(key, "weight") ? "rate" : "weight");
		if ((r = strcmp(key, "weight") == 0
				 ? addf(s, item, "io.weight", "%" PRIu64 ":%" PRIu64 " %" PRIu64, major,
					minor, v)
				 : addf(s, item, "io.max", "%" PRIu64 ":%" PRIu64 " %s=%" PRIu64, major,
					minor, key, v)) < 0)
			return r;
	}
	return 0;
}

static int block_io(const struct json *b, struct cgroup_settings *s, struct berth_error **err)
{
	const char *p = "linux.resources.blockIO";
	uint64_t weight = 0;
	bool has_weight;
	int r;
	if ((r = expect_object(b, p, err)) < 0 || !b)
		return r;
	if ((r = refuse(b, p, "leafWeight", "cgroup v2 has no leaf weight", err)) < 0 ||
	    (r = get_u64(b, p, "weight", &weight, &has_weight, err)) < 0)
		return r;
	if (has_weight && weight != 0) {
		if (weight < 10 || weight > 1000)
			return berth_error_set(err, EINVAL, "%s.weight: must be from 10 to 1000", p);
		/* blkio's [10, 1000] onto io.weight's [1, 10000], as runc converts it */
		if ((r = addf(s, p, "io.weight", "default %" PRIu64,
			      1 + (weight - 10) * 9999 / 990)) < 0)
			return r;
	}
	static const struct {
		const char *field, *key;
	} lists[] = {
		{ "weightDevice", "weight" },
		{ "throttleReadBpsDevice", "rbps" },
		{ "throttleWriteBpsDevice", "wbps" },
		{ "throttleReadIOPSDevice", "riops" },
		{ "throttleWriteIOPSDevice", "wiops" },
	};
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		char name[96];
		snprintf(name, sizeof(name), "%s.%s", p, lists[i].field);
		if ((r = device_list(get(b, lists[i].field), name, lists[i].key, s, err)) < 0)
			return r;
	}
	return 0;
}

static int hugepages(const struct json *arr, struct cgroup_settings *s, struct berth_error **err)
{
	const char *p = "linux.resources.hugepageLimits";
	if (!arr)
		return 0;
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: must be an array", p);
	for (size_t i = 0; i < bjson_array_size(arr); i++) {
		const struct json *h = bjson_array_get(arr, i);
		const char *size = bjson_string(get(h, "pageSize"));
		uint64_t limit;
		bool has;
		char item[96], file[64];
		snprintf(item, sizeof(item), "%s[%zu]", p, i);
		int r = get_u64(h, item, "limit", &limit, &has, err);
		if (r < 0)
			return r;
		if (!size || !*size || strspn(size, "0123456789KMGB") != strlen(size) || !has)
			return berth_error_set(err, EINVAL, "%s: pageSize (like 2MB) and limit are required",
					       item);
		snprintf(file, sizeof(file), "hugetlb.%s.max", size);
		if ((r = addf(s, item, file, "%" PRIu64, limit)) < 0)
			return r;
	}
	return 0;
}

/* unified: file names of this cgroup only, never a path or a cgroup.* core file. */
static int unified(const struct json *u, struct cgroup_settings *s, struct berth_error **err)
{
	const char *p = "linux.resources.unified";
	int r = expect_object(u, p, err);
	if (r < 0 || !u)
		return r;
	for (size_t i = 0; i < bjson_object_size(u); i++) {
		const char *file = bjson_object_key(u, i);
		const char *value = bjson_string(bjson_object_value(u, i));
		const char *dot = strchr(file, '.');
		if (!value)
			return berth_error_set(err, EINVAL, "%s.%s: must be a string", p, file);
		if (!dot || dot == file || strchr(file, '/') || strstr(file, "..") ||
		    strncmp(file, "cgroup.", 7) == 0)
			return berth_error_set(err, EINVAL,
					       "%s: \"%s\": not a controller file of this cgroup", p, file);
		char field[256];
		snprintf(field, sizeof(field), "%s.%s", p, file);
		if ((r = cgroup_settings_add(s, field, file, value)) < 0)
			return r;
	}
	return 0;
}

int cgroup_settings_from_oci(const struct json *res, struct cgroup_settings **ret,
			     struct berth_error **err)
{
	_cleanup_(cgroup_settings_freep) struct cgroup_settings *s = cgroup_settings_new();
	if (!s)
		return -ENOMEM;
	const char *p = "linux.resources";
	int r = expect_object(res, p, err);
	if (r < 0)
		return r;
	if ((r = cgroup_devices_from_oci(get(res, "devices"), &s->devices, &s->n_devices, err)) < 0 ||
	    (r = refuse(res, p, "network", "network classes and priorities are cgroup v1 only",
			err)) < 0 ||
	    (r = refuse(res, p, "rdma", "rdma limits are not supported yet", err)) < 0 ||
	    (r = memory(get(res, "memory"), s, err)) < 0 || (r = cpu(get(res, "cpu"), s, err)) < 0 ||
	    (r = block_io(get(res, "blockIO"), s, err)) < 0 ||
	    (r = hugepages(get(res, "hugepageLimits"), s, err)) < 0 ||
	    (r = unified(get(res, "unified"), s, err)) < 0)
		return r;
	const struct json *pids = get(res, "pids");
	if ((r = expect_object(pids, "linux.resources.pids", err)) < 0)
		return r;
	int64_t limit;
	bool has;
	if ((r = get_i64(pids, "linux.resources.pids", "limit", &limit, &has, err)) < 0)
		return r;
	if (has && (r = limit > 0 ? addf(s, "linux.resources.pids", "pids.max", "%" PRId64, limit)
				  : addf(s, "linux.resources.pids", "pids.max", "max")) < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}
