/* podnet: a thin command line over netns.h (pod sandboxes), for the integration tests and the
 * pod network benchmark. People will use `berth pod …` through berthd (later issues). */
#include "base/cleanup.h"
#include "base/json.h"
#include "netns/netns.h"
#include "tools/cli.h"
#include "tools/options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "podnet"

static struct netns_config cfg;

static void json_path(struct json_writer *w, const char *key, const char *v)
{
	bjson_writer_key(w, key);
	if (v)
		bjson_writer_string(w, v);
	else
		bjson_writer_null(w);
}

static int print_status(const struct pod_sandbox_status *st)
{
	struct json_writer *w = bjson_writer_new(true);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "id", st->id);
	bjson_writer_kv_string(w, "state", st->state);
	bjson_writer_kv_string(w, "mode", st->mode);
	json_path(w, "netns", st->netns_path);
	json_path(w, "ipcns", st->ipcns_path);
	json_path(w, "utsns", st->utsns_path);
	json_path(w, "pidns", st->pidns_path);
	bjson_writer_kv_int(w, "initPid", st->init_pid);
	json_path(w, "ip4", st->ip4);
	json_path(w, "ip6", st->ip6);
	json_path(w, "hosts", st->hosts_path);
	json_path(w, "hostname", st->hostname_path);
	json_path(w, "resolvConf", st->resolv_conf_path);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	int r = bjson_writer_finish(w, &text, NULL);
	if (r < 0)
		return cli_fail(NULL, r);
	printf("%s\n", text);
	return 0;
}

/* [HOSTIP:]HOSTPORT:CTRPORT[/tcp|udp|sctp]; an IPv6 host IP in brackets. */
static int parse_port(const char *s, struct pod_port *p, char **host_ip)
{
	_cleanup_free_ char *copy = strdup(s);
	if (!copy)
		return cli_fail(NULL, -ENOMEM);
	*p = (struct pod_port){ .protocol = POD_PROTO_TCP };
	char *slash = strchr(copy, '/');
	if (slash) {
		*slash++ = '\0';
		if (strcmp(slash, "tcp") == 0)
			p->protocol = POD_PROTO_TCP;
		else if (strcmp(slash, "udp") == 0)
			p->protocol = POD_PROTO_UDP;
		else if (strcmp(slash, "sctp") == 0)
			p->protocol = POD_PROTO_SCTP;
		else
			return cli_usage("-p %s: protocol \"%s\" is not tcp, udp or sctp", s, slash);
	}
	char *ctr = strrchr(copy, ':');
	if (!ctr)
		return cli_usage("-p %s: expected [HOSTIP:]HOSTPORT:CTRPORT[/PROTO]", s);
	*ctr++ = '\0';
	char *host = strrchr(copy, ':');
	char *hport = copy;
	if (host && copy[0] == '[' && host[-1] == ']') {
		host[-1] = '\0';
		*host++ = '\0';
		hport = host;
		*host_ip = strdup(copy + 1);
	} else if (host) {
		*host++ = '\0';
		hport = host;
		*host_ip = strdup(copy);
	}
	char *end1, *end2;
	long hp = strtol(hport, &end1, 10), cp = strtol(ctr, &end2, 10);
	if (*end1 || *end2 || !*hport || !*ctr || hp < 1 || hp > 65535 || cp < 1 || cp > 65535)
		return cli_usage("-p %s: ports must be 1-65535", s);
	p->host_port = (uint16_t)hp;
	p->container_port = (uint16_t)cp;
	p->host_ip = *host_ip;
	return 0;
}

static size_t count(char **v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	return n;
}

static int cmd_create(int argc, char **argv, int i)
{
	struct pod_spec spec = { 0 };
	bool host = false, share_pid = false;
	char **ports = NULL, **servers = NULL, **searches = NULL, **options = NULL;
	const struct opt opts[] = {
		{ "hostname", 0, OPT_STRING, &spec.hostname },
		{ "name", 0, OPT_STRING, &spec.name },
		{ "namespace", 0, OPT_STRING, &spec.namespace_ },
		{ "host-network", 0, OPT_FLAG, &host },
		{ "share-pid", 0, OPT_FLAG, &share_pid },
		{ "publish", 'p', OPT_LIST, &ports },
		{ "dns-server", 0, OPT_LIST, &servers },
		{ "dns-search", 0, OPT_LIST, &searches },
		{ "dns-option", 0, OPT_LIST, &options },
		{ NULL, 0, 0, NULL },
	};
	/* the id comes first, then its options */
	if (i >= argc)
		return cli_usage("create: usage: " PROG " create ID [options]");
	spec.id = argv[i++];
	int r = cli_parse(argc, argv, &i, opts, "create");
	if (r == 0)
		r = cli_positional(argc, i, 0, 0, "create", "ID [options]");
	size_t n = count(ports);
	struct pod_port *pv = calloc(n + 1, sizeof(*pv));
	char **hosts = calloc(n + 1, sizeof(char *));
	if (r == 0 && (!pv || !hosts))
		r = cli_fail(NULL, -ENOMEM);
	for (size_t k = 0; r == 0 && k < n; k++)
		r = parse_port(ports[k], &pv[k], &hosts[k]);
	struct pod_dns dns = { (const char *const *)servers, (const char *const *)searches,
			       (const char *const *)options };
	const char *const empty[] = { NULL };
	if (!dns.servers)
		dns.servers = empty;
	if (!dns.searches)
		dns.searches = empty;
	if (!dns.options)
		dns.options = empty;
	spec.host_network = host;
	spec.share_pid = share_pid;
	spec.ports = pv;
	spec.n_ports = n;
	spec.dns = servers || searches || options ? &dns : NULL;
	struct pod_sandbox_status *st = NULL;
	struct berth_error *err = NULL;
	if (r == 0) {
		r = pod_sandbox_create(&cfg, &spec, &st, &err);
		r = r < 0 ? cli_fail(err, r) : print_status(st);
	}
	pod_sandbox_status_free(st);
	for (size_t k = 0; hosts && k < n; k++)
		free(hosts[k]);
	free(hosts);
	free(pv);
	free(ports);
	free(servers);
	free(searches);
	free(options);
	return r;
}

static int cmd_remove(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "remove");
	if (r || (r = cli_positional(argc, i, 1, -1, "remove", "ID...")))
		return r;
	int rc = 0;
	for (; i < argc; i++) {
		struct berth_error *err = NULL;
		r = pod_sandbox_remove(&cfg, argv[i], &err);
		if (r < 0)
			rc = cli_fail(err, r);
	}
	return rc;
}

static int cmd_status(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "status");
	if (r || (r = cli_positional(argc, i, 1, 1, "status", "ID")))
		return r;
	struct pod_sandbox_status *st = NULL;
	struct berth_error *err = NULL;
	r = pod_sandbox_status(&cfg, argv[i], &st, &err);
	if (r < 0)
		return cli_fail(err, r);
	r = print_status(st);
	pod_sandbox_status_free(st);
	return r;
}

static int cmd_list(int argc, char **argv, int i)
{
	const struct opt opts[] = { { NULL, 0, 0, NULL } };
	int r = cli_parse(argc, argv, &i, opts, "list");
	if (r || (r = cli_positional(argc, i, 0, 0, "list", "")))
		return r;
	_cleanup_strv_ char **ids = NULL;
	struct berth_error *err = NULL;
	r = pod_sandbox_list(&cfg, &ids, &err);
	if (r < 0)
		return cli_fail(err, r);
	for (char **p = ids; *p; p++)
		printf("%s\n", *p);
	return 0;
}

int main(int argc, char **argv)
{
	const char *mtu = NULL;
	const struct opt opts[] = {
		{ "state", 0, OPT_STRING, &cfg.state_dir },
		{ "bridge", 0, OPT_STRING, &cfg.bridge },
		{ "subnet4", 0, OPT_STRING, &cfg.subnet4 },
		{ "subnet6", 0, OPT_STRING, &cfg.subnet6 },
		{ "mtu", 0, OPT_STRING, &mtu },
		{ "cni-conf-dir", 0, OPT_STRING, &cfg.cni_conf_dir },
		{ "cni-bin-dir", 0, OPT_STRING, &cfg.cni_bin_dir },
		{ NULL, 0, 0, NULL },
	};
	cli_init(PROG, 2, NULL);
	int i = 1;
	int r = cli_parse(argc, argv, &i, opts, PROG);
	if (r)
		return r;
	if (mtu) {
		char *end;
		long v = strtol(mtu, &end, 10);
		if (*end || v < 576 || v > 65535)
			return cli_usage("--mtu %s: expects 576-65535", mtu);
		cfg.mtu = (unsigned)v;
	}
	if (i >= argc)
		return cli_usage("usage: " PROG " [options] create|remove|status|list ...");
	const char *cmd = argv[i++];
	if (strcmp(cmd, "create") == 0)
		return cmd_create(argc, argv, i);
	if (strcmp(cmd, "remove") == 0)
		return cmd_remove(argc, argv, i);
	if (strcmp(cmd, "status") == 0)
		return cmd_status(argc, argv, i);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(argc, argv, i);
	return cli_usage("unknown command \"%s\"", cmd);
}
