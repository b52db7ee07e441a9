/* CNI mode (spec 1.0.0, and 0.4.0 plugins): a network configuration list, its plugins run in
 * order for ADD (each one's result the next one's prevResult) and in reverse for DEL, with the
 * CNI_* environment and the config on stdin; results parsed; errors as the plugin reports them. */
#ifndef BERTH_NETNS_CNI_INTERNAL_H
#define BERTH_NETNS_CNI_INTERNAL_H
#include "base/error.h"
#include "netns/netns.h"

struct cni_network;

/* The first (in lexical order) *.conflist, *.conf or *.json in dir; a .conf (a single plugin) is
 * taken as a list of one. Errors name the file and field. */
int cni_network_load(const char *dir, struct cni_network **ret, struct berth_error **err);
void cni_network_free(struct cni_network *n);
const char *cni_network_name(const struct cni_network *n);

struct cni_call {
	const char *bin_dirs;     /* ':'-separated */
	const char *container_id; /* the pod id */
	const char *netns_path;
	const char *ifname;       /* "eth0" */
	const char *args;         /* CNI_ARGS, e.g. "K8S_POD_NAMESPACE=a;K8S_POD_NAME=b"; may be NULL */
	const struct pod_port *ports; /* runtimeConfig.portMappings for plugins whose capabilities
					 ask for "portMappings" */
	size_t n_ports;
};

/* ADD through every plugin. *ret_result is the final result (JSON text, kept by the caller for
 * DEL and CHECK); *ret_ip4 / *ret_ip6 the first address of each family in it (without prefix;
 * NULL when none). */
int cni_add(const struct cni_network *n, const struct cni_call *call, char **ret_result, char **ret_ip4,
	    char **ret_ip6, struct berth_error **err);
/* DEL through every plugin in reverse, with the cached result as prevResult (may be NULL). A
 * missing netns is passed as given; plugins must tolerate it (the spec says so). */
int cni_del(const struct cni_network *n, const struct cni_call *call, const char *prev_result,
	    struct berth_error **err);
int cni_check(const struct cni_network *n, const struct cni_call *call, const char *prev_result,
	      struct berth_error **err);

/* How long a plugin may run before its process group is killed (default 60 s); returns the
 * previous value. For tests. */
int cni_plugin_timeout_set(int timeout_ms);
#endif
