/* berth pod sandboxes: a pod's namespaces (network, IPC, UTS, and PID when the pod shares one)
 * created once and pinned by bind mounts under the state directory, so containers join them by
 * path and no pause image is needed; its network (built-in bridge and veth, or CNI plugins);
 * its address (IPAM); NAT and hostPorts (nftables, in a table of berth's own); and its
 * /etc/hosts, /etc/hostname and /etc/resolv.conf.
 *
 * On disk, under the state directory (default /run/berth):
 *   pods/<id>/sandbox.json      what was set up (written before each step, so removal after a
 *                               crash knows what to undo)
 *   pods/<id>/ns/{net,ipc,uts,pid}   the pinned namespaces
 *   pods/<id>/{hosts,hostname,resolv.conf}
 *   ipam/<network>/             address reservations, one file per address naming its pod
 * Removal is idempotent and complete: no veth, reservation, rule, mount or file stays, also
 * after the creating process was killed at any point. */
#ifndef BERTH_NETNS_H
#define BERTH_NETNS_H
#include "base/error.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct netns_config {
	const char *state_dir;    /* NULL: /run/berth */
	const char *bridge;       /* NULL: "berth0" */
	const char *subnet4;      /* NULL: "10.88.0.0/16"; "" for no IPv4 */
	const char *subnet6;      /* NULL or "": no IPv6; else e.g. "fd88::/64" */
	unsigned mtu;             /* 0: 1500 */
	const char *cni_conf_dir; /* not NULL: CNI mode, with the first network config found there */
	const char *cni_bin_dir;  /* CNI mode: where plugins are; NULL: /usr/lib/cni:/opt/cni/bin */
};

enum pod_protocol { POD_PROTO_TCP, POD_PROTO_UDP, POD_PROTO_SCTP };

struct pod_port {
	uint16_t host_port;
	uint16_t container_port;
	enum pod_protocol protocol;
	const char *host_ip; /* NULL or "": every address of the node */
};

struct pod_dns {
	const char *const *servers; /* NULL-terminated */
	const char *const *searches;
	const char *const *options;
};

struct pod_spec {
	const char *id;        /* [A-Za-z0-9][A-Za-z0-9_.-]{0,127} */
	const char *name;      /* Kubernetes name and namespace, for CNI_ARGS; may be NULL */
	const char *namespace_;
	const char *hostname;  /* NULL: the id, cut to 63 characters */
	bool host_network;     /* the host's network and UTS namespaces (and hostname) */
	bool share_pid;        /* one PID namespace for the pod, with a tiny init that reaps */
	const struct pod_port *ports;
	size_t n_ports;
	const struct pod_dns *dns; /* NULL: the host's /etc/resolv.conf */
};

struct pod_sandbox_status {
	char *id;
	char *state;      /* "ready", or "incomplete" (creation did not finish) */
	char *mode;       /* "bridge", "cni" or "host" */
	char *netns_path; /* NULL with host networking */
	char *ipcns_path;
	char *utsns_path; /* NULL with host networking */
	char *pidns_path; /* NULL unless share_pid */
	int init_pid;     /* the pod's init when share_pid, else 0 */
	char *ip4;        /* NULL when none */
	char *ip6;
	char *hosts_path;
	char *hostname_path;
	char *resolv_conf_path;
};

BERTH_EXPORT int pod_sandbox_create(const struct netns_config *c, const struct pod_spec *spec,
				    struct pod_sandbox_status **ret, struct berth_error **err);
/* Everything the pod had, undone; a pod that does not exist is not an error. */
BERTH_EXPORT int pod_sandbox_remove(const struct netns_config *c, const char *id, struct berth_error **err);
BERTH_EXPORT int pod_sandbox_status(const struct netns_config *c, const char *id, struct pod_sandbox_status **ret,
				    struct berth_error **err);
/* The ids of the pods under the state directory (NULL-terminated). */
BERTH_EXPORT int pod_sandbox_list(const struct netns_config *c, char ***ret, struct berth_error **err);
BERTH_EXPORT void pod_sandbox_status_free(struct pod_sandbox_status *s);
#endif
