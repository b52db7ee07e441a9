/* Pod sandboxes: the steps of creating one (namespaces, address, links, NAT, files), each
 * recorded in sandbox.json before it is taken, and one teardown that undoes whatever exists,
 * whether the creation finished, failed, or was killed halfway. */
#include "netns/netns.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"
#include "netns/cni-internal.h"
#include "netns/files-internal.h"
#include "netns/ipam-internal.h"
#include "netns/link-internal.h"
#include "netns/nat-internal.h"
#include "netns/ns-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define DEFAULT_STATE "/run/berth"
#define DEFAULT_BRIDGE "berth0"
#define DEFAULT_SUBNET4 "10.88.0.0/16"
#define DEFAULT_MTU 1500
#define DEFAULT_CNI_BIN "/usr/lib/cni:/opt/cni/bin"
#define POD_IFNAME "eth0"
#define ID_MAX 128

/* What sandbox.json records. */
struct sandbox {
	char id[ID_MAX + 1];
	bool ready;
	bool host_network;
	bool share_pid;
	char mode[8];         /* bridge, cni, host */
	char veth[16];        /* bridge mode: the host end */
	int init_pid;
	char *ip4, *ip6;
	char *cni_result;     /* cni mode: for DEL */
	struct pod_port *ports;
	size_t n_ports;
	char **port_hosts;    /* the ports' host IPs, owned */
};

static void sandbox_clear(struct sandbox *sb)
{
	free(sb->ip4);
	free(sb->ip6);
	free(sb->cni_result);
	free(sb->ports);
	strv_free(sb->port_hosts);
	*sb = (struct sandbox){ 0 };
}

struct settings {
	const char *state;
	const char *bridge;
	const char *subnet4; /* NULL: none */
	const char *subnet6;
	unsigned mtu;
	const char *cni_conf_dir;
	const char *cni_bin_dir;
};

static struct settings settings_of(const struct netns_config *c)
{
	struct settings s = {
		.state = c && c->state_dir ? c->state_dir : DEFAULT_STATE,
		.bridge = c && c->bridge ? c->bridge : DEFAULT_BRIDGE,
		.subnet4 = c && c->subnet4 ? c->subnet4 : DEFAULT_SUBNET4,
		.subnet6 = c ? c->subnet6 : NULL,
		.mtu = c && c->mtu ? c->mtu : DEFAULT_MTU,
		.cni_conf_dir = c ? c->cni_conf_dir : NULL,
		.cni_bin_dir = c && c->cni_bin_dir ? c->cni_bin_dir : DEFAULT_CNI_BIN,
	};
	if (s.subnet4 && !*s.subnet4)
		s.subnet4 = NULL;
	if (s.subnet6 && !*s.subnet6)
		s.subnet6 = NULL;
	return s;
}

static int check_id(const char *id, struct berth_error **err)
{
	size_t n = id ? strlen(id) : 0;
	if (n == 0 || n > ID_MAX || !isalnum((unsigned char)id[0]))
		return berth_error_set(err, EINVAL, "pod id \"%s\": 1 to %d letters, digits, '_', '.' or '-', starting with a letter or digit",
				       id ? id : "", ID_MAX);
	for (const char *p = id; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return berth_error_set(err, EINVAL, "pod id \"%s\": '%c' is not allowed", id, *p);
	return 0;
}

static char *pod_path(const struct settings *s, const char *id, const char *leaf)
{
	char *p = NULL;
	if (asprintf(&p, "%s/pods/%s%s%s", s->state, id, leaf ? "/" : "", leaf ? leaf : "") < 0)
		return NULL;
	return p;
}

/* "bth" and 12 hex digits of a hash of the id (FNV-1a, 64 bits): a host link name (at most 15
 * characters) that teardown finds again from the id alone. */
static void veth_name(const char *id, char ret[16])
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	snprintf(ret, 16, "bth%012llx", (unsigned long long)(h & 0xffffffffffffull));
}

/* ---- sandbox.json ---- */

static const char *const protocol_names[] = { "tcp", "udp", "sctp" };

static void write_ports(struct json_writer *w, const struct sandbox *sb)
{
	bjson_writer_key(w, "ports");
	bjson_writer_begin_array(w);
	for (size_t i = 0; i < sb->n_ports; i++) {
		const struct pod_port *p = &sb->ports[i];
		bjson_writer_begin_object(w);
		bjson_writer_kv_int(w, "hostPort", p->host_port);
		bjson_writer_kv_int(w, "containerPort", p->container_port);
		bjson_writer_kv_string(w, "protocol", protocol_names[p->protocol]);
		bjson_writer_kv_string(w, "hostIP", p->host_ip ? p->host_ip : "");
		bjson_writer_end_object(w);
	}
	bjson_writer_end_array(w);
}

static void kv_string_or_null(struct json_writer *w, const char *key, const char *v)
{
	bjson_writer_key(w, key);
	if (v)
		bjson_writer_string(w, v);
	else
		bjson_writer_null(w);
}

static int sandbox_save(int dirfd, const struct sandbox *sb, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(true);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", sb->id);
	bjson_writer_kv_string(w, "state", sb->ready ? "ready" : "incomplete");
	bjson_writer_kv_string(w, "mode", sb->mode);
	bjson_writer_kv_bool(w, "hostNetwork", sb->host_network);
	bjson_writer_kv_bool(w, "sharePid", sb->share_pid);
	bjson_writer_kv_string(w, "veth", sb->veth);
	bjson_writer_kv_int(w, "initPid", sb->init_pid);
	kv_string_or_null(w, "ip4", sb->ip4);
	kv_string_or_null(w, "ip6", sb->ip6);
	kv_string_or_null(w, "cniResult", sb->cni_result);
	write_ports(w, sb);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = bjson_writer_finish(w, &text, &len);
	if (r < 0)
		return berth_error_set(err, -r, "pod %s: sandbox.json: cannot write JSON", sb->id);
	r = write_file_atomic_at(dirfd, "sandbox.json", text, len, 0644, false, err);
	return r < 0 ? berth_error_wrap(err, "pod %s", sb->id) : 0;
}

static int dup_field(char **dst, const struct json *j, const char *key)
{
	const char *v = bjson_string(bjson_object_get(j, key));
	if (!v)
		return 0;
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

static int ports_from_json(struct sandbox *sb, const struct json *arr)
{
	size_t n = bjson_array_size(arr);
	sb->ports = calloc(n + 1, sizeof(*sb->ports));
	sb->port_hosts = calloc(n + 1, sizeof(char *));
	if (!sb->ports || !sb->port_hosts)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct json *p = bjson_array_get(arr, i);
		int64_t hp = 0, cp = 0;
		bjson_int64(bjson_object_get(p, "hostPort"), &hp);
		bjson_int64(bjson_object_get(p, "containerPort"), &cp);
		const char *proto = bjson_string(bjson_object_get(p, "protocol"));
		sb->ports[i].host_port = (uint16_t)hp;
		sb->ports[i].container_port = (uint16_t)cp;
		for (size_t k = 0; proto && k < ARRAY_SIZE(protocol_names); k++)
			if (strcmp(proto, protocol_names[k]) == 0)
				sb->ports[i].protocol = (enum pod_protocol)k;
		const char *hip = bjson_string(bjson_object_get(p, "hostIP"));
		if (hip && *hip) {
			if (!(sb->port_hosts[i] = strdup(hip)))
				return -ENOMEM;
			sb->ports[i].host_ip = sb->port_hosts[i];
		}
	}
	sb->n_ports = n;
	return 0;
}

/* A missing or unreadable sandbox.json is ENOENT: teardown then works from the id alone. */
static int sandbox_load(int dirfd, const char *id, struct sandbox *sb, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	*sb = (struct sandbox){ 0 };
	snprintf(sb->id, sizeof(sb->id), "%s", id);
	if (read_file_at(dirfd, "sandbox.json", &text, NULL, NULL) < 0 || bjson_parse(text, &j, NULL) < 0)
		return berth_error_set(err, ENOENT, "pod sandbox %s: no readable sandbox.json", id);
	const char *state = bjson_string(bjson_object_get(j, "state"));
	sb->ready = state && strcmp(state, "ready") == 0;
	sb->host_network = bjson_bool(bjson_object_get(j, "hostNetwork"));
	sb->share_pid = bjson_bool(bjson_object_get(j, "sharePid"));
	snprintf(sb->mode, sizeof(sb->mode), "%s", bjson_string(bjson_object_get(j, "mode")) ?: "");
	snprintf(sb->veth, sizeof(sb->veth), "%s", bjson_string(bjson_object_get(j, "veth")) ?: "");
	int64_t pid = 0;
	bjson_int64(bjson_object_get(j, "initPid"), &pid);
	sb->init_pid = (int)pid;
	int r = dup_field(&sb->ip4, j, "ip4");
	if (r == 0)
		r = dup_field(&sb->ip6, j, "ip6");
	if (r == 0)
		r = dup_field(&sb->cni_result, j, "cniResult");
	if (r == 0)
		r = ports_from_json(sb, bjson_object_get(j, "ports"));
	if (r < 0) {
		sandbox_clear(sb);
		return berth_error_set(err, ENOMEM, "pod sandbox %s: out of memory", id);
	}
	return 0;
}

/* ---- validation ---- */

static bool ip_valid(const char *s, int *family)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, s, buf) == 1)
		return *family = AF_INET, true;
	if (inet_pton(AF_INET6, s, buf) == 1)
		return *family = AF_INET6, true;
	return false;
}

static int check_ports(const struct pod_spec *spec, struct berth_error **err)
{
	for (size_t i = 0; i < spec->n_ports; i++) {
		const struct pod_port *p = &spec->ports[i];
		int family;
		if (p->host_port == 0 || p->container_port == 0)
			return berth_error_set(err, EINVAL, "ports[%zu]: hostPort and containerPort must be 1-65535", i);
		if ((unsigned)p->protocol >= ARRAY_SIZE(protocol_names))
			return berth_error_set(err, EINVAL, "ports[%zu].protocol: not tcp, udp or sctp", i);
		if (p->host_ip && *p->host_ip && !ip_valid(p->host_ip, &family))
			return berth_error_set(err, EINVAL, "ports[%zu].hostIP: \"%s\" is not an IP address", i, p->host_ip);
		for (size_t k = 0; k < i; k++)
			if (spec->ports[k].host_port == p->host_port && spec->ports[k].protocol == p->protocol &&
			    strcmp(spec->ports[k].host_ip ?: "", p->host_ip ?: "") == 0)
				return berth_error_set(err, EINVAL, "ports[%zu]: host port %u/%s is given twice", i,
						       p->host_port, protocol_names[p->protocol]);
	}
	if (spec->host_network && spec->n_ports)
		return berth_error_set(err, EINVAL, "ports: a pod with host networking uses the host's ports directly; hostPort mappings do not apply");
	return 0;
}

static int check_spec(const struct pod_spec *spec, struct berth_error **err)
{
	int r = check_id(spec->id, err);
	if (r == 0 && spec->hostname) {
		size_t n = strlen(spec->hostname);
		if (n == 0 || n > 63)
			return berth_error_set(err, EINVAL, "hostname \"%s\": 1 to 63 characters", spec->hostname);
		for (const char *p = spec->hostname; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
				return berth_error_set(err, EINVAL, "hostname \"%s\": only letters, digits, '-' and '.'",
						       spec->hostname);
	}
	return r < 0 ? r : check_ports(spec, err);
}

/* ---- creation ---- */

struct creation {
	const struct settings *set;
	const struct pod_spec *spec;
	struct sandbox sb;
	int dirfd;
	char *ns_dir;
};

static int save(struct creation *cr, struct berth_error **err)
{
	return sandbox_save(cr->dirfd, &cr->sb, err);
}

/* The IPAM of the bridge network for one family: "<bridge>" for IPv4, "<bridge>-v6" for IPv6. */
static int ipam_of(const struct settings *set, bool v6, struct ipam **ret, struct berth_error **err)
{
	char network[64];
	snprintf(network, sizeof(network), "%s%s", set->bridge, v6 ? "-v6" : "");
	return ipam_open(set->state, network, v6 ? set->subnet6 : set->subnet4, ret, err);
}

static int allocate_addresses(struct creation *cr, struct berth_error **err)
{
	const struct settings *set = cr->set;
	const char *subnets[2] = { set->subnet4, set->subnet6 };
	char **slots[2] = { &cr->sb.ip4, &cr->sb.ip6 };
	for (size_t i = 0; i < 2; i++) {
		if (!subnets[i])
			continue;
		char addr[INET6_ADDRSTRLEN];
		struct ipam *m = NULL;
		int r = ipam_of(set, i, &m, err);
		if (r == 0)
			r = ipam_allocate(m, cr->spec->id, addr, err);
		ipam_free(m);
		if (r < 0)
			return r;
		if (!(*slots[i] = strdup(addr)))
			return berth_error_set(err, ENOMEM, "out of memory");
	}
	return save(cr, err);
}

static int gateway_of(const struct settings *set, bool v6, struct link_addr *ret, char gw[INET6_ADDRSTRLEN],
		      struct berth_error **err)
{
	struct ipam *m = NULL;
	int r = ipam_of(set, v6, &m, err);
	if (r < 0)
		return r;
	snprintf(gw, INET6_ADDRSTRLEN, "%s", ipam_gateway(m));
	ret->prefix = ipam_prefix_len(m);
	ret->gateway = gw;
	ipam_free(m);
	return 0;
}

static int bridge_network(struct creation *cr, struct berth_error **err)
{
	const struct settings *set = cr->set;
	char gw4[INET6_ADDRSTRLEN], gw6[INET6_ADDRSTRLEN];
	struct link_addr v4 = { 0 }, v6 = { 0 };
	int r = allocate_addresses(cr, err);
	if (r == 0 && set->subnet4)
		r = gateway_of(set, false, &v4, gw4, err);
	if (r == 0 && set->subnet6)
		r = gateway_of(set, true, &v6, gw6, err);
	if (r < 0)
		return r;
	/* the bridge carries the gateways; the pod gets its own addresses with the same prefixes */
	struct link_addr br4 = { .ip = set->subnet4 ? gw4 : NULL, .prefix = v4.prefix };
	struct link_addr br6 = { .ip = set->subnet6 ? gw6 : NULL, .prefix = v6.prefix };
	v4.ip = cr->sb.ip4;
	v6.ip = cr->sb.ip6;
	r = link_bridge_ensure(set->bridge, &br4, &br6, set->mtu, err);
	if (r == 0)
		r = nat_network_ensure(set->subnet4, set->subnet6, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *netns = NULL;
	if (asprintf(&netns, "%s/net", cr->ns_dir) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int nsfd = open(netns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return berth_error_setsys(err, errno, "%s", netns);
	r = link_veth_create(cr->sb.veth, set->bridge, nsfd, POD_IFNAME, set->mtu, err);
	if (r == 0)
		r = link_pod_configure(netns, POD_IFNAME, &v4, &v6, err);
	if (r == 0 && cr->spec->n_ports)
		r = nat_ports_add(cr->spec->id, cr->sb.ip4, cr->sb.ip6, cr->spec->ports, cr->spec->n_ports, err);
	return r;
}

static char *cni_args_of(const struct pod_spec *spec)
{
	char *args = NULL;
	int r = asprintf(&args, "IgnoreUnknown=1;K8S_POD_NAMESPACE=%s;K8S_POD_NAME=%s;K8S_POD_INFRA_CONTAINER_ID=%s",
			 spec->namespace_ ? spec->namespace_ : "", spec->name ? spec->name : spec->id, spec->id);
	return r < 0 ? NULL : args;
}

static int cni_network(struct creation *cr, struct berth_error **err)
{
	struct cni_network *n = NULL;
	int r = cni_network_load(cr->set->cni_conf_dir, &n, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *netns = NULL, *args = cni_args_of(cr->spec);
	if (asprintf(&netns, "%s/net", cr->ns_dir) < 0 || !args) {
		cni_network_free(n);
		return berth_error_set(err, ENOMEM, "out of memory");
	}
	struct cni_call call = {
		.bin_dirs = cr->set->cni_bin_dir, .container_id = cr->spec->id, .netns_path = netns,
		.ifname = POD_IFNAME, .args = args, .ports = cr->spec->ports, .n_ports = cr->spec->n_ports,
	};
	r = cni_add(n, &call, &cr->sb.cni_result, &cr->sb.ip4, &cr->sb.ip6, err);
	cni_network_free(n);
	return r;
}

static int copy_ports(struct sandbox *sb, const struct pod_spec *spec)
{
	sb->ports = calloc(spec->n_ports + 1, sizeof(*sb->ports));
	sb->port_hosts = calloc(spec->n_ports + 1, sizeof(char *));
	if (!sb->ports || !sb->port_hosts)
		return -ENOMEM;
	for (size_t i = 0; i < spec->n_ports; i++) {
		sb->ports[i] = spec->ports[i];
		sb->ports[i].host_ip = NULL;
		if (spec->ports[i].host_ip && *spec->ports[i].host_ip) {
			if (!(sb->port_hosts[i] = strdup(spec->ports[i].host_ip)))
				return -ENOMEM;
			sb->ports[i].host_ip = sb->port_hosts[i];
		}
	}
	sb->n_ports = spec->n_ports;
	return 0;
}

static int create_steps(struct creation *cr, struct berth_error **err)
{
	const struct pod_spec *spec = cr->spec;
	struct sandbox *sb = &cr->sb;
	snprintf(sb->id, sizeof(sb->id), "%s", spec->id);
	sb->host_network = spec->host_network;
	sb->share_pid = spec->share_pid;
	snprintf(sb->mode, sizeof(sb->mode), "%s", spec->host_network ? "host" : cr->set->cni_conf_dir ? "cni" : "bridge");
	veth_name(spec->id, sb->veth);
	int r = 0;
	if (copy_ports(sb, spec) < 0)
		r = berth_error_set(err, ENOMEM, "out of memory");
	if (r == 0)
		r = save(cr, err);
	if (r == 0 && mkdirat(cr->dirfd, "ns", 0755) < 0)
		r = berth_error_setsys(err, errno, "%s", cr->ns_dir);
	/* host networking means the host's UTS namespace too, as kubelet and containerd have it */
	unsigned which = NS_IPC | (spec->host_network ? 0 : NS_NET | NS_UTS) | (spec->share_pid ? NS_PID : 0);
	char hostname[65] = "";
	if (spec->host_network)
		gethostname(hostname, sizeof(hostname) - 1);
	else
		snprintf(hostname, sizeof(hostname), "%.63s", spec->hostname ? spec->hostname : spec->id);
	if (r == 0)
		r = ns_pin(cr->ns_dir, which, hostname, &sb->init_pid, err);
	if (r == 0)
		r = save(cr, err);
	if (r == 0 && !spec->host_network)
		r = cr->set->cni_conf_dir ? cni_network(cr, err) : bridge_network(cr, err);
	if (r == 0)
		r = save(cr, err);
	if (r == 0)
		r = pod_files_write(cr->dirfd, hostname, sb->ip4, sb->ip6, spec->dns, spec->host_network, err);
	if (r == 0) {
		sb->ready = true;
		r = save(cr, err);
	}
	return r;
}

static int open_pod_dir(const char *dir, struct berth_error **err)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	return fd < 0 ? berth_error_setsys(err, errno, "%s", dir) : fd;
}

/* A pod directory that exists: a ready pod is "already exists"; one whose creator still holds
 * its lock is being created; one left by a creator that died is undone, so the create can go
 * on (1). */
static int take_over_incomplete(const struct netns_config *c, const char *dir, const char *id,
				struct berth_error **err)
{
	_cleanup_close_ int fd = open_pod_dir(dir, err);
	if (fd < 0)
		return fd;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ?
			       berth_error_set(err, EBUSY, "pod sandbox %s is being created by another process", id) :
			       berth_error_setsys(err, errno, "%s", dir);
	struct sandbox sb;
	bool ready = sandbox_load(fd, id, &sb, NULL) == 0 && sb.ready;
	sandbox_clear(&sb);
	if (ready)
		return berth_error_set(err, EEXIST, "pod sandbox %s already exists", id);
	log_warn("pod sandbox %s: undoing what an interrupted creation left", id);
	closep(&fd);
	fd = -EBADF;
	int r = pod_sandbox_remove(c, id, err);
	return r < 0 ? r : 1;
}

/* Makes and locks the pod directory: the lock is held for the whole creation (removal waits for
 * it), so an incomplete pod whose lock is free was left by a creator that died. */
static int make_pod_dir(const struct netns_config *c, const struct settings *set, const char *id, int *ret,
			struct berth_error **err)
{
	_cleanup_free_ char *pods = NULL, *dir = pod_path(set, id, NULL);
	if (asprintf(&pods, "%s/pods", set->state) < 0 || !dir)
		return berth_error_set(err, ENOMEM, "out of memory");
	if (mkdir(set->state, 0711) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "state directory %s", set->state);
	if (mkdir(pods, 0711) < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "%s", pods);
	int r = 0;
	for (int attempt = 0; mkdir(dir, 0755) < 0; attempt++) {
		if (errno != EEXIST)
			return berth_error_setsys(err, errno, "%s", dir);
		if (attempt > 0)
			return berth_error_set(err, EEXIST, "pod sandbox %s already exists", id);
		r = take_over_incomplete(c, dir, id, err);
		if (r < 0)
			return r;
	}
	*ret = open_pod_dir(dir, err);
	if (*ret >= 0 && flock(*ret, LOCK_EX) < 0)
		return berth_error_setsys(err, errno, "locking %s", dir);
	return *ret < 0 ? *ret : 0;
}

/* The subnets are checked before anything is made: a wrong one must not leave a pod behind. */
static int check_subnets(const struct settings *set, struct berth_error **err)
{
	const char *subnets[2] = { set->subnet4, set->subnet6 };
	for (size_t i = 0; i < 2; i++) {
		if (!subnets[i] || set->cni_conf_dir)
			continue;
		struct ipam *m = NULL;
		int r = ipam_of(set, i, &m, err);
		int family = r == 0 ? ipam_family(m) : 0;
		ipam_free(m);
		if (r < 0)
			return r;
		if (family != (i ? AF_INET6 : AF_INET))
			return berth_error_set(err, EINVAL, "%s \"%s\": not an IPv%d subnet", i ? "subnet6" : "subnet4",
					       subnets[i], i ? 6 : 4);
	}
	return 0;
}

int pod_sandbox_create(const struct netns_config *c, const struct pod_spec *spec, struct pod_sandbox_status **ret,
		       struct berth_error **err)
{
	struct settings set = settings_of(c);
	int r = check_spec(spec, err);
	if (r == 0)
		r = check_subnets(&set, err);
	if (r < 0)
		return r;
	struct creation cr = { .set = &set, .spec = spec, .dirfd = -EBADF, .ns_dir = pod_path(&set, spec->id, "ns") };
	if (!cr.ns_dir)
		return berth_error_set(err, ENOMEM, "out of memory");
	r = make_pod_dir(c, &set, spec->id, &cr.dirfd, err);
	bool made = r == 0;
	if (made)
		r = create_steps(&cr, err);
	/* the lock goes with the fd; removal below takes it again */
	if (cr.dirfd >= 0)
		close(cr.dirfd);
	if (r < 0 && made) {
		/* whatever was made goes again; the cause stays the error */
		struct berth_error *ignored = NULL;
		pod_sandbox_remove(c, spec->id, &ignored);
		berth_error_free(ignored);
	}
	sandbox_clear(&cr.sb);
	free(cr.ns_dir);
	if (r < 0)
		return berth_error_wrap(err, "creating pod sandbox %s", spec->id);
	return ret ? pod_sandbox_status(c, spec->id, ret, err) : 0;
}

/* ---- removal ---- */

/* Keeps the first error of a sequence of steps that all run. */
static void keep_first(int r, struct berth_error **step, int *first, struct berth_error **err)
{
	if (r < 0 && *first == 0)
		*first = berth_error_move(err, step);
	else
		*step = berth_error_free(*step);
}

static void release_addresses(const struct settings *set, const char *id, int *first, struct berth_error **err)
{
	const char *subnets[2] = { set->subnet4, set->subnet6 };
	for (size_t i = 0; i < 2; i++) {
		if (!subnets[i])
			continue;
		struct ipam *m = NULL;
		struct berth_error *e = NULL;
		int r = ipam_of(set, i, &m, &e);
		if (r == 0)
			r = ipam_release(m, id, &e);
		ipam_free(m);
		keep_first(r, &e, first, err);
	}
}

/* Whether path is a pinned namespace (the nsfs bind mount), not the empty file under it. */
static bool is_namespace(const char *path)
{
	struct statfs st;
	return statfs(path, &st) == 0 && st.f_type == NSFS_MAGIC;
}

static void undo_cni(const struct settings *set, const struct sandbox *sb, const char *ns_dir, int *first,
		     struct berth_error **err)
{
	struct berth_error *e = NULL;
	struct cni_network *n = NULL;
	int r = cni_network_load(set->cni_conf_dir, &n, &e);
	_cleanup_free_ char *netns = NULL;
	if (r == 0 && asprintf(&netns, "%s/net", ns_dir) < 0)
		r = berth_error_set(&e, ENOMEM, "out of memory");
	struct pod_spec spec = { .id = sb->id };
	_cleanup_free_ char *args = cni_args_of(&spec);
	if (r == 0) {
		/* a namespace that is gone (or was never pinned) is passed as "", as the CNI spec
		 * says, so the plugins still release addresses and rules */
		struct cni_call call = {
			.bin_dirs = set->cni_bin_dir, .container_id = sb->id,
			.netns_path = is_namespace(netns) ? netns : "",
			.ifname = POD_IFNAME, .args = args, .ports = sb->ports, .n_ports = sb->n_ports,
		};
		r = cni_del(n, &call, sb->cni_result, &e);
	}
	cni_network_free(n);
	keep_first(r, &e, first, err);
}

static bool bridge_mode(const struct settings *set, const struct sandbox *sb)
{
	if (strcmp(sb->mode, "cni") == 0 || strcmp(sb->mode, "host") == 0)
		return false;
	return sb->mode[0] || !set->cni_conf_dir;
}

/* What must go while the pod's network namespace is still pinned: the CNI plugins' DEL (they
 * work inside it) and the hostPort rules (before the address can be given again). */
static void undo_network_before_unpin(const struct settings *set, const struct sandbox *sb, const char *ns_dir,
				      int *first, struct berth_error **err)
{
	struct berth_error *e = NULL;
	if (strcmp(sb->mode, "cni") == 0 || (!sb->mode[0] && set->cni_conf_dir))
		undo_cni(set, sb, ns_dir, first, err);
	else if (bridge_mode(set, sb))
		keep_first(nat_ports_remove(sb->id, &e), &e, first, err);
}

/* How long removal waits for the kernel to take the veth pair away with the unpinned namespace
 * before deleting it itself. */
#define VETH_GONE_WAIT_MS 200

/* The veth pair goes with the pod's network namespace once it is unpinned: the kernel's namespace
 * cleanup unregisters it in about half the time an RTM_DELLINK of it takes (it waits for RCU
 * grace periods; the cleanup batches them). If something still holds the namespace (a process
 * left in it), the pair is deleted here. The address is released only after the pair is gone,
 * so it is never given to a new pod while the old eth0 still has it. */
static void undo_network_after_unpin(const struct settings *set, const struct sandbox *sb, int *first,
				     struct berth_error **err)
{
	if (!bridge_mode(set, sb))
		return;
	char veth[16];
	if (sb->veth[0])
		snprintf(veth, sizeof(veth), "%s", sb->veth);
	else
		veth_name(sb->id, veth);
	for (int waited = 0; waited < VETH_GONE_WAIT_MS && link_exists(veth); waited++)
		usleep(1000);
	struct berth_error *e = NULL;
	keep_first(link_delete(veth, &e), &e, first, err);
	release_addresses(set, sb->id, first, err);
}

int pod_sandbox_remove(const struct netns_config *c, const char *id, struct berth_error **err)
{
	struct settings set = settings_of(c);
	int r = check_id(id, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = pod_path(&set, id, NULL), *ns_dir = pod_path(&set, id, "ns");
	if (!dir || !ns_dir)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0 && errno == ENOENT)
		return 0;
	if (dirfd < 0)
		return berth_error_setsys(err, errno, "%s", dir);
	/* a creation in progress finishes first */
	while (flock(dirfd, LOCK_EX) < 0)
		if (errno != EINTR)
			return berth_error_setsys(err, errno, "locking %s", dir);
	struct sandbox sb;
	sandbox_load(dirfd, id, &sb, NULL); /* without it, the steps work from the id */
	int first = 0;
	undo_network_before_unpin(&set, &sb, ns_dir, &first, err);
	struct berth_error *e = NULL;
	keep_first(ns_unpin(ns_dir, sb.init_pid, &e), &e, &first, err);
	undo_network_after_unpin(&set, &sb, &first, err);
	sandbox_clear(&sb);
	if (first < 0)
		return berth_error_wrap(err, "removing pod sandbox %s", id);
	/* the directory goes last: while it exists, a later remove can finish the job */
	_cleanup_free_ char *pods = NULL;
	if (asprintf(&pods, "%s/pods", set.state) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int podsfd = open(pods, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	r = podsfd < 0 ? -errno : remove_tree_at(podsfd, id);
	return r < 0 ? berth_error_setsys(err, -r, "removing %s", dir) : 0;
}

/* ---- status, list ---- */

static int status_paths(const struct settings *set, const struct sandbox *sb, struct pod_sandbox_status *st)
{
	st->netns_path = sb->host_network ? NULL : pod_path(set, sb->id, "ns/net");
	st->ipcns_path = pod_path(set, sb->id, "ns/ipc");
	st->utsns_path = sb->host_network ? NULL : pod_path(set, sb->id, "ns/uts");
	st->pidns_path = sb->share_pid ? pod_path(set, sb->id, "ns/pid") : NULL;
	st->hosts_path = pod_path(set, sb->id, "hosts");
	st->hostname_path = pod_path(set, sb->id, "hostname");
	st->resolv_conf_path = pod_path(set, sb->id, "resolv.conf");
	bool ok = (sb->host_network || (st->netns_path && st->utsns_path)) && st->ipcns_path &&
		  (!sb->share_pid || st->pidns_path) && st->hosts_path && st->hostname_path && st->resolv_conf_path;
	return ok ? 0 : -ENOMEM;
}

int pod_sandbox_status(const struct netns_config *c, const char *id, struct pod_sandbox_status **ret,
		       struct berth_error **err)
{
	struct settings set = settings_of(c);
	int r = check_id(id, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *dir = pod_path(&set, id, NULL);
	if (!dir)
		return berth_error_set(err, ENOMEM, "out of memory");
	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dirfd < 0)
		return errno == ENOENT ? berth_error_set(err, ENOENT, "pod sandbox %s does not exist", id) :
					 berth_error_setsys(err, errno, "%s", dir);
	struct sandbox sb;
	if (sandbox_load(dirfd, id, &sb, NULL) < 0) {
		snprintf(sb.mode, sizeof(sb.mode), "%s", "");
		sb.ready = false;
	}
	struct pod_sandbox_status *st = calloc(1, sizeof(*st));
	r = st ? 0 : -ENOMEM;
	if (r == 0) {
		st->id = strdup(id);
		st->state = strdup(sb.ready ? "ready" : "incomplete");
		st->mode = strdup(sb.mode);
		st->init_pid = sb.init_pid;
		st->ip4 = TAKE_PTR(sb.ip4);
		st->ip6 = TAKE_PTR(sb.ip6);
		r = status_paths(&set, &sb, st);
		if (r == 0 && (!st->id || !st->state || !st->mode))
			r = -ENOMEM;
	}
	sandbox_clear(&sb);
	if (r < 0) {
		pod_sandbox_status_free(st);
		return berth_error_set(err, ENOMEM, "out of memory");
	}
	*ret = st;
	return 0;
}

void pod_sandbox_status_free(struct pod_sandbox_status *s)
{
	if (!s)
		return;
	free(s->id);
	free(s->state);
	free(s->mode);
	free(s->netns_path);
	free(s->ipcns_path);
	free(s->utsns_path);
	free(s->pidns_path);
	free(s->ip4);
	free(s->ip6);
	free(s->hosts_path);
	free(s->hostname_path);
	free(s->resolv_conf_path);
	free(s);
}

int pod_sandbox_list(const struct netns_config *c, char ***ret, struct berth_error **err)
{
	struct settings set = settings_of(c);
	_cleanup_free_ char *pods = NULL;
	if (asprintf(&pods, "%s/pods", set.state) < 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	DIR *d = opendir(pods);
	if (!d && errno != ENOENT)
		return berth_error_setsys(err, errno, "%s", pods);
	size_t n = 0;
	char **v = calloc(1, sizeof(char *));
	if (!v || !d) {
		if (d)
			closedir(d);
		*ret = v;
		return v ? 0 : berth_error_set(err, ENOMEM, "out of memory");
	}
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || check_id(e->d_name, NULL) < 0)
			continue;
		char **nv = realloc(v, (n + 2) * sizeof(char *));
		if (!nv || !(nv[n] = strdup(e->d_name))) {
			if (nv)
				v = nv;
			v[n] = NULL;
			closedir(d);
			strv_free(v);
			return berth_error_set(err, ENOMEM, "out of memory");
		}
		v = nv;
		v[++n] = NULL;
	}
	closedir(d);
	*ret = v;
	return 0;
}
