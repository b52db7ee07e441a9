/* The CRI ImageService: protobuf requests in, the manager's image calls, protobuf responses
 * out. Every handler runs on a libuv worker (a pull may take minutes: that is fine there). */
#include "cri/cri-image.h"
#include "base/cleanup.h"
#include "base/json.h"
#include "base/log.h"
#include "cri/pb-arena.h"
#include "image/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RPC(m) "/runtime.v1.ImageService/" m

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static bool nonempty(const char *s)
{
	return s && *s;
}

/* ---- which image a spec names ---- */

struct image_set {
	struct manager_image *v; /* every name in the store */
	size_t n;
};

static void image_set_clear(struct image_set *s)
{
	manager_image_list_free(s->v, s->n);
	*s = (struct image_set){ 0 };
}

static int image_set_load(struct manager *m, struct image_set *ret, struct berth_error **err)
{
	*ret = (struct image_set){ 0 };
	return manager_image_list(m, &ret->v, &ret->n, err);
}

static bool is_hex64(const char *s)
{
	return strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* The id (config digest) that ref names: an id ("sha256:<hex>" or the bare hex), a name, or a
 * repo@digest; NULL when the store has none. */
static const char *resolve_id(const struct image_set *s, const char *ref)
{
	for (size_t i = 0; i < s->n; i++) {
		const char *id = s->v[i].id;
		if (strcmp(id, ref) == 0 ||
		    (is_hex64(ref) && strncmp(id, "sha256:", 7) == 0 && strcmp(id + 7, ref) == 0))
			return id;
	}
	_cleanup_free_ char *norm = NULL;
	_cleanup_error_ struct berth_error *e = NULL;
	if (image_reference_normalize(ref, &norm, &e) < 0)
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i].name, norm) == 0)
			return s->v[i].id;
	return NULL;
}

/* "docker.io/library/busybox:1.36" -> "docker.io/library/busybox" (also from "...@sha256:") */
static char *repository_of(const char *name)
{
	size_t n = strcspn(name, "@");
	const char *slash = memrchr(name, '/', n);
	const char *colon = memchr(slash ? slash : name, ':', n - (size_t)((slash ? slash : name) - name));
	return strndup(name, colon ? (size_t)(colon - name) : n);
}

static bool strv_has(char **v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* ---- the CRI Image ---- */

/* containerd's getUserFromImage: "uid[:gid]" gives uid, "name[:group]" gives username. */
static int fill_user(struct arena *a, Runtime__V1__Image *img, const char *user)
{
	if (!nonempty(user))
		return 0;
	_cleanup_free_ char *u = strndup(user, strcspn(user, ":"));
	if (!u)
		return -ENOMEM;
	char *end = NULL;
	errno = 0;
	long long v = strtoll(u, &end, 10);
	if (*u && !*end && errno == 0) {
		img->uid = NEW(a, Runtime__V1__Int64Value, runtime__v1__int64_value__descriptor);
		if (!img->uid)
			return -ENOMEM;
		img->uid->value = v;
		return 0;
	}
	return (img->username = arena_str(a, u)) ? 0 : -ENOMEM;
}

static int add_names(struct arena *a, Runtime__V1__Image *img, const struct image_set *s,
		     const char *id)
{
	img->repo_tags = arena_alloc(a, s->n * sizeof(char *));
	img->repo_digests = arena_alloc(a, s->n * sizeof(char *));
	if (!img->repo_tags || !img->repo_digests)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++) {
		const struct manager_image *im = &s->v[i];
		if (strcmp(im->id, id) != 0)
			continue;
		img->size = im->size;
		if (!strchr(im->name, '@')) {
			if (!(img->repo_tags[img->n_repo_tags++] = arena_str(a, im->name)))
				return -ENOMEM;
		}
		_cleanup_free_ char *repo = repository_of(im->name), *rd = NULL;
		if (!repo || asprintf(&rd, "%s@%s", repo, im->digest) < 0)
			return -ENOMEM;
		if (strv_has(img->repo_digests, img->n_repo_digests, rd))
			continue;
		if (!(img->repo_digests[img->n_repo_digests++] = arena_keep(a, TAKE_PTR(rd))))
			return -ENOMEM;
	}
	return 0;
}

/* The image's config "User", from the store's description of one of its names. */
static int image_user(struct manager *m, const struct image_set *s, const char *id,
		      char **ret_inspect, const char **ret_user, struct json **ret_doc,
		      struct berth_error **err)
{
	const char *name = NULL;
	for (size_t i = 0; i < s->n && !name; i++)
		if (strcmp(s->v[i].id, id) == 0)
			name = s->v[i].name;
	int r = manager_image_inspect(m, name, ret_inspect, err);
	if (r < 0 || (r = bjson_parse(*ret_inspect, ret_doc, err)) < 0)
		return r;
	*ret_user = bjson_string(
		bjson_object_get(bjson_object_get(bjson_object_get(*ret_doc, "config"), "config"),
				 "User"));
	return 0;
}

static Runtime__V1__Image *image_msg(struct arena *a, struct manager *m, const struct image_set *s,
				     const char *id, char **ret_inspect, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *doc = NULL;
	_cleanup_free_ char *inspect = NULL;
	const char *user = NULL;
	Runtime__V1__Image *img = NEW(a, Runtime__V1__Image, runtime__v1__image__descriptor);
	Runtime__V1__ImageSpec *spec =
		NEW(a, Runtime__V1__ImageSpec, runtime__v1__image_spec__descriptor);
	if (!img || !spec || !(img->id = arena_str(a, id)) || !(spec->image = arena_str(a, id)) ||
	    add_names(a, img, s, id) < 0) {
		berth_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	img->spec = spec;
	if (image_user(m, s, id, &inspect, &user, &doc, err) < 0)
		return NULL;
	if (fill_user(a, img, user) < 0) {
		berth_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	if (ret_inspect)
		*ret_inspect = TAKE_PTR(inspect);
	return img;
}

/* A request's ImageSpec: the image, with the fields berth has no use for refused. */
static int spec_ref(const Runtime__V1__ImageSpec *spec, const char *where, const char **ret,
		    struct berth_error **err)
{
	if (!spec || !nonempty(spec->image))
		return berth_error_set(err, EINVAL, "%s.image: required", where);
	if (nonempty(spec->runtime_handler))
		return berth_error_set(err, EINVAL,
				       "%s.runtime_handler: \"%s\": berth has one runtime handler "
				       "(leave it empty)",
				       where, spec->runtime_handler);
	*ret = spec->image;
	return 0;
}

/* The store's images and the id that a request's spec names (NULL: not there); the caller
 * clears *s. */
static int lookup(struct manager *m, const Runtime__V1__ImageSpec *spec, struct image_set *s,
		  const char **ret_id, struct berth_error **err)
{
	const char *ref = NULL;
	int r = spec_ref(spec, "image", &ref, err);
	if (r < 0 || (r = image_set_load(m, s, err)) < 0)
		return r;
	*ret_id = resolve_id(s, ref);
	return 0;
}

/* ---- handlers ---- */

static int h_list_images(void *ud, const ProtobufCMessage *msg, uint8_t **ret_buf,
			 size_t *ret_len, struct berth_error **err)
{
	struct cri_services *ctx = ud;
	const Runtime__V1__ListImagesRequest *req = (const void *)msg;
	struct arena a = { 0 };
	struct image_set s;
	int r = image_set_load(ctx->manager, &s, err);
	if (r < 0)
		return r;
	Runtime__V1__ListImagesResponse *resp = NEW(&a, Runtime__V1__ListImagesResponse,
						    runtime__v1__list_images_response__descriptor);
	const char *only = NULL;
	const Runtime__V1__ImageSpec *f = req->filter ? req->filter->image : NULL;
	if (f && nonempty(f->image) && !(only = resolve_id(&s, f->image)))
		goto out; /* the filter names no image here: an empty list */
	if (!resp || !(resp->images = arena_alloc(&a, s.n * sizeof(*resp->images)))) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s.n && r >= 0; i++) {
		const char *id = s.v[i].id;
		bool seen = false;
		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(s.v[k].id, id) == 0;
		if (seen || (only && strcmp(only, id) != 0))
			continue;
		Runtime__V1__Image *img = image_msg(&a, ctx->manager, &s, id, NULL, err);
		if (!img)
			r = -(*err ? (*err)->code : ENOMEM);
		else
			resp->images[resp->n_images++] = img;
	}
out:
	image_set_clear(&s);
	return reply(&a, r, resp, ret_buf, ret_len);
}

static int h_image_status(void *ud, const ProtobufCMessage *msg, uint8_t **ret_buf,
			  size_t *ret_len, struct berth_error **err)
{
	struct cri_services *ctx = ud;
	const Runtime__V1__ImageStatusRequest *req = (const void *)msg;
	struct arena a = { 0 };
	struct image_set s = { 0 };
	const char *id;
	int r = lookup(ctx->manager, req->image, &s, &id, err);
	if (r < 0)
		return r;
	Runtime__V1__ImageStatusResponse *resp = NEW(
		&a, Runtime__V1__ImageStatusResponse, runtime__v1__image_status_response__descriptor);
	_cleanup_free_ char *inspect = NULL;
	if (!resp || !id) /* CRI: an absent image is a response without one, not an error */
		goto out;
	if (!(resp->image = image_msg(&a, ctx->manager, &s, id, &inspect, err))) {
		r = -(*err ? (*err)->code : ENOMEM);
		goto out;
	}
	if (req->verbose) {
		/* verbose: the store's full description under "info", as containerd does */
		Runtime__V1__ImageStatusResponse__InfoEntry *e =
			NEW(&a, Runtime__V1__ImageStatusResponse__InfoEntry,
			    runtime__v1__image_status_response__info_entry__descriptor);
		resp->info = arena_alloc(&a, sizeof(*resp->info));
		if (!e || !resp->info || !(e->key = arena_str(&a, "info")) ||
		    !(e->value = arena_keep(&a, TAKE_PTR(inspect)))) {
			r = -ENOMEM;
			goto out;
		}
		resp->info[resp->n_info++] = e;
	}
out:
	image_set_clear(&s);
	return reply(&a, r, resp, ret_buf, ret_len);
}

/* "https://index.docker.io/v1/" -> "index.docker.io" */
static char *server_host(const char *addr)
{
	const char *p = strstr(addr, "://");
	p = p ? p + 3 : addr;
	return strndup(p, strcspn(p, "/"));
}

int cri_pull_auth_from_pb(const Runtime__V1__AuthConfig *pb, const char *norm_name,
			  struct manager_pull_auth *ret, char **ret_server, struct berth_error **err)
{
	if (!pb)
		return 0;
	if (nonempty(pb->identity_token))
		return berth_error_set(err, EINVAL,
				       "auth.identity_token: OAuth2 identity tokens are not "
				       "supported by berth's registry client");
	if (nonempty(pb->registry_token))
		return berth_error_set(err, EINVAL,
				       "auth.registry_token: registry bearer tokens are not "
				       "supported by berth's registry client");
	bool basic = nonempty(pb->username) || nonempty(pb->password);
	if (!basic && !nonempty(pb->auth))
		return 0; /* an empty AuthConfig: anonymous, as with none */
	if (basic && nonempty(pb->auth))
		return berth_error_set(err, EINVAL, "auth: give auth or username/password, not both");
	if (basic && !nonempty(pb->username))
		return berth_error_set(err, EINVAL, "auth.username: required with a password");
	char *server = nonempty(pb->server_address) ? server_host(pb->server_address)
						    : strndup(norm_name, strcspn(norm_name, "/"));
	if (!server)
		return -ENOMEM;
	*ret = (struct manager_pull_auth){ .server = server,
					   .username = basic ? pb->username : NULL,
					   .password = basic ? (pb->password ? pb->password : "")
							     : NULL,
					   .auth = basic ? NULL : pb->auth };
	*ret_server = server;
	return 1;
}

static int h_pull_image(void *ud, const ProtobufCMessage *msg, uint8_t **ret_buf, size_t *ret_len,
			struct berth_error **err)
{
	struct cri_services *ctx = ud;
	const Runtime__V1__PullImageRequest *req = (const void *)msg;
	_cleanup_free_ char *norm = NULL, *server = NULL;
	struct manager_pull_auth auth;
	struct manager_image im = { 0 };
	struct arena a = { 0 };
	const char *ref = NULL;
	/* sandbox_config is not used: berth has one platform and one runtime handler */
	int r = spec_ref(req->image, "image", &ref, err);
	if (r < 0 || (r = image_reference_normalize(ref, &norm, err)) < 0)
		return r < 0 ? berth_error_wrap(err, "image.image") : r;
	int has_auth = cri_pull_auth_from_pb(req->auth, norm, &auth, &server, err);
	if (has_auth < 0)
		return has_auth;
	if ((r = manager_image_pull_auth(ctx->manager, norm, has_auth ? &auth : NULL, &im, err)) <
	    0)
		return r;
	Runtime__V1__PullImageResponse *resp = NEW(&a, Runtime__V1__PullImageResponse,
						   runtime__v1__pull_image_response__descriptor);
	if (resp && !(resp->image_ref = arena_str(&a, im.id)))
		resp = NULL;
	manager_image_clear(&im);
	return reply(&a, 0, resp, ret_buf, ret_len);
}

static int h_remove_image(void *ud, const ProtobufCMessage *msg, uint8_t **ret_buf,
			  size_t *ret_len, struct berth_error **err)
{
	struct cri_services *ctx = ud;
	const Runtime__V1__RemoveImageRequest *req = (const void *)msg;
	struct arena a = { 0 };
	struct image_set s = { 0 };
	const char *id;
	int r = lookup(ctx->manager, req->image, &s, &id, err);
	if (r < 0)
		return r;
	/* every name of the image goes, as containerd removes an image with all its tags; an
	 * image that is not there is success */
	for (size_t i = 0; id && i < s.n && r >= 0; i++)
		if (strcmp(s.v[i].id, id) == 0)
			r = manager_image_remove(ctx->manager, s.v[i].name, err);
	image_set_clear(&s);
	Runtime__V1__RemoveImageResponse *resp = NEW(
		&a, Runtime__V1__RemoveImageResponse, runtime__v1__remove_image_response__descriptor);
	return reply(&a, r, resp, ret_buf, ret_len);
}

static Runtime__V1__FilesystemUsage *fs_usage_msg(struct arena *a, const struct manager_fs_usage *u,
						  int64_t now)
{
	Runtime__V1__FilesystemUsage *f =
		NEW(a, Runtime__V1__FilesystemUsage, runtime__v1__filesystem_usage__descriptor);
	Runtime__V1__FilesystemIdentifier *id = NEW(a, Runtime__V1__FilesystemIdentifier,
						    runtime__v1__filesystem_identifier__descriptor);
	Runtime__V1__UInt64Value *bytes =
		NEW(a, Runtime__V1__UInt64Value, runtime__v1__uint64_value__descriptor);
	Runtime__V1__UInt64Value *inodes =
		NEW(a, Runtime__V1__UInt64Value, runtime__v1__uint64_value__descriptor);
	if (!f || !id || !bytes || !inodes || !(id->mountpoint = arena_str(a, u->mountpoint)))
		return NULL;
	bytes->value = u->bytes;
	inodes->value = u->inodes;
	f->timestamp = now;
	f->fs_id = id;
	f->used_bytes = bytes;
	f->inodes_used = inodes;
	return f;
}

static int h_image_fs_info(void *ud, const ProtobufCMessage *msg, uint8_t **ret_buf,
			   size_t *ret_len, struct berth_error **err)
{
	struct cri_services *ctx = ud;
	struct manager_fs_usage images, containers;
	struct arena a = { 0 };
	int r = manager_image_fs_usage(ctx->manager, &images, &containers, err);
	if (r < 0)
		return r;
	int64_t now = now_ns();
	Runtime__V1__ImageFsInfoResponse *resp = NEW(
		&a, Runtime__V1__ImageFsInfoResponse, runtime__v1__image_fs_info_response__descriptor);
	Runtime__V1__FilesystemUsage *fi = fs_usage_msg(&a, &images, now);
	Runtime__V1__FilesystemUsage *fc = fs_usage_msg(&a, &containers, now);
	if (resp && fi && fc && (resp->image_filesystems = arena_alloc(&a, sizeof(fi))) &&
	    (resp->container_filesystems = arena_alloc(&a, sizeof(fc)))) {
		resp->image_filesystems[resp->n_image_filesystems++] = fi;
		resp->container_filesystems[resp->n_container_filesystems++] = fc;
	} else {
		resp = NULL;
	}
	return reply(&a, 0, resp, ret_buf, ret_len);
}

/* ---- the table ---- */

#define UNARY(name, req, fn)                                                                       \
	{ RPC(name), &runtime__v1__##req##__descriptor, fn, NULL, NULL }

static const struct grpc_method image_methods[] = {
	UNARY("ListImages", list_images_request, h_list_images),
	UNARY("ImageStatus", image_status_request, h_image_status),
	UNARY("PullImage", pull_image_request, h_pull_image),
	UNARY("RemoveImage", remove_image_request, h_remove_image),
	UNARY("ImageFsInfo", image_fs_info_request, h_image_fs_info),
};

#define N_METHODS (sizeof(image_methods) / sizeof(image_methods[0]))

const struct grpc_method *cri_image_methods(struct cri_services *ctx)
{
	/* one table for the daemon's one context, as cri_runtime_methods */
	static struct grpc_method table[N_METHODS + 1];
	for (size_t i = 0; i < N_METHODS; i++) {
		table[i] = image_methods[i];
		table[i].userdata = ctx;
	}
	return table;
}
