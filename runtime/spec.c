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
	json_writer_key(w, key);
	json_writer_begin_array(w);
	for (; *v; v++)
		json_writer_string(w, *v);
	json_writer_end_array(w);
}

static void write_mount(struct json_writer *w, const char *dest, const char *type,
			const char *source, const char *const *options)
{
	json_writer_begin_object(w);
	json_writer_kv_string(w, "destination", dest);
	json_writer_kv_string(w, "type", type);
	json_writer_kv_string(w, "source", source);
	write_strings(w, "options", options);
	json_writer_end_object(w);
}

static const char *const masked_paths[] = {
	"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
	"/proc/scsi", "/sys/devices/virtual/powercap", NULL
};
static const char *const readonly_paths[] = { "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
					      "/proc/sysrq-trigger", NULL };

/* Docker's and containerd's default set */
static const char *const default_caps[] = {
	"CAP_CHOWN",	   "CAP_DAC_OVERRIDE", "CAP_FSETID",	       "CAP_FOWNER",
	"CAP_MKNOD",	   "CAP_NET_RAW",      "CAP_SETGID",	       "CAP_SETUID",
	"CAP_SETFCAP",	   "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
	"CAP_KILL",	   "CAP_AUDIT_WRITE",  NULL,
};

static void write_capabilities(struct json_writer *w)
{
	json_writer_key(w, "capabilities");
	json_writer_begin_object(w);
	write_strings(w, "bounding", default_caps);
	write_strings(w, "effective", default_caps);
	write_strings(w, "permitted", default_caps);
	/* inheritable stays empty (CVE-2022-29162); ambient too */
	json_writer_end_object(w);
}

static void write_process(struct json_writer *w)
{
	static const char *const args[] = { "sh", NULL };
	static const char *const env[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL
	};
	json_writer_key(w, "process");
	json_writer_begin_object(w);
	/* no terminal: berth-runtime run attaches a terminal only through --console-socket */
	json_writer_kv_bool(w, "terminal", false);
	json_writer_key(w, "user");
	json_writer_begin_object(w);
	json_writer_kv_int(w, "uid", 0);
	json_writer_kv_int(w, "gid", 0);
	json_writer_end_object(w);
	write_strings(w, "args", args);
	write_strings(w, "env", env);
	json_writer_kv_string(w, "cwd", "/");
	write_capabilities(w);
	json_writer_key(w, "rlimits");
	json_writer_begin_array(w);
	json_writer_begin_object(w);
	json_writer_kv_string(w, "type", "RLIMIT_NOFILE");
	json_writer_kv_int(w, "hard", 1024);
	json_writer_kv_int(w, "soft", 1024);
	json_writer_end_object(w);
	json_writer_end_array(w);
	json_writer_kv_bool(w, "noNewPrivileges", true);
	json_writer_end_object(w);
}

static void write_mounts(struct json_writer *w)
{
	json_writer_key(w, "mounts");
	json_writer_begin_array(w);
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
	json_writer_end_array(w);
}

static void write_linux(struct json_writer *w)
{
	static const char *const namespaces[] = { "pid", "network", "ipc", "uts", "mount", "cgroup",
						  NULL };
	json_writer_key(w, "linux");
	json_writer_begin_object(w);
	json_writer_key(w, "namespaces");
	json_writer_begin_array(w);
	for (const char *const *n = namespaces; *n; n++) {
		json_writer_begin_object(w);
		json_writer_kv_string(w, "type", *n);
		json_writer_end_object(w);
	}
	json_writer_end_array(w);
	write_strings(w, "maskedPaths", masked_paths);
	write_strings(w, "readonlyPaths", readonly_paths);
	json_writer_end_object(w);
}

int runtime_spec_generate(bool rootless, char **ret, struct berth_error **err)
{
	if (rootless)
		return berth_error_set(err, ENOTSUP,
				       "--rootless: rootless mode (berth-runtime without root) is not supported yet");
	struct json_writer *w = json_writer_new(true);
	if (!w)
		return -ENOMEM;
	json_writer_begin_object(w);
	json_writer_kv_string(w, "ociVersion", RUNTIME_OCI_VERSION);
	write_process(w);
	json_writer_key(w, "root");
	json_writer_begin_object(w);
	json_writer_kv_string(w, "path", "rootfs");
	json_writer_kv_bool(w, "readonly", true);
	json_writer_end_object(w);
	json_writer_kv_string(w, "hostname", "berth");
	write_mounts(w);
	write_linux(w);
	json_writer_end_object(w);
	int r = json_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "generate the default config") : 0;
}

int runtime_features_generate(char **ret, struct berth_error **err)
{
	struct json_writer *w = json_writer_new(true);
	if (!w)
		return -ENOMEM;
	json_writer_begin_object(w);
	json_writer_kv_string(w, "ociVersionMin", "1.0.0");
	json_writer_kv_string(w, "ociVersionMax", RUNTIME_OCI_VERSION);
	write_strings(w, "hooks",
		      (const char *const[]){ "prestart", "createRuntime", "createContainer",
					     "startContainer", "poststart", "poststop", NULL });
	write_strings(w, "mountOptions", oci_mount_option_names);
	json_writer_key(w, "linux");
	json_writer_begin_object(w);
	json_writer_key(w, "namespaces");
	json_writer_begin_array(w);
	for (const char *const *n = oci_namespace_names; *n; n++)
		json_writer_string(w, *n);
	json_writer_end_array(w);
	json_writer_key(w, "cgroup");
	json_writer_begin_object(w);
	json_writer_kv_bool(w, "v1", false);
	json_writer_kv_bool(w, "v2", true);
	json_writer_kv_bool(w, "systemd", false);
	json_writer_kv_bool(w, "systemdUser", false);
	json_writer_kv_bool(w, "rdma", false);
	json_writer_end_object(w);
	json_writer_key(w, "seccomp");
	json_writer_begin_object(w);
	json_writer_kv_bool(w, "enabled", true);
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
	json_writer_end_object(w);
	static const char *const disabled[] = { "apparmor", "selinux", "intelRdt", NULL };
	for (const char *const *d = disabled; *d; d++) {
		json_writer_key(w, *d);
		json_writer_begin_object(w);
		json_writer_kv_bool(w, "enabled", false);
		json_writer_end_object(w);
	}
	json_writer_key(w, "mountExtensions");
	json_writer_begin_object(w);
	json_writer_key(w, "idmap");
	json_writer_begin_object(w);
	json_writer_kv_bool(w, "enabled", true);
	json_writer_end_object(w);
	json_writer_end_object(w);
	json_writer_end_object(w);
	json_writer_key(w, "annotations");
	json_writer_begin_object(w);
	json_writer_kv_string(w, "io.github.berth.version", BERTH_VERSION);
	json_writer_end_object(w);
	json_writer_end_object(w);
	int r = json_writer_finish(w, ret, NULL);
	return r < 0 ? berth_error_set(err, -r, "generate the features document") : 0;
}
