/* A pod's /etc/hosts, /etc/hostname and /etc/resolv.conf, written into its directory for
 * containers to bind-mount. */
#ifndef BERTH_NETNS_FILES_INTERNAL_H
#define BERTH_NETNS_FILES_INTERNAL_H
#include "base/error.h"
#include "netns/netns.h"

/* dirfd: the pod's directory. hosts: localhost lines (IPv4 and IPv6) plus "IP hostname" for each
 * of ip4/ip6 that is not NULL (with host networking: the host's /etc/hosts as it is). hostname:
 * the name and a newline. resolv.conf: from dns (servers, searches, options; an empty list means
 * none of that kind) or, when dns is NULL, the host's /etc/resolv.conf; in a pod network
 * namespace the host's loopback nameservers (127.0.0.0/8, ::1) are dropped, since the pod's
 * loopback is not the host's (as Docker does), with a warning when none is left. Each file is
 * written atomically. Values are checked: a server must be an IP address, a search domain or
 * option must not contain whitespace, control characters or '#'; an error names the field
 * ("dns.servers[1]: ..."). */
int pod_files_write(int dirfd, const char *hostname, const char *ip4, const char *ip6, const struct pod_dns *dns,
		    bool host_network, struct berth_error **err);
#endif
