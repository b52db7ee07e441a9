/* The OCI runtime-spec linux.seccomp object: parsed and validated early, compiled and loaded late.
 *
 * The runtime parses the profile with oci_seccomp_parse when it reads config.json (or
 * process.json), so every mistake in it — an unknown action, architecture, flag or operator, a
 * bad argument index, SCMP_ACT_NOTIFY without a listener — is refused before anything is created,
 * with the full field path in the message. The parsed object is immutable and owns all its
 * strings; the parser's JSON tree can be freed right after. Free it with oci_seccomp_free.
 *
 * The container's init calls oci_seccomp_load last, right before execve: it builds the filter
 * with libseccomp (syscall names this architecture does not know are skipped, as runc and crun
 * do) and installs it in the calling process. When the profile uses SCMP_ACT_NOTIFY the load
 * hands back the listener fd, which someone outside the container then passes to the seccomp
 * agent at listenerPath with oci_seccomp_send_notify_fd.
 */
#ifndef BERTH_RUNTIME_SECCOMP_INTERNAL_H
#define BERTH_RUNTIME_SECCOMP_INTERNAL_H

#include "base/error.h"
#include "base/json.h"

#include <stdbool.h>
#include <sys/types.h>

/* Opaque: a parsed and validated linux.seccomp profile. */
struct oci_seccomp;

/* Parses linux.seccomp. node is the "seccomp" object; prefix names it in error messages
 * ("linux.seccomp"), so an error reads "linux.seccomp.syscalls[3].args[0].op: …". On success
 * *ret owns a new profile. */
int oci_seccomp_parse(const struct json *node, const char *prefix, struct oci_seccomp **ret,
		      struct berth_error **err);
/* Accepts NULL; returns NULL. */
struct oci_seccomp *oci_seccomp_free(struct oci_seccomp *s);
void oci_seccomp_freep(struct oci_seccomp **s);

/* True when the profile uses SCMP_ACT_NOTIFY (then listenerPath is set). */
bool oci_seccomp_wants_notify(const struct oci_seccomp *s);
/* listenerPath and listenerMetadata as given (an empty string counts as unset), or NULL. */
const char *oci_seccomp_listener_path(const struct oci_seccomp *s);
const char *oci_seccomp_listener_metadata(const struct oci_seccomp *s);

/* Builds the filter with libseccomp and loads it into the calling process. Meant for the
 * container's init right before execve, after capabilities are set. It never sets no_new_privs
 * itself: either the caller did (process.noNewPrivileges) or it still has CAP_SYS_ADMIN.
 * On success *ret_notify_fd is the listener fd (O_CLOEXEC, owned by the caller) when the profile
 * uses SCMP_ACT_NOTIFY and at least one of its NOTIFY syscalls exists on this architecture;
 * otherwise -1. */
int oci_seccomp_load(const struct oci_seccomp *s, int *ret_notify_fd, struct berth_error **err);

/* Connects to listenerPath. The runtime does this before the container's init leaves the host's
 * mount namespace (the path is the host's), and hands the socket to the init. */
int oci_seccomp_connect_listener(const struct oci_seccomp *s, struct berth_error **err);
/* Sends the notify fd over sock (from oci_seccomp_connect_listener) as the runtime-spec says
 * (config-linux.md "seccomp", the container process state): one message carrying
 * {"ociVersion", "fds": ["seccompFd"], "pid", "metadata", "state": {…}} with the fd in
 * SCM_RIGHTS; the caller closes sock after. state_json is the container's state object text;
 * pid is the container process as the runtime sees it. notify_fd stays the caller's. */
int oci_seccomp_send_notify_fd(const struct oci_seccomp *s, int sock, int notify_fd, pid_t pid,
			       const char *state_json, struct berth_error **err);

#endif
