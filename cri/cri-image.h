/* The CRI ImageService (runtime.v1) over cri/grpc.h: cri_image_methods() (declared in
 * cri/cri-services.h) returns its method table (ListImages, ImageStatus, PullImage,
 * RemoveImage, ImageFsInfo); the handlers run on worker threads and call the manager's image
 * functions (cri/manager.h).
 *
 * An image is known by its id (the config digest, what PullImage returns as image_ref), by any
 * of its names ("busybox", normalised to "docker.io/library/busybox:latest") or by a
 * repo@digest. One CRI Image groups every name the store has for one id: repo_tags are the
 * tagged names, repo_digests "<repository>@<manifest digest>". RemoveImage removes all of them
 * (as containerd does) and an unknown image is success. */
#ifndef BERTH_CRI_IMAGE_H
#define BERTH_CRI_IMAGE_H

#include "cri/cri-api.pb-c.h"
#include "cri/cri-services.h"
#include "cri/manager.h"

/* CRI's AuthConfig as a pull's credentials: username/password, or auth (base64 of
 * "user:password", decoded by the registry client); identity_token and registry_token are
 * refused (berth's registry client has no OAuth2 flow). The server is server_address (scheme and
 * path dropped), else the registry of the normalised image name; *ret_server is malloc'd and
 * ret->server points to it; the other fields point into pb. 1: credentials given; 0: none. */
int cri_pull_auth_from_pb(const Runtime__V1__AuthConfig *pb, const char *norm_name,
			  struct manager_pull_auth *ret, char **ret_server,
			  struct berth_error **err);

#endif
