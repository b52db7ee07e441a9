/* A client of berthd's JSON-lines socket, for the berth command line.
 *
 * Every call opens its own connection, sends one request line, reads one answer line and closes:
 * the commands that use it (exec, attach, port-forward) make a handful of calls in their
 * lifetime, and a connection per call lets port-forward's threads call at once without sharing.
 * The answer tree returned by berthd_call belongs to the caller (bjson_free). The resolver turns
 * what a person types (a full id, a unique id prefix, a name) into the full id berthd wants.
 */
#ifndef BERTH_TOOLS_BERTHD_CLIENT_H
#define BERTH_TOOLS_BERTHD_CLIENT_H

#include "base/error.h"
#include "base/json.h"

#include <stdio.h>

#define BERTHD_DEFAULT_SOCKET "/run/berth/berth.sock"

/* The socket to use: option (--socket) when set, else $BERTH_SOCKET when set and non-empty, else
 * BERTHD_DEFAULT_SOCKET. */
const char *berthd_socket_path(const char *option);

/* A request object with its "op", still open for the caller's fields (berthd_call closes it);
 * NULL when out of memory (berthd_call reports that). */
struct json_writer *berthd_request(const char *op);

/* Sends the request object w (from berthd_request; closed and consumed here, on success and
 * failure alike) and returns the answer in *ret when it says "ok": true. An answer with "ok":
 * false is an error carrying the server's message, with an errno that stands for its "code"
 * (NotFound: ENOENT, InvalidArgument: EINVAL, FailedPrecondition: EBUSY, ...). */
int berthd_call(const char *socket_path, struct json_writer *w, struct json **ret,
		struct berth_error **err);

/* Subscribes to berthd's events: *ret reads one JSON line per event after berthd's "ok". */
int berthd_subscribe(const char *socket_path, FILE **ret, struct berth_error **err);

enum berthd_kind { BERTHD_CONTAINER, BERTHD_POD };

/* The full id of the container (or pod) `given` names: its full id, a container's (pod's) name,
 * or a unique prefix of an id, tried in that order. When several share a name and exactly one of
 * them is running (ready), that one. *ret_state gets its state ("running", "exited", "ready",
 * ...). Errors: ENOENT 'container "x": no such container', ENOTUNIQ for an ambiguous name or
 * prefix. ret_state may be NULL. */
int berthd_resolve(const char *socket_path, enum berthd_kind kind, const char *given, char **ret_id,
		   char **ret_state, struct berth_error **err);

#endif
