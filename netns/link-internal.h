/* Links for the built-in bridge network, over libnl-route-3 (netlink): the bridge, a veth pair
 * per pod, and the pod side's addresses and routes. Every function works in the caller's
 * network namespace unless it names another. */
#ifndef BERTH_NETNS_LINK_INTERNAL_H
#define BERTH_NETNS_LINK_INTERNAL_H
#include "base/error.h"
#include <stdbool.h>

struct link_addr {
	const char *ip;   /* text form; NULL: none of this family */
	unsigned prefix;
	const char *gateway;
};

/* The bridge, created when missing (no STP, forward delay 0), up, with the gateways as its
 * addresses (IPv6 without duplicate address detection), MTU set. An existing bridge is reused
 * and its addresses added if missing. An existing link of that name that is not a bridge is an
 * error. Also sets net.ipv4.ip_forward (and IPv6 forwarding when v6 is given) to 1 in this
 * network namespace, as CNI's bridge plugin does. */
int link_bridge_ensure(const char *name, const struct link_addr *v4, const struct link_addr *v6, unsigned mtu,
		       struct berth_error **err);

/* A veth pair: host_name attached to bridge and up; the peer moved into the network namespace
 * netns_fd and renamed ifname there. MTU on both. An existing host_name (a leftover) is
 * removed first. */
int link_veth_create(const char *host_name, const char *bridge, int netns_fd, const char *ifname, unsigned mtu,
		     struct berth_error **err);

/* Inside the namespace at netns_path: lo up; ifname up with v4/v6 addresses and a default
 * route through each gateway. */
int link_pod_configure(const char *netns_path, const char *ifname, const struct link_addr *v4,
		       const struct link_addr *v6, struct berth_error **err);

/* Deletes a link (a veth's peer goes with it); a missing one is not an error. */
int link_delete(const char *name, struct berth_error **err);
bool link_exists(const char *name);
#endif
