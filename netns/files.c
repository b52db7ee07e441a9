/* A pod's /etc/hosts, /etc/hostname and /etc/resolv.conf. Containers bind-mount them, so each is
 * replaced whole (write to a temporary file, rename): a container never reads half a file. */
#include "netns/files-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define HOST_HOSTS "/etc/hosts"
#define HOST_RESOLV_CONF "/etc/resolv.conf"
#define FILE_MODE 0644
#define HOSTNAME_MAX 64 /* the kernel's limit for sethostname */

/* The lines Docker writes, which images have come to expect (ip6-localhost, ip6-allnodes…). */
static const char hosts_localhost[] = "127.0.0.1\tlocalhost\n"
				      "::1\tlocalhost ip6-localhost ip6-loopback\n"
				      "fe00::0\tip6-localnet\n"
				      "ff00::0\tip6-mcastprefix\n"
				      "ff02::1\tip6-allnodes\n"
				      "ff02::2\tip6-allrouters\n";

/* A word of these files: white space ends it, '#' starts a comment. */
static bool is_word(const char *s)
{
	if (!*s)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == '#')
			return false;
	return true;
}

static bool is_ip(int family, const char *s)
{
	unsigned char buf[16];
	return inet_pton(family, s, buf) == 1;
}

static bool is_any_ip(const char *s)
{
	return is_ip(AF_INET, s) || is_ip(AF_INET6, s);
}

static int check_list(const char *const *v, const char *field, bool ips, struct berth_error **err)
{
	for (size_t i = 0; v && v[i]; i++) {
		if (ips && !is_any_ip(v[i]))
			return berth_error_set(err, EINVAL, "%s[%zu]: not an IP address", field, i);
		if (!ips && !is_word(v[i]))
			return berth_error_set(
				err, EINVAL,
				"%s[%zu]: empty, or holds white space, a control character or '#'",
				field, i);
	}
	return 0;
}

/* NULL and "" both mean "no address". */
static bool has(const char *s)
{
	return s && *s;
}

static int check_args(const char *hostname, const char *ip4, const char *ip6,
		      const struct pod_dns *dns, struct berth_error **err)
{
	if (!hostname || !is_word(hostname) || strlen(hostname) > HOSTNAME_MAX)
		return berth_error_set(
			err, EINVAL,
			"hostname: missing, longer than %d bytes, or holds white space, a control "
			"character or '#'",
			HOSTNAME_MAX);
	if (has(ip4) && !is_ip(AF_INET, ip4))
		return berth_error_set(err, EINVAL, "ip4: not an IPv4 address");
	if (has(ip6) && !is_ip(AF_INET6, ip6))
		return berth_error_set(err, EINVAL, "ip6: not an IPv6 address");
	if (!dns)
		return 0;
	int r = check_list(dns->servers, "dns.servers", true, err);
	if (r == 0)
		r = check_list(dns->searches, "dns.searches", false, err);
	if (r == 0)
		r = check_list(dns->options, "dns.options", false, err);
	return r;
}

/* A host file, or "" when the host has none. */
static int read_host_file(const char *path, char **ret, struct berth_error **err)
{
	struct berth_error *e = NULL;
	int r = read_file_at(AT_FDCWD, path, ret, NULL, &e);
	if (r == -ENOENT) {
		e = berth_error_free(e);
		*ret = strdup("");
		return *ret ? 0 : berth_error_set(err, ENOMEM, "read %s: out of memory", path);
	}
	return r < 0 ? berth_error_move(err, &e) : 0;
}

/* *ret: what fn writes to a memory stream (a hosts or resolv.conf file being built). */
static int build_text(int (*fn)(FILE *f, const void *arg, struct berth_error **err),
		      const void *arg, char **ret, size_t *ret_len, const char *name,
		      struct berth_error **err)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return berth_error_setsys(err, errno, "build %s", name);
	int r = fn(f, arg, err);
	bool failed = ferror(f);
	if (fclose(f) != 0 || failed)
		return r < 0 ? r : berth_error_set(err, ENOMEM, "build %s: out of memory", name);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

struct hosts_args {
	const char *hostname, *ip4, *ip6;
	bool host_network;
};

static int hosts_build(FILE *f, const void *arg, struct berth_error **err)
{
	const struct hosts_args *a = arg;
	if (a->host_network) {
		_cleanup_free_ char *host = NULL;
		int r = read_host_file(HOST_HOSTS, &host, err);
		if (r < 0)
			return r;
		fputs(*host ? host : hosts_localhost, f);
		return 0;
	}
	fputs(hosts_localhost, f);
	if (has(a->ip4))
		fprintf(f, "%s\t%s\n", a->ip4, a->hostname);
	if (has(a->ip6))
		fprintf(f, "%s\t%s\n", a->ip6, a->hostname);
	return 0;
}

static void put_list(FILE *f, const char *key, const char *const *v)
{
	if (!v || !v[0])
		return;
	fputs(key, f);
	for (size_t i = 0; v[i]; i++)
		fprintf(f, " %s", v[i]);
	fputc('\n', f);
}

static int resolv_from_dns(FILE *f, const void *arg, struct berth_error **err)
{
	const struct pod_dns *dns = arg;
	for (size_t i = 0; dns->servers && dns->servers[i]; i++)
		fprintf(f, "nameserver %s\n", dns->servers[i]);
	put_list(f, "search", dns->searches);
	put_list(f, "options", dns->options);
	return 0;
}

static bool is_loopback(const char *addr)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t n = strcspn(addr, "%"); /* fe80::1%eth0: the zone is not part of the address */
	if (n >= sizeof(buf))
		return false;
	memcpy(buf, addr, n);
	buf[n] = '\0';
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, buf, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, buf, &a6) != 1)
		return false;
	return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
}

/* The address of a "nameserver ADDR" line, cut out into buf; NULL for any other line. */
static const char *nameserver_of(const char *line, size_t len, char *buf, size_t size)
{
	static const char key[] = "nameserver";
	size_t i = strspn(line, " \t");
	if (len < i + sizeof(key) || strncmp(line + i, key, sizeof(key) - 1) != 0 ||
	    (line[i + sizeof(key) - 1] != ' ' && line[i + sizeof(key) - 1] != '\t'))
		return NULL;
	i += sizeof(key) - 1;
	i += strspn(line + i, " \t");
	size_t n = strcspn(line + i, " \t\n");
	if (n == 0 || n >= size || i + n > len)
		return NULL;
	memcpy(buf, line + i, n);
	buf[n] = '\0';
	return buf;
}

/* The host's file; in a pod network namespace without the loopback nameservers, which would be
 * the pod's own loopback there (Docker drops them too). */
static int resolv_from_host(FILE *f, const void *arg, struct berth_error **err)
{
	bool host_network = *(const bool *)arg;
	_cleanup_free_ char *host = NULL;
	int r = read_host_file(HOST_RESOLV_CONF, &host, err);
	if (r < 0)
		return r;
	if (host_network) {
		fputs(host, f);
		return 0;
	}
	size_t kept = 0;
	for (const char *line = host; *line;) {
		size_t len = strcspn(line, "\n");
		char addr[128];
		const char *ns = nameserver_of(line, len, addr, sizeof(addr));
		if (!ns || !is_loopback(ns)) {
			fprintf(f, "%.*s\n", (int)len, line);
			kept += ns != NULL;
		} else {
			log_debug("resolv.conf: dropped the host's loopback nameserver %s", ns);
		}
		line += len + (line[len] == '\n');
	}
	if (kept == 0)
		log_warn("resolv.conf: the host's %s names no nameserver a pod can reach "
			 "(loopback ones are dropped): the pod has none",
			 HOST_RESOLV_CONF);
	return 0;
}

static int write_built(int dirfd, const char *name,
		       int (*fn)(FILE *f, const void *arg, struct berth_error **err),
		       const void *arg, struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = build_text(fn, arg, &text, &len, name, err);
	if (r < 0)
		return r;
	return write_file_atomic_at(dirfd, name, text, len, FILE_MODE, false, err);
}

static int hostname_build(FILE *f, const void *arg, struct berth_error **err)
{
	fprintf(f, "%s\n", (const char *)arg);
	return 0;
}

int pod_files_write(int dirfd, const char *hostname, const char *ip4, const char *ip6,
		    const struct pod_dns *dns, bool host_network, struct berth_error **err)
{
	int r = check_args(hostname, ip4, ip6, dns, err);
	if (r < 0)
		return r;
	struct hosts_args h = {
		.hostname = hostname, .ip4 = ip4, .ip6 = ip6, .host_network = host_network
	};
	r = write_built(dirfd, "hosts", hosts_build, &h, err);
	if (r == 0)
		r = write_built(dirfd, "hostname", hostname_build, hostname, err);
	if (r == 0)
		r = dns ? write_built(dirfd, "resolv.conf", resolv_from_dns, dns, err)
			: write_built(dirfd, "resolv.conf", resolv_from_host, &host_network, err);
	return r;
}
