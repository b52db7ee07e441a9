/* NAT for the built-in bridge network with libnftables; nat-internal.h is the contract.
 *
 * One table, "inet berth", rather than "ip berth" plus "ip6 berth": one set of chains serves
 * both families, so a dual-stack pod's rules go in one transaction and removal and counting list
 * one chain. (NAT in inet tables needs Linux 5.2.) Nothing outside this table is read or
 * changed. The whole table, as nat_network_ensure and nat_ports_add leave it:
 *
 *   table inet berth {
 *     set masq4 { type ipv4_addr; flags interval; auto-merge; }    the networks' subnets
 *     set masq6 { type ipv6_addr; flags interval; auto-merge; }
 *     chain postrouting { type nat hook postrouting priority srcnat; policy accept;
 *       ip saddr @masq4 ip daddr != @masq4 masquerade comment "berth:masq"
 *       ct status dnat ip saddr @masq4 ip daddr @masq4 masquerade comment "berth:hairpin"
 *       (the same two for ip6 and @masq6) }
 *     chain prerouting { type nat hook prerouting priority dstnat; policy accept;
 *       ip daddr != 127.0.0.0/8 fib daddr type local jump hostports
 *       ip6 daddr != ::1 fib daddr type local jump hostports }
 *     chain output { type nat hook output priority -100; policy accept;  (the same two rules) }
 *     chain hostports {
 *       meta nfproto ipv4 tcp dport 8080 dnat ip to 10.88.0.2:80 comment "berth:<pod id>"
 *       ip daddr 192.0.2.7 udp dport 53 dnat ip to 10.88.0.2:53 comment "berth:<pod id>"
 *       meta nfproto ipv6 sctp dport 9 dnat ip6 to [fd88::2]:9 comment "berth:<pod id>" }
 *   }
 *
 * Why this shape:
 * - Concurrency. Several processes may ensure the network at once, and nftables has no "add
 *   this rule unless it exists". So the subnets live in sets (adding an element that is there
 *   is a no-op, auto-merge absorbs overlaps), the masquerade and jump rules are fixed, and every
 *   ensure flushes those three chains and adds their rules again in the same transaction:
 *   transactions are serialised by the kernel, so however they interleave one copy remains,
 *   and no packet ever sees a chain half-filled.
 * - Traffic between two of berth's subnets is not masqueraded (the destination is in the set),
 *   except a hostPort connection from a pod to a pod (the hairpin rules): the answer must come
 *   back through the node to be un-DNATed, so the node must be its source.
 * - Only traffic addressed to the node is DNATed (fib daddr type local): a pod connecting to
 *   port 8080 of another host must reach that host.
 * - Loopback destinations are left alone: DNAT to a pod keeps the loopback source address,
 *   which the kernel refuses to route out of the bridge unless route_localnet is set there, so
 *   connections to 127.0.0.1:<hostPort> would hang instead of being refused. From the node
 *   itself hostPorts answer on its other addresses; a hostIP of 127.0.0.1 or ::1 is skipped
 *   with a warning.
 * - No filter chain: with the default accept policy forwarding needs none, and an accept here
 *   cannot override a drop in another table anyway.
 * - Subnets are never taken out of the sets (the contract has no "network removed"); a stale one
 *   only masquerades traffic that no pod sends any more.
 * - One nftables context per thread, kept open (see nat_ctx): closing the netlink socket waits
 *   for the kernel to release the rules deleted before (an RCU grace period, 10-30 ms here),
 *   and ensuring and removing both delete rules. A transaction takes 0.1-0.5 ms.
 * - nft accepts comments of up to 128 characters: ids longer than 122 are cut, with a hash of
 *   the whole id, so the comment still names one pod (see rule_comment). */
#include "netns/nat-internal.h"

#include "base/cleanup.h"
#include "base/hash.h"
#include "base/json.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define TABLE "inet berth"
#define POD_ID_MAX 128
/* nft's limit for comments, and what is kept of a longer id: "berth:" id[0..104] "~" 16 hex. */
#define COMMENT_MAX 128
#define ID_CUT 105
/* Enough tries to outlast another process removing the same rules at the same moment. */
#define REMOVE_TRIES 5

/* A context whose output and errors go to buffers, so failures become error messages. */
static int nat_ctx_new(struct nft_ctx **ret, struct berth_error **err)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	if (!ctx)
		return berth_error_set(err, ENOMEM, "nftables: cannot create a context");
	if (nft_ctx_buffer_output(ctx) < 0 || nft_ctx_buffer_error(ctx) < 0) {
		nft_ctx_free(ctx);
		return berth_error_set(err, ENOMEM, "nftables: cannot buffer output");
	}
	*ret = ctx;
	return 0;
}

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* libnftables 1.0.6 opens its netlink socket without close-on-exec, and a kept context would
 * hand it to every program the process starts: mark every netfilter netlink socket of the
 * process (none of them belongs in a child). */
static void netfilter_sockets_cloexec(void)
{
	_cleanup_(closedirp) DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name), domain = 0, proto = 0, flags;
		socklen_t len = sizeof(int);
		if (e->d_name[0] == '.' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_NETLINK ||
		    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0 || proto != NETLINK_NETFILTER)
			continue;
		flags = fcntl(fd, F_GETFD);
		if (flags >= 0 && !(flags & FD_CLOEXEC))
			(void)fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
	}
}

/* One kept context for the process, used under a lock: a context costs a millisecond to make and,
 * once used, keeps a few 128 KiB buffers, so one per worker thread would hold megabytes for
 * nothing (nft runs are short; they do not contend). A socket belongs to the network namespace it
 * was opened in (and keeps it alive), and a forked child must not talk over its parent's: either
 * change makes a new one. */
struct ctx_cache {
	pthread_mutex_t lock;
	struct nft_ctx *ctx;
	pid_t pid;
	dev_t ns_dev;
	ino_t ns_ino;
};

static struct ctx_cache cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* The kept context, for the calling thread's network namespace, with cache.lock held. */
static int nat_ctx_acquire(struct nft_ctx **ret, struct berth_error **err)
{
	struct stat st;
	if (stat("/proc/thread-self/ns/net", &st) < 0)
		return berth_error_setsys(err, errno, "nftables: /proc/thread-self/ns/net");
	pthread_mutex_lock(&cache.lock);
	if (cache.ctx && cache.pid != getpid())
		cache.ctx = NULL; /* a forked child's: its parent's context is not its to use or free */
	if (cache.ctx && (cache.ns_dev != st.st_dev || cache.ns_ino != st.st_ino)) {
		nft_ctx_free(cache.ctx); /* berthd keeps to one namespace; a test moves on to another */
		cache.ctx = NULL;
	}
	if (!cache.ctx) {
		int r = nat_ctx_new(&cache.ctx, err);
		if (r < 0) {
			pthread_mutex_unlock(&cache.lock);
			return r;
		}
		netfilter_sockets_cloexec();
		cache.pid = getpid();
		cache.ns_dev = st.st_dev;
		cache.ns_ino = st.st_ino;
	}
	*ret = cache.ctx;
	return 0;
}

/* libnftables reports only -1; the cause is a strerror text in the message ("Error: Could not
 * process rule: No such file or directory"). The longest match wins ("No such device" is in
 * "No such device or address"). */
static int errno_of_message(const char *msg)
{
	int code = EIO;
	size_t best = 0;
	for (int e = 1; e < 134; e++) {
		const char *text = strerrordesc_np(e);
		size_t len = text ? strlen(text) : 0;
		if (len > best && strstr(msg, text)) {
			best = len;
			code = e;
		}
	}
	return code;
}

/* Runs one buffer of commands (one transaction) with the given output flags; the output, when
 * asked for, in *ret_out (malloc'd). The error is the first line of nft's report: the rest
 * repeats the command and underlines the culprit. */
static int nat_run(unsigned flags, const char *cmds, const char *what, char **ret_out,
		   struct berth_error **err)
{
	struct nft_ctx *ctx = NULL;
	int r = nat_ctx_acquire(&ctx, err);
	if (r < 0)
		return r;
	nft_ctx_output_set_flags(ctx, flags);
	r = nft_run_cmd_from_buffer(ctx, cmds);
	/* reading a buffer empties it, so the kept context starts clean next time */
	const char *out = nft_ctx_get_output_buffer(ctx);
	const char *msg = nft_ctx_get_error_buffer(ctx);
	if (r == 0 && ret_out && !(*ret_out = strdup(out ? out : "")))
		r = berth_error_set(err, ENOMEM, "nftables: %s: out of memory", what);
	else if (r != 0) {
		if (!msg || !*msg)
			msg = "failed";
		int len = (int)strcspn(msg, "\n");
		r = berth_error_set(err, errno_of_message(msg), "nftables: %s: %.*s", what, len, msg);
	}
	pthread_mutex_unlock(&cache.lock);
	return r;
}

static bool pod_id_valid(const char *id)
{
	size_t len = id ? strlen(id) : 0;
	if (len == 0 || len > POD_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-')))
			return false;
	}
	return true;
}

static int check_pod_id(const char *id, struct berth_error **err)
{
	int shown = 0;
	if (pod_id_valid(id))
		return 0;
	/* the message stays one line: the id is shown up to its first unprintable character */
	while (id && shown < POD_ID_MAX && id[shown] >= ' ' && id[shown] < 0x7f)
		shown++;
	return berth_error_set(err, EINVAL, "invalid pod id \"%.*s\"", shown, id ? id : "");
}

/* "berth:<pod id>", within nft's limit for comments: a longer id is cut and followed by "~"
 * (never part of an id) and 64 bits of its SHA-256, so two ids never share a comment. */
static int rule_comment(const char *pod_id, char ret[COMMENT_MAX + 1], struct berth_error **err)
{
	size_t len = strlen(pod_id);
	uint8_t md[SHA256_DIGEST_LEN];
	if (len + strlen("berth:") <= COMMENT_MAX) {
		snprintf(ret, COMMENT_MAX + 1, "berth:%s", pod_id);
		return 0;
	}
	sha256(pod_id, len, md);
	int off = snprintf(ret, COMMENT_MAX + 1, "berth:%.*s~", ID_CUT, pod_id);
	for (int i = 0; i < 8; i++)
		off += snprintf(ret + off, (size_t)(COMMENT_MAX + 1 - off), "%02x", md[i]);
	return 0;
}

/* An address of the family, in the canonical text that nft and the listings use: anything
 * that reaches a command buffer has been through inet_pton, so nothing can be injected. */
static bool addr_parse(int family, const char *text, unsigned char bin[16], char canon[INET6_ADDRSTRLEN])
{
	return inet_pton(family, text, bin) == 1 && inet_ntop(family, bin, canon, INET6_ADDRSTRLEN);
}

/* "10.88.0.0/16" as its canonical network (host bits cleared). */
static int subnet_parse(int family, const char *text, char *ret, size_t size, struct berth_error **err)
{
	const char *slash = text ? strchr(text, '/') : NULL;
	size_t alen = slash ? (size_t)(slash - text) : 0;
	unsigned bits = family == AF_INET ? 32 : 128;
	char addr[INET6_ADDRSTRLEN], canon[INET6_ADDRSTRLEN], *end;
	unsigned char bin[16];
	if (!slash || alen >= sizeof(addr) || slash[1] < '0' || slash[1] > '9')
		return berth_error_set(err, EINVAL, "invalid subnet \"%s\"", text ? text : "");
	unsigned long len = strtoul(slash + 1, &end, 10);
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (*end || len > bits || inet_pton(family, addr, bin) != 1)
		return berth_error_set(err, EINVAL, "invalid subnet \"%s\"", text);
	for (unsigned i = 0; i < bits / 8; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? (unsigned)len - 8 * i : 0;
		bin[i] &= (unsigned char)(0xff00 >> keep);
	}
	inet_ntop(family, bin, canon, sizeof(canon));
	snprintf(ret, size, "%s/%lu", canon, len);
	return 0;
}

/* Commands collected in memory and run as one transaction. */
struct cmds {
	FILE *f;
	char *text;
	size_t len;
};

static int cmds_open(struct cmds *c, struct berth_error **err)
{
	*c = (struct cmds){ 0 };
	c->f = open_memstream(&c->text, &c->len);
	return c->f ? 0 : berth_error_setsys(err, errno, "nftables: command buffer");
}

static void cmds_done(struct cmds *c)
{
	if (c->f)
		fclose(c->f);
	free(c->text);
	*c = (struct cmds){ 0 };
}

static int cmds_run(struct cmds *c, const char *what, struct berth_error **err)
{
	bool failed = ferror(c->f);
	int r = fclose(c->f);
	c->f = NULL;
	if (r != 0 || failed)
		return berth_error_set(err, ENOMEM, "nftables: %s: command buffer", what);
	return nat_run(0, c->text, what, NULL, err);
}

/* The fixed part: tables, chains and sets, and the fixed chains refilled (see the top). */
static void put_skeleton(FILE *f)
{
	static const char *const jumps[] = {
		"ip daddr != 127.0.0.0/8 fib daddr type local jump hostports",
		"ip6 daddr != ::1 fib daddr type local jump hostports",
	};
	static const char *const chains[] = { "prerouting", "output" };
	fputs("add table " TABLE "\n"
	      "add set " TABLE " masq4 { type ipv4_addr; flags interval; auto-merge; }\n"
	      "add set " TABLE " masq6 { type ipv6_addr; flags interval; auto-merge; }\n"
	      "add chain " TABLE " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
	      "add chain " TABLE " prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
	      "add chain " TABLE " output { type nat hook output priority -100; policy accept; }\n"
	      "add chain " TABLE " hostports\n"
	      "flush chain " TABLE " postrouting\n",
	      f);
	for (int v = 4; v <= 6; v += 2) {
		const char *ip = v == 4 ? "ip" : "ip6";
		fprintf(f,
			"add rule " TABLE " postrouting %1$s saddr @masq%2$d %1$s daddr != @masq%2$d masquerade "
			"comment \"berth:masq\"\n"
			"add rule " TABLE " postrouting ct status dnat %1$s saddr @masq%2$d %1$s daddr @masq%2$d "
			"masquerade comment \"berth:hairpin\"\n",
			ip, v);
	}
	for (size_t c = 0; c < ARRAY_SIZE(chains); c++) {
		fprintf(f, "flush chain " TABLE " %s\n", chains[c]);
		for (size_t j = 0; j < ARRAY_SIZE(jumps); j++)
			fprintf(f, "add rule " TABLE " %s %s\n", chains[c], jumps[j]);
	}
}

int nat_network_ensure(const char *subnet4, const char *subnet6, struct berth_error **err)
{
	char net4[64] = "", net6[64] = "";
	struct cmds c;
	int r;
	if (subnet4 && *subnet4 && (r = subnet_parse(AF_INET, subnet4, net4, sizeof(net4), err)) < 0)
		return r;
	if (subnet6 && *subnet6 && (r = subnet_parse(AF_INET6, subnet6, net6, sizeof(net6), err)) < 0)
		return r;
	if ((r = cmds_open(&c, err)) < 0)
		return r;
	put_skeleton(c.f);
	if (*net4)
		fprintf(c.f, "add element " TABLE " masq4 { %s }\n", net4);
	if (*net6)
		fprintf(c.f, "add element " TABLE " masq6 { %s }\n", net6);
	r = cmds_run(&c, "ensure the network", err);
	cmds_done(&c);
	log_debug("nat: network %s %s ensured: %d", net4, net6, r);
	return r;
}

static const char *proto_name(enum pod_protocol p)
{
	switch (p) {
	case POD_PROTO_TCP:
		return "tcp";
	case POD_PROTO_UDP:
		return "udp";
	case POD_PROTO_SCTP:
		return "sctp";
	}
	return NULL;
}

/* Where a pod's rules are written. */
struct pod_rules {
	FILE *f;
	const char *pod_id;
	char comment[COMMENT_MAX + 1];
};

/* One DNAT rule for the port in one family, or none when the port's hostIP belongs to the
 * other family (check_ports made sure it is an address of one of them). */
static void put_port_rule(struct pod_rules *pr, int family, const char *pod_ip, const struct pod_port *p)
{
	const char *ip = family == AF_INET ? "ip" : "ip6";
	char host[INET6_ADDRSTRLEN] = "";
	unsigned char bin[16];
	if (p->host_ip && *p->host_ip) {
		if (!addr_parse(family, p->host_ip, bin, host))
			return;
		bool any = family == AF_INET ? !memcmp(bin, "\0\0\0\0", 4) : !memcmp(bin, &in6addr_any, 16);
		bool loopback = family == AF_INET ? bin[0] == 127 : !memcmp(bin, &in6addr_loopback, 16);
		if (loopback) {
			log_warn("pod %s: hostPort %u on loopback hostIP %s skipped (not supported)",
				 pr->pod_id, p->host_port, host);
			return;
		}
		if (any)
			host[0] = '\0';
	}
	fputs("add rule " TABLE " hostports ", pr->f);
	if (*host)
		fprintf(pr->f, "%s daddr %s ", ip, host);
	else
		fprintf(pr->f, "meta nfproto %s ", family == AF_INET ? "ipv4" : "ipv6");
	fprintf(pr->f, family == AF_INET ? "%s dport %u dnat ip to %s:%u" : "%s dport %u dnat ip6 to [%s]:%u",
		proto_name(p->protocol), p->host_port, pod_ip, p->container_port);
	fprintf(pr->f, " comment \"%s\"\n", pr->comment);
}

/* Checks every port before anything is written, so a bad one adds nothing. */
static int check_ports(const struct pod_port *ports, size_t n, struct berth_error **err)
{
	for (size_t i = 0; i < n; i++) {
		const struct pod_port *p = &ports[i];
		char canon[INET6_ADDRSTRLEN];
		unsigned char bin[16];
		if (!proto_name(p->protocol))
			return berth_error_set(err, EINVAL, "port %zu: unknown protocol %d", i,
					       (int)p->protocol);
		if (p->host_port && !p->container_port)
			return berth_error_set(err, EINVAL, "hostPort %u: container port 0", p->host_port);
		if (p->host_ip && *p->host_ip && !addr_parse(AF_INET, p->host_ip, bin, canon) &&
		    !addr_parse(AF_INET6, p->host_ip, bin, canon))
			return berth_error_set(err, EINVAL, "invalid hostIP \"%s\"", p->host_ip);
	}
	return 0;
}

static int put_port_rules(struct pod_rules *pr, const char *ip4, const char *ip6,
			  const struct pod_port *ports, size_t n, struct berth_error **err)
{
	const char *ips[2] = { ip4, ip6 };
	const int families[2] = { AF_INET, AF_INET6 };
	for (int k = 0; k < 2; k++) {
		char canon[INET6_ADDRSTRLEN];
		unsigned char bin[16];
		if (!ips[k])
			continue;
		if (!addr_parse(families[k], ips[k], bin, canon))
			return berth_error_set(err, EINVAL, "invalid pod address \"%s\"", ips[k]);
		/* hostPort 0: the port is only declared, as in Kubernetes */
		for (size_t i = 0; i < n; i++)
			if (ports[i].host_port)
				put_port_rule(pr, families[k], canon, &ports[i]);
	}
	return 0;
}

int nat_ports_add(const char *pod_id, const char *ip4, const char *ip6, const struct pod_port *ports,
		  size_t n, struct berth_error **err)
{
	struct pod_rules pr = { .pod_id = pod_id };
	struct cmds c;
	int r;
	if ((r = check_pod_id(pod_id, err)) < 0 || (r = check_ports(ports, n, err)) < 0 ||
	    (r = rule_comment(pod_id, pr.comment, err)) < 0 || (r = cmds_open(&c, err)) < 0)
		goto out;
	pr.f = c.f;
	r = put_port_rules(&pr, ip4, ip6, ports, n, err);
	if (r >= 0 && ftell(c.f) > 0)
		r = cmds_run(&c, "add hostPorts", err);
	cmds_done(&c);
out:
	if (r < 0 && pod_id_valid(pod_id))
		berth_error_wrap(err, "pod %s", pod_id);
	return r < 0 ? r : 0;
}

/* The handles of the pod's rules in the hostports chain (none when the table does not exist). */
static int pod_rule_handles(const char *pod_id, uint64_t **ret, size_t *ret_n, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	_cleanup_free_ uint64_t *handles = NULL;
	char comment[COMMENT_MAX + 1];
	_cleanup_free_ char *out = NULL;
	size_t n = 0;
	int r = nat_run(NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE, "list chain " TABLE " hostports",
			"list hostPorts", &out, &e);
	if (r == -ENOENT) {
		*ret = NULL;
		*ret_n = 0;
		return 0;
	}
	if (r < 0)
		return berth_error_move(err, &e);
	if ((r = bjson_parse(out, &j, err)) < 0) {
		berth_error_wrap(err, "nftables: list hostPorts");
		return r;
	}
	if ((r = rule_comment(pod_id, comment, err)) < 0)
		return r;
	const struct json *items = bjson_object_get(j, "nftables");
	handles = calloc(bjson_array_size(items) + 1, sizeof(*handles));
	if (!handles)
		return berth_error_set(err, ENOMEM, "nftables: list hostPorts");
	for (size_t i = 0; i < bjson_array_size(items); i++) {
		const struct json *rule = bjson_object_get(bjson_array_get(items, i), "rule");
		const char *c = bjson_string(bjson_object_get(rule, "comment"));
		if (c && strcmp(c, comment) == 0 && bjson_uint64(bjson_object_get(rule, "handle"), &handles[n]))
			n++;
	}
	*ret = TAKE_PTR(handles);
	*ret_n = n;
	return 0;
}

/* One attempt: list, then delete what was listed in one transaction. -ENOENT when a rule went
 * away in between (another process removing the same pod). */
static int remove_once(const char *pod_id, struct berth_error **err)
{
	_cleanup_free_ uint64_t *handles = NULL;
	size_t n;
	struct cmds c;
	int r = pod_rule_handles(pod_id, &handles, &n, err);
	if (r < 0 || n == 0)
		return r;
	if ((r = cmds_open(&c, err)) < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		fprintf(c.f, "delete rule " TABLE " hostports handle %llu\n", (unsigned long long)handles[i]);
	r = cmds_run(&c, "remove hostPorts", err);
	cmds_done(&c);
	return r;
}

int nat_ports_remove(const char *pod_id, struct berth_error **err)
{
	int r = check_pod_id(pod_id, err);
	if (r < 0)
		return r;
	for (int i = 1;; i++) {
		_cleanup_error_ struct berth_error *e = NULL;
		r = remove_once(pod_id, &e);
		if (r >= 0)
			return 0;
		if (r != -ENOENT || i == REMOVE_TRIES) {
			berth_error_move(err, &e);
			berth_error_wrap(err, "pod %s", pod_id);
			return r;
		}
		log_debug("nat: pod %s: rules changed while removing them; again", pod_id);
	}
}

int nat_ports_count(const char *pod_id, struct berth_error **err)
{
	_cleanup_free_ uint64_t *handles = NULL;
	size_t n;
	int r = check_pod_id(pod_id, err);
	if (r < 0 || (r = pod_rule_handles(pod_id, &handles, &n, err)) < 0)
		return r;
	return (int)n;
}
