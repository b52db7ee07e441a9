/* The one table from errno values to the gRPC status codes that berthd's clients see: the socket
 * API's "code" field, and the CRI gRPC layer's grpc-status (issue 8). */
#ifndef BERTH_CRI_ERRCODE_H
#define BERTH_CRI_ERRCODE_H

/* gRPC's numbering (google.golang.org/grpc/codes) */
enum grpc_code {
	GRPC_OK = 0,
	GRPC_CANCELLED = 1,
	GRPC_UNKNOWN = 2,
	GRPC_INVALID_ARGUMENT = 3,
	GRPC_DEADLINE_EXCEEDED = 4,
	GRPC_NOT_FOUND = 5,
	GRPC_ALREADY_EXISTS = 6,
	GRPC_PERMISSION_DENIED = 7,
	GRPC_RESOURCE_EXHAUSTED = 8,
	GRPC_FAILED_PRECONDITION = 9,
	GRPC_ABORTED = 10,
	GRPC_OUT_OF_RANGE = 11,
	GRPC_UNIMPLEMENTED = 12,
	GRPC_INTERNAL = 13,
	GRPC_UNAVAILABLE = 14,
};

/* errnum: a positive errno (or -errno). Anything not listed is Internal. */
enum grpc_code errcode_from_errno(int errnum);
/* "NotFound", "InvalidArgument", ... */
const char *errcode_name(enum grpc_code code);

#endif
