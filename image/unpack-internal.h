/* Layer unpack: one OCI/Docker layer blob (gzip, zstd or plain tar, told apart by its first bytes,
 * not by its media type) into one empty snapshot directory.
 *
 * Safety (DESIGN.md, security invariants): every path is resolved beneath the snapshot directory
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS, O_NOFOLLOW on the last
 * component); absolute paths, ".." components, paths through a symlink, hardlinks whose target is
 * not an entry of this layer, and overlay xattrs (trusted.overlay.*) are refused with an error
 * naming the entry; device nodes are dropped (counted) unless allow_devices; the limits stop tar
 * bombs. OCI whiteouts become overlayfs whiteouts: ".wh.NAME" a 0/0 character device NAME,
 * ".wh..wh..opq" the xattr trusted.overlay.opaque="y" on its directory.
 *
 * On failure the directory holds a partial tree: the caller removes it (it unpacks into a
 * temporary directory and renames it into place only after the diffID was checked). */
#ifndef BERTH_IMAGE_UNPACK_INTERNAL_H
#define BERTH_IMAGE_UNPACK_INTERNAL_H
#include "base/error.h"
#include "image/digest-internal.h"
#include <stdbool.h>
#include <stdint.h>

struct unpack_limits {
	uint64_t max_bytes;   /* uncompressed tar stream; 0 = no limit */
	uint64_t max_entries; /* tar entries; 0 = no limit */
	bool allow_devices;   /* create block/char device nodes (else they are dropped) */
};

struct unpack_result {
	char diff_id[DIGEST_LEN + 1]; /* sha256 of the whole uncompressed tar stream */
	uint64_t tar_bytes;           /* length of that stream */
	uint64_t entries;             /* tar entries read */
	uint64_t devices_dropped;
	uint64_t content_bytes;       /* sum of the regular files' sizes */
};

/* Reads the blob from blob_fd (from its current offset to EOF) and unpacks it into the empty
 * directory dirfd. */
int unpack_layer(int blob_fd, int dirfd, const struct unpack_limits *limits, struct unpack_result *res,
		 struct berth_error **err);
#endif
