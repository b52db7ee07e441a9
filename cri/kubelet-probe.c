/* The kubelet loop's probes and lifecycle handlers: exec (through the manager's ExecSync),
 * tcpSocket (a connect within the timeout) and httpGet (a small blocking HTTP/1.1 client: one
 * GET, the status line read, 200-399 is success), and sleep. The target is the pod's IP, or
 * 127.0.0.1 with the node's network, unless the probe names a host. */
#include "base/cleanup.h"
#include "base/log.h"
#include "cri/kubelet-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t ms_left(int64_t deadline)
{
	int64_t left = (deadline - kubelet_mono_ns()) / 1000000;
	return left > 0 ? left : 0;
}

/* A numeric address and port into *ret. */
static int sockaddr_of(const char *host, int port, struct sockaddr_storage *ret, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ret;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ret;
	*ret = (struct sockaddr_storage){ 0 };
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a6);
		return 0;
	}
	return -EINVAL;
}

static int connect_within(const char *host, int port, int64_t deadline, int *ret_fd,
			  struct berth_error **err)
{
	struct sockaddr_storage sa;
	socklen_t len;
	if (sockaddr_of(host, port, &sa, &len) < 0)
		return berth_error_set(err, EINVAL, "%s is not a numeric address", host);
	_cleanup_close_ int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return berth_error_setsys(err, errno, "socket");
	if (connect(fd, (struct sockaddr *)&sa, len) < 0 && errno != EINPROGRESS)
		return berth_error_setsys(err, errno, "connect %s:%d", host, port);
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	int r = poll(&pfd, 1, (int)ms_left(deadline));
	if (r == 0)
		return berth_error_set(err, ETIMEDOUT, "connect %s:%d: timed out", host, port);
	int so = 0;
	socklen_t sl = sizeof(so);
	if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
		return berth_error_setsys(err, errno, "connect %s:%d", host, port);
	if (so)
		return berth_error_setsys(err, so, "connect %s:%d", host, port);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int kubelet_tcp_check(const char *host, int port, int64_t timeout_ms, struct berth_error **err)
{
	int fd = -EBADF;
	int r = connect_within(host, port, kubelet_mono_ns() + timeout_ms * 1000000, &fd, err);
	if (fd >= 0)
		close(fd);
	return r;
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
	while (len) {
		struct pollfd pfd = { .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, (int)ms_left(deadline)) <= 0)
			return -ETIMEDOUT;
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	return 0;
}

/* Reads until the status line is whole: "HTTP/1.x NNN ...". */
static int read_status(int fd, int64_t deadline, struct berth_error **err)
{
	char buf[512];
	size_t got = 0;
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		if (poll(&pfd, 1, (int)ms_left(deadline)) <= 0)
			return berth_error_set(err, ETIMEDOUT, "no answer within the timeout");
		ssize_t n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0);
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return berth_error_setsys(err, errno, "read");
		if (n > 0)
			got += (size_t)n;
	}
	buf[got] = '\0';
	int code = 0;
	if (sscanf(buf, "HTTP/1.%*d %3d", &code) != 1 || code < 100 || code > 999)
		return berth_error_set(err, EPROTO, "not an HTTP answer: \"%.40s\"", buf);
	return code;
}

int kubelet_http_get(const char *host, int port, const char *path,
		     const struct pod_http_header *hdrs, size_t n_hdrs, int64_t timeout_ms,
		     struct berth_error **err)
{
	int64_t deadline = kubelet_mono_ns() + timeout_ms * 1000000;
	_cleanup_close_ int fd = -EBADF;
	int r = connect_within(host, port, deadline, &fd, err);
	if (r < 0)
		return r;
	_cleanup_free_ char *req = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&req, &len);
	if (!f)
		return berth_error_set(err, ENOMEM, "out of memory");
	bool has_host = false, has_ua = false;
	for (size_t i = 0; i < n_hdrs; i++) {
		has_host = has_host || strcasecmp(hdrs[i].name, "Host") == 0;
		has_ua = has_ua || strcasecmp(hdrs[i].name, "User-Agent") == 0;
	}
	fprintf(f, "GET %s HTTP/1.1\r\n", path && *path ? path : "/");
	if (!has_host)
		fprintf(f, strchr(host, ':') ? "Host: [%s]:%d\r\n" : "Host: %s:%d\r\n", host, port);
	if (!has_ua)
		fputs("User-Agent: kube-probe/berth\r\n", f);
	fputs("Accept: */*\r\nConnection: close\r\n", f);
	for (size_t i = 0; i < n_hdrs; i++)
		fprintf(f, "%s: %s\r\n", hdrs[i].name, hdrs[i].value);
	fputs("\r\n", f);
	if (fclose(f) != 0)
		return berth_error_set(err, ENOMEM, "out of memory");
	if ((r = send_all(fd, req, len, deadline)) < 0)
		return berth_error_setsys(err, -r, "sending the request");
	return read_status(fd, deadline, err);
}

/* ---- against a pod ---- */

static const char *target_host(const struct kpod *p, const char *host)
{
	if (host)
		return host;
	if (p->man->spec.host_network || !p->pod_ip)
		return "127.0.0.1";
	return p->pod_ip;
}

static int http_action(struct kpod *p, const struct pod_http_get *h, int64_t timeout_s,
		       struct berth_error **err)
{
	const char *host = target_host(p, h->host);
	int code = kubelet_http_get(host, (int)h->port.number, h->path, h->http_headers,
				    h->n_http_headers, timeout_s * 1000, err);
	if (code < 0)
		return code;
	if (code < 200 || code >= 400)
		return berth_error_set(err, EIO, "HTTP probe failed with statuscode: %d", code);
	return 0;
}

static int exec_action(struct kpod *p, struct kctr *c, char *const *argv, int64_t timeout_s,
		       struct berth_error **err)
{
	struct shim_exec_result res = { 0 };
	int r = manager_container_exec_sync(p->k->m, c->id, argv, timeout_s, &res, err);
	if (r < 0)
		return r;
	int code = res.exit_code;
	shim_exec_result_clear(&res);
	if (code != 0)
		return berth_error_set(err, EIO, "command %s exited %d", argv[0], code);
	return 0;
}

int kubelet_probe_run(struct kpod *p, struct kctr *c, const struct pod_probe *pr, char **ret_msg)
{
	_cleanup_error_ struct berth_error *err = NULL;
	int r;
	if (pr->exec)
		r = exec_action(p, c, pr->exec->command, pr->timeout_seconds, &err);
	else if (pr->http_get)
		r = http_action(p, pr->http_get, pr->timeout_seconds, &err);
	else
		r = kubelet_tcp_check(target_host(p, pr->tcp_socket->host),
				      (int)pr->tcp_socket->port.number, pr->timeout_seconds * 1000,
				      &err);
	if (r < 0 && ret_msg)
		*ret_msg = err ? strdup(err->msg) : NULL;
	return r < 0 ? 0 : 1;
}

int kubelet_handler_run(struct kpod *p, struct kctr *c, const struct pod_lifecycle_handler *h,
			int64_t timeout_s, struct berth_error **err)
{
	if (h->exec)
		return exec_action(p, c, h->exec->command, timeout_s, err);
	if (h->http_get)
		return http_action(p, h->http_get, timeout_s, err);
	/* a plain sleep: a preStop's runs while the worker is already stopping */
	int64_t s = h->sleep->seconds < timeout_s ? h->sleep->seconds : timeout_s;
	struct timespec ts = { .tv_sec = (time_t)s };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	return 0;
}
