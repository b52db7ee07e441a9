/* Parsing an index, a manifest and an image config; platforms; chain IDs. Every document is
 * checked for the fields berth relies on, and an error names the field. */
#include "image/manifest-internal.h"

#include "base/cleanup.h"
#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

/* Bodies are NUL-terminated by whoever read them; a NUL inside one is not JSON. */
static int parse_body(const char *body, size_t len, const char *what, struct json **ret, struct berth_error **err)
{
	if (strlen(body) != len)
		return berth_error_set(err, EINVAL, "%s: not JSON (contains a NUL byte)", what);
	int r = bjson_parse(body, ret, err);
	return r < 0 ? berth_error_wrap(err, "%s", what) : 0;
}

static int copy_field(char *dst, size_t size, const struct json *j, const char *what, const char *field,
		      struct berth_error **err)
{
	const char *s = bjson_string(j);
	if (!s) {
		dst[0] = '\0';
		return bjson_type_of(j) == JSON_ABSENT ? 0 :
			berth_error_set(err, EINVAL, "%s: %s: expected a string", what, field);
	}
	if (strlen(s) >= size)
		return berth_error_set(err, EINVAL, "%s: %s: \"%s\" is too long", what, field, s);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int platform_from_json(const struct json *j, struct platform *p, const char *what, struct berth_error **err)
{
	int r = copy_field(p->os, sizeof(p->os), bjson_object_get(j, "os"), what, "os", err);
	if (r == 0)
		r = copy_field(p->architecture, sizeof(p->architecture), bjson_object_get(j, "architecture"), what,
			       "architecture", err);
	if (r == 0)
		r = copy_field(p->variant, sizeof(p->variant), bjson_object_get(j, "variant"), what, "variant", err);
	return r;
}

static int descriptor_from_json(const struct json *j, struct descriptor *d, const char *what,
				struct berth_error **err)
{
	if (bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "%s: expected an object", what);
	const char *mt = bjson_string(bjson_object_get(j, "mediaType"));
	const char *digest = bjson_string(bjson_object_get(j, "digest"));
	if (!mt)
		return berth_error_set(err, EINVAL, "%s.mediaType: missing", what);
	int r = digest_validate(digest, what, err);
	if (r < 0)
		return r;
	if (!bjson_uint64(bjson_object_get(j, "size"), &d->size))
		return berth_error_set(err, EINVAL, "%s.size: expected a non-negative integer", what);
	d->media_type = strdup(mt);
	if (!d->media_type)
		return berth_error_set(err, ENOMEM, "%s: out of memory", what);
	memcpy(d->digest, digest, DIGEST_LEN + 1);
	const struct json *p = bjson_object_get(j, "platform");
	if (bjson_type_of(p) == JSON_OBJECT) {
		d->has_platform = true;
		r = platform_from_json(p, &d->platform, what, err);
	}
	return r;
}

static int descriptors_from_json(const struct json *arr, const char *what, struct descriptor **ret, size_t *ret_n,
				 struct berth_error **err)
{
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "%s: expected an array", what);
	size_t n = bjson_array_size(arr);
	struct descriptor *v = calloc(n ? n : 1, sizeof(*v));
	if (!v)
		return berth_error_set(err, ENOMEM, "%s: out of memory", what);
	*ret = v;
	*ret_n = n;
	for (size_t i = 0; i < n; i++) {
		char name[64];
		snprintf(name, sizeof(name), "%s[%zu]", what, i);
		int r = descriptor_from_json(bjson_array_get(arr, i), &v[i], name, err);
		if (r < 0)
			return r;
	}
	return 0;
}

static void descriptors_free(struct descriptor *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i].media_type);
	free(v);
}

int manifest_kind_of(const char *body, size_t len, const char *content_type, enum manifest_kind *ret,
		     struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = parse_body(body, len, "manifest", &j, err);
	if (r < 0)
		return r;
	if (bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "manifest: expected a JSON object");
	const char *mt = bjson_string(bjson_object_get(j, "mediaType"));
	if (!mt && content_type && strncmp(content_type, "application/json", 16) != 0 &&
	    strncmp(content_type, "text/plain", 10) != 0)
		mt = content_type;
	if (mt && (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0)) {
		*ret = MANIFEST_INDEX;
		return 0;
	}
	if (mt && (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0)) {
		*ret = MANIFEST_IMAGE;
		return 0;
	}
	int64_t version = 0;
	if (bjson_int64(bjson_object_get(j, "schemaVersion"), &version) && version == 1)
		return berth_error_set(err, ENOTSUP, "manifest: Docker schema 1 manifests are not supported (deprecated; push the image again with a current client)");
	if (mt && strncmp(mt, "application/vnd.docker.distribution.manifest.v1", 48) == 0)
		return berth_error_set(err, ENOTSUP, "manifest: media type %s (Docker schema 1) is not supported", mt);
	if (mt)
		return berth_error_set(err, ENOTSUP, "manifest: unsupported media type \"%s\"", mt);
	if (bjson_type_of(bjson_object_get(j, "manifests")) == JSON_ARRAY) {
		*ret = MANIFEST_INDEX;
		return 0;
	}
	if (bjson_type_of(bjson_object_get(j, "layers")) == JSON_ARRAY) {
		*ret = MANIFEST_IMAGE;
		return 0;
	}
	return berth_error_set(err, EINVAL, "manifest: neither an index (\"manifests\") nor an image manifest (\"layers\")");
}

static int check_schema_version(const struct json *j, const char *what, struct berth_error **err)
{
	int64_t v = 0;
	if (!bjson_int64(bjson_object_get(j, "schemaVersion"), &v) || v != 2)
		return berth_error_set(err, EINVAL, "%s.schemaVersion: expected 2", what);
	return 0;
}

int index_parse(const char *body, size_t len, struct index *ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = parse_body(body, len, "index", &j, err);
	if (r == 0)
		r = check_schema_version(j, "index", err);
	struct index x = { 0 };
	if (r == 0)
		r = descriptors_from_json(bjson_object_get(j, "manifests"), "index.manifests", &x.manifests, &x.n, err);
	if (r < 0) {
		index_clear(&x);
		return r;
	}
	*ret = x;
	return 0;
}

void index_clear(struct index *x)
{
	descriptors_free(x->manifests, x->n);
	*x = (struct index){ 0 };
}

static bool variant_matches(const struct platform *want, const struct platform *have)
{
	if (!want->variant[0])
		return true;
	if (strcmp(want->variant, have->variant) == 0)
		return true;
	/* arm64 images often carry no variant, meaning v8 */
	return strcmp(want->architecture, "arm64") == 0 &&
	       ((strcmp(want->variant, "v8") == 0 && !have->variant[0]) ||
		(!want->variant[0] && strcmp(have->variant, "v8") == 0));
}

int index_select(const struct index *x, const struct platform *p, const struct descriptor **ret,
		 struct berth_error **err)
{
	for (size_t i = 0; i < x->n; i++) {
		const struct descriptor *d = &x->manifests[i];
		bool is_manifest = strcmp(d->media_type, MT_OCI_MANIFEST) == 0 ||
				   strcmp(d->media_type, MT_DOCKER_MANIFEST) == 0;
		if (!d->has_platform || !is_manifest)
			continue;
		if (strcmp(d->platform.os, p->os) == 0 && strcmp(d->platform.architecture, p->architecture) == 0 &&
		    variant_matches(p, &d->platform)) {
			*ret = d;
			return 0;
		}
	}
	char want[96], offered[512] = "";
	size_t off = 0;
	for (size_t i = 0; i < x->n && off < sizeof(offered) - 100; i++) {
		char one[96];
		if (!x->manifests[i].has_platform)
			continue;
		off += (size_t)snprintf(offered + off, sizeof(offered) - off, "%s%s", off ? ", " : "",
					platform_string(&x->manifests[i].platform, one, sizeof(one)));
	}
	return berth_error_set(err, ENOENT, "no image for platform %s in the index (it has: %s)",
			       platform_string(p, want, sizeof(want)), off ? offered : "none");
}

int manifest_parse(const char *body, size_t len, struct manifest *ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = parse_body(body, len, "manifest", &j, err);
	if (r == 0)
		r = check_schema_version(j, "manifest", err);
	if (r < 0)
		return r;
	struct manifest m = { 0 };
	const char *mt = bjson_string(bjson_object_get(j, "mediaType"));
	m.media_type = strdup(mt ? mt : MT_OCI_MANIFEST);
	if (!m.media_type)
		r = berth_error_set(err, ENOMEM, "manifest: out of memory");
	if (r == 0)
		r = descriptor_from_json(bjson_object_get(j, "config"), &m.config, "manifest.config", err);
	if (r == 0)
		r = descriptors_from_json(bjson_object_get(j, "layers"), "manifest.layers", &m.layers, &m.n_layers, err);
	for (size_t i = 0; r == 0 && i < m.n_layers; i++)
		if (!layer_media_type_supported(m.layers[i].media_type))
			r = berth_error_set(err, ENOTSUP, "manifest.layers[%zu].mediaType: \"%s\" is not a supported layer type",
					    i, m.layers[i].media_type);
	if (r < 0) {
		manifest_clear(&m);
		return r;
	}
	*ret = m;
	return 0;
}

void manifest_clear(struct manifest *m)
{
	free(m->media_type);
	free(m->config.media_type);
	descriptors_free(m->layers, m->n_layers);
	*m = (struct manifest){ 0 };
}

static int diff_ids_from_json(const struct json *arr, struct image_config *c, struct berth_error **err)
{
	if (bjson_type_of(arr) != JSON_ARRAY)
		return berth_error_set(err, EINVAL, "image config: rootfs.diff_ids: expected an array");
	size_t n = bjson_array_size(arr);
	c->diff_ids = calloc(n ? n : 1, sizeof(*c->diff_ids));
	if (!c->diff_ids)
		return berth_error_set(err, ENOMEM, "image config: out of memory");
	c->n_diff_ids = n;
	for (size_t i = 0; i < n; i++) {
		char what[64];
		snprintf(what, sizeof(what), "image config: rootfs.diff_ids[%zu]", i);
		const char *d = bjson_string(bjson_array_get(arr, i));
		int r = digest_validate(d, what, err);
		if (r < 0)
			return r;
		memcpy(c->diff_ids[i], d, DIGEST_LEN + 1);
	}
	return 0;
}

int image_config_parse(const char *body, size_t len, struct image_config *ret, struct berth_error **err)
{
	_cleanup_(bjson_freep) struct json *j = NULL;
	int r = parse_body(body, len, "image config", &j, err);
	if (r < 0)
		return r;
	if (bjson_type_of(j) != JSON_OBJECT)
		return berth_error_set(err, EINVAL, "image config: expected a JSON object");
	struct image_config c = { 0 };
	const struct json *rootfs = bjson_object_get(j, "rootfs");
	const char *type = bjson_string(bjson_object_get(rootfs, "type"));
	if (!type || strcmp(type, "layers") != 0)
		r = berth_error_set(err, EINVAL, "image config: rootfs.type: expected \"layers\"");
	if (r == 0)
		r = diff_ids_from_json(bjson_object_get(rootfs, "diff_ids"), &c, err);
	if (r == 0)
		r = platform_from_json(j, &c.platform, "image config", err);
	const char *created = bjson_string(bjson_object_get(j, "created"));
	if (r == 0 && created && !(c.created = strdup(created)))
		r = berth_error_set(err, ENOMEM, "image config: out of memory");
	if (r < 0) {
		image_config_clear(&c);
		return r;
	}
	*ret = c;
	return 0;
}

void image_config_clear(struct image_config *c)
{
	free(c->diff_ids);
	free(c->created);
	*c = (struct image_config){ 0 };
}

int chain_ids(const char (*diff_ids)[DIGEST_LEN + 1], size_t n, char (*ret)[DIGEST_LEN + 1],
	      struct berth_error **err)
{
	for (size_t i = 0; i < n; i++) {
		if (i == 0) {
			memcpy(ret[0], diff_ids[0], DIGEST_LEN + 1);
			continue;
		}
		char buf[2 * DIGEST_LEN + 2];
		snprintf(buf, sizeof(buf), "%s %s", ret[i - 1], diff_ids[i]);
		int r = digest_of_buffer(buf, strlen(buf), ret[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

void platform_host(struct platform *ret)
{
	static const struct {
		const char *machine, *arch, *variant;
	} map[] = {
		{ "x86_64", "amd64", "" },   { "aarch64", "arm64", "" }, { "armv7l", "arm", "v7" },
		{ "armv6l", "arm", "v6" },   { "i686", "386", "" },	 { "i386", "386", "" },
		{ "ppc64le", "ppc64le", "" }, { "s390x", "s390x", "" },	 { "riscv64", "riscv64", "" },
	};
	struct utsname u;
	*ret = (struct platform){ .os = "linux" };
	uname(&u);
	snprintf(ret->architecture, sizeof(ret->architecture), "%.31s", u.machine);
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(u.machine, map[i].machine) == 0) {
			snprintf(ret->architecture, sizeof(ret->architecture), "%s", map[i].arch);
			snprintf(ret->variant, sizeof(ret->variant), "%s", map[i].variant);
		}
}

int platform_parse(const char *s, struct platform *ret, struct berth_error **err)
{
	if (!s || !*s) {
		platform_host(ret);
		return 0;
	}
	struct platform p = { 0 };
	const char *a = strchr(s, '/');
	const char *v = a ? strchr(a + 1, '/') : NULL;
	size_t os_len = a ? (size_t)(a - s) : 0;
	size_t arch_len = a ? (v ? (size_t)(v - a - 1) : strlen(a + 1)) : 0;
	if (!a || os_len == 0 || arch_len == 0 || (v && (!v[1] || strchr(v + 1, '/'))) || os_len >= sizeof(p.os) ||
	    arch_len >= sizeof(p.architecture) || (v && strlen(v + 1) >= sizeof(p.variant)))
		return berth_error_set(err, EINVAL, "platform \"%s\": expected OS/ARCH or OS/ARCH/VARIANT", s);
	memcpy(p.os, s, os_len);
	memcpy(p.architecture, a + 1, arch_len);
	if (v)
		memcpy(p.variant, v + 1, strlen(v + 1));
	*ret = p;
	return 0;
}

const char *platform_string(const struct platform *p, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s%s", p->os[0] ? p->os : "?", p->architecture[0] ? p->architecture : "?",
		 p->variant[0] ? "/" : "", p->variant);
	return buf;
}

bool layer_media_type_supported(const char *mt)
{
	static const char *const supported[] = {
		MT_OCI_LAYER,
		MT_OCI_LAYER_GZIP,
		MT_OCI_LAYER_ZSTD,
		MT_DOCKER_LAYER_GZIP,
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
	};
	for (size_t i = 0; i < ARRAY_SIZE(supported); i++)
		if (strcmp(mt, supported[i]) == 0)
			return true;
	return false;
}
