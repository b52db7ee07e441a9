/* The built-in bridge network's links, over libnl-route-3. Each public call opens one netlink
 * socket and looks links up by name (RTM_GETLINK for one link, never a dump into a link cache),
 * so a call costs a handful of round trips however many links the node has. libnl's error codes
 * are mapped back to errno for the caller, and every message names the link it is about. */
#include <net/if.h> /* before libnl's headers, which pull in <linux/if.h> */

#include "netns/link-internal.h"
#include "netns/ns-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <linux/if_link.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>

/* _cleanup_ destructors for libnl's objects: NULL is "nothing held". */
#define DEFINE_NL_FREEP(type, name, free_fn)                                                       \
	static void name(type **p)                                                                 \
	{                                                                                          \
		if (*p)                                                                            \
			free_fn(*p);                                                               \
	}
DEFINE_NL_FREEP(struct nl_sock, nl_sockp, nl_socket_free)
DEFINE_NL_FREEP(struct rtnl_link, rtnl_linkp, rtnl_link_put)
DEFINE_NL_FREEP(struct rtnl_addr, rtnl_addrp, rtnl_addr_put)
DEFINE_NL_FREEP(struct rtnl_route, rtnl_routep, rtnl_route_put)
DEFINE_NL_FREEP(struct nl_addr, nl_addrp, nl_addr_put)
DEFINE_NL_FREEP(struct nl_msg, nlmsg_freep, nlmsg_free)

/* libnl folds the kernel's errno into its own codes; the caller wants an errno back. */
static int nlerr_errno(int nlerr)
{
	static const struct {
		int nle, err;
	} map[] = {
		{ NLE_EXIST, EEXIST },
		{ NLE_NODEV, ENODEV },
		{ NLE_OBJ_NOTFOUND, ENOENT },
		{ NLE_NOMEM, ENOMEM },
		{ NLE_PERM, EPERM },
		{ NLE_NOACCESS, EACCES },
		{ NLE_BUSY, EBUSY },
		{ NLE_RANGE, ERANGE },
		{ NLE_OPNOTSUPP, EOPNOTSUPP },
		{ NLE_INVAL, EINVAL },
		{ NLE_AGAIN, EAGAIN },
		{ NLE_NOADDR, EADDRNOTAVAIL },
		{ NLE_AF_NOSUPPORT, EAFNOSUPPORT },
		{ NLE_MSGSIZE, EMSGSIZE },
		{ NLE_INTR, EINTR },
	};
	nlerr = nlerr < 0 ? -nlerr : nlerr;
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (map[i].nle == nlerr)
			return map[i].err;
	return EIO;
}

/* "<what>: <libnl's text>", with errno from the libnl code. */
__attribute__((format(printf, 3, 4))) static int nl_fail(struct berth_error **err, int nlerr,
							 const char *fmt, ...)
{
	char what[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return berth_error_set(err, nlerr_errno(nlerr), "%s: %s", what, nl_geterror(nlerr));
}

static bool nl_missing(int nlerr)
{
	return nlerr == -NLE_NODEV || nlerr == -NLE_OBJ_NOTFOUND;
}

/* libnl silently truncates long names: refuse them instead of acting on another link. */
static int check_name(const char *name, struct berth_error **err)
{
	if (!name || !*name || strlen(name) >= IFNAMSIZ || strpbrk(name, "/: \t\n") ||
	    strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return berth_error_set(err, EINVAL, "invalid link name \"%s\"", name ? name : "");
	return 0;
}

static int nl_open(struct nl_sock **ret, struct berth_error **err)
{
	_cleanup_(nl_sockp) struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return berth_error_set(err, ENOMEM, "netlink socket: out of memory");
	int r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0)
		return nl_fail(err, r, "netlink socket");
	*ret = TAKE_PTR(sk);
	return 0;
}

/* The link called name; -ENODEV without a message when there is none (callers decide whether
 * that is a failure). */
static int link_get(struct nl_sock *sk, const char *name, struct rtnl_link **ret,
		    struct berth_error **err)
{
	int r = rtnl_link_get_kernel(sk, 0, name, ret);
	if (nl_missing(r))
		return -ENODEV;
	if (r < 0)
		return nl_fail(err, r, "look up link %s", name);
	return 0;
}

static int link_ifindex(struct nl_sock *sk, const char *name, const char *where,
			struct berth_error **err)
{
	_cleanup_(rtnl_linkp) struct rtnl_link *l = NULL;
	int r = link_get(sk, name, &l, err);
	if (r == -ENODEV)
		return berth_error_set(err, ENODEV, "link %s: not found%s", name, where);
	return r < 0 ? r : rtnl_link_get_ifindex(l);
}

/* Up by name: RTM_NEWLINK without NLM_F_CREATE finds the link by IFLA_IFNAME (orig carries no
 * index) and only changes it, so no lookup round trip is needed. */
static int link_set_up(struct nl_sock *sk, const char *name, struct berth_error **err)
{
	_cleanup_(rtnl_linkp) struct rtnl_link *orig = rtnl_link_alloc();
	_cleanup_(rtnl_linkp) struct rtnl_link *change = rtnl_link_alloc();
	if (!orig || !change)
		return berth_error_set(err, ENOMEM, "set %s up: out of memory", name);
	rtnl_link_set_name(change, name);
	rtnl_link_set_flags(change, IFF_UP);
	int r = rtnl_link_change(sk, orig, change, 0);
	return r < 0 ? nl_fail(err, r, "set %s up", name) : 0;
}

static int family_of(const char *ip)
{
	return strchr(ip, ':') ? AF_INET6 : AF_INET;
}

/* ip/prefix on the link; one already there is fine (a second ensure, a retried setup). IPv6
 * without duplicate address detection: the addresses come from our own IPAM, and DAD would keep
 * them tentative (unusable) for a second or more. */
static int addr_add(struct nl_sock *sk, int ifindex, const char *ifname, const char *ip,
		    unsigned prefix, struct berth_error **err)
{
	char text[INET6_ADDRSTRLEN + 8];
	_cleanup_(nl_addrp) struct nl_addr *local = NULL;
	_cleanup_(rtnl_addrp) struct rtnl_addr *a = rtnl_addr_alloc();
	if (!a)
		return berth_error_set(err, ENOMEM, "%s: add address %s: out of memory", ifname,
				       ip);
	snprintf(text, sizeof(text), "%s/%u", ip, prefix);
	int family = family_of(ip);
	int r = nl_addr_parse(text, family, &local);
	if (r < 0)
		return nl_fail(err, r, "%s: address %s", ifname, text);
	rtnl_addr_set_ifindex(a, ifindex);
	r = rtnl_addr_set_local(a, local);
	if (r >= 0 && family == AF_INET6)
		rtnl_addr_set_flags(a, IFA_F_NODAD);
	if (r >= 0)
		r = rtnl_addr_add(sk, a, NLM_F_EXCL);
	if (r == -NLE_EXIST)
		return 0;
	return r < 0 ? nl_fail(err, r, "%s: add address %s", ifname, text) : 0;
}

/* A default route through gw on the link; an existing default route is left alone. */
static int route_default_add(struct nl_sock *sk, int ifindex, const char *ifname, const char *gw,
			     struct berth_error **err)
{
	int family = family_of(gw);
	_cleanup_(nl_addrp) struct nl_addr *dst = NULL;
	_cleanup_(nl_addrp) struct nl_addr *via = NULL;
	_cleanup_(rtnl_routep) struct rtnl_route *rt = rtnl_route_alloc();
	struct rtnl_nexthop *nh = rtnl_route_nh_alloc();
	if (!rt || !nh) {
		if (nh)
			rtnl_route_nh_free(nh);
		return berth_error_set(err, ENOMEM, "%s: default route via %s: out of memory",
				       ifname, gw);
	}
	rtnl_route_nh_set_ifindex(nh, ifindex);
	rtnl_route_add_nexthop(rt, nh); /* the route owns nh from here */
	int r = nl_addr_parse("default", family, &dst);
	if (r >= 0)
		r = nl_addr_parse(gw, family, &via);
	if (r < 0)
		return nl_fail(err, r, "%s: default route via %s", ifname, gw);
	rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_set_family(rt, (uint8_t)family);
	r = rtnl_route_set_dst(rt, dst);
	if (r >= 0)
		r = rtnl_route_add(sk, rt, NLM_F_EXCL);
	if (r == -NLE_EXIST)
		return 0;
	return r < 0 ? nl_fail(err, r, "%s: default route via %s", ifname, gw) : 0;
}

enum bridge_settings { BRIDGE_STP_OFF, BRIDGE_ALL };

/* RTM_NEWLINK for a bridge, with NLM_F_CREATE but not NLM_F_EXCL: a missing bridge is created, an
 * existing one changed (and a non-bridge link of that name refused with EOPNOTSUPP before
 * anything of it changes). Built by hand because libnl 3.7 has no setters for IFLA_BR_*. */
static int bridge_newlink(struct nl_sock *sk, const char *name, unsigned mtu,
			  enum bridge_settings what)
{
	_cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE);
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC,
				 .ifi_flags = IFF_UP,
				 .ifi_change = IFF_UP };
	struct nlattr *info, *data;
	if (!msg)
		return -NLE_NOMEM;
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    nla_put_string(msg, IFLA_IFNAME, name) < 0 || nla_put_u32(msg, IFLA_MTU, mtu) < 0 ||
	    !(info = nla_nest_start(msg, IFLA_LINKINFO)) ||
	    nla_put_string(msg, IFLA_INFO_KIND, "bridge") < 0 ||
	    !(data = nla_nest_start(msg, IFLA_INFO_DATA)) ||
	    nla_put_u32(msg, IFLA_BR_STP_STATE, 0) < 0 ||
	    (what == BRIDGE_ALL && nla_put_u32(msg, IFLA_BR_FORWARD_DELAY, 0) < 0))
		return -NLE_MSGSIZE;
	nla_nest_end(msg, data);
	nla_nest_end(msg, info);
	return nl_send_sync(sk, TAKE_PTR(msg)); /* frees msg */
}

static int bridge_apply(struct nl_sock *sk, const char *name, unsigned mtu,
			struct berth_error **err)
{
	int r = bridge_newlink(sk, name, mtu, BRIDGE_ALL);
	if (r == -NLE_RANGE) {
		/* an existing bridge running STP refuses forward delay 0, and the kernel applies
		 * the forward delay before the STP state: turn STP off first */
		r = bridge_newlink(sk, name, mtu, BRIDGE_STP_OFF);
		if (r >= 0)
			r = bridge_newlink(sk, name, mtu, BRIDGE_ALL);
	}
	if (r == -NLE_OPNOTSUPP) {
		_cleanup_(rtnl_linkp) struct rtnl_link *l = NULL;
		if (link_get(sk, name, &l, NULL) == 0) {
			const char *type = rtnl_link_get_type(l);
			return berth_error_set(
				err, EEXIST,
				"bridge %s: a link of that name exists and is a %s, not a bridge",
				name, type ? type : "device without a type");
		}
	}
	return r < 0 ? nl_fail(err, r, "create bridge %s", name) : 0;
}

/* /proc/sys/net shows the network namespace of the process that opens it: this is the caller's. */
static int enable_forwarding(bool v6, struct berth_error **err)
{
	int r = write_file_at(AT_FDCWD, "/proc/sys/net/ipv4/ip_forward", "1", err);
	if (r >= 0 && v6)
		r = write_file_at(AT_FDCWD, "/proc/sys/net/ipv6/conf/all/forwarding", "1", err);
	return r;
}

static bool has_ip(const struct link_addr *a)
{
	return a && a->ip;
}

static bool has_gateway(const struct link_addr *a)
{
	return a && a->gateway;
}

/* The bridge's own address is the subnet's gateway: accepted in either field. */
static const char *bridge_addr(const struct link_addr *a)
{
	return !a ? NULL : a->ip ? a->ip : a->gateway;
}

int link_bridge_ensure(const char *name, const struct link_addr *v4, const struct link_addr *v6,
		       unsigned mtu, struct berth_error **err)
{
	_cleanup_(nl_sockp) struct nl_sock *sk = NULL;
	int r = check_name(name, err);
	if (r < 0 || (r = nl_open(&sk, err)) < 0 || (r = bridge_apply(sk, name, mtu, err)) < 0)
		return r;
	int ifindex = link_ifindex(sk, name, "", err);
	if (ifindex < 0)
		return ifindex;
	/* with the subnet's prefix, for the connected route to the pods */
	const struct link_addr *fams[] = { v4, v6 };
	for (size_t i = 0; i < ARRAY_SIZE(fams); i++)
		if (bridge_addr(fams[i]) && (r = addr_add(sk, ifindex, name, bridge_addr(fams[i]),
							  fams[i]->prefix, err)) < 0)
			return r;
	return enable_forwarding(bridge_addr(v6) != NULL, err);
}

/* One RTM_NEWLINK for the pair: the host end already on the bridge and up, the peer created
 * directly in the pod's namespace under its final name (IFLA_NET_NS_FD inside VETH_INFO_PEER), so
 * there is no move and no rename. */
static int veth_add(struct nl_sock *sk, const char *host_name, int master, int netns_fd,
		    const char *ifname, unsigned mtu)
{
	_cleanup_(rtnl_linkp) struct rtnl_link *host = rtnl_link_veth_alloc();
	if (!host)
		return -NLE_NOMEM;
	struct rtnl_link *peer = rtnl_link_veth_get_peer(host);
	rtnl_link_set_name(host, host_name);
	rtnl_link_set_master(host, master);
	rtnl_link_set_mtu(host, mtu);
	rtnl_link_set_flags(host, IFF_UP);
	rtnl_link_set_name(peer, ifname);
	rtnl_link_set_mtu(peer, mtu);
	rtnl_link_set_ns_fd(peer, netns_fd);
	rtnl_link_put(peer); /* the reference get_peer took; host keeps its own */
	return rtnl_link_add(sk, host, NLM_F_CREATE | NLM_F_EXCL);
}

/* Hairpin mode on the host end's bridge port, so a pod can reach itself through the node (its
 * own hostPort): the reply must leave by the port it came in on. As `bridge link set dev X hairpin
 * on` does it: RTM_SETLINK for AF_BRIDGE with IFLA_BRPORT_MODE in IFLA_PROTINFO; libnl 3.7 has no
 * setter for it. */
static int port_hairpin_on(struct nl_sock *sk, int ifindex)
{
	_cleanup_(nlmsg_freep) struct nl_msg *msg = nlmsg_alloc_simple(RTM_SETLINK, 0);
	struct ifinfomsg ifi = { .ifi_family = AF_BRIDGE, .ifi_index = ifindex };
	struct nlattr *prot;
	if (!msg)
		return -NLE_NOMEM;
	if (nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0 ||
	    !(prot = nla_nest_start(msg, IFLA_PROTINFO | NLA_F_NESTED)) ||
	    nla_put_u8(msg, IFLA_BRPORT_MODE, 1) < 0)
		return -NLE_MSGSIZE;
	nla_nest_end(msg, prot);
	return nl_send_sync(sk, TAKE_PTR(msg)); /* frees msg */
}

static int link_del(struct nl_sock *sk, const char *name)
{
	_cleanup_(rtnl_linkp) struct rtnl_link *l = rtnl_link_alloc();
	if (!l)
		return -NLE_NOMEM;
	rtnl_link_set_name(l, name);
	int r = rtnl_link_delete(sk, l);
	return nl_missing(r) ? 0 : r;
}

int link_veth_create(const char *host_name, const char *bridge, int netns_fd, const char *ifname,
		     unsigned mtu, struct berth_error **err)
{
	_cleanup_(nl_sockp) struct nl_sock *sk = NULL;
	int r = check_name(host_name, err);
	if (r < 0 || (r = check_name(ifname, err)) < 0 || (r = check_name(bridge, err)) < 0 ||
	    (r = nl_open(&sk, err)) < 0)
		return r;
	int master = link_ifindex(sk, bridge, " (the bridge for a veth)", err);
	if (master < 0)
		return master;
	r = veth_add(sk, host_name, master, netns_fd, ifname, mtu);
	if (r == -NLE_EXIST) {
		/* a leftover host end (a pod whose removal never finished) is replaced; deleting it
		 * only when the create clashes keeps the usual case at one round trip. A clash of
		 * ifname inside the pod's namespace fails the same way again and is reported. */
		r = link_del(sk, host_name);
		if (r < 0)
			return nl_fail(err, r, "remove leftover link %s", host_name);
		log_debug("removed leftover link %s", host_name);
		r = veth_add(sk, host_name, master, netns_fd, ifname, mtu);
	}
	if (r < 0)
		return nl_fail(err, r,
			       "create veth %s on %s (peer %s in the pod's network namespace)",
			       host_name, bridge, ifname);
	int index = link_ifindex(sk, host_name, "", err);
	if (index < 0)
		return index;
	r = port_hairpin_on(sk, index);
	return r < 0 ? nl_fail(err, r, "hairpin mode on %s", host_name) : 0;
}

struct pod_job {
	const char *ifname;
	const struct link_addr *v4, *v6;
};

static int pod_configure_in_netns(void *opaque, struct berth_error **err)
{
	const struct pod_job *j = opaque;
	const struct link_addr *fams[] = { j->v4, j->v6 };
	_cleanup_(nl_sockp) struct nl_sock *sk = NULL;
	int r = nl_open(&sk, err);
	if (r < 0 || (r = link_set_up(sk, "lo", err)) < 0)
		return r;
	int ifindex = link_ifindex(sk, j->ifname, " in the pod's network namespace", err);
	if (ifindex < 0 || (r = link_set_up(sk, j->ifname, err)) < 0)
		return ifindex < 0 ? ifindex : r;
	for (size_t i = 0; i < ARRAY_SIZE(fams); i++)
		if (has_ip(fams[i]) &&
		    (r = addr_add(sk, ifindex, j->ifname, fams[i]->ip, fams[i]->prefix, err)) < 0)
			return r;
	/* after the addresses: a gateway is reachable only through their connected routes */
	for (size_t i = 0; i < ARRAY_SIZE(fams); i++)
		if (has_ip(fams[i]) && has_gateway(fams[i]) &&
		    (r = route_default_add(sk, ifindex, j->ifname, fams[i]->gateway, err)) < 0)
			return r;
	return 0;
}

int link_pod_configure(const char *netns_path, const char *ifname, const struct link_addr *v4,
		       const struct link_addr *v6, struct berth_error **err)
{
	struct pod_job j = { .ifname = ifname, .v4 = v4, .v6 = v6 };
	_cleanup_error_ struct berth_error *e = NULL;
	int r = check_name(ifname, err);
	if (r < 0)
		return r;
	r = ns_run_in_netns(netns_path, pod_configure_in_netns, &j, &e);
	if (r < 0) {
		berth_error_wrap(&e, "configure %s in %s", ifname, netns_path);
		return berth_error_move(err, &e);
	}
	return 0;
}

int link_delete(const char *name, struct berth_error **err)
{
	_cleanup_(nl_sockp) struct nl_sock *sk = NULL;
	int r = check_name(name, err);
	if (r < 0 || (r = nl_open(&sk, err)) < 0)
		return r;
	r = link_del(sk, name);
	return r < 0 ? nl_fail(err, r, "delete link %s", name) : 0;
}

bool link_exists(const char *name)
{
	return check_name(name, NULL) == 0 && if_nametoindex(name) != 0;
}
