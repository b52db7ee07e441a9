/* berthd's kubelet loop: static pods from Kubernetes Pod v1 manifests, run through the manager
 * (cri/manager.h), the same C API the CRI serves.
 *
 * Lifecycle: berthd calls kubelet_start after manager_recover. It starts a supervisor thread that
 * watches the manifest directory (cfg->manifest_dir, inotify plus a rescan every
 * cfg->manifest_check_interval) and the directory of applied manifests (<root>/manifests), and
 * one worker thread per valid manifest that runs its pod's whole life with blocking manager
 * calls. A removed manifest stops its pod gracefully and removes it; a changed one replaces it.
 * kubelet_free (NULL-safe) stops the threads but leaves every pod running: at the next start the
 * loop adopts the pods it made (labels berth.static-pod/file and berth.static-pod/hash) whose
 * manifest is unchanged, and removes the others.
 *
 * Status: every pod's status (Kubernetes' PodStatus field names) is kept as JSON in
 * <state>/kubelet/status/<namespace>_<name>.json, written atomically on every change; an invalid
 * manifest has one too, {"metadata":{"file":...},"error":"..."}. kubelet_status_json and
 * kubelet_list_json read them. All functions are safe from any thread. */
#ifndef BERTH_CRI_KUBELET_H
#define BERTH_CRI_KUBELET_H

#include "base/error.h"
#include "cri/config.h"
#include "cri/manager.h"

#include <stddef.h>

struct kubelet;

/* cfg and m must outlive the kubelet. With cfg->manifest_dir unset, only applied manifests
 * run. */
int kubelet_start(const struct berthd_config *cfg, struct manager *m, struct kubelet **ret,
		  struct berth_error **err);
/* Stops the supervisor and the pod workers (a worker finishes the manager call it is in), not
 * the pods. */
void kubelet_free(struct kubelet *k);

/* The status object of pod namespace/name (namespace NULL: "default"); -ENOENT when the loop has
 * no such pod. */
int kubelet_status_json(struct kubelet *k, const char *namespace, const char *name,
			char **ret_json, struct berth_error **err);
/* A JSON array of every status object, the invalid manifests' included, sorted by file name. */
int kubelet_list_json(struct kubelet *k, char **ret_json, struct berth_error **err);

/* `berth apply`: validates text[0..len) (file names it in messages; NULL: "<apply>") and stores it
 * as <root>/manifests/<namespace>_<name>.yaml, replacing an earlier apply of the same pod; the
 * supervisor then runs it like a file of the manifest directory (a pod of the same name from the
 * manifest directory is refused with -EEXIST). Returns the pod's "namespace/name" in
 * *ret_pod_key. */
int kubelet_apply(struct kubelet *k, const char *text, size_t len, const char *file,
		  char **ret_pod_key, struct berth_error **err);
/* `berth delete`: the applied pod named by a manifest text (text non-NULL) or by namespace and
 * name; its pod is stopped gracefully and removed. -ENOENT when nothing was applied under that
 * name (pods of the manifest directory are removed by removing their file). */
int kubelet_delete(struct kubelet *k, const char *text, size_t len, const char *namespace,
		   const char *name, struct berth_error **err);

#endif
