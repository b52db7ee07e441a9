/* netns/nat.c: the rules it writes (read back with libnftables), idempotence, per-pod removal,
 * concurrent callers, and real traffic through DNAT and masquerade between network namespaces
 * the test creates. main() first moves the process into a network namespace of its own and each
 * test starts in a fresh one, so the host's ruleset and interfaces are never touched (and each
 * test sees an empty ruleset). Runs as root. */
#include "unit.h"

#include "base/cleanup.h"
#include "netns/nat-internal.h"

#include <arpa/inet.h>
#include <nftables/libnftables.h>
#include <netinet/in.h>
#include <linux/netlink.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

struct fx {
	struct berth_error *err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unshare(CLONE_NEWNET) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	berth_error_free(f->err);
	free(f);
	return 0;
}

/* The output of an nft command (plain text), or NULL when it failed. */
static char *nft(const char *cmd)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	char *out = NULL;
	assert_non_null(ctx);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmd) == 0)
		out = strdup(nft_ctx_get_output_buffer(ctx));
	else
		print_message("nft %s: %s", cmd, nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
	return out;
}

/* The output of the nft command is exactly the expected text. */
static void assert_nft(const char *cmd, const char *expected)
{
	char *out = nft(cmd);
	assert_non_null(out);
	assert_string_equal(out, expected);
	free(out);
}

static void assert_chain(const char *chain, const char *rules)
{
	char cmd[128], expected[2048];
	snprintf(cmd, sizeof(cmd), "list chain inet berth %s", chain);
	snprintf(expected, sizeof(expected), "table inet berth {\n\tchain %s {\n%s\t}\n}\n", chain, rules);
	assert_nft(cmd, expected);
}

#define JUMPS                                                                                      \
	"\t\tip daddr != 127.0.0.0/8 fib daddr type local jump hostports\n"                        \
	"\t\tip6 daddr != ::1 fib daddr type local jump hostports\n"

static const char expected_table[] =
	"table inet berth {\n"
	"\tset masq4 {\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n"
	"\t\telements = { 10.88.0.0/16 }\n\t}\n\n"
	"\tset masq6 {\n\t\ttype ipv6_addr\n\t\tflags interval\n\t\tauto-merge\n"
	"\t\telements = { fd88::/64 }\n\t}\n\n"
	"\tchain postrouting {\n"
	"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	"\t\tip saddr @masq4 ip daddr != @masq4 masquerade comment \"berth:masq\"\n"
	"\t\tct status dnat ip saddr @masq4 ip daddr @masq4 masquerade comment \"berth:hairpin\"\n"
	"\t\tip6 saddr @masq6 ip6 daddr != @masq6 masquerade comment \"berth:masq\"\n"
	"\t\tct status dnat ip6 saddr @masq6 ip6 daddr @masq6 masquerade comment \"berth:hairpin\"\n"
	"\t}\n\n"
	"\tchain prerouting {\n"
	"\t\ttype nat hook prerouting priority dstnat; policy accept;\n" JUMPS "\t}\n\n"
	"\tchain output {\n"
	"\t\ttype nat hook output priority -100; policy accept;\n" JUMPS "\t}\n\n"
	"\tchain hostports {\n\t}\n"
	"}\n";

static void test_ensure_creates_the_table(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", "fd88::/64", &f->err));
	assert_nft("list table inet berth", expected_table);
	assert_nft("list tables", "table inet berth\n");
}

static void test_ensure_twice_adds_nothing(void **state)
{
	struct fx *f = *state;
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", "fd88::/64", &f->err));
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", "fd88::/64", &f->err));
	/* host bits are cleared, and a subnet inside a known one merges into it */
	MUST_OK(f, nat_network_ensure("10.88.3.7/24", NULL, &f->err));
	MUST_OK(f, nat_network_ensure(NULL, "fd88::/64", &f->err));
	assert_nft("list table inet berth", expected_table);
	/* a second network adds its subnet and no rule */
	MUST_OK(f, nat_network_ensure("10.99.0.0/16", "", &f->err));
	char *out = nft("list set inet berth masq4");
	assert_contains(out, "elements = { 10.88.0.0/16, 10.99.0.0/16 }");
	free(out);
	out = nft("list table inet berth");
	assert_string_equal(strstr(out, "set masq6"), strstr(expected_table, "set masq6"));
	free(out);
}

static void test_ensure_rejects_bad_subnets(void **state)
{
	struct fx *f = *state;
	static const char *const bad4[] = {
		"10.88.0.0", "10.88.0.0/33", "10.88.0.0/", "10.88.0.0/1x", "fd88::/64",
		"10.88.0.0/8 } ; flush ruleset ; add element inet berth masq4 { 1.0.0.0/8",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad4); i++) {
		assert_int_equal(nat_network_ensure(bad4[i], NULL, &f->err), -EINVAL);
		assert_contains(f->err->msg, "invalid subnet");
		f->err = berth_error_free(f->err);
	}
	assert_int_equal(nat_network_ensure(NULL, "10.88.0.0/16", &f->err), -EINVAL);
	assert_int_equal(nat_network_ensure(NULL, "fd88::/129", NULL), -EINVAL);
	assert_nft("list tables", ""); /* nothing was created */
}

static const struct pod_port web[] = {
	{ .host_port = 8080, .container_port = 80, .protocol = POD_PROTO_TCP },
	{ .host_port = 5353, .container_port = 53, .protocol = POD_PROTO_UDP, .host_ip = "192.0.2.7" },
};

static void test_ports_per_pod(void **state)
{
	struct fx *f = *state;
	static const struct pod_port db[] = {
		{ .host_port = 5432, .container_port = 5432, .protocol = POD_PROTO_TCP },
		{ .host_port = 0, .container_port = 9 }, /* only declared */
	};
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", NULL, &f->err));
	MUST_OK(f, nat_ports_add("web-1", "10.88.0.2", NULL, web, ARRAY_SIZE(web), &f->err));
	MUST_OK(f, nat_ports_add("db.0_x", "10.88.0.3", NULL, db, ARRAY_SIZE(db), &f->err));
	assert_int_equal(nat_ports_count("web-1", &f->err), 2);
	assert_int_equal(nat_ports_count("db.0_x", &f->err), 1);
	assert_int_equal(nat_ports_count("web", &f->err), 0); /* a prefix is another pod */
	MUST_OK(f, nat_ports_remove("web-1", &f->err));
	assert_int_equal(nat_ports_count("web-1", &f->err), 0);
	assert_int_equal(nat_ports_count("db.0_x", &f->err), 1);
	assert_chain("hostports",
		     "\t\tmeta nfproto ipv4 tcp dport 5432 dnat ip to 10.88.0.3:5432 comment \"berth:db.0_x\"\n");
	MUST_OK(f, nat_ports_remove("web-1", &f->err)); /* again: nothing left, no error */
	MUST_OK(f, nat_ports_remove("db.0_x", &f->err));
	assert_chain("hostports", "");
	MUST_OK(f, nat_ports_add("empty", "10.88.0.4", NULL, NULL, 0, &f->err));
	assert_int_equal(nat_ports_count("empty", &f->err), 0);
}

static void test_ports_protocols_and_host_ips(void **state)
{
	struct fx *f = *state;
	static const struct pod_port ports[] = {
		{ .host_port = 80, .container_port = 8080, .protocol = POD_PROTO_TCP },
		{ .host_port = 53, .container_port = 53, .protocol = POD_PROTO_UDP, .host_ip = "0.0.0.0" },
		{ .host_port = 9, .container_port = 99, .protocol = POD_PROTO_SCTP, .host_ip = "2001:DB8::0:1" },
		{ .host_port = 443, .container_port = 8443, .protocol = POD_PROTO_TCP, .host_ip = "192.0.2.7" },
		{ .host_port = 81, .container_port = 80, .protocol = POD_PROTO_TCP, .host_ip = "::" },
		{ .host_port = 82, .container_port = 80, .protocol = POD_PROTO_TCP, .host_ip = "127.0.0.1" },
		{ .host_port = 83, .container_port = 80, .protocol = POD_PROTO_TCP, .host_ip = "::1" },
	};
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", "fd88::/64", &f->err));
	MUST_OK(f, nat_ports_add("dual", "10.88.0.2", "fd88:0::2", ports, ARRAY_SIZE(ports), &f->err));
	assert_chain("hostports",
		     "\t\tmeta nfproto ipv4 tcp dport 80 dnat ip to 10.88.0.2:8080 comment \"berth:dual\"\n"
		     "\t\tmeta nfproto ipv4 udp dport 53 dnat ip to 10.88.0.2:53 comment \"berth:dual\"\n"
		     "\t\tip daddr 192.0.2.7 tcp dport 443 dnat ip to 10.88.0.2:8443 comment \"berth:dual\"\n"
		     "\t\tmeta nfproto ipv6 tcp dport 80 dnat ip6 to [fd88::2]:8080 comment \"berth:dual\"\n"
		     "\t\tip6 daddr 2001:db8::1 sctp dport 9 dnat ip6 to [fd88::2]:99 comment \"berth:dual\"\n"
		     "\t\tmeta nfproto ipv6 tcp dport 81 dnat ip6 to [fd88::2]:80 comment \"berth:dual\"\n");
	assert_int_equal(nat_ports_count("dual", &f->err), 6);
	/* a v6-only pod: the v4 hostIPs have nothing to apply to */
	MUST_OK(f, nat_ports_add("six", NULL, "fd88::7", ports + 2, 2, &f->err));
	assert_int_equal(nat_ports_count("six", &f->err), 1);
	MUST_OK(f, nat_ports_remove("dual", &f->err));
	assert_chain("hostports",
		     "\t\tip6 daddr 2001:db8::1 sctp dport 9 dnat ip6 to [fd88::7]:99 comment \"berth:six\"\n");
}

static void test_ports_reject_bad_input(void **state)
{
	struct fx *f = *state;
	static const char *const bad_ids[] = { "", "-x", "a\"b", "a b", "a\n", "x;flush ruleset", "é" };
	char long_id[130];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", NULL, &f->err));
	for (size_t i = 0; i < ARRAY_SIZE(bad_ids); i++) {
		assert_int_equal(nat_ports_add(bad_ids[i], "10.88.0.2", NULL, web, 1, &f->err), -EINVAL);
		assert_contains(f->err->msg, "invalid pod id");
		assert_null(strchr(f->err->msg, '\n'));
		f->err = berth_error_free(f->err);
		assert_int_equal(nat_ports_remove(bad_ids[i], NULL), -EINVAL);
		assert_int_equal(nat_ports_count(bad_ids[i], NULL), -EINVAL);
	}
	assert_int_equal(nat_ports_add(long_id, "10.88.0.2", NULL, web, 1, NULL), -EINVAL);
	/* the longest ids do not fit nft's comments: cut, with a hash, still one comment per pod */
	long_id[128] = '\0';
	char twin[130];
	memcpy(twin, long_id, sizeof(twin));
	twin[127] = 'b';
	MUST_OK(f, nat_ports_add(long_id, "10.88.0.2", NULL, web, 1, &f->err));
	MUST_OK(f, nat_ports_add(twin, "10.88.0.3", NULL, web, 2, &f->err));
	assert_int_equal(nat_ports_count(long_id, &f->err), 1);
	assert_int_equal(nat_ports_count(twin, &f->err), 2);
	char *out = nft("list chain inet berth hostports"), cut[160];
	snprintf(cut, sizeof(cut), "comment \"berth:%.105s~", long_id);
	assert_contains(out, cut);
	free(out);
	MUST_OK(f, nat_ports_remove(long_id, &f->err));
	assert_int_equal(nat_ports_count(long_id, &f->err), 0);
	assert_int_equal(nat_ports_count(twin, &f->err), 2);
	MUST_OK(f, nat_ports_remove(twin, &f->err));
	assert_int_equal(nat_ports_count(NULL, NULL), -EINVAL);

	/* a bad port anywhere adds nothing at all */
	struct pod_port ports[] = { web[0], web[0] };
	ports[1].host_ip = "192.0.2.300";
	assert_int_equal(nat_ports_add("p", "10.88.0.2", NULL, ports, 2, &f->err), -EINVAL);
	assert_contains(f->err->msg, "pod p: invalid hostIP \"192.0.2.300\"");
	f->err = berth_error_free(f->err);
	ports[1] = web[0];
	ports[1].protocol = (enum pod_protocol)7;
	assert_int_equal(nat_ports_add("p", "10.88.0.2", NULL, ports, 2, NULL), -EINVAL);
	ports[1].protocol = POD_PROTO_UDP;
	ports[1].container_port = 0;
	assert_int_equal(nat_ports_add("p", "10.88.0.2", NULL, ports, 2, NULL), -EINVAL);
	assert_int_equal(nat_ports_add("p", "10.88.0.2:80", NULL, web, 1, NULL), -EINVAL);
	assert_int_equal(nat_ports_add("p", NULL, "10.88.0.2", web, 1, NULL), -EINVAL);
	assert_int_equal(nat_ports_count("p", &f->err), 0);
}

static void test_without_network(void **state)
{
	struct fx *f = *state;
	/* nothing there: removal and counting succeed, adding says what is missing */
	MUST_OK(f, nat_ports_remove("p", &f->err));
	assert_int_equal(nat_ports_count("p", &f->err), 0);
	assert_int_equal(nat_ports_add("p", "10.88.0.2", NULL, web, 1, &f->err), -ENOENT);
	assert_contains(f->err->msg, "pod p: nftables: add hostPorts: Error: ");
	assert_nft("list tables", "");
}

static void test_other_tables_untouched(void **state)
{
	struct fx *f = *state;
	static const char other[] = "table ip other {\n"
				    "\tchain postrouting {\n"
				    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
				    "\t\tip saddr 10.88.0.0/16 counter packets 0 bytes 0 comment \"berth:p\"\n"
				    "\t}\n"
				    "}\n";
	assert_nft(other, ""); /* the listing is valid input */
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", NULL, &f->err));
	MUST_OK(f, nat_ports_add("p", "10.88.0.2", NULL, web, 1, &f->err));
	assert_int_equal(nat_ports_count("p", &f->err), 1);
	MUST_OK(f, nat_ports_remove("p", &f->err));
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", NULL, &f->err));
	assert_nft("list table ip other", other);
}

/* Runs fn(i) in n forked processes at once; all must succeed. */
static void run_concurrently(int n, int (*fn)(int))
{
	pid_t pids[16];
	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		pids[i] = fork();
		assert_true(pids[i] >= 0);
		if (pids[i] == 0)
			_exit(fn(i) < 0 ? 1 : 0);
	}
	for (int i = 0; i < n; i++) {
		int status;
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
}

static int ensure_and_add_cb(int i)
{
	char id[24], ip[24];
	snprintf(id, sizeof(id), "c%d", i);
	snprintf(ip, sizeof(ip), "10.88.0.%d", i + 2);
	int r = nat_network_ensure("10.88.0.0/16", "fd88::/64", NULL);
	return r < 0 ? r : nat_ports_add(id, ip, NULL, web, 1, NULL);
}

static int remove_shared_cb(int i)
{
	(void)i;
	return nat_ports_remove("shared", NULL);
}

static void test_concurrent_callers(void **state)
{
	struct fx *f = *state;
	run_concurrently(12, ensure_and_add_cb);
	for (int i = 0; i < 12; i++) {
		char id[24];
		snprintf(id, sizeof(id), "c%d", i);
		assert_int_equal(nat_ports_count(id, &f->err), 1);
		MUST_OK(f, nat_ports_remove(id, &f->err));
	}
	assert_nft("list table inet berth", expected_table);

	struct pod_port many[40];
	for (size_t i = 0; i < ARRAY_SIZE(many); i++)
		many[i] = (struct pod_port){ .host_port = (uint16_t)(20000 + i), .container_port = 80 };
	MUST_OK(f, nat_ports_add("shared", "10.88.0.2", "fd88::2", many, ARRAY_SIZE(many), &f->err));
	MUST_OK(f, nat_ports_add("bystander", "10.88.0.3", NULL, web, 1, &f->err));
	assert_int_equal(nat_ports_count("shared", &f->err), 80);
	run_concurrently(6, remove_shared_cb);
	assert_int_equal(nat_ports_count("shared", &f->err), 0);
	assert_int_equal(nat_ports_count("bystander", &f->err), 1);
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Sanitizers slow down every allocation libnftables makes; the limits are for normal builds. */
#if defined(__SANITIZE_ADDRESS__)
#define SLOWER 4
#else
#define SLOWER 1
#endif

/* Average milliseconds of ensure, ports_add and ports_remove for one dual-stack pod. */
static void time_calls(struct fx *f, double ms[3])
{
	enum { ROUNDS = 40 };
	ms[0] = ms[1] = ms[2] = 0;
	for (int i = 0; i < ROUNDS; i++) {
		double t0 = now_ms();
		MUST_OK(f, nat_network_ensure("10.88.0.0/16", "fd88::/64", &f->err));
		double t1 = now_ms();
		MUST_OK(f, nat_ports_add("timed", "10.88.0.2", "fd88::2", web, 2, &f->err));
		double t2 = now_ms();
		MUST_OK(f, nat_ports_remove("timed", &f->err));
		double t3 = now_ms();
		ms[0] += (t1 - t0) / ROUNDS;
		ms[1] += (t2 - t1) / ROUNDS;
		ms[2] += (t3 - t2) / ROUNDS;
	}
}

static void test_speed(void **state)
{
	struct fx *f = *state;
	double ms[3];
	char id[24];
	time_calls(f, ms);
	print_message("per call (ms): ensure %.3f, ports_add %.3f, ports_remove %.3f\n", ms[0], ms[1], ms[2]);
	/* a context closed after deleting rules waits 10-30 ms for the kernel: it must stay open */
	assert_true(ms[0] < 5 * SLOWER && ms[1] < 5 * SLOWER && ms[2] < 5 * SLOWER);
	/* removal lists the chain: it grows with the rules of other pods */
	for (int i = 0; i < 50; i++) {
		snprintf(id, sizeof(id), "other%d", i);
		MUST_OK(f, nat_ports_add(id, "10.88.1.2", "fd88::1:2", web, 2, &f->err));
	}
	time_calls(f, ms);
	print_message("with 200 rules of other pods: ensure %.3f, ports_add %.3f, ports_remove %.3f\n", ms[0], ms[1],
		      ms[2]);
	assert_true(ms[0] < 5 * SLOWER && ms[1] < 5 * SLOWER && ms[2] < 20 * SLOWER);
}

/* The netfilter netlink sockets of the process; *cloexec: whether all are close-on-exec. */
static int nfnetlink_sockets(bool *cloexec)
{
	int n = 0;
	*cloexec = true;
	for (int fd = 0; fd < 1024; fd++) {
		int domain = 0, proto = 0;
		socklen_t len = sizeof(int);
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_NETLINK ||
		    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 || proto != NETLINK_NETFILTER)
			continue;
		n++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			*cloexec = false;
	}
	return n;
}

static void *count_in_thread_cb(void *arg)
{
	return (void *)(intptr_t)nat_ports_count(arg, NULL);
}

static void test_context_kept_per_thread_and_namespace(void **state)
{
	struct fx *f = *state;
	bool cloexec;
	MUST_OK(f, nat_network_ensure("10.88.0.0/16", NULL, &f->err));
	int before = nfnetlink_sockets(&cloexec);
	assert_true(before >= 1); /* kept open */
	assert_true(cloexec);     /* and never handed to a child program */
	MUST_OK(f, nat_ports_add("p", "10.88.0.2", NULL, web, 1, &f->err));
	assert_int_equal(nfnetlink_sockets(&cloexec), before);

	/* another thread has its own, freed when it ends */
	pthread_t t;
	void *n;
	assert_int_equal(pthread_create(&t, NULL, count_in_thread_cb, "p"), 0);
	assert_int_equal(pthread_join(t, &n), 0);
	assert_int_equal((intptr_t)n, 1);
	assert_int_equal(nfnetlink_sockets(&cloexec), before);

	/* in another namespace the calls act on that namespace's ruleset */
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	assert_int_equal(nat_ports_count("p", &f->err), 0);
	MUST_OK(f, nat_network_ensure("10.77.0.0/16", NULL, &f->err));
	char *out = nft("list set inet berth masq4");
	assert_contains(out, "elements = { 10.77.0.0/16 }");
	free(out);
	assert_true(nfnetlink_sockets(&cloexec) >= 1);
	assert_true(cloexec);
}

/* --- real traffic ------------------------------------------------------------------------------ */

/* Runs a shell command in the network namespace nsfd (-1: the test's). The namespace fds are
 * inherited, so commands name them as /proc/self/fd/N. */
static int sh_in(int nsfd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh_in(int nsfd, const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	pid_t pid = fork();
	if (pid == 0) {
		if (nsfd >= 0 && setns(nsfd, CLONE_NEWNET) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-ec", cmd, (char *)NULL);
		_exit(127);
	}
	int status;
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		print_error("failed: %s\n", cmd);
		return -1;
	}
	return 0;
}

/* A new network namespace, as an fd that commands can inherit; the thread stays where it was. */
static int netns_new(void)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_true(self >= 0);
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	int fd = open("/proc/thread-self/ns/net", O_RDONLY);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	assert_true(fd >= 0);
	return fd;
}

/* A socket that lives in the namespace nsfd (sockets keep the namespace they were made in). */
static int socket_in(int nsfd, int family)
{
	int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	assert_int_equal(setns(nsfd, CLONE_NEWNET), 0);
	int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_int_equal(setns(self, CLONE_NEWNET), 0);
	close(self);
	assert_true(s >= 0);
	return s;
}

static socklen_t sockaddr_of(const char *ip, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, ip, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		return sizeof(*a4);
	}
	assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
	a6->sin6_family = AF_INET6;
	a6->sin6_port = htons((uint16_t)port);
	return sizeof(*a6);
}

static int listen_in(int nsfd, int family, int port)
{
	int s = socket_in(nsfd, family), one = 1;
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(family == AF_INET ? "0.0.0.0" : "::", port, &ss);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	assert_int_equal(bind(s, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(s, 8), 0);
	return s;
}

static bool wait_for(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	return poll(&p, 1, 3000) == 1;
}

/* Connects from the namespace `from` to ip:port; the listener accepts, reads "ping" and answers
 * with the peer address it saw, which lands in seen. Returns 0, or the connection's -errno
 * (-ETIMEDOUT when no connection reached the listener). */
static int exchange(int from, const char *ip, int port, int listener, char *seen, size_t size)
{
	struct sockaddr_storage ss, peer;
	socklen_t len = sockaddr_of(ip, port, &ss), plen = sizeof(peer);
	int c = socket_in(from, ss.ss_family), e = 0;
	socklen_t elen = sizeof(e);
	if (connect(c, (struct sockaddr *)&ss, len) < 0 && errno != EINPROGRESS)
		e = errno;
	else if (!wait_for(c, POLLOUT))
		e = ETIMEDOUT;
	else
		getsockopt(c, SOL_SOCKET, SO_ERROR, &e, &elen);
	if (e) {
		close(c);
		return -e;
	}
	assert_true(wait_for(listener, POLLIN));
	int a = accept4(listener, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	assert_true(a >= 0);
	char buf[INET6_ADDRSTRLEN + 1] = "";
	assert_int_equal(write(c, "ping", 4), 4);
	assert_true(wait_for(a, POLLIN));
	assert_int_equal(read(a, buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "ping", 4);
	const void *addr = peer.ss_family == AF_INET ? (const void *)&((struct sockaddr_in *)&peer)->sin_addr
						     : (const void *)&((struct sockaddr_in6 *)&peer)->sin6_addr;
	assert_non_null(inet_ntop(peer.ss_family, addr, buf, sizeof(buf)));
	assert_int_equal(write(a, buf, strlen(buf)), (ssize_t)strlen(buf));
	assert_true(wait_for(c, POLLIN));
	ssize_t n = read(c, seen, size - 1);
	assert_true(n > 0);
	seen[n] = '\0';
	close(a);
	close(c);
	return 0;
}

#define EXCHANGE_FAILS(from, ip, port, listener, code)                                               \
	do {                                                                                       \
		char seen_[INET6_ADDRSTRLEN + 1] = "";                                             \
		int r_ = exchange(from, ip, port, listener, seen_, sizeof(seen_));                 \
		if (r_ != -(code))                                                                 \
			fail_msg("%s:%d: %s (seen %s)", ip, port, strerror(-r_), seen_);            \
	} while (0)

#define EXCHANGE_SEES(from, ip, port, listener, expected)                                          \
	do {                                                                                       \
		char seen_[INET6_ADDRSTRLEN + 1];                                                  \
		int r_ = exchange(from, ip, port, listener, seen_, sizeof(seen_));                 \
		if (r_ < 0)                                                                        \
			fail_msg("%s:%d: %s", ip, port, strerror(-r_));                             \
		assert_string_equal(seen_, expected);                                              \
	} while (0)

/* Sets a sysctl of the test's own namespace (/proc/sys/net is per namespace). */
static void sysctl_set(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, value, strlen(value)), (ssize_t)strlen(value));
	close(fd);
}

/* An end of a veth pair named eth0 in ns, with addresses and default routes via gw4 and gw6. */
static int host_in(int ns, const char *node_end, const char *ip4, const char *gw4, const char *ip6,
		   const char *gw6)
{
	if (sh_in(-1, "ip link add %s type veth peer name eth0 netns /proc/self/fd/%d", node_end, ns) < 0)
		return -1;
	return sh_in(ns,
		     "ip link set lo up; ip link set eth0 up; ip addr add %s dev eth0;"
		     "ip addr add %s dev eth0 nodad; ip route add default via %s; ip -6 route add default via %s",
		     ip4, ip6, gw4, gw6);
}

/* The node (the test's namespace) with a bridge for the pod subnet holding pods P (10.88.0.2)
 * and Q (10.88.0.3), and a client C on a link of its own (192.168.77.0/24, fd77::/64). */
static void make_topology(int pod, int pod2, int client)
{
	if (access("/usr/sbin/ip", X_OK) < 0 && access("/sbin/ip", X_OK) < 0)
		fail_msg("ip (iproute2) is missing: tools/deps.sh test installs it");
	sysctl_set("/proc/sys/net/ipv4/ip_forward", "1");
	sysctl_set("/proc/sys/net/ipv6/conf/all/forwarding", "1");
	assert_int_equal(sh_in(-1, "ip link set lo up; ip link add br0 type bridge; ip link set br0 up;"
				   "ip addr add 10.88.0.1/24 dev br0; ip addr add fd88::1/64 dev br0 nodad"),
			 0);
	assert_int_equal(host_in(pod, "vp", "10.88.0.2/24", "10.88.0.1", "fd88::2/64", "fd88::1"), 0);
	assert_int_equal(host_in(pod2, "vq", "10.88.0.3/24", "10.88.0.1", "fd88::3/64", "fd88::1"), 0);
	assert_int_equal(sh_in(-1, "ip link set vp master br0 up; ip link set vq master br0 up"), 0);
	assert_int_equal(host_in(client, "vc", "192.168.77.2/24", "192.168.77.1", "fd77::2/64", "fd77::1"), 0);
	assert_int_equal(sh_in(-1, "ip link set vc up; ip addr add 192.168.77.1/24 dev vc;"
				   "ip addr add fd77::1/64 dev vc nodad"),
			 0);
}

static void test_traffic(void **state)
{
	struct fx *f = *state;
	int pod = netns_new(), pod2 = netns_new(), client = netns_new();
	int node = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	make_topology(pod, pod2, client);
	int web4 = listen_in(pod, AF_INET, 80), web6 = listen_in(pod, AF_INET6, 80);
	int out4 = listen_in(client, AF_INET, 9000), out6 = listen_in(client, AF_INET6, 9000);

	/* routed, not NATed: the client sees the pod's own address (so the checks below can fail) */
	EXCHANGE_SEES(pod, "192.168.77.2", 9000, out4, "10.88.0.2");
	EXCHANGE_FAILS(client, "192.168.77.1", 8080, web4, ECONNREFUSED);

	MUST_OK(f, nat_network_ensure("10.88.0.0/24", "fd88::/64", &f->err));
	static const struct pod_port port = { .host_port = 8080, .container_port = 80 };
	MUST_OK(f, nat_ports_add("web", "10.88.0.2", "fd88::2", &port, 1, &f->err));

	/* masquerade: the peer sees the node's address */
	EXCHANGE_SEES(pod, "192.168.77.2", 9000, out4, "192.168.77.1");
	EXCHANGE_SEES(pod, "fd77::2", 9000, out6, "fd77::1");
	/* hostPort from another host (prerouting), both families */
	EXCHANGE_SEES(client, "192.168.77.1", 8080, web4, "192.168.77.2");
	EXCHANGE_SEES(client, "fd77::1", 8080, web6, "fd77::2");
	EXCHANGE_SEES(client, "10.88.0.1", 8080, web4, "192.168.77.2"); /* any node address */
	/* from the node itself to its own address (output) */
	EXCHANGE_SEES(node, "192.168.77.1", 8080, web4, "192.168.77.1");
	EXCHANGE_SEES(node, "fd77::1", 8080, web6, "fd77::1");
	/* from a pod on the same bridge: the node is the source, so answers come back through it
	 * to be un-DNATed (hairpin; needed unless br_netfilter happens to show bridged frames to
	 * conntrack) */
	EXCHANGE_SEES(pod2, "192.168.77.1", 8080, web4, "10.88.0.1");
	/* loopback is left alone: refused at once instead of a connection that hangs */
	EXCHANGE_FAILS(node, "127.0.0.1", 8080, web4, ECONNREFUSED);
	/* traffic through the node to other hosts is not DNATed: the client's own 8080 is closed */
	EXCHANGE_FAILS(pod2, "192.168.77.2", 8080, web4, ECONNREFUSED);

	MUST_OK(f, nat_ports_remove("web", &f->err));
	EXCHANGE_FAILS(client, "192.168.77.1", 8080, web4, ECONNREFUSED);
	EXCHANGE_FAILS(client, "fd77::1", 8080, web6, ECONNREFUSED);
	int fds[] = { web4, web6, out4, out6, pod, pod2, client, node };
	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		close(fds[i]);
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_nat needs root (network namespaces, nftables)\n");
		return 1;
	}
	/* before anything else: nothing here may reach the host's own network namespace */
	if (unshare(CLONE_NEWNET) < 0) {
		perror("unshare(CLONE_NEWNET)");
		return 1;
	}
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_ensure_creates_the_table),
		T(test_ensure_twice_adds_nothing),
		T(test_ensure_rejects_bad_subnets),
		T(test_ports_per_pod),
		T(test_ports_protocols_and_host_ips),
		T(test_ports_reject_bad_input),
		T(test_without_network),
		T(test_other_tables_untouched),
		T(test_concurrent_callers),
		T(test_speed),
		T(test_context_kept_per_thread_and_namespace),
		T(test_traffic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
