#include "cri/errcode.h"

#include <errno.h>
#include <stddef.h>

static const struct {
	int errnum;
	enum grpc_code code;
} table[] = {
	{ ENOENT, GRPC_NOT_FOUND },
	{ EEXIST, GRPC_ALREADY_EXISTS },
	{ EINVAL, GRPC_INVALID_ARGUMENT },
	{ E2BIG, GRPC_INVALID_ARGUMENT },
	{ ENAMETOOLONG, GRPC_INVALID_ARGUMENT },
	{ EBADMSG, GRPC_INVALID_ARGUMENT },
	{ ERANGE, GRPC_OUT_OF_RANGE },
	{ EBUSY, GRPC_FAILED_PRECONDITION }, /* the object's state does not allow the call */
	{ EALREADY, GRPC_FAILED_PRECONDITION },
	{ ENOTEMPTY, GRPC_FAILED_PRECONDITION },
	{ ETIMEDOUT, GRPC_DEADLINE_EXCEEDED },
	{ EOPNOTSUPP, GRPC_UNIMPLEMENTED },
	{ ENOSYS, GRPC_UNIMPLEMENTED },
	{ EPERM, GRPC_PERMISSION_DENIED },
	{ EACCES, GRPC_PERMISSION_DENIED },
	{ ENOSPC, GRPC_RESOURCE_EXHAUSTED },
	{ ENOMEM, GRPC_RESOURCE_EXHAUSTED },
	{ EMFILE, GRPC_RESOURCE_EXHAUSTED },
	{ ENOBUFS, GRPC_RESOURCE_EXHAUSTED }, /* a client that does not read its stream */
	{ EMSGSIZE, GRPC_RESOURCE_EXHAUSTED },
	{ ECANCELED, GRPC_CANCELLED },
	{ ESHUTDOWN, GRPC_UNAVAILABLE },
	{ EAGAIN, GRPC_UNAVAILABLE },
};

enum grpc_code errcode_from_errno(int errnum)
{
	if (errnum < 0)
		errnum = -errnum;
	if (errnum == 0)
		return GRPC_OK;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (table[i].errnum == errnum)
			return table[i].code;
	return GRPC_INTERNAL;
}

const char *errcode_name(enum grpc_code code)
{
	static const char *const names[] = {
		"OK",
		"Cancelled",
		"Unknown",
		"InvalidArgument",
		"DeadlineExceeded",
		"NotFound",
		"AlreadyExists",
		"PermissionDenied",
		"ResourceExhausted",
		"FailedPrecondition",
		"Aborted",
		"OutOfRange",
		"Unimplemented",
		"Internal",
		"Unavailable",
	};
	return (unsigned)code < sizeof(names) / sizeof(names[0]) ? names[code] : "Unknown";
}
