/* IP address management for the built-in bridge network: addresses from one subnet, never one to
 * two pods, consistent across crashes. A reservation is a file ipam/<network>/<address> holding
 * the pod id, created with O_EXCL under the directory's lock (flock on ipam/<network>/lock), so
 * it is made before the address is used and survives the process that made it; "last" records
 * the last address given, so addresses rotate rather than being reused at once. The network
 * address, the gateway (the first host address) and, for IPv4, the broadcast address are never
 * given. */
#ifndef BERTH_NETNS_IPAM_INTERNAL_H
#define BERTH_NETNS_IPAM_INTERNAL_H
#include "base/error.h"
#include <arpa/inet.h>
#include <stdbool.h>

struct ipam;

/* subnet: CIDR ("10.88.0.0/16", "fd88::/64"); a host part in it, a prefix longer than /30
 * (IPv4) or /126 (IPv6), or an invalid one is an error naming it. */
int ipam_open(const char *state_dir, const char *network, const char *subnet, struct ipam **ret,
	      struct berth_error **err);
void ipam_free(struct ipam *m);

int ipam_family(const struct ipam *m);             /* AF_INET or AF_INET6 */
unsigned ipam_prefix_len(const struct ipam *m);
const char *ipam_gateway(const struct ipam *m);    /* text form */

/* The pod's address: its existing reservation, or a new one. A full subnet is ENOSPC with a
 * message naming the subnet. */
int ipam_allocate(struct ipam *m, const char *pod_id, char ret[INET6_ADDRSTRLEN], struct berth_error **err);
/* Releases every reservation of the pod; none is not an error. */
int ipam_release(struct ipam *m, const char *pod_id, struct berth_error **err);
/* The number of reservations (for tests and status). */
int ipam_count(struct ipam *m, struct berth_error **err);
#endif
