/* Images: pulls into the store (image/), mirrored in the database's images table so that
 * `berth` and the CRI layer can list them with their pull times. The store is the truth: a
 * container's rootfs lease keeps its snapshots even when its image's name is removed. */
#include "cri/manager-internal.h"
#include "base/cleanup.h"
#include "base/command.h"
#include "base/json.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int summary_of(struct manager *m, const char *name, struct manager_image *ret,
		      struct berth_error **err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r;
	if ((r = image_inspect(m->images, name, &text, err)) < 0 ||
	    (r = bjson_parse(text, &j, err)) < 0)
		return r;
	const char *id = bjson_string(bjson_object_get(j, "configDigest"));
	const char *digest = bjson_string(bjson_object_get(j, "digest"));
	uint64_t size = 0;
	bjson_uint64(bjson_object_get(j, "size"), &size);
	struct manager_image im = { .name = strdup(name),
				    .id = id ? strdup(id) : NULL,
				    .digest = digest ? strdup(digest) : NULL,
				    .size = size };
	if (!im.name || !im.id || !im.digest) {
		manager_image_clear(&im);
		return berth_error_set(err, EIO, "image %s: incomplete description in the store",
				       name);
	}
	*ret = im;
	return 0;
}

/* A Docker config.json naming only auth's credentials, mode 0600 in the daemon's state
 * directory (root's), removed by the caller right after the pull. */
static int write_auth_file(struct manager *m, const struct manager_pull_auth *auth, char **ret,
			   struct berth_error **err)
{
	_cleanup_free_ char *path = NULL, *text = NULL;
	if (asprintf(&path, "%s/pull-auth-XXXXXX", m->cfg->state) < 0)
		return -ENOMEM;
	struct json_writer *w = bjson_writer_new(false);
	if (!w)
		return -ENOMEM;
	bjson_writer_begin_object(w);
	bjson_writer_key(w, "auths");
	bjson_writer_begin_object(w);
	bjson_writer_key(w, auth->server);
	bjson_writer_begin_object(w);
	if (auth->auth) {
		bjson_writer_kv_string(w, "auth", auth->auth);
	} else {
		bjson_writer_kv_string(w, "username", auth->username);
		bjson_writer_kv_string(w, "password", auth->password);
	}
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	bjson_writer_end_object(w);
	if (bjson_writer_finish(w, &text, NULL) < 0)
		return berth_error_set(err, EINVAL, "auth: credentials are not valid UTF-8");
	_cleanup_close_ int fd = mkostemp(path, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		return berth_error_setsys(err, errno, "%s", path);
	size_t len = strlen(text);
	ssize_t k = write(fd, text, len);
	explicit_bzero(text, len);
	if (k != (ssize_t)len) {
		int e = k < 0 ? errno : EIO;
		(void)unlink(path);
		return berth_error_setsys(err, e, "writing %s", path);
	}
	*ret = TAKE_PTR(path);
	return 0;
}

/* errno's value for its name ("EACCES"), as `berth image pull --format json` reports it. */
static int errno_of_name(const char *name)
{
	for (int e = 1; name && e < 4096; e++) {
		const char *n = strerrorname_np(e);
		if (n && strcmp(n, name) == 0)
			return e;
	}
	return EIO;
}

/* What `berth image pull --format json` printed: the manifest digest, or its error. */
static int pull_outcome(const struct command_result *res, const char *norm,
			struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	if (!res->out.buf || bjson_parse(res->out.buf, &j, NULL) < 0) {
		char excerpt[256];
		command_stderr_excerpt(res, excerpt, sizeof(excerpt));
		return berth_error_set(err, EIO, "berth image pull %s: exit status %d%s%s", norm,
				       res->status, excerpt[0] ? ": " : "", excerpt);
	}
	const struct json *e = bjson_object_get(j, "error");
	if (e) {
		const char *msg = bjson_string(bjson_object_get(e, "message"));
		return berth_error_set(err, errno_of_name(bjson_string(bjson_object_get(e, "code"))),
				       "%s", msg ? msg : "failed");
	}
	if (res->status != 0 || !bjson_string(bjson_object_get(j, "digest")))
		return berth_error_set(err, EIO, "berth image pull %s: exit status %d without a digest",
				       norm, res->status);
	return 0;
}

/* The pull itself runs in `berth image pull` on the same store (the store locks for itself):
 * berthd links no HTTP, TLS or archive library, and a pull's memory is the helper's, gone when
 * it ends. auth_file: credentials for this pull only (else the configured auth_file). */
static int pull_into_store(struct manager *m, const char *norm, const char *auth_file,
			   struct berth_error **err)
{
	const struct berthd_config *cfg = m->cfg;
	const char *argv[16];
	size_t n = 0;
	argv[n++] = cfg->berth_path;
	argv[n++] = "--root";
	argv[n++] = cfg->root;
	/* the configured file is optional: without it, the store's own default applies */
	if (cfg->registries && access(cfg->registries, F_OK) == 0) {
		argv[n++] = "--registries";
		argv[n++] = cfg->registries;
	}
	if (auth_file || cfg->auth_file) {
		argv[n++] = "--authfile";
		argv[n++] = auth_file ? auth_file : cfg->auth_file;
	}
	const char *tail[] = { "image", "pull", "--format", "json", norm, NULL };
	memcpy(argv + n, tail, sizeof(tail));
	const struct command c = { .path = cfg->berth_path,
				   .argv = (char *const *)argv,
				   .out_max = 64 * 1024,
				   .err_max = 64 * 1024 };
	struct command_result res;
	int r = command_run(&c, &res);
	if (r < 0)
		r = berth_error_setsys(err, -r, "running %s", cfg->berth_path);
	else
		r = pull_outcome(&res, norm, err);
	command_result_clear(&res);
	return r;
}

static int pull_with_auth(struct manager *m, const char *norm, const struct manager_pull_auth *auth,
			  struct berth_error **err)
{
	if (!auth)
		return pull_into_store(m, norm, NULL, err);
	_cleanup_free_ char *auth_file = NULL;
	int r = write_auth_file(m, auth, &auth_file, err);
	if (r < 0)
		return r;
	r = pull_into_store(m, norm, auth_file, err);
	if (unlink(auth_file) < 0)
		log_warn("removing %s: %m", auth_file);
	return r;
}

int manager_image_pull(struct manager *m, const char *name, struct manager_image *ret,
		       struct berth_error **err)
{
	return manager_image_pull_auth(m, name, NULL, ret, err);
}

int manager_image_pull_auth(struct manager *m, const char *name,
			    const struct manager_pull_auth *auth, struct manager_image *ret,
			    struct berth_error **err)
{
	_cleanup_free_ char *norm = NULL;
	int r = image_reference_normalize(name, &norm, err);
	if (r < 0)
		return berth_error_wrap(err, "image");
	if ((r = pull_with_auth(m, norm, auth, err)) < 0)
		return berth_error_wrap(err, "pull %s", norm);
	if ((r = summary_of(m, norm, ret, err)) < 0)
		return berth_error_wrap(err, "pull %s", norm);
	struct db_image row = { .id = ret->id,
				.name = ret->name,
				.repo_digest = ret->digest,
				.size = ret->size,
				.pulled_ns = mgr_now_ns() };
	_cleanup_error_ struct berth_error *e = NULL;
	if (db_image_put(m->db, &row, &e) < 0) /* the store has it; the mirror row is a cache */
		log_warn("image %s: recording the pull: %s", norm, e ? e->msg : "");
	log_info("image %s pulled: %s", norm, ret->id);
	return 0;
}

int manager_image_list(struct manager *m, struct manager_image **ret, size_t *ret_n,
		       struct berth_error **err)
{
	struct image_summary *v = NULL;
	size_t n = 0;
	int r = image_list(m->images, &v, &n, err);
	if (r < 0)
		return r;
	struct manager_image *out = calloc(n + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		out[i] = (struct manager_image){ .name = strdup(v[i].name),
						 .id = strdup(v[i].config_digest),
						 .digest = strdup(v[i].digest),
						 .size = v[i].size };
		if (!out[i].name || !out[i].id || !out[i].digest) {
			manager_image_list_free(out, i + 1);
			out = NULL;
		}
	}
	image_summary_free(v, n);
	if (!out)
		return -ENOMEM;
	*ret = out;
	*ret_n = n;
	return 0;
}

int manager_image_remove(struct manager *m, const char *name, struct berth_error **err)
{
	_cleanup_free_ char *norm = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	int r = image_reference_normalize(name, &norm, err);
	if (r < 0)
		return berth_error_wrap(err, "image");
	r = image_remove(m->images, norm, &e);
	if (r < 0 && r != -ENOENT) { /* CRI's RemoveImage: an image that is not there is fine */
		berth_error_move(err, &e);
		return berth_error_wrap(err, "remove image %s", norm);
	}
	berth_error_freep(&e);
	if (db_image_delete(m->db, norm, &e) < 0 && e && e->code != ENOENT)
		log_warn("image %s: removing its row: %s", norm, e->msg);
	if (r == 0)
		log_info("image %s removed", norm);
	return 0;
}

int manager_image_inspect(struct manager *m, const char *name, char **ret_json,
			  struct berth_error **err)
{
	_cleanup_free_ char *norm = NULL;
	int r = image_reference_normalize(name, &norm, err);
	if (r < 0)
		return berth_error_wrap(err, "image");
	return image_inspect(m->images, norm, ret_json, err);
}

/* nftw has no user pointer: the sums of the walk in progress, one walk at a time. */
static pthread_mutex_t du_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t du_bytes, du_inodes;

static int du_cb(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	if (type != FTW_NS && type != FTW_DNR) {
		du_bytes += (uint64_t)st->st_blocks * 512;
		du_inodes++;
	}
	return 0;
}

/* Disk use of a tree that stays on its filesystem (overlay mounts under it are not counted:
 * their upper directories are). */
static int dir_usage(const char *dir, struct manager_fs_usage *ret, struct berth_error **err)
{
	pthread_mutex_lock(&du_lock);
	du_bytes = du_inodes = 0;
	int r = nftw(dir, du_cb, 32, FTW_PHYS | FTW_MOUNT);
	ret->bytes = du_bytes;
	ret->inodes = du_inodes;
	pthread_mutex_unlock(&du_lock);
	ret->mountpoint = dir;
	return r < 0 && errno != ENOENT ? berth_error_setsys(err, errno, "%s", dir) : 0;
}

int manager_image_fs_usage(struct manager *m, struct manager_fs_usage *ret_images,
			   struct manager_fs_usage *ret_containers, struct berth_error **err)
{
	struct image_disk_usage du;
	int r = image_disk_usage(m->images, &du, err);
	if (r < 0)
		return berth_error_wrap(err, "image store %s", m->cfg->root);
	*ret_images = (struct manager_fs_usage){ .mountpoint = m->cfg->root,
						 .bytes = du.bytes,
						 .inodes = du.inodes };
	return dir_usage(m->containers_dir, ret_containers, err);
}

void manager_image_clear(struct manager_image *im)
{
	free(im->name);
	free(im->id);
	free(im->digest);
	*im = (struct manager_image){ 0 };
}

void manager_image_list_free(struct manager_image *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		manager_image_clear(&v[i]);
	free(v);
}
