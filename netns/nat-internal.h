/* NAT for the built-in bridge network, with libnftables, in a table of berth's own ("inet berth",
 * so a dual-stack pod's rules go in one transaction): masquerade for traffic from the pod subnet to anywhere outside it, and
 * DNAT for hostPorts (from other hosts, prerouting; from the node itself, output). Nothing else
 * in the host's ruleset is read or changed. Each pod's rules carry the comment "berth:<pod id>"
 * so they can be found and removed. */
#ifndef BERTH_NETNS_NAT_INTERNAL_H
#define BERTH_NETNS_NAT_INTERNAL_H
#include "base/error.h"
#include "netns/netns.h"

/* Creates the tables, chains and masquerade rules for the subnets when missing (idempotent).
 * subnet6 may be NULL. */
int nat_network_ensure(const char *subnet4, const char *subnet6, struct berth_error **err);

/* DNAT rules for the pod's ports to ip4/ip6 (either may be NULL: no rule of that family). A
 * hostIP of one family is only applied to that family. */
int nat_ports_add(const char *pod_id, const char *ip4, const char *ip6, const struct pod_port *ports, size_t n,
		  struct berth_error **err);

/* Removes every rule of the pod; none is not an error. */
int nat_ports_remove(const char *pod_id, struct berth_error **err);

/* The number of rules of the pod (for tests and leak checks). */
int nat_ports_count(const char *pod_id, struct berth_error **err);
#endif
