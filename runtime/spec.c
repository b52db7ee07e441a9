/* `spec` and `features`: documents describing what berth runs. Both list only what berth
 * implements today, so a generated config runs as it is and the features document never
 * promises a field that create would refuse. */
#include "runtime/runtime.h"
#include "runtime/config-internal.h"
#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <string.h>

static void write_strings(struct json_writer *w, const char *key, const char *const *v)
{
	bjson_writer_key(w, key);
	bjson_writer_begin_array(w);
	for (; *v; v++)
		bjson_writer_string(w, *v);
	bjson_writer_end_array(w);
}

static void write_mount(struct json_writer *w, const char *dest, const char *type,
			const char *source, const char *const *options)
{
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "destination", dest);
	bjson_writer_kv_string(w, "type", type);
	bjson_writer_kv_string(w, "source", source);
	write_strings(w, "options", options);
	bjson_writer_end_object(w);
}

static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
	"/proc/scsi", "/sys/devices/virtual/powercap", NULL
};
static const char *const readonly_paths[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
					      "/proc/sysrq-trigger", NULL };

/* Docker's and containerd's default set without CAP_MKNOD: theirs relies on the device cgroup
 * to keep the device nodes a container makes unusable, and berth has no device filter yet
 * (cgroup v2's is an eBPF program): with CAP_MKNOD, a container's root could make a node for
 * the host's disk in its /dev and open it. */
static const char *const default_caps[] = {
	"CAP_CHOWN",	   "CAP_DAC_OVERRIDE", "CAP_FSETID",	       "CAP_FOWNER",
	"CAP_NET_RAW",      "CAP_SETGID",	       "CAP_SETUID",
	"CAP_SETFCAP",	   "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
	"CAP_KILL",	   "CAP_AUDIT_WRITE",  NULL,
};

static void write_capabilities(struct json_writer *w)
{
	bjson_writer_key(w, "capabilities");
	bjson_writer_begin_object(w);
	write_strings(w, "bounding", default_caps);
	write_strings(w, "effective", default_caps);
	write_strings(w, "permitted", default_caps);
	/* inheritable stays empty (CVE-2022-29162); ambient too */
	bjson_writer_end_object(w);
}

static void write_process(struct json_writer *w)
{
	static const char *const args[] = { "sh", NULL };
	static const char *const env[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL
	};
	bjson_writer_key(w, "process");
	bjson_writer_begin_object(w);
	/* no terminal: berth-runtime run attaches a terminal only through --console-socket */
	bjson_writer_kv_bool(w, "terminal", false);
	bjson_writer_key(w, "user");
	bjson_writer_begin_object(w);
	bjson_writer_kv_int(w, "uid", 0);
	bjson_writer_kv_int(w, "gid", 0);
	bjson_writer_end_object(w);
	write_strings(w, "args", args);
	write_strings(w, "env", env);
	bjson_writer_kv_string(w, "cwd", "/");
	write_capabilities(w);
	bjson_writer_key(w, "rlimits");
	bjson_writer_begin_array(w);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "type", "RLIMIT_NOFILE");
	bjson_writer_kv_int(w, "hard", 1024);
	bjson_writer_kv_int(w, "soft", 1024);
	bjson_writer_end_object(w);
	bjson_writer_end_array(w);
	bjson_writer_kv_bool(w, "noNewPrivileges", true);
	bjson_writer_end_object(w);
}

static void write_mounts(struct json_writer *w)
{
	bjson_writer_key(w, "mounts");
	bjson_writer_begin_array(w);
	write_mount(w, "/proc", "proc", "proc", (const char *const[]){ NULL });
	write_mount(w, "/dev", "tmpfs", "tmpfs",
		    (const char *const[]){ "nosuid", "strictatime", "mode=755", "size=65536k", NULL });
	write_mount(w, "/dev/pts", "devpts", "devpts",
		    (const char *const[]){ "nosuid", "noexec", "newinstance", "ptmxmode=0666",
					   "mode=0620", "gid=5", NULL });
	write_mount(w, "/dev/shm", "tmpfs", "shm",
		    (const char *const[]){ "nosuid", "noexec", "nodev", "mode=1777", "size=65536k",
					   NULL });
	write_mount(w, "/dev/mqueue", "mqueue", "mqueue",
		    (const char *const[]){ "nosuid", "noexec", "nodev", NULL });
	write_mount(w, "/sys", "sysfs", "sysfs",
		    (const char *const[]){ "nosuid", "noexec", "nodev", "ro", NULL });
	write_mount(w, "/sys/fs/cgroup", "cgroup2", "cgroup",
		    (const char *const[]){ "nosuid", "noexec", "nodev", "relatime", "ro", NULL });
	bjson_writer_end_array(w);
}

static void write_linux(struct json_writer *w)
{
	static const char *const namespaces[] = { "pid", "network", "ipc", "uts", "mount", "cgroup",
						  NULL };
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "namespaces");
	bjson_writer_begin_array(w);
	for (const char *const *n = namespaces; *n; n++) {
		bjson_writer_begin_object(w);
		bjson_writer_kv_string(w, "type", *n);
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
	write_strings(w, "maskedPaths", masked_paths);
	write_strings(w, "readonlyPaths", readonly_paths);
	bjson_writer_end_object(w);
}

int runtime_spec_generate(bool rootless, char **ret, struct berth_error **err)
{
	if (rootless)
		return berth_error_set(err, ENOTSUP,
				       "--rootless: rootless mode (berth-runtime without root) is not supported yet");
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "ociVersion", RUNTIME_OCI_VERSION);
	write_process(w);
	bjson_writer_key(w, "root");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "path", "rootfs");
	bjson_writer_kv_bool(w, "readonly", true);
	bjson_writer_end_object(w);
	bjson_writer_kv_string(w, "hostname", "berth");
	write_mounts(w);
	write_linux(w);
	bjson_writer_end_object(w);
	int r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "generate the default config") : 0;
}

int runtime_features_generate(char **ret, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(true);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "ociVersionMin", "1.0.0");
	bjson_writer_kv_string(w, "ociVersionMax", RUNTIME_OCI_VERSION);
	write_strings(w, "hooks",
		      (const char *const[]){ "prestart", "createRuntime", "createContainer",
					     "startContainer", "poststart", "poststop", NULL });
	write_strings(w, "mountOptions", oci_mount_option_names);
	bjson_writer_key(w, "linux");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "namespaces");
	bjson_writer_begin_array(w);
	for (const char *const *n = oci_namespace_names; *n; n++)
		bjson_writer_string(w, *n);
	bjson_writer_end_array(w);
	bjson_writer_key(w, "cgroup");
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "v1", false);
	bjson_writer_kv_bool(w, "v2", true);
	bjson_writer_kv_bool(w, "systemd", false);
	bjson_writer_kv_bool(w, "systemdUser", false);
	bjson_writer_kv_bool(w, "rdma", false);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "seccomp");
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "enabled", true);
	write_strings(w, "actions",
		      (const char *const[]){ "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL",
					     "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
					     "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
					     "SCMP_ACT_TRAP", NULL });
	write_strings(w, "operators",
		      (const char *const[]){ "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
					     "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
					     "SCMP_CMP_NE", NULL });
	write_strings(w, "supportedFlags",
		      (const char *const[]){ "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
					     "SECCOMP_FILTER_FLAG_SPEC_ALLOW", NULL });
	bjson_writer_end_object(w);
	static const char *const disabled[] = { "apparmor", "selinux", "intelRdt", NULL };
	for (const char *const *d = disabled; *d; d++) {
		bjson_writer_key(w, *d);
		bjson_writer_begin_object(w);
		bjson_writer_kv_bool(w, "enabled", false);
		bjson_writer_end_object(w);
	}
	bjson_writer_key(w, "mountExtensions");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "idmap");
	bjson_writer_begin_object(w);
	bjson_writer_kv_bool(w, "enabled", true);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	bjson_writer_key(w, "annotations");
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "io.github.berth.version", BERTH_VERSION);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	int r = bjson_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "generate the features document") : 0;
}
