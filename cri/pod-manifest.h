/* Kubernetes Pod v1 manifests (YAML or JSON) for berthd's static pods, and Kubernetes quantities.
 *
 * Lifecycle: pod_manifest_parse reads one manifest (one YAML document, or JSON, which is YAML
 * too) into a newly allocated struct pod_manifest tree: validated, Kubernetes' defaults applied,
 * labels and annotations sorted by key. The caller owns the tree and frees it with
 * pod_manifest_free (NULL-safe). The tree is plain data: every string and array in it belongs to
 * the tree, and nothing in it changes after parsing. The kubelet loop reads it as it likes,
 * compares two of them with pod_manifest_hash (a changed manifest replaces the pod) and computes
 * the pod's QoS class with pod_manifest_qos.
 *
 * Errors are one line, "<file>: <field path>: <what>", e.g.
 *   web.yaml: spec.containers[0].resources.limits.memory: invalid quantity "12Q"
 *   web.yaml: spec.affinity: not supported by berth
 *   web.yaml: spec.containres: unknown field
 *   web.yaml: line 3 column 1: found character that cannot start any token
 * berth-manifest(5) lists every supported field.
 *
 * Conventions in the tree: a pointer to an optional object (security_context, probes, volume
 * sources ...) is NULL when the manifest does not have it; strings are NULL when absent unless a
 * default is documented; `struct pod_opt_int` / `pod_opt_bool` carry "set or not" for settings
 * whose absence means "the runtime's or the pod's default" rather than a fixed value.
 */
#ifndef BERTH_CRI_POD_MANIFEST_H
#define BERTH_CRI_POD_MANIFEST_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Kubernetes quantities ---- */

enum k8s_quantity_unit {
	K8S_QUANTITY_UNITS,  /* the value itself (bytes for memory), rounded up to an integer */
	K8S_QUANTITY_MILLI,  /* the value in thousandths (millicores for cpu), rounded up */
};

/* Parses a Kubernetes quantity ("128Mi", "1.5Gi", "1e9", "500m", "0.5", "2") into *ret (written
 * only on success) in `unit`, rounded up to the next integer as Kubernetes' Value() and
 * MilliValue() do. Suffixes: decimal n u m k M G T P E, binary Ki Mi Gi Ti Pi Ei, or an exponent
 * e<n> / E<n>. Fails with -EINVAL `invalid quantity "12Q"` or `negative quantity "-1"`, or
 * -ERANGE `quantity "9Ei" is too large` (more than INT64_MAX). */
int k8s_quantity_parse(const char *s, enum k8s_quantity_unit unit, int64_t *ret,
		       struct berth_error **err);

/* Writes the canonical text of v (>= 0) into buf: for K8S_QUANTITY_UNITS the largest binary
 * suffix that divides it exactly ("1536Mi") else plain digits; for K8S_QUANTITY_MILLI whole
 * units ("2") or millis ("500m"). k8s_quantity_parse reads it back to v. Returns buf. */
#define K8S_QUANTITY_MAX 32
char *k8s_quantity_format(int64_t v, enum k8s_quantity_unit unit, char buf[K8S_QUANTITY_MAX]);

/* ---- The Pod tree ---- */

struct pod_opt_int {
	bool set;
	int64_t value;
};

struct pod_opt_bool {
	bool set;
	bool value;
};

/* A map of strings (labels, annotations), sorted by key, keys unique. */
struct pod_kv {
	char *key;
	char *value;
};
struct pod_kv_list {
	struct pod_kv *items;
	size_t n;
};

/* resources.requests or .limits: cpu in millicores, memory in bytes (other resources are
 * refused). */
struct pod_resource_list {
	struct pod_opt_int cpu_millis;
	struct pod_opt_int memory_bytes;
};

/* requests default to limits for each resource that has a limit but no request (Kubernetes'
 * defaulting); a request above its limit is refused. */
struct pod_resources {
	struct pod_resource_list requests;
	struct pod_resource_list limits;
};

/* A probe's or handler's port: a number, or a container port's name (then `number` is that
 * port's containerPort, resolved at parse time, and `name` keeps the name). */
struct pod_port_ref {
	int64_t number;
	char *name;
};

enum pod_protocol { POD_PROTOCOL_TCP, POD_PROTOCOL_UDP };

struct pod_container_port {
	char *name;		     /* IANA service name, unique in the container, or NULL */
	int64_t container_port;	     /* 1-65535, required */
	int64_t host_port;	     /* 0: none; with hostNetwork it defaults to container_port */
	enum pod_protocol protocol;  /* default TCP; SCTP is refused */
	char *host_ip;		     /* an IP address to bind host_port to, or NULL for all */
};

/* env[].valueFrom.configMapKeyRef / secretKeyRef: a key of a config map or secret that berthd
 * reads from its local directory. */
struct pod_key_selector {
	char *name;
	char *key;
	bool optional; /* a missing key gives no variable instead of failing the container */
};

enum pod_field_path { POD_FIELD_NAME, POD_FIELD_NAMESPACE, POD_FIELD_POD_IP };

struct pod_object_field_selector {
	char *api_version;	/* default "v1" */
	enum pod_field_path field; /* metadata.name, metadata.namespace, status.podIP */
};

/* Exactly one of the three is set. */
struct pod_env_source {
	struct pod_key_selector *config_map_key_ref;
	struct pod_key_selector *secret_key_ref;
	struct pod_object_field_selector *field_ref;
};

struct pod_env_var {
	char *name;
	char *value;		   /* the literal value (NULL with value_from; "" when neither) */
	struct pod_env_source *value_from;
};

struct pod_volume_mount {
	char *name;	  /* a volume of the pod */
	char *mount_path; /* absolute, unique in the container */
	char *sub_path;	  /* relative, without "..", or NULL */
	bool read_only;
};

struct pod_capabilities {
	char **add;  /* NULL-terminated names without "CAP_" ("NET_ADMIN", "ALL"), or NULL */
	char **drop;
};

enum pod_seccomp_type {
	POD_SECCOMP_UNSET,	     /* only when the profile object is absent */
	POD_SECCOMP_RUNTIME_DEFAULT,
	POD_SECCOMP_UNCONFINED,
	POD_SECCOMP_LOCALHOST,
};

struct pod_seccomp_profile {
	enum pod_seccomp_type type;	/* required */
	char *localhost_profile;	/* required with Localhost, refused otherwise */
};

/* A container's securityContext. Unset fields fall back to the pod's securityContext, then to
 * the runtime's defaults (the kubelet loop applies that order). */
struct pod_security_context {
	struct pod_capabilities *capabilities;
	struct pod_opt_bool privileged;
	struct pod_opt_int run_as_user;
	struct pod_opt_int run_as_group;
	struct pod_opt_bool run_as_non_root;
	struct pod_opt_bool read_only_root_filesystem;
	struct pod_opt_bool allow_privilege_escalation;
	struct pod_seccomp_profile *seccomp_profile;
};

struct pod_sysctl {
	char *name;
	char *value;
};

struct pod_pod_security_context {
	struct pod_opt_int run_as_user;
	struct pod_opt_int run_as_group;
	struct pod_opt_bool run_as_non_root;
	int64_t *supplemental_groups;
	size_t n_supplemental_groups;
	struct pod_seccomp_profile *seccomp_profile;
	struct pod_sysctl *sysctls;
	size_t n_sysctls;
};

struct pod_exec_action {
	char **command; /* NULL-terminated, at least one element */
};

struct pod_http_header {
	char *name;
	char *value;
};

enum pod_scheme { POD_SCHEME_HTTP, POD_SCHEME_HTTPS };

struct pod_http_get {
	char *path;		 /* default "/" */
	struct pod_port_ref port; /* required */
	char *host;		 /* default NULL: the pod's IP */
	enum pod_scheme scheme;	 /* default HTTP */
	struct pod_http_header *http_headers;
	size_t n_http_headers;
};

struct pod_tcp_socket {
	struct pod_port_ref port;
	char *host;
};

/* A probe: exactly one of exec, http_get, tcp_socket. Timings are Kubernetes' defaults when not
 * given or given as 0: period 10 s, timeout 1 s, success 1, failure 3, initial delay 0. */
struct pod_probe {
	struct pod_exec_action *exec;
	struct pod_http_get *http_get;
	struct pod_tcp_socket *tcp_socket;
	int64_t initial_delay_seconds;
	int64_t timeout_seconds;
	int64_t period_seconds;
	int64_t success_threshold; /* 1 for liveness and startup probes */
	int64_t failure_threshold;
	struct pod_opt_int termination_grace_period_seconds; /* unset: the pod's */
};

struct pod_sleep_action {
	int64_t seconds;
};

/* lifecycle.postStart / preStop: exactly one of exec, http_get, sleep. */
struct pod_lifecycle_handler {
	struct pod_exec_action *exec;
	struct pod_http_get *http_get;
	struct pod_sleep_action *sleep;
};

struct pod_lifecycle {
	struct pod_lifecycle_handler *post_start;
	struct pod_lifecycle_handler *pre_stop;
};

enum pod_pull_policy {
	POD_PULL_ALWAYS = 1, /* never 0 in a parsed tree: the default is applied */
	POD_PULL_IF_NOT_PRESENT,
	POD_PULL_NEVER,
};

/* A container or an init container (init containers have no probes and no lifecycle). */
struct pod_container {
	char *name;  /* DNS-1123 label, unique across containers and init containers */
	char *image; /* required */
	enum pod_pull_policy image_pull_policy; /* default Always for ":latest" or no tag, else
						   IfNotPresent */
	char **command;				/* NULL-terminated, or NULL: the image's */
	char **args;
	char *working_dir;
	struct pod_env_var *env;
	size_t n_env;
	struct pod_container_port *ports;
	size_t n_ports;
	struct pod_resources resources;
	struct pod_volume_mount *volume_mounts;
	size_t n_volume_mounts;
	struct pod_security_context *security_context;
	struct pod_probe *liveness_probe;
	struct pod_probe *readiness_probe;
	struct pod_probe *startup_probe;
	struct pod_lifecycle *lifecycle;
};

enum pod_storage_medium { POD_MEDIUM_DEFAULT, POD_MEDIUM_MEMORY };

struct pod_empty_dir {
	enum pod_storage_medium medium;	 /* Memory: a tmpfs */
	struct pod_opt_int size_limit;	 /* bytes */
};

enum pod_host_path_type {
	POD_HOST_PATH_ANY, /* "" (the default): no check */
	POD_HOST_PATH_DIRECTORY_OR_CREATE,
	POD_HOST_PATH_DIRECTORY,
	POD_HOST_PATH_FILE_OR_CREATE,
	POD_HOST_PATH_FILE,
	POD_HOST_PATH_SOCKET,
	POD_HOST_PATH_CHAR_DEVICE,
	POD_HOST_PATH_BLOCK_DEVICE,
};

struct pod_host_path {
	char *path; /* absolute, required */
	enum pod_host_path_type type;
};

/* configMap / secret items: a key of the object projected to a relative path. */
struct pod_key_to_path {
	char *key;
	char *path;		/* relative, without ".." */
	struct pod_opt_int mode; /* 0-0777; unset: the volume's default_mode */
};

/* A config map or secret volume, read from berthd's local directory of that kind; secrets are
 * put on a tmpfs; the files are read-only. */
struct pod_object_volume {
	char *name;	     /* configMap.name or secret.secretName, required */
	struct pod_key_to_path *items; /* none: every key, as a file of its own name */
	size_t n_items;
	int64_t default_mode; /* default 0644 */
	bool optional;
};

enum pod_volume_type {
	POD_VOLUME_EMPTY_DIR,
	POD_VOLUME_HOST_PATH,
	POD_VOLUME_CONFIG_MAP,
	POD_VOLUME_SECRET,
};

/* Exactly one source pointer is set, the one `type` names (a volume with no source is an
 * emptyDir, as in Kubernetes). */
struct pod_volume {
	char *name; /* DNS-1123 label, unique in the pod */
	enum pod_volume_type type;
	struct pod_empty_dir *empty_dir;
	struct pod_host_path *host_path;
	struct pod_object_volume *config_map;
	struct pod_object_volume *secret;
};

struct pod_dns_option {
	char *name;
	char *value; /* NULL: a bare option ("rotate") */
};

struct pod_dns_config {
	char **nameservers; /* IP addresses, at most 3 */
	char **searches;    /* at most 32 */
	struct pod_dns_option *options;
	size_t n_options;
};

enum pod_restart_policy { POD_RESTART_ALWAYS, POD_RESTART_ON_FAILURE, POD_RESTART_NEVER };

enum pod_dns_policy {
	POD_DNS_CLUSTER_FIRST, /* berth has no cluster DNS: behaves as Default */
	POD_DNS_CLUSTER_FIRST_WITH_HOST_NET,
	POD_DNS_DEFAULT, /* the host's resolv.conf */
	POD_DNS_NONE,	 /* only dns_config (required then) */
};

struct pod_metadata {
	char *name;	 /* DNS-1123 subdomain, required */
	char *namespace; /* DNS-1123 label, default "default" */
	char *uid;	 /* or NULL: berthd makes one */
	struct pod_kv_list labels;
	struct pod_kv_list annotations;
};

struct pod_spec {
	struct pod_container *containers; /* at least one */
	size_t n_containers;
	struct pod_container *init_containers;
	size_t n_init_containers;
	struct pod_volume *volumes;
	size_t n_volumes;
	enum pod_restart_policy restart_policy;	  /* default Always */
	int64_t termination_grace_period_seconds; /* default 30 */
	struct pod_opt_int active_deadline_seconds; /* > 0 */
	enum pod_dns_policy dns_policy;		  /* default ClusterFirst */
	struct pod_dns_config *dns_config;
	bool host_network;
	bool host_pid;
	bool host_ipc;
	bool share_process_namespace; /* refused together with host_pid */
	char *hostname;		      /* DNS-1123 label, or NULL: metadata.name */
	struct pod_pod_security_context *security_context;
};

struct pod_manifest {
	char *file;	   /* the name given to pod_manifest_parse */
	char *api_version; /* "v1" */
	char *kind;	   /* "Pod" */
	struct pod_metadata metadata;
	struct pod_spec spec;
};

/* Parses text[0..len) (need not be NUL-terminated) from `file` (used in messages; NULL gives
 * "<manifest>"). Returns 0 and a new tree in *ret, or -EINVAL (-ENOMEM, -E2BIG for more than
 * 4 MiB) with the one-line error in *err. */
int pod_manifest_parse(const char *text, size_t len, const char *file, struct pod_manifest **ret,
		       struct berth_error **err);

struct pod_manifest *pod_manifest_free(struct pod_manifest *m);
void pod_manifest_freep(struct pod_manifest **m);

enum pod_qos { POD_QOS_BEST_EFFORT, POD_QOS_BURSTABLE, POD_QOS_GUARANTEED };

/* The pod's QoS class as Kubernetes computes it over containers and init containers (cpu and
 * memory only). */
enum pod_qos pod_manifest_qos(const struct pod_manifest *m);
const char *pod_qos_name(enum pod_qos q); /* "Guaranteed", "Burstable", "BestEffort" */

/* "sha256:<hex>" over the normalised tree (defaults applied, maps sorted; the file name, key
 * order, formatting, comments and YAML-vs-JSON do not count): equal digests, same pod.
 * NULL when out of memory. */
char *pod_manifest_hash(const struct pod_manifest *m);
bool pod_manifest_equal(const struct pod_manifest *a, const struct pod_manifest *b);

#endif
