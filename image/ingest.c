/* The store's write side, which only pulls and imports use: blobs ingested as they download
 * (hashed as they grow, resumable), layers unpacked into snapshots, imported blobs committed.
 * Apart from store.c so that readers of the store (berthd) link neither libarchive nor
 * OpenSSL. */
#include "image/store-internal.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- ingest: downloads that can resume ---- */

static int hash_existing(struct ingest *in, struct berth_error **err)
{
	char buf[1 << 16];
	uint64_t done = 0;
	for (;;) {
		ssize_t n = read(in->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return berth_error_setsys(err, errno, "reading partial blob %s", in->digest);
		if (n == 0)
			break;
		digest_stream_update(&in->hash, buf, (size_t)n);
		done += (uint64_t)n;
	}
	in->offset = done;
	return 0;
}

static void partial_name(const char *digest, char name[DIGEST_HEX_LEN + 16])
{
	snprintf(name, DIGEST_HEX_LEN + 16, "%s.partial", digest_hex(digest));
}

int ingest_open(struct image_store *s, const char *digest, uint64_t size, struct ingest *ret,
		struct berth_error **err)
{
	char name[DIGEST_HEX_LEN + 16];
	partial_name(digest, name);
	struct ingest in = { .fd = -EBADF, .size = size };
	memcpy(in.digest, digest, DIGEST_LEN + 1);
	in.fd = openat(s->ingest_fd, name, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (in.fd < 0)
		return berth_error_setsys(err, errno, "%s/ingest/%s", s->root, name);
	/* one writer per blob: a second pull of the same layer waits here, then finds it done */
	while (flock(in.fd, LOCK_EX) < 0 && errno == EINTR)
		;
	struct stat st;
	int r = fstat(in.fd, &st) < 0 ? berth_error_setsys(err, errno, "%s/ingest/%s", s->root, name) : 0;
	if (r == 0 && (uint64_t)st.st_size > size && ftruncate(in.fd, 0) < 0)
		r = berth_error_setsys(err, errno, "%s/ingest/%s", s->root, name);
	if (r == 0)
		r = digest_stream_init(&in.hash, err);
	if (r == 0)
		r = hash_existing(&in, err);
	if (r < 0) {
		digest_stream_free(&in.hash);
		close(in.fd);
		return r;
	}
	*ret = in;
	return 0;
}

int ingest_write(struct ingest *in, const void *buf, size_t len, struct berth_error **err)
{
	if (in->offset + len > in->size)
		return berth_error_set(err, EFBIG, "blob %s: more than the %llu bytes its descriptor gives", in->digest,
				       (unsigned long long)in->size);
	if (write_all(in->fd, buf, len) < 0)
		return berth_error_setsys(err, errno, "writing blob %s", in->digest);
	digest_stream_update(&in->hash, buf, len);
	in->offset += len;
	return 0;
}

int ingest_commit(struct image_store *s, struct ingest *in, struct berth_error **err)
{
	char name[DIGEST_HEX_LEN + 16], got[DIGEST_LEN + 1];
	partial_name(in->digest, name);
	if (in->offset != in->size) {
		unlinkat(s->ingest_fd, name, 0);
		return berth_error_set(err, EIO, "blob %s: got %llu bytes, the descriptor gives %llu", in->digest,
				       (unsigned long long)in->offset, (unsigned long long)in->size);
	}
	digest_stream_final(&in->hash, got);
	if (strcmp(got, in->digest) != 0) {
		unlinkat(s->ingest_fd, name, 0);
		return berth_error_set(err, EILSEQ, "blob %s: content has digest %s (rejected and removed)", in->digest,
				       got);
	}
	if (fsync(in->fd) < 0)
		return berth_error_setsys(err, errno, "blob %s", in->digest);
	fchmod(in->fd, 0644);
	if (renameat(s->ingest_fd, name, s->blobs_fd, digest_hex(in->digest)) < 0)
		return berth_error_setsys(err, errno, "blob %s: moving into the store", in->digest);
	store_fsync_dir(s->blobs_fd);
	return 0;
}

void ingest_close(struct image_store *s, struct ingest *in, bool discard)
{
	if (in->fd < 0)
		return;
	if (discard) {
		char name[DIGEST_HEX_LEN + 16];
		partial_name(in->digest, name);
		unlinkat(s->ingest_fd, name, 0);
	}
	digest_stream_free(&in->hash);
	close(in->fd);
	in->fd = -EBADF;
}

static int write_snapshot_info(int dirfd, const struct descriptor *layer, const char *chain_id,
			       const struct unpack_result *res, struct berth_error **err)
{
	struct json_writer *w = bjson_writer_new(true);
	bjson_writer_begin_object(w);
	bjson_writer_kv_string(w, "chainID", chain_id);
	bjson_writer_kv_string(w, "diffID", res->diff_id);
	bjson_writer_kv_string(w, "blob", layer->digest);
	bjson_writer_key(w, "entries");
	bjson_writer_uint(w, res->entries);
	bjson_writer_key(w, "tarBytes");
	bjson_writer_uint(w, res->tar_bytes);
	bjson_writer_key(w, "contentBytes");
	bjson_writer_uint(w, res->content_bytes);
	bjson_writer_key(w, "devicesDropped");
	bjson_writer_uint(w, res->devices_dropped);
	bjson_writer_end_object(w);
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r = bjson_writer_finish(w, &text, &len);
	if (r < 0)
		return berth_error_set(err, -r, "snapshot info: cannot write JSON");
	return write_file_atomic_at(dirfd, "info.json", text, len, 0644, false, err);
}

static int unpack_into(struct image_store *s, int tmpfd, const struct descriptor *layer, const char *diff_id,
		       const char *chain_id, struct berth_error **err)
{
	if (mkdirat(tmpfd, "fs", 0755) < 0)
		return berth_error_setsys(err, errno, "snapshot %s", chain_id);
	_cleanup_close_ int fsfd = openat(tmpfd, "fs", O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	_cleanup_close_ int blob = store_blob_open(s, layer->digest, err);
	if (fsfd < 0 || blob < 0)
		return fsfd < 0 ? berth_error_setsys(err, errno, "snapshot %s", chain_id) : blob;
	struct unpack_result res = { 0 };
	int r = unpack_layer(blob, fsfd, &s->limits, &res, err);
	if (r < 0)
		return berth_error_wrap(err, "layer %s", layer->digest);
	if (strcmp(res.diff_id, diff_id) != 0)
		return berth_error_set(err, EILSEQ, "layer %s: uncompressed content has digest %s, the image config says %s",
				       layer->digest, res.diff_id, diff_id);
	if (res.devices_dropped)
		log_warn("layer %s: %llu device nodes dropped", layer->digest, (unsigned long long)res.devices_dropped);
	return write_snapshot_info(tmpfd, layer, chain_id, &res, err);
}

int store_snapshot_create(struct image_store *s, const struct descriptor *layer, const char *diff_id,
			  const char *chain_id, struct berth_error **err)
{
	char tmp[DIGEST_HEX_LEN + 64];
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%d-%s", (int)getpid(), digest_hex(chain_id));
	remove_tree_at(s->snapshots_fd, tmp);
	if (mkdirat(s->snapshots_fd, tmp, 0700) < 0)
		return berth_error_setsys(err, errno, "%s/snapshots/%s", s->root, tmp);
	_cleanup_close_ int tmpfd = openat(s->snapshots_fd, tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	int r = tmpfd < 0 ? berth_error_setsys(err, errno, "%s/snapshots/%s", s->root, tmp) :
			    unpack_into(s, tmpfd, layer, diff_id, chain_id, err);
	if (r == 0 && fchmod(tmpfd, 0755) < 0)
		r = berth_error_setsys(err, errno, "%s/snapshots/%s", s->root, tmp);
	if (r == 0 && renameat(s->snapshots_fd, tmp, s->snapshots_fd, digest_hex(chain_id)) < 0) {
		/* another pull of the same layer got there first: theirs is as good */
		if (errno != EEXIST && errno != ENOTEMPTY)
			r = berth_error_setsys(err, errno, "%s/snapshots/%s", s->root, digest_hex(chain_id));
		remove_tree_at(s->snapshots_fd, tmp);
	}
	if (r < 0)
		remove_tree_at(s->snapshots_fd, tmp);
	return r;
}

/* ---- archive import (image/archive.c) ---- */

int store_blob_commit_ingested(struct image_store *s, const char *name, const char *digest, uint64_t size,
			       struct berth_error **err)
{
	if (store_blob_exists(s, digest, size)) {
		unlinkat(s->ingest_fd, name, 0);
		return 0;
	}
	_cleanup_close_ int fd = openat(s->ingest_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return berth_error_setsys(err, errno, "%s/ingest/%s", s->root, name);
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size != size)
		return berth_error_set(err, EIO, "%s/ingest/%s: %lld bytes, blob %s has %llu", s->root, name,
				       (long long)st.st_size, digest, (unsigned long long)size);
	if (fsync(fd) < 0)
		return berth_error_setsys(err, errno, "blob %s", digest);
	fchmod(fd, 0644);
	if (renameat(s->ingest_fd, name, s->blobs_fd, digest_hex(digest)) < 0)
		return berth_error_setsys(err, errno, "blob %s: moving into the store", digest);
	store_fsync_dir(s->blobs_fd);
	return 0;
}
