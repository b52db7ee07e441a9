/* The CRI RuntimeService (runtime.v1) over cri/grpc.h: cri_runtime_methods() (declared in
 * cri/cri-services.h) returns its method table; each handler turns the protobuf request into
 * manager calls (cri/manager.h) and the result into the response message.
 *
 * The two conversions below fill the C request structures (cri/request.h) from the CRI's
 * messages; the manager checks them further when it stores them (pod_config_to_json and back),
 * so an invalid field is -EINVAL naming its path ("config.linux.resources.cpu_quota"). What
 * berth cannot do is refused by name (-EOPNOTSUPP), never dropped. ret is filled on success
 * only (pod_config_clear / container_config_clear free it). */
#ifndef BERTH_CRI_RUNTIME_H
#define BERTH_CRI_RUNTIME_H

#include "cri/cri-api.pb-c.h"
#include "cri/cri-services.h"
#include "cri/request.h"

int cri_pod_config_from_pb(const Runtime__V1__PodSandboxConfig *pb, struct pod_config *ret,
			   struct berth_error **err);
int cri_container_config_from_pb(const Runtime__V1__ContainerConfig *pb,
				 struct container_config *ret, struct berth_error **err);

/* Shared by cri/cri-runtime*.c. Every string -> string map entry protoc-c generates (labels,
 * annotations, label selectors...) has this layout. */
struct cri_map_entry {
	ProtobufCMessage base;
	char *key;
	char *value;
};

/* Map entries (any string -> string map of a message) as a JSON object's text (NULL when n is
 * 0); repeated strings as a NULL-terminated copy (NULL for none). */
int cri_map_to_json(size_t n, void *const *entries, char **ret);
int cri_strv_from_pb(size_t n, char *const *v, char ***ret);

#endif
