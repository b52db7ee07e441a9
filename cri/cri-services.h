/* The CRI services (runtime.v1 RuntimeService and ImageService) served over cri/grpc.h. Each
 * service file returns its method table; berthd joins them into one grpc_service_table. */
#ifndef BERTH_CRI_SERVICES_H
#define BERTH_CRI_SERVICES_H

#include "cri/config.h"
#include "cri/grpc.h"
#include "cri/manager.h"
#include "cri/stream.h"

#include <uv.h>

/* What every handler reaches (it outlives the server). */
struct cri_services {
	struct manager *manager;
	const struct berthd_config *config;
	uv_loop_t *loop;
	struct stream_server *streams;
};

/* NULL-path-terminated arrays of methods, userdata = ctx (cri/cri-runtime.c, cri/cri-image.c). */
const struct grpc_method *cri_runtime_methods(struct cri_services *ctx);
const struct grpc_method *cri_image_methods(struct cri_services *ctx);

#endif
