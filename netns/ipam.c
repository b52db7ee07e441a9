/* IP address management for the built-in bridge network (see ipam-internal.h for the on-disk
 * contract). Addresses are handled as 128-bit integers (IPv4 in the low 32 bits), so one path
 * serves both families. Every operation takes the directory's lock for its whole length: a scan
 * for the pod's existing reservation, then O_EXCL creates of candidates after "last". */
#include "netns/ipam-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

typedef unsigned __int128 u128;

/* Candidates tried per allocation. An IPv6 /64 holds 2^64 addresses, so a full scan is
 * impossible; sequential allocation after "last" finds a free one at once unless this many in a
 * row are taken, which for any realistic node means the subnet is full. */
#define IPAM_SCAN_MAX 65536
#define POD_ID_MAX    255

struct ipam {
	int dirfd; /* <state_dir>/ipam/<network> */
	int family;
	unsigned prefix;
	char *subnet; /* as given, for messages */
	u128 first; /* the range given to pods: after the gateway ... */
	u128 last; /* ... up to the broadcast address (IPv4) or the subnet's end (IPv6) */
	char gateway[INET6_ADDRSTRLEN];
};

static size_t addr_bytes(int family)
{
	return family == AF_INET ? 4 : 16;
}

static bool addr_parse(int family, const char *text, u128 *ret)
{
	unsigned char b[16];
	if (inet_pton(family, text, b) != 1)
		return false;
	u128 v = 0;
	for (size_t i = 0; i < addr_bytes(family); i++)
		v = v << 8 | b[i];
	*ret = v;
	return true;
}

static void addr_format(int family, u128 v, char ret[INET6_ADDRSTRLEN])
{
	unsigned char b[16];
	for (size_t i = addr_bytes(family); i-- > 0; v >>= 8)
		b[i] = (unsigned char)v;
	inet_ntop(family, b, ret, INET6_ADDRSTRLEN);
}

/* Strictly "address/prefix": a decimal prefix without sign or leading zero, no host bits, and
 * room for at least one pod after the network address, the gateway and (IPv4) broadcast. */
static int parse_cidr(struct ipam *m, const char *subnet, struct berth_error **err)
{
	const char *slash = strchr(subnet, '/');
	char addr[INET6_ADDRSTRLEN];
	u128 net;
	if (!slash || (size_t)(slash - subnet) >= sizeof(addr))
		return berth_error_set(err, EINVAL, "subnet \"%s\": not address/prefix", subnet);
	snprintf(addr, sizeof(addr), "%.*s", (int)(slash - subnet), subnet);
	m->family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	if (!addr_parse(m->family, addr, &net))
		return berth_error_set(err, EINVAL, "subnet \"%s\": invalid address %s", subnet,
				       addr);
	const char *p = slash + 1;
	unsigned bits = (unsigned)addr_bytes(m->family) * 8, max = bits - 2;
	if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 3 || (p[0] == '0' && p[1]))
		return berth_error_set(err, EINVAL, "subnet \"%s\": invalid prefix length", subnet);
	m->prefix = (unsigned)atoi(p);
	if (m->prefix > max)
		return berth_error_set(
			err, EINVAL,
			"subnet \"%s\": prefix longer than /%u leaves no address for pods", subnet,
			max);
	unsigned host = bits - m->prefix;
	u128 hostmask = host >= 128 ? ~(u128)0 : ((u128)1 << host) - 1;
	if (net & hostmask) {
		char fixed[INET6_ADDRSTRLEN];
		addr_format(m->family, net & ~hostmask, fixed);
		return berth_error_set(err, EINVAL,
				       "subnet \"%s\" has host bits set (the network is %s/%u)",
				       subnet, fixed, m->prefix);
	}
	m->first = net + 2;
	m->last = (net | hostmask) - (m->family == AF_INET ? 1 : 0);
	addr_format(m->family, net + 1, m->gateway);
	return 0;
}

/* A network name becomes a directory name: no separators, no dot names. */
static bool network_name_ok(const char *n)
{
	size_t len = strlen(n);
	return len > 0 && len <= 64 && n[0] != '.' &&
	       strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
		       len;
}

static bool pod_id_ok(const char *id)
{
	return id && *id && strlen(id) <= POD_ID_MAX && !strchr(id, '\n');
}

/* mkdir -p, opening the last component. */
static int open_dirs(const char *path, struct berth_error **err)
{
	_cleanup_free_ char *p = strdup(path);
	if (!p)
		return berth_error_set(err, ENOMEM, "create %s: out of memory", path);
	for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return berth_error_setsys(err, errno, "create directory %s", p);
		if (!s)
			break;
		*s = '/';
	}
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? berth_error_setsys(err, errno, "open directory %s", p) : fd;
}

int ipam_open(const char *state_dir, const char *network, const char *subnet, struct ipam **ret,
	      struct berth_error **err)
{
	if (!network_name_ok(network))
		return berth_error_set(err, EINVAL, "invalid IPAM network name \"%s\"", network);
	struct ipam *m = calloc(1, sizeof(*m));
	if (!m)
		return berth_error_set(err, ENOMEM, "IPAM %s: out of memory", network);
	m->dirfd = -EBADF;
	char dir[PATH_MAX];
	int r = parse_cidr(m, subnet, err);
	if (r >= 0 && !(m->subnet = strdup(subnet)))
		r = berth_error_set(err, ENOMEM, "IPAM %s: out of memory", network);
	if (r >= 0 &&
	    snprintf(dir, sizeof(dir), "%s/ipam/%s", state_dir, network) >= (int)sizeof(dir))
		r = berth_error_set(err, ENAMETOOLONG, "IPAM %s: state directory path too long",
				    network);
	if (r >= 0)
		r = m->dirfd = open_dirs(dir, err);
	if (r < 0) {
		ipam_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

void ipam_free(struct ipam *m)
{
	if (!m)
		return;
	if (m->dirfd >= 0)
		close(m->dirfd);
	free(m->subnet);
	free(m);
}

int ipam_family(const struct ipam *m)
{
	return m->family;
}

unsigned ipam_prefix_len(const struct ipam *m)
{
	return m->prefix;
}

const char *ipam_gateway(const struct ipam *m)
{
	return m->gateway;
}

/* The directory's lock, held until the returned fd is closed. Each operation opens its own lock
 * file description, so two threads sharing one struct ipam exclude each other too. */
static int ipam_lock(struct ipam *m, int how, struct berth_error **err)
{
	int fd = openat(m->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return berth_error_setsys(err, errno, "IPAM %s: open lock", m->subnet);
	while (flock(fd, how) < 0) {
		if (errno != EINTR) {
			int e = errno;
			close(fd);
			return berth_error_setsys(err, e, "IPAM %s: lock", m->subnet);
		}
	}
	return fd;
}

/* The pod id in a reservation file ("" when empty). */
static int read_owner(struct ipam *m, const char *name, char owner[POD_ID_MAX + 2],
		      struct berth_error **err)
{
	_cleanup_close_ int fd = openat(m->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? -ENOENT
				       : berth_error_setsys(err, errno, "IPAM %s: open %s",
							    m->subnet, name);
	ssize_t n;
	while ((n = read(fd, owner, POD_ID_MAX + 1)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return berth_error_setsys(err, errno, "IPAM %s: read %s", m->subnet, name);
	owner[n] = '\0';
	owner[strcspn(owner, "\n")] = '\0';
	return 0;
}

enum scan_mode { SCAN_FIND, SCAN_RELEASE, SCAN_COUNT };

static void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}

/* One reservation: find (returns 1 and fills found), release or merely count it. An empty file is
 * an allocator killed between its O_EXCL create and its write; under the exclusive lock nobody
 * else is between the two, so it is reclaimed. */
static int scan_one(struct ipam *m, const char *name, enum scan_mode mode, const char *pod_id,
		    char found[INET6_ADDRSTRLEN], struct berth_error **err)
{
	char owner[POD_ID_MAX + 2];
	int r = read_owner(m, name, owner, err);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	if (!owner[0] || (mode == SCAN_RELEASE && strcmp(owner, pod_id) == 0)) {
		if (!owner[0])
			log_debug("IPAM %s: reclaiming %s, left empty by an interrupted allocation",
				  m->subnet, name);
		if (unlinkat(m->dirfd, name, 0) < 0 && errno != ENOENT)
			return berth_error_setsys(err, errno, "IPAM %s: remove %s", m->subnet,
						  name);
		return 0;
	}
	if (mode == SCAN_FIND && strcmp(owner, pod_id) == 0) {
		snprintf(found, INET6_ADDRSTRLEN, "%s", name);
		return 1;
	}
	return 0;
}

/* Walks the reservation files (names that are addresses of the subnet's family). SCAN_COUNT
 * returns their number; SCAN_FIND 1 when the pod has one. */
static int scan(struct ipam *m, enum scan_mode mode, const char *pod_id,
		char found[INET6_ADDRSTRLEN], struct berth_error **err)
{
	int fd = openat(m->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_(closedirp) DIR *d = fd < 0 ? NULL : fdopendir(fd);
	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return berth_error_setsys(err, e, "IPAM %s: read its directory", m->subnet);
	}
	int n = 0;
	struct dirent *de;
	u128 a;
	while ((errno = 0, de = readdir(d))) {
		if (!addr_parse(m->family, de->d_name, &a))
			continue;
		n++;
		int r = mode == SCAN_COUNT ? 0 : scan_one(m, de->d_name, mode, pod_id, found, err);
		if (r != 0)
			return r;
	}
	if (errno)
		return berth_error_setsys(err, errno, "IPAM %s: read its directory", m->subnet);
	return mode == SCAN_COUNT ? n : 0;
}

/* Where the last allocation stopped; before the range when unknown or outside it (a changed
 * subnet, a file cut short by a crash). */
static u128 read_last(struct ipam *m)
{
	char buf[INET6_ADDRSTRLEN + 1] = "";
	_cleanup_close_ int fd = openat(m->dirfd, "last", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	u128 v;
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return m->first - 1;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return addr_parse(m->family, buf, &v) && v >= m->first && v <= m->last ? v : m->first - 1;
}

static void write_last(struct ipam *m, const char *addr)
{
	_cleanup_close_ int fd = openat(
		m->dirfd, "last", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	/* only rotation depends on it: the reservation itself is made */
	if (fd < 0 || write(fd, addr, strlen(addr)) != (ssize_t)strlen(addr))
		log_warn("IPAM %s: could not record the last address given (%s): %m", m->subnet,
			 addr);
}

/* 1 when name was free and is now the pod's, 0 when taken. */
static int reserve(struct ipam *m, const char *name, const char *pod_id, struct berth_error **err)
{
	_cleanup_close_ int fd =
		openat(m->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return errno == EEXIST ? 0
				       : berth_error_setsys(err, errno, "IPAM %s: create %s",
							    m->subnet, name);
	int r = write_all(fd, pod_id, strlen(pod_id));
	if (r < 0) {
		(void)unlinkat(m->dirfd, name, 0);
		return berth_error_setsys(err, -r, "IPAM %s: write %s", m->subnet, name);
	}
	return 1;
}

int ipam_allocate(struct ipam *m, const char *pod_id, char ret[INET6_ADDRSTRLEN],
		  struct berth_error **err)
{
	char name[INET6_ADDRSTRLEN];
	if (!pod_id_ok(pod_id))
		return berth_error_set(err, EINVAL, "IPAM %s: invalid pod id", m->subnet);
	_cleanup_close_ int lock = ipam_lock(m, LOCK_EX, err);
	if (lock < 0)
		return lock;
	int r = scan(m, SCAN_FIND, pod_id, name, err);
	if (r != 0) {
		if (r > 0)
			memcpy(ret, name, INET6_ADDRSTRLEN);
		return r < 0 ? r : 0;
	}
	u128 size = m->last - m->first + 1, a = read_last(m);
	u128 tries = size < IPAM_SCAN_MAX ? size : IPAM_SCAN_MAX;
	for (u128 i = 0; i < tries; i++) {
		a = a >= m->last || a < m->first ? m->first : a + 1;
		addr_format(m->family, a, name);
		r = reserve(m, name, pod_id, err);
		if (r < 0)
			return r;
		if (r > 0) {
			write_last(m, name);
			memcpy(ret, name, INET6_ADDRSTRLEN);
			return 0;
		}
	}
	if (tries < size)
		return berth_error_set(
			err, ENOSPC,
			"IPAM: no free address in subnet %s (%d tried after the last given)",
			m->subnet, IPAM_SCAN_MAX);
	return berth_error_set(err, ENOSPC, "IPAM: no free address in subnet %s", m->subnet);
}

int ipam_release(struct ipam *m, const char *pod_id, struct berth_error **err)
{
	if (!pod_id_ok(pod_id))
		return berth_error_set(err, EINVAL, "IPAM %s: invalid pod id", m->subnet);
	_cleanup_close_ int lock = ipam_lock(m, LOCK_EX, err);
	return lock < 0 ? lock : scan(m, SCAN_RELEASE, pod_id, NULL, err);
}

int ipam_count(struct ipam *m, struct berth_error **err)
{
	_cleanup_close_ int lock = ipam_lock(m, LOCK_SH, err);
	return lock < 0 ? lock : scan(m, SCAN_COUNT, NULL, NULL, err);
}
