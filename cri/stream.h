/* berthd's streaming server: the URLs the CRI's Exec, Attach and PortForward answer with (and the
 * JSON API's stream.* ops), served as Kubernetes' WebSocket protocols: v5/v4.channel.k8s.io for
 * exec and attach, portforward.k8s.io (data and error channel per port) for port forwarding.
 *
 * A URL is http://<address>:<port>/<exec|attach|portforward>/<token>: the token (128 random
 * bits) is good for one session and expires stream_url_timeout after it was issued. Each session
 * runs on its own thread with blocking I/O: an exec's process comes from the container's shim
 * (same namespaces, cgroup, capabilities and seccomp as the container), an attach is the shim's
 * attach stream, a port forward a TCP connection opened inside the pod's network namespace. */
#ifndef BERTH_CRI_STREAM_H
#define BERTH_CRI_STREAM_H

#include "base/error.h"
#include "cri/config.h"
#include "cri/manager.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stream_server;

#define STREAM_MAX_PORTS 16

/* Binds cfg's stream_address:stream_port and starts accepting. */
int stream_server_start(const struct berthd_config *cfg, struct manager *m,
			struct stream_server **ret, struct berth_error **err);
/* Stops accepting, ends every session (an exec's process is killed by its shim) and frees. */
void stream_server_free(struct stream_server *s);
/* "http://127.0.0.1:PORT" */
const char *stream_server_base_url(const struct stream_server *s);

struct stream_exec {
	const char *container_id;
	char *const *cmd; /* NULL-terminated, non-empty */
	bool tty, in, out, errs;
};

/* A URL (malloc'd) for an exec or attach (cmd unused) once the request is checked:
 * -ENOENT for an unknown container, -EINVAL for a bad field (named), -EBUSY... as the manager
 * says for one that does not run. */
int stream_server_exec_url(struct stream_server *s, const struct stream_exec *req, char **ret_url,
			   struct berth_error **err);
int stream_server_attach_url(struct stream_server *s, const struct stream_exec *req,
			     char **ret_url, struct berth_error **err);
/* ports: 1 to STREAM_MAX_PORTS TCP ports of the pod (each 1-65535). */
int stream_server_port_forward_url(struct stream_server *s, const char *pod_id,
				   const int32_t *ports, size_t n_ports, char **ret_url,
				   struct berth_error **err);

#endif
