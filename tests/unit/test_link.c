/* netns/link.c: the bridge, veth pairs, pod addresses and routes, checked through netlink and real
 * TCP connections. Needs root. Never touches the host's network: main() moves the whole test into
 * a new network namespace (and a private mount namespace for the pinned pod namespaces), and each
 * test starts in a fresh "node" namespace of its own; pods are further namespaces pinned by bind
 * mounts in the test's temporary directory. */
#include <net/if.h> /* before libnl's headers, which pull in <linux/if.h> */

#include "unit.h"

#include "base/cleanup.h"
#include "netns/link-internal.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/route.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <time.h>

#define BR  "brt0"
#define MTU 1400

static const char *skip_reason; /* set by main() when namespaces cannot be made */

static const struct link_addr gw4 = { .prefix = 16, .gateway = "10.99.0.1" };
static const struct link_addr gw6 = { .prefix = 64, .gateway = "fd99::1" };

struct fx {
	struct unit_tmpdir tmp;
	struct berth_error *err;
	char pods[12][96];
	int pod_fds[12];
	int n_pods;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	/* a fresh node namespace per test: nothing one test makes is seen by the next */
	if (!skip_reason && unshare(CLONE_NEWNET) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (int i = 0; i < f->n_pods; i++) {
		close(f->pod_fds[i]);
		(void)umount2(f->pods[i], MNT_DETACH);
	}
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

#define NEED_NAMESPACES()                                                                          \
	do {                                                                                       \
		if (skip_reason) {                                                                 \
			print_message("skipped: %s\n", skip_reason);                               \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

/* A pod network namespace pinned at <tmp>/<name>; returns its index in f->pods. */
static int pod_ns(struct fx *f, const char *name)
{
	int i = f->n_pods;
	assert_true(i < (int)ARRAY_SIZE(f->pods));
	char path[sizeof(f->pods[i])];
	snprintf(path, sizeof(path), "%s/%s", f->tmp.path, name);
	memcpy(f->pods[i], path, sizeof(path));
	int fd = open(f->pods[i], O_CREAT | O_RDONLY | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(self >= 0);
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	assert_int_equal(mount("/proc/thread-self/ns/net", f->pods[i], NULL, MS_BIND, NULL), 0);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	f->pod_fds[i] = open(f->pods[i], O_RDONLY | O_CLOEXEC);
	assert_true(f->pod_fds[i] >= 0);
	f->n_pods++;
	return i;
}

/* This thread joins the namespace at path until ns_leave; sockets made meanwhile stay there. */
static int ns_enter(const char *path)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(self >= 0 && fd >= 0);
	assert_int_equal(setns(fd, CLONE_NEWNET), 0);
	close(fd);
	return self;
}

static void ns_leave(int self)
{
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
}

/* A netlink socket in the namespace at path (NULL: the node's). */
static struct nl_sock *nl_in(const char *path)
{
	int self = path ? ns_enter(path) : -1;
	struct nl_sock *sk = nl_socket_alloc();
	assert_non_null(sk);
	assert_int_equal(nl_connect(sk, NETLINK_ROUTE), 0);
	if (self >= 0)
		ns_leave(self);
	return sk;
}

struct linfo {
	bool found;
	int ifindex, master;
	unsigned mtu, flags;
	char kind[16];
	long fwd_delay, stp; /* -1: not reported */
};

static int linfo_cb(struct nl_msg *msg, void *arg)
{
	struct linfo *li = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct ifinfomsg *ifi = nlmsg_data(h);
	struct nlattr *tb[IFLA_MAX + 1], *info[IFLA_INFO_MAX + 1], *br[IFLA_BR_MAX + 1];
	if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
		return NL_STOP;
	li->found = true;
	li->ifindex = ifi->ifi_index;
	li->flags = ifi->ifi_flags;
	li->mtu = tb[IFLA_MTU] ? nla_get_u32(tb[IFLA_MTU]) : 0;
	li->master = tb[IFLA_MASTER] ? (int)nla_get_u32(tb[IFLA_MASTER]) : 0;
	if (!tb[IFLA_LINKINFO] ||
	    nla_parse_nested(info, IFLA_INFO_MAX, tb[IFLA_LINKINFO], NULL) < 0)
		return NL_OK;
	if (info[IFLA_INFO_KIND])
		snprintf(li->kind, sizeof(li->kind), "%s", nla_get_string(info[IFLA_INFO_KIND]));
	if (info[IFLA_INFO_DATA] && strcmp(li->kind, "bridge") == 0 &&
	    nla_parse_nested(br, IFLA_BR_MAX, info[IFLA_INFO_DATA], NULL) == 0) {
		li->fwd_delay = br[IFLA_BR_FORWARD_DELAY]
					? (long)nla_get_u32(br[IFLA_BR_FORWARD_DELAY])
					: -1;
		li->stp = br[IFLA_BR_STP_STATE] ? (long)nla_get_u32(br[IFLA_BR_STP_STATE]) : -1;
	}
	return NL_OK;
}

/* RTM_GETLINK by name, parsed here because libnl 3.7 does not report the bridge's IFLA_BR_*. */
static struct linfo link_info(const char *netns, const char *name)
{
	struct linfo li = { .fwd_delay = -1, .stp = -1 };
	struct nl_sock *sk = nl_in(netns);
	nl_socket_disable_auto_ack(sk);
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETLINK, 0);
	struct ifinfomsg ifi = { 0 };
	assert_non_null(msg);
	assert_int_equal(nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO), 0);
	assert_int_equal(nla_put_string(msg, IFLA_IFNAME, name), 0);
	assert_true(nl_send_auto(sk, msg) >= 0);
	nlmsg_free(msg);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, linfo_cb, &li);
	int r = nl_recvmsgs_default(sk);
	if (r < 0 && r != -NLE_NODEV && r != -NLE_OBJ_NOTFOUND)
		fail_msg("get link %s: %s", name, nl_geterror(r));
	nl_socket_free(sk);
	return li;
}

/* The non-link-local addresses of ifindex, "ip/prefix" separated by spaces, in kernel order. */
static void addrs_of(const char *netns, int ifindex, char *out, size_t len)
{
	struct nl_sock *sk = nl_in(netns);
	struct nl_cache *c = NULL;
	assert_int_equal(rtnl_addr_alloc_cache(sk, &c), 0);
	out[0] = '\0';
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_addr *a = (struct rtnl_addr *)o;
		char b[64];
		if (rtnl_addr_get_ifindex(a) != ifindex || rtnl_addr_get_scope(a) == RT_SCOPE_LINK)
			continue;
		nl_addr2str(rtnl_addr_get_local(a), b, sizeof(b));
		snprintf(out + strlen(out), len - strlen(out), "%s%s%s", out[0] ? " " : "", b,
			 rtnl_addr_get_flags(a) & IFA_F_TENTATIVE ? "(tentative)" : "");
	}
	nl_cache_free(c);
	nl_socket_free(sk);
}

/* The main table's default route of a family: "gateway dev-index", or "" when none. */
static void default_route(const char *netns, int family, char *out, size_t len)
{
	struct nl_sock *sk = nl_in(netns);
	struct nl_cache *c = NULL;
	assert_int_equal(rtnl_route_alloc_cache(sk, family, 0, &c), 0);
	out[0] = '\0';
	for (struct nl_object *o = nl_cache_get_first(c); o; o = nl_cache_get_next(o)) {
		struct rtnl_route *r = (struct rtnl_route *)o;
		struct nl_addr *dst = rtnl_route_get_dst(r);
		if (rtnl_route_get_table(r) != RT_TABLE_MAIN ||
		    (dst && nl_addr_get_prefixlen(dst) != 0) || rtnl_route_get_nnexthops(r) != 1)
			continue;
		struct rtnl_nexthop *nh = rtnl_route_nexthop_n(r, 0);
		char gw[64] = "none";
		if (rtnl_route_nh_get_gateway(nh))
			nl_addr2str(rtnl_route_nh_get_gateway(nh), gw, sizeof(gw));
		snprintf(out, len, "%s dev %d", gw, rtnl_route_nh_get_ifindex(nh));
	}
	nl_cache_free(c);
	nl_socket_free(sk);
}

static void read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	close(fd);
}

static void test_bridge_created(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	char buf[256];
	assert_false(link_exists(BR));
	MUST_OK(f, link_bridge_ensure(BR, &gw4, &gw6, MTU, &f->err));
	assert_true(link_exists(BR));
	struct linfo li = link_info(NULL, BR);
	assert_true(li.found);
	assert_string_equal(li.kind, "bridge");
	assert_int_equal(li.mtu, MTU);
	assert_true(li.flags & IFF_UP);
	assert_int_equal(li.fwd_delay, 0);
	assert_int_equal(li.stp, 0);
	addrs_of(NULL, li.ifindex, buf, sizeof(buf));
	assert_string_equal(buf, "10.99.0.1/16 fd99::1/64");
	read_text("/proc/sys/net/ipv4/ip_forward", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	read_text("/proc/sys/net/ipv6/conf/all/forwarding", buf, sizeof(buf));
	assert_string_equal(buf, "1");
}

static void test_bridge_ipv4_only(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	char buf[256];
	/* the form pod.c uses: the gateway as the bridge's ip, and an empty IPv6 family */
	struct link_addr br4 = { .ip = "10.99.0.1", .prefix = 16 }, br6 = { 0 };
	MUST_OK(f, link_bridge_ensure(BR, &br4, &br6, 1500, &f->err));
	struct linfo li = link_info(NULL, BR);
	addrs_of(NULL, li.ifindex, buf, sizeof(buf));
	assert_string_equal(buf, "10.99.0.1/16");
	assert_int_equal(li.mtu, 1500);
	read_text("/proc/sys/net/ipv6/conf/all/forwarding", buf, sizeof(buf));
	assert_string_equal(buf, "0"); /* a fresh namespace's default, left alone without IPv6 */
}

static void test_bridge_ensure_idempotent(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	char buf[256];
	MUST_OK(f, link_bridge_ensure(BR, &gw4, &gw6, MTU, &f->err));
	int ifindex = link_info(NULL, BR).ifindex;
	MUST_OK(f, link_bridge_ensure(BR, &gw4, &gw6, MTU, &f->err));
	struct linfo li = link_info(NULL, BR);
	assert_int_equal(li.ifindex, ifindex); /* the same bridge, not a new one */
	addrs_of(NULL, ifindex, buf, sizeof(buf));
	assert_string_equal(buf, "10.99.0.1/16 fd99::1/64");
	/* an existing bridge missing an address gets it; its MTU follows the configuration */
	struct link_addr other = { .prefix = 24, .gateway = "10.98.0.1" };
	MUST_OK(f, link_bridge_ensure(BR, &other, NULL, 1500, &f->err));
	addrs_of(NULL, ifindex, buf, sizeof(buf));
	assert_string_equal(buf, "10.99.0.1/16 10.98.0.1/24 fd99::1/64");
	assert_int_equal(link_info(NULL, BR).mtu, 1500);
}

/* A bridge made by someone else with STP on and the default forward delay (15 s). */
static void make_stp_bridge(const char *name)
{
	struct nl_sock *sk = nl_in(NULL);
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
	struct ifinfomsg ifi = { 0 };
	assert_non_null(msg);
	assert_int_equal(nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO), 0);
	assert_int_equal(nla_put_string(msg, IFLA_IFNAME, name), 0);
	struct nlattr *info = nla_nest_start(msg, IFLA_LINKINFO);
	assert_int_equal(nla_put_string(msg, IFLA_INFO_KIND, "bridge"), 0);
	struct nlattr *data = nla_nest_start(msg, IFLA_INFO_DATA);
	assert_int_equal(nla_put_u32(msg, IFLA_BR_STP_STATE, 1), 0);
	nla_nest_end(msg, data);
	nla_nest_end(msg, info);
	assert_int_equal(nl_send_sync(sk, msg), 0);
	nl_socket_free(sk);
}

static void test_bridge_with_stp_taken_over(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	make_stp_bridge(BR);
	struct linfo li = link_info(NULL, BR);
	assert_int_equal(li.stp, 1);
	assert_true(li.fwd_delay > 0);
	MUST_OK(f, link_bridge_ensure(BR, &gw4, NULL, MTU, &f->err));
	li = link_info(NULL, BR);
	assert_int_equal(li.stp, 0);
	assert_int_equal(li.fwd_delay, 0);
	assert_true(li.flags & IFF_UP);
}

static void test_bridge_name_clash_refused(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	struct nl_sock *sk = nl_in(NULL);
	assert_int_equal(rtnl_link_veth_add(sk, "clash0", "clash1", getpid()), 0);
	nl_socket_free(sk);
	unsigned mtu = link_info(NULL, "clash0").mtu;
	assert_int_equal(link_bridge_ensure("clash0", &gw4, NULL, MTU, &f->err), -EEXIST);
	assert_contains(f->err->msg, "clash0");
	assert_contains(f->err->msg, "veth, not a bridge");
	struct linfo li = link_info(NULL, "clash0");
	assert_string_equal(li.kind, "veth");
	assert_int_equal(li.mtu, mtu); /* untouched */
	assert_false(li.flags & IFF_UP);
}

static void test_bad_names_refused(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	assert_int_equal(link_bridge_ensure("a-name-much-too-long", &gw4, NULL, MTU, &f->err),
			 -EINVAL);
	assert_contains(f->err->msg, "a-name-much-too-long");
	f->err = berth_error_free(f->err);
	assert_int_equal(link_delete("bad/name", &f->err), -EINVAL);
	assert_false(link_exists("a-name-much-too-long"));
}

static void test_veth_created(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	int p = pod_ns(f, "pod1");
	MUST_OK(f, link_bridge_ensure(BR, &gw4, NULL, MTU, &f->err));
	MUST_OK(f, link_veth_create("vb1", BR, f->pod_fds[p], "eth0", MTU, &f->err));
	struct linfo br = link_info(NULL, BR), host = link_info(NULL, "vb1"),
		     peer = link_info(f->pods[p], "eth0");
	assert_true(host.found);
	assert_string_equal(host.kind, "veth");
	assert_int_equal(host.master, br.ifindex);
	assert_int_equal(host.mtu, MTU);
	assert_true(host.flags & IFF_UP);
	assert_true(peer.found);
	assert_string_equal(peer.kind, "veth");
	assert_int_equal(peer.mtu, MTU);
	assert_false(link_exists("eth0")); /* not in the node's namespace */
}

static void test_veth_leftover_replaced(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	int p1 = pod_ns(f, "old"), p2 = pod_ns(f, "new");
	MUST_OK(f, link_bridge_ensure(BR, &gw4, NULL, MTU, &f->err));
	MUST_OK(f, link_veth_create("vb1", BR, f->pod_fds[p1], "eth0", MTU, &f->err));
	int old = link_info(NULL, "vb1").ifindex;
	MUST_OK(f, link_veth_create("vb1", BR, f->pod_fds[p2], "eth0", MTU, &f->err));
	assert_int_not_equal(link_info(NULL, "vb1").ifindex, old);
	assert_false(link_info(f->pods[p1], "eth0").found); /* the old pair went as a whole */
	assert_true(link_info(f->pods[p2], "eth0").found);
}

static void test_veth_errors_name_links(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	int p = pod_ns(f, "pod");
	assert_int_equal(link_veth_create("vb1", "nobridge", f->pod_fds[p], "eth0", MTU, &f->err),
			 -ENODEV);
	assert_contains(f->err->msg, "nobridge");
	f->err = berth_error_free(f->err);
	MUST_OK(f, link_bridge_ensure(BR, &gw4, NULL, MTU, &f->err));
	MUST_OK(f, link_veth_create("vb1", BR, f->pod_fds[p], "eth0", MTU, &f->err));
	/* eth0 is taken in the pod: refused, and the host name is free again */
	assert_int_equal(link_veth_create("vb2", BR, f->pod_fds[p], "eth0", MTU, &f->err), -EEXIST);
	assert_contains(f->err->msg, "vb2");
	assert_contains(f->err->msg, "eth0");
	assert_false(link_exists("vb2"));
}

static const struct link_addr pod4 = { .ip = "10.99.0.2", .prefix = 16, .gateway = "10.99.0.1" };
static const struct link_addr pod6 = { .ip = "fd99::2", .prefix = 64, .gateway = "fd99::1" };

/* Bridge, veth and configuration for one pod; returns its index. */
static int make_pod(struct fx *f, const char *name, const char *host, const struct link_addr *v4,
		    const struct link_addr *v6)
{
	int p = pod_ns(f, name);
	MUST_OK(f, link_bridge_ensure(BR, &gw4, &gw6, MTU, &f->err));
	MUST_OK(f, link_veth_create(host, BR, f->pod_fds[p], "eth0", MTU, &f->err));
	MUST_OK(f, link_pod_configure(f->pods[p], "eth0", v4, v6, &f->err));
	return p;
}

static void test_pod_configured(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	char buf[256], want[64];
	int p = make_pod(f, "pod", "vb1", &pod4, &pod6);
	struct linfo eth = link_info(f->pods[p], "eth0"), lo = link_info(f->pods[p], "lo");
	assert_true(eth.flags & IFF_UP);
	assert_true(lo.flags & IFF_UP);
	addrs_of(f->pods[p], eth.ifindex, buf, sizeof(buf));
	assert_string_equal(buf, "10.99.0.2/16 fd99::2/64");
	default_route(f->pods[p], AF_INET, buf, sizeof(buf));
	snprintf(want, sizeof(want), "10.99.0.1 dev %d", eth.ifindex);
	assert_string_equal(buf, want);
	default_route(f->pods[p], AF_INET6, buf, sizeof(buf));
	snprintf(want, sizeof(want), "fd99::1 dev %d", eth.ifindex);
	assert_string_equal(buf, want);
	/* again (a retried setup): nothing added twice, no error */
	MUST_OK(f, link_pod_configure(f->pods[p], "eth0", &pod4, &pod6, &f->err));
	addrs_of(f->pods[p], eth.ifindex, buf, sizeof(buf));
	assert_string_equal(buf, "10.99.0.2/16 fd99::2/64");
}

static void test_pod_configure_errors(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	int p = pod_ns(f, "pod");
	assert_int_equal(link_pod_configure(f->pods[p], "eth7", &pod4, NULL, &f->err), -ENODEV);
	assert_contains(f->err->msg, "eth7");
	assert_contains(f->err->msg, f->pods[p]);
	f->err = berth_error_free(f->err);
	assert_int_equal(link_pod_configure("/nonexistent/netns", "eth0", &pod4, NULL, &f->err),
			 -ENOENT);
	assert_contains(f->err->msg, "/nonexistent/netns");
}

static int tcp_socket(const char *netns, int family)
{
	int self = netns ? ns_enter(netns) : -1;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	if (self >= 0)
		ns_leave(self);
	struct timeval tv = { .tv_sec = 5 };
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	return fd;
}

static socklen_t sockaddr_of(const char *ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	return sizeof(*s4);
}

/* A TCP connection from the namespace `from` to ip in `to` (NULL: the node's), with a byte each
 * way: the routes, the bridge and neighbour resolution all work. */
static void tcp_check(const char *from, const char *to, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(ip, 4242, &ss);
	int l = tcp_socket(to, ss.ss_family), one = 1;
	assert_int_equal(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), 0);
	if (bind(l, (struct sockaddr *)&ss, len) < 0)
		fail_msg("bind %s: %s", ip, strerror(errno));
	assert_int_equal(listen(l, 4), 0);
	int c = tcp_socket(from, ss.ss_family);
	if (connect(c, (struct sockaddr *)&ss, len) < 0)
		fail_msg("connect to %s from %s: %s", ip, from ? from : "the node",
			 strerror(errno));
	int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	assert_true(a >= 0);
	char ch = 0;
	assert_int_equal(write(c, "x", 1), 1);
	assert_int_equal(read(a, &ch, 1), 1);
	assert_int_equal(ch, 'x');
	assert_int_equal(write(a, "y", 1), 1);
	assert_int_equal(read(c, &ch, 1), 1);
	assert_int_equal(ch, 'y');
	close(a);
	close(c);
	close(l);
}

static void test_pod_reaches_gateway(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	int p = make_pod(f, "pod", "vb1", &pod4, &pod6);
	tcp_check(f->pods[p], NULL, "10.99.0.1");
	tcp_check(f->pods[p], NULL, "fd99::1");
	tcp_check(NULL, f->pods[p], "10.99.0.2"); /* and the node reaches the pod */
}

static void test_two_pods_reach_each_other(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	static const struct link_addr b4 = { .ip = "10.99.0.3",
					     .prefix = 16,
					     .gateway = "10.99.0.1" };
	static const struct link_addr b6 = { .ip = "fd99::3", .prefix = 64, .gateway = "fd99::1" };
	int a = make_pod(f, "a", "vba", &pod4, &pod6);
	int b = make_pod(f, "b", "vbb", &b4, &b6);
	tcp_check(f->pods[a], f->pods[b], "10.99.0.3");
	tcp_check(f->pods[b], f->pods[a], "10.99.0.2");
	tcp_check(f->pods[a], f->pods[b], "fd99::3");
}

static void test_delete_removes_both_ends(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	int p = make_pod(f, "pod", "vb1", &pod4, NULL);
	MUST_OK(f, link_delete("vb1", &f->err));
	assert_false(link_exists("vb1"));
	assert_false(link_info(f->pods[p], "eth0").found);
	MUST_OK(f, link_delete("vb1", &f->err)); /* a missing link is not an error */
	MUST_OK(f, link_delete(BR, &f->err));
	assert_false(link_exists(BR));
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Not a benchmark (the machines are noisy): a report of what one pod's links cost, and a generous
 * bound that only a pathological slowdown (a cache dump per call, a sleep) would break. */
static void test_timing_one_pod(void **state)
{
	NEED_NAMESPACES();
	struct fx *f = *state;
	enum { ROUNDS = 10 };
	double ensure = 0, veth = 0, conf = 0, del = 0;
	MUST_OK(f, link_bridge_ensure(BR, &gw4, &gw6, MTU, &f->err));
	for (int i = 0; i < ROUNDS; i++) {
		char name[16];
		snprintf(name, sizeof(name), "t%d", i);
		int p = pod_ns(f, name);
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		MUST_OK(f, link_bridge_ensure(BR, &gw4, &gw6, MTU, &f->err));
		ensure += ms_since(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		MUST_OK(f, link_veth_create("vbt", BR, f->pod_fds[p], "eth0", MTU, &f->err));
		veth += ms_since(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		MUST_OK(f, link_pod_configure(f->pods[p], "eth0", &pod4, &pod6, &f->err));
		conf += ms_since(&t0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		MUST_OK(f, link_delete("vbt", &f->err));
		del += ms_since(&t0);
	}
	double total = (ensure + veth + conf + del) / ROUNDS;
	print_message("one pod, mean of %d: bridge ensure %.2f ms, veth %.2f ms, configure %.2f "
		      "ms, delete %.2f ms; "
		      "total %.2f ms\n",
		      ROUNDS, ensure / ROUNDS, veth / ROUNDS, conf / ROUNDS, del / ROUNDS, total);
	assert_true(total < 500);
}

int main(void)
{
	/* everything below happens in namespaces that die with this process */
	if (geteuid() != 0)
		skip_reason = "needs root (network namespaces, links)";
	else if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
		skip_reason = "cannot create network and mount namespaces";
	else if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		skip_reason = "cannot make mounts private";
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bridge_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_ipv4_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_ensure_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_with_stp_taken_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_name_clash_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_names_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_veth_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_veth_leftover_replaced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_veth_errors_name_links, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_configured, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_configure_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pod_reaches_gateway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_pods_reach_each_other, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_removes_both_ends, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timing_one_pod, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
