/* image/registry.c against tests/fixtures/fake-registry.py: manifests, blobs (whole, resumed,
 * cut, stalled, redirected), retries, Basic and Bearer auth, mirrors, which scheme a domain gets,
 * and the errors of registries.json and config.json. Everything talks to 127.0.0.1 only: the
 * one test that needs a name elsewhere sends it to the fake registry as its proxy. */
#include "unit.h"

#include "base/cleanup.h"
#include "base/json.h"
#include "image/digest-internal.h"
#include "image/registry-internal.h"

#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#ifndef BERTH_FAKE_REGISTRY
#error "BERTH_FAKE_REGISTRY: the path of tests/fixtures/fake-registry.py"
#endif

#define REPO "test/image"
#define MAX_SERVERS 3
#define OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_LIST "application/vnd.docker.distribution.manifest.list.v2+json"

/* ---- the image layout every server serves (built once) ---- */

struct blob {
	char digest[DIGEST_LEN + 1];
	char *data;
	size_t len;
};

static struct {
	struct unit_tmpdir dir; /* dir/layout: the image; dir/empty: a layout without images */
	char layout[128];
	char empty[128];
	struct blob config, small, big, huge, manifest, index, docker, list;
	char tampered[DIGEST_LEN + 1]; /* a blob file whose content has another digest */
} L;

static void put_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void blob_store(struct blob *b, const char *layout, char *data, size_t len)
{
	char path[256];
	b->data = data;
	b->len = len;
	assert_int_equal(digest_of_buffer(data, len, b->digest, NULL), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", layout, digest_hex(b->digest));
	put_file(path, data, len);
}

static void blob_store_text(struct blob *b, const char *layout, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void blob_store_text(struct blob *b, const char *layout, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(&text, fmt, ap) >= 0);
	va_end(ap);
	blob_store(b, layout, text, strlen(text));
}

static void make_layout_dirs(const char *root)
{
	char path[256];
	assert_int_equal(mkdir(root, 0755), 0);
	snprintf(path, sizeof(path), "%s/blobs", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/oci-layout", root);
	put_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
}

static void make_manifests(void)
{
#define DESC "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}"
	blob_store_text(&L.manifest, L.layout,
			"{\"schemaVersion\":2,\"mediaType\":\"" OCI_MANIFEST "\",\"config\":" DESC
			",\"layers\":[" DESC "," DESC "]}",
			"application/vnd.oci.image.config.v1+json", L.config.digest, L.config.len,
			"application/vnd.oci.image.layer.v1.tar", L.small.digest, L.small.len,
			"application/vnd.oci.image.layer.v1.tar", L.big.digest, L.big.len);
	blob_store_text(&L.index, L.layout,
			"{\"schemaVersion\":2,\"mediaType\":\"" OCI_INDEX "\",\"manifests\":[" DESC
			"]}",
			OCI_MANIFEST, L.manifest.digest, L.manifest.len);
	blob_store_text(&L.docker, L.layout,
			"{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_MANIFEST
			"\",\"config\":" DESC ",\"layers\":[" DESC "]}",
			"application/vnd.docker.container.image.v1+json", L.config.digest,
			L.config.len, "application/vnd.docker.image.rootfs.diff.tar.gzip",
			L.small.digest, L.small.len);
	blob_store_text(&L.list, L.layout,
			"{\"schemaVersion\":2,\"mediaType\":\"" DOCKER_LIST
			"\",\"manifests\":[" DESC "]}",
			DOCKER_MANIFEST, L.docker.digest, L.docker.len);
#undef DESC
}

static void make_index(const char *root, const char *entries)
{
	char path[256], *text = NULL;
	snprintf(path, sizeof(path), "%s/index.json", root);
	assert_true(asprintf(&text, "{\"schemaVersion\":2,\"manifests\":[%s]}", entries) >= 0);
	put_file(path, text, strlen(text));
	free(text);
}

static void make_tagged_index(void)
{
#define TAGGED                                                                                     \
	"{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,\"annotations\":"                    \
	"{\"org.opencontainers.image.ref.name\":\"%s\"}}"
	char *entries = NULL;
	assert_true(asprintf(&entries, TAGGED "," TAGGED "," TAGGED "," TAGGED, OCI_MANIFEST,
			     L.manifest.digest, L.manifest.len, "latest", OCI_INDEX, L.index.digest,
			     L.index.len, "multi", DOCKER_MANIFEST, L.docker.digest, L.docker.len,
			     "docker", DOCKER_LIST, L.list.digest, L.list.len, "list") >= 0);
#undef TAGGED
	make_index(L.layout, entries);
	free(entries);
}

static int layout_setup(void **state)
{
	(void)state;
	L.dir.fd = -1;
	if (unit_tmpdir_create(&L.dir) < 0)
		return -1;
	snprintf(L.layout, sizeof(L.layout), "%s/layout", L.dir.path);
	snprintf(L.empty, sizeof(L.empty), "%s/empty", L.dir.path);
	make_layout_dirs(L.layout);
	make_layout_dirs(L.empty);
	make_index(L.empty, "");

	blob_store_text(&L.config, L.layout, "{\"architecture\":\"amd64\",\"os\":\"linux\"}");
	blob_store_text(&L.small, L.layout, "a small layer\n");
	size_t big = 3 * 1024 * 1024 + 12345;
	char *data = malloc(big);
	assert_non_null(data);
	for (size_t done = 0; done < big;)
		done += (size_t)getrandom(data + done, big - done, 0);
	blob_store(&L.big, L.layout, data, big);
	size_t huge = 4 * 1024 * 1024 + 1; /* one byte over what a manifest may be */
	data = malloc(huge);
	assert_non_null(data);
	memset(data, ' ', huge);
	blob_store(&L.huge, L.layout, data, huge);
	make_manifests();
	make_tagged_index();

	/* a manifest stored under a digest it does not have */
	char path[256];
	assert_int_equal(digest_of_buffer("something else", 14, L.tampered, NULL), 0);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", L.layout, digest_hex(L.tampered));
	put_file(path, L.manifest.data, L.manifest.len - 1);
	return 0;
}

static int layout_teardown(void **state)
{
	(void)state;
	struct blob *all[] = { &L.config,   &L.small, &L.big,	 &L.huge,
			       &L.manifest, &L.index, &L.docker, &L.list };
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		free(all[i]->data);
	unit_tmpdir_remove(&L.dir);
	return 0;
}

/* ---- per test: fake registries, configuration, results ---- */

struct server {
	pid_t pid;
	int port;
};

struct sink {
	char *data;
	size_t len;
	size_t cap;
	int fail_with; /* > 0: the callback refuses with this errno */
};

struct fx {
	struct unit_tmpdir dir; /* registries.json, config.json */
	struct server servers[MAX_SERVERS];
	size_t n_servers;
	struct registry_config *config;
	struct registry *reg;
	struct berth_error *err;
	char *body;
	char *media_type;
	size_t len;
	struct sink sink;
	struct json *stats;
	char domain[64];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->dir.fd = -1;
	if (unit_tmpdir_create(&f->dir) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	for (size_t i = 0; i < f->n_servers; i++) {
		kill(f->servers[i].pid, SIGTERM);
		(void)waitpid(f->servers[i].pid, NULL, 0);
	}
	registry_free(f->reg);
	registry_config_free(f->config);
	berth_error_free(f->err);
	free(f->body);
	free(f->media_type);
	free(f->sink.data);
	bjson_free(f->stats);
	unit_tmpdir_remove(&f->dir);
	unsetenv("https_proxy");
	unsetenv("http_proxy");
	free(f);
	return 0;
}

/* The fake registry's first line of output: its port. */
static int read_port(int fd)
{
	char buf[32] = "";
	size_t n = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	while (n < sizeof(buf) - 1 && !memchr(buf, '\n', n)) {
		assert_int_equal(poll(&p, 1, 20000), 1);
		ssize_t k = read(fd, buf + n, sizeof(buf) - 1 - n);
		assert_true(k > 0);
		n += (size_t)k;
	}
	return atoi(buf);
}

/* Starts fake-registry.py on layout with the options that follow (NULL-terminated); returns its
 * port. It dies with this process, whatever happens to the test. */
static int serve(struct fx *f, const char *layout, ...)
{
	const char *argv[24] = { "/usr/bin/python3", BERTH_FAKE_REGISTRY };
	size_t argc = 2;
	va_list ap;
	va_start(ap, layout);
	for (const char *o; (o = va_arg(ap, const char *)) && argc < ARRAY_SIZE(argv) - 2;)
		argv[argc++] = o;
	va_end(ap);
	argv[argc++] = layout;
	assert_true(f->n_servers < MAX_SERVERS);

	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(p[1], STDOUT_FILENO);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	struct server *s = &f->servers[f->n_servers++];
	s->pid = pid;
	s->port = read_port(p[0]);
	close(p[0]);
	assert_true(s->port > 0);
	return s->port;
}

/* A port on 127.0.0.1 where nothing listens. */
static int closed_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void put_text(struct fx *f, const char *name, const char *text)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/%s", f->dir.path, name);
	put_file(path, text, strlen(text));
}

/* Loads the configuration from the texts given (NULL: an empty object). */
static int load_config(struct fx *f, const char *registries, const char *auths)
{
	char config[128], auth[128];
	put_text(f, "registries.json", registries ? registries : "{}");
	put_text(f, "config.json", auths ? auths : "{}");
	snprintf(config, sizeof(config), "%s/registries.json", f->dir.path);
	snprintf(auth, sizeof(auth), "%s/config.json", f->dir.path);
	return registry_config_load(config, auth, &f->config, &f->err);
}

/* Configuration as given, and a registry for 127.0.0.1:port/test/image. */
static void open_at(struct fx *f, int port, const char *registries, const char *auths)
{
	assert_int_equal(load_config(f, registries, auths), 0);
	snprintf(f->domain, sizeof(f->domain), "127.0.0.1:%d", port);
	assert_int_equal(registry_open(f->config, f->domain, REPO, &f->reg, &f->err), 0);
}

static int get_manifest(struct fx *f, const char *ref)
{
	free(f->body);
	free(f->media_type);
	f->body = f->media_type = NULL;
	berth_error_freep(&f->err);
	return registry_get_manifest(f->reg, ref, &f->body, &f->len, &f->media_type, &f->err);
}

static int sink_cb(void *opaque, const void *buf, size_t len, struct berth_error **err)
{
	struct sink *s = opaque;
	if (s->fail_with)
		return berth_error_set(err, s->fail_with, "sink refuses");
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->data = realloc(s->data, s->cap);
		assert_non_null(s->data);
	}
	memcpy(s->data + s->len, buf, len);
	s->len += len;
	return 0;
}

static int fetch(struct fx *f, const struct blob *b, uint64_t offset)
{
	f->sink.len = 0;
	berth_error_freep(&f->err);
	return registry_fetch_blob(f->reg, b->digest, offset, b->len, sink_cb, &f->sink, &f->err);
}

static void assert_fetched(struct fx *f, const struct blob *b, uint64_t offset)
{
	assert_int_equal(f->sink.len, b->len - offset);
	assert_memory_equal(f->sink.data, b->data + offset, b->len - offset);
}

/* GET /stats of a fake registry, never through a proxy. */
static const struct json *stats(struct fx *f, int port)
{
	char url[64];
	struct sink s = { 0 };
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/stats", port);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	FILE *mem = open_memstream(&s.data, &s.len);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, mem);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_cleanup(c);
	fclose(mem);
	bjson_free(f->stats);
	f->stats = NULL;
	assert_int_equal(bjson_parse(s.data, &f->stats, NULL), 0);
	free(s.data);
	return f->stats;
}

static int64_t counter(const struct json *st, const char *key, const char *path)
{
	int64_t n = 0;
	const struct json *v =
		path ? bjson_object_get(bjson_object_get(st, key), path) : bjson_object_get(st, key);
	if (v)
		assert_true(bjson_int64(v, &n));
	return n;
}

static const char *blob_path(const struct blob *b)
{
	static char path[128];
	snprintf(path, sizeof(path), "/v2/" REPO "/blobs/%s", b->digest);
	return path;
}

/* Gets the "latest" manifest and the small blob, and checks how many requests each took. */
static void pull_counting(struct fx *f, int port, int64_t manifest_requests, int64_t blob_requests)
{
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_memory_equal(f->body, L.manifest.data, L.manifest.len);
	assert_int_equal(fetch(f, &L.small, 0), 0);
	assert_fetched(f, &L.small, 0);
	const struct json *st = stats(f, port);
	assert_int_equal(counter(st, "requests", "/v2/" REPO "/manifests/latest"),
			 manifest_requests);
	assert_int_equal(counter(st, "requests", blob_path(&L.small)), blob_requests);
}

/* ---- manifests ---- */

static void test_manifest_by_tag(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_int_equal(f->len, L.manifest.len);
	assert_memory_equal(f->body, L.manifest.data, f->len);
	assert_string_equal(f->media_type, OCI_MANIFEST);
	const struct json *st = stats(f, port);
	const char *accept = bjson_string(bjson_array_get(bjson_object_get(st, "accept"), 0));
	assert_contains(accept, OCI_INDEX);
	assert_contains(accept, OCI_MANIFEST);
	assert_contains(accept, DOCKER_LIST);
	assert_contains(accept, DOCKER_MANIFEST);
}

/* The fake answers 404 to a manifest whose type the request does not accept. */
static void test_manifest_media_types(void **state)
{
	struct fx *f = *state;
	open_at(f, serve(f, L.layout, NULL), NULL, NULL);
	const struct {
		const char *tag;
		const struct blob *b;
		const char *type;
	} cases[] = { { "multi", &L.index, OCI_INDEX },
		      { "docker", &L.docker, DOCKER_MANIFEST },
		      { "list", &L.list, DOCKER_LIST } };
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(get_manifest(f, cases[i].tag), 0);
		assert_string_equal(f->media_type, cases[i].type);
		assert_int_equal(f->len, cases[i].b->len);
		assert_memory_equal(f->body, cases[i].b->data, f->len);
	}
}

static void test_manifest_by_digest(void **state)
{
	struct fx *f = *state;
	open_at(f, serve(f, L.layout, NULL), NULL, NULL);
	assert_int_equal(get_manifest(f, L.index.digest), 0);
	assert_memory_equal(f->body, L.index.data, L.index.len);
	assert_string_equal(f->media_type, OCI_INDEX);

	assert_int_equal(get_manifest(f, L.tampered), -EBADMSG);
	assert_null(f->body);
	assert_contains(f->err->msg, L.tampered);
	assert_contains(f->err->msg, "digest is sha256:");
}

static void test_manifest_too_large(void **state)
{
	struct fx *f = *state;
	open_at(f, serve(f, L.layout, NULL), NULL, NULL);
	assert_int_equal(get_manifest(f, L.huge.digest), -EFBIG);
	assert_null(f->body);
	assert_contains(f->err->msg, "the body is larger than 4194304 bytes");
}

static void test_manifest_unknown(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "nope"), -ENOENT);
	char want[128];
	snprintf(want, sizeof(want), "manifest unknown: 127.0.0.1:%d/" REPO ":nope", port);
	assert_string_equal(f->err->msg, want);
	/* a 404 is not retried */
	assert_int_equal(counter(stats(f, port), "requests", "/v2/" REPO "/manifests/nope"), 1);
}

static void test_manifest_bad_reference(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "../../etc"), -EINVAL);
	assert_contains(f->err->msg, "not a tag or a digest");
	assert_int_equal(get_manifest(f, "sha512:abcd"), -ENOTSUP);
	assert_int_equal(bjson_object_size(bjson_object_get(stats(f, port), "requests")), 0);

	struct registry *r = NULL;
	berth_error_freep(&f->err);
	assert_int_equal(registry_open(f->config, f->domain, "Upper/../x", &r, &f->err), -EINVAL);
	assert_null(r);
	assert_contains(f->err->msg, "not a repository name");
}

/* ---- blobs ---- */

static void test_blob_whole(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.big, 0), 0);
	assert_fetched(f, &L.big, 0);
	assert_int_equal(fetch(f, &L.small, 0), 0);
	assert_fetched(f, &L.small, 0);
	assert_null(bjson_object_get(bjson_object_get(stats(f, port), "ranges"), blob_path(&L.big)));
	/* nothing left to fetch: no request at all */
	assert_int_equal(fetch(f, &L.small, L.small.len), 0);
	assert_int_equal(f->sink.len, 0);
	assert_int_equal(counter(stats(f, port), "requests", blob_path(&L.small)), 1);
}

static void test_blob_resume_offset(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.big, 1000000), 0);
	assert_fetched(f, &L.big, 1000000);
	const struct json *ranges =
		bjson_object_get(bjson_object_get(stats(f, port), "ranges"), blob_path(&L.big));
	assert_int_equal(bjson_array_size(ranges), 1);
	assert_string_equal(bjson_string(bjson_array_get(ranges, 0)), "bytes=1000000-");
}

static void test_blob_ignore_range(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--ignore-range", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.big, 12345), 0);
	assert_fetched(f, &L.big, 12345);
	assert_int_equal(counter(stats(f, port), "requests", blob_path(&L.big)), 1);
}

static void test_blob_cut_resumed(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--cut-after", "100000", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.big, 0), 0);
	assert_fetched(f, &L.big, 0);
	const struct json *st = stats(f, port);
	assert_int_equal(counter(st, "requests", blob_path(&L.big)), 2);
	const struct json *ranges =
		bjson_object_get(bjson_object_get(st, "ranges"), blob_path(&L.big));
	assert_string_equal(bjson_string(bjson_array_get(ranges, 0)), "bytes=100000-");
}

static void test_blob_cut_and_range_ignored(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--cut-after", "70000", "--ignore-range", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.big, 5), 0);
	assert_fetched(f, &L.big, 5);
	assert_int_equal(counter(stats(f, port), "requests", blob_path(&L.big)), 2);
}

static void test_blob_more_than_size(void **state)
{
	struct fx *f = *state;
	open_at(f, serve(f, L.layout, NULL), NULL, NULL);
	f->sink.len = 0;
	assert_int_equal(registry_fetch_blob(f->reg, L.big.digest, 0, L.big.len - 10, sink_cb,
					     &f->sink, &f->err),
			 -EFBIG);
	assert_true(f->sink.len <= L.big.len - 10);
	assert_contains(f->err->msg, "more than the");
}

static void test_blob_callback_error(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	open_at(f, port, NULL, NULL);
	f->sink.fail_with = ENOSPC;
	assert_int_equal(fetch(f, &L.big, 0), -ENOSPC);
	assert_string_equal(f->err->msg, "sink refuses");
	assert_int_equal(counter(stats(f, port), "requests", blob_path(&L.big)), 1);
}

static void test_blob_unknown(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.empty, NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.small, 0), -ENOENT);
	char want[160];
	snprintf(want, sizeof(want), "blob unknown: 127.0.0.1:%d/" REPO "@%s", port,
		 L.small.digest);
	assert_string_equal(f->err->msg, want);
}

/* ---- retries ---- */

static void test_fail_first_retried(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--fail-first", "2", NULL);
	open_at(f, port, NULL, NULL);
	pull_counting(f, port, 3, 3);
}

static void test_retries_exhausted(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--fail-first", "100", NULL);
	open_at(f, port, "{\"retries\": 2}", NULL);
	assert_int_equal(fetch(f, &L.small, 0), -EIO);
	char url[200];
	snprintf(url, sizeof(url), "GET http://127.0.0.1:%d%s: HTTP 503: UNAVAILABLE: fake failure",
		 port, blob_path(&L.small));
	assert_contains(f->err->msg, url);
	assert_contains(f->err->msg, "gave up after 3 attempts");
	assert_int_equal(counter(stats(f, port), "requests", blob_path(&L.small)), 3);
}

static void test_stall_retried(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--stall", "30", NULL);
	open_at(f, port, "{\"stallTimeout\": 1}", NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(fetch(f, &L.big, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_fetched(f, &L.big, 0);
	print_message("stall detected and resumed in %ld s\n", (long)(t1.tv_sec - t0.tv_sec));
	assert_true(t1.tv_sec - t0.tv_sec < 20); /* dropped long before the server wakes up */
	const struct json *st = stats(f, port);
	const struct json *ranges =
		bjson_object_get(bjson_object_get(st, "ranges"), blob_path(&L.big));
	assert_string_equal(bjson_string(bjson_array_get(ranges, 0)), "bytes=1024-");
}

/* ---- authentication ---- */

static void test_bearer_token_reused(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--bearer", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_int_equal(fetch(f, &L.small, 0), 0);
	assert_int_equal(fetch(f, &L.config, 0), 0);
	assert_int_equal(fetch(f, &L.big, 0), 0);
	assert_fetched(f, &L.big, 0);
	assert_int_equal(get_manifest(f, "docker"), 0);
	const struct json *st = stats(f, port);
	assert_int_equal(counter(st, "token_requests", NULL), 1);
	assert_string_equal(bjson_string(bjson_array_get(bjson_object_get(st, "token_scopes"), 0)),
			    "repository:" REPO ":pull");
	/* one 401, then the token goes with every request */
	assert_int_equal(counter(st, "requests", "/v2/" REPO "/manifests/latest"), 2);
	assert_int_equal(counter(st, "requests", blob_path(&L.big)), 1);
	assert_int_equal(counter(st, "authorization", blob_path(&L.big)), 1);
	assert_int_equal(counter(st, "requests", "/v2/" REPO "/manifests/docker"), 1);
}

struct thread_job {
	struct registry *reg;
	struct sink sink;
	int result;
	struct berth_error *err;
};

static void *fetch_thread(void *opaque)
{
	struct thread_job *j = opaque;
	j->result =
		registry_fetch_blob(j->reg, L.big.digest, 0, L.big.len, sink_cb, &j->sink, &j->err);
	return NULL;
}

static void test_bearer_threads(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--bearer", "--cut-after", "200000", NULL);
	open_at(f, port, NULL, NULL);
	struct thread_job jobs[4] = { 0 };
	pthread_t threads[ARRAY_SIZE(jobs)];
	for (size_t i = 0; i < ARRAY_SIZE(jobs); i++) {
		jobs[i].reg = f->reg;
		assert_int_equal(pthread_create(&threads[i], NULL, fetch_thread, &jobs[i]), 0);
	}
	for (size_t i = 0; i < ARRAY_SIZE(jobs); i++) {
		assert_int_equal(pthread_join(threads[i], NULL), 0);
		if (jobs[i].err)
			print_error("thread %zu: %s\n", i, jobs[i].err->msg);
		assert_int_equal(jobs[i].result, 0);
		assert_int_equal(jobs[i].sink.len, L.big.len);
		assert_memory_equal(jobs[i].sink.data, L.big.data, L.big.len);
		free(jobs[i].sink.data);
		berth_error_free(jobs[i].err);
	}
	assert_int_equal(counter(stats(f, port), "token_requests", NULL), 1);
}

static void test_bearer_with_credentials(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--bearer", "--user", "alice:s3cr:et", "--scope-actions",
			 "pull,push", NULL);
	char auths[256];
	/* base64("alice:s3cr:et"): the password keeps its colon */
	snprintf(auths, sizeof(auths),
		 "{\"auths\": {\"127.0.0.1:%d\": {\"auth\": \"YWxpY2U6czNjcjpldA==\"}},"
		 " \"credsStore\": \"none\"}",
		 port);
	open_at(f, port, NULL, auths);
	pull_counting(f, port, 2, 1);
	const struct json *st = f->stats;
	assert_int_equal(counter(st, "token_requests", NULL), 1);
	/* the comma inside the quoted scope did not end it */
	assert_string_equal(bjson_string(bjson_array_get(bjson_object_get(st, "token_scopes"), 0)),
			    "repository:" REPO ":pull,push");
}

static void test_bearer_without_credentials(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--bearer", "--user", "alice:secret", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "latest"), -EACCES);
	char want[128];
	snprintf(want, sizeof(want), "token from http://127.0.0.1:%d/token: HTTP 401: UNAUTHORIZED",
		 port);
	assert_contains(f->err->msg, want);
	assert_int_equal(counter(stats(f, port), "token_requests", NULL), 0);
}

static void test_bearer_expiry_and_access_token(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--bearer", "--access-token", "--expires-in", "1", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_int_equal(counter(stats(f, port), "token_requests", NULL), 1);
	struct timespec ts = { .tv_sec = 1, .tv_nsec = 200000000 };
	nanosleep(&ts, NULL);
	assert_int_equal(get_manifest(f, "latest"), 0);
	const struct json *st = stats(f, port);
	assert_int_equal(counter(st, "token_requests", NULL), 2);
	/* the expired token was replaced before it was sent: no second 401 */
	assert_int_equal(counter(st, "requests", "/v2/" REPO "/manifests/latest"), 4);
}

static void test_basic_auth(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--basic", "bob:pw", NULL);
	char auths[256];
	/* a key with scheme and path, as `docker login` writes for some registries */
	snprintf(auths, sizeof(auths),
		 "{\"auths\": {\"http://127.0.0.1:%d/v1/\": {\"username\": \"bob\", \"password\": "
		 "\"pw\"},"
		 " \"other:1\": {}}}",
		 port);
	open_at(f, port, NULL, auths);
	/* a 401 first; from then on the credentials go with every request */
	pull_counting(f, port, 2, 1);
}

static void test_basic_missing_or_wrong(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--basic", "bob:pw", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(get_manifest(f, "latest"), -EACCES);
	char want[128];
	snprintf(want, sizeof(want), "authentication required by 127.0.0.1:%d: no credentials",
		 port);
	assert_string_equal(f->err->msg, want);

	registry_free(TAKE_PTR(f->reg));
	registry_config_free(TAKE_PTR(f->config));
	char auths[256];
	snprintf(auths, sizeof(auths), "{\"auths\": {\"127.0.0.1:%d\": {\"auth\": \"Ym9iOm5v\"}}}",
		 port);
	open_at(f, port, NULL, auths); /* bob:no */
	assert_int_equal(get_manifest(f, "latest"), -EACCES);
	assert_contains(f->err->msg, "HTTP 401: UNAUTHORIZED: authentication required");
}

static void test_redirect_without_auth(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, "--bearer", "--redirect", NULL);
	open_at(f, port, NULL, NULL);
	assert_int_equal(fetch(f, &L.big, 0), 0);
	assert_fetched(f, &L.big, 0);
	assert_int_equal(fetch(f, &L.small, 3), 0);
	assert_fetched(f, &L.small, 3);
	const struct json *st = stats(f, port);
	assert_int_equal(counter(st, "requests", blob_path(&L.big)), 2); /* 401, then 307 */
	assert_int_equal(counter(st, "authorization", blob_path(&L.big)), 1);
	char redirected[128];
	snprintf(redirected, sizeof(redirected), "/redirected/%s", L.small.digest);
	assert_int_equal(counter(st, "requests", redirected), 1);
	assert_string_equal(bjson_string(bjson_array_get(
				    bjson_object_get(bjson_object_get(st, "ranges"), redirected), 0)),
			    "bytes=3-");
	assert_int_equal(counter(st, "redirected_authorization", NULL), 0);
}

/* ---- registries.json and config.json ---- */

static void assert_config_error(struct fx *f, const char *registries, const char *auths,
				const char *message)
{
	berth_error_freep(&f->err);
	registry_config_free(TAKE_PTR(f->config));
	assert_int_equal(load_config(f, registries, auths), -EINVAL);
	assert_null(f->config);
	assert_contains(f->err->msg, message);
}

static void test_config_errors(void **state)
{
	struct fx *f = *state;
	assert_config_error(
		f, "{\"registries\": {\"docker.io\": {\"mirrors\": [1]}}}", NULL,
		"registries.json: registries.\"docker.io\".mirrors[0]: expected a string");
	assert_config_error(f, "{\"registries\": {\"docker.io\": {\"mirrors\": \"x\"}}}", NULL,
			    "registries.json: registries.\"docker.io\".mirrors: expected an array");
	assert_config_error(f, "{\"registries\": {\"a:1\": {\"insecure\": \"yes\"}}}", NULL,
			    "registries.json: registries.\"a:1\".insecure: expected a boolean");
	assert_config_error(f, "{\"registries\": {\"a:1\": {\"mirror\": []}}}", NULL,
			    "registries.json: registries.\"a:1\".mirror: unknown key");
	assert_config_error(
		f, "{\"registries\": {\"a\": {\"mirrors\": [\"ftp://x\"]}}}", NULL,
		"registries.\"a\".mirrors[0]: \"ftp://x\" is not an http:// or https:// URL");
	assert_config_error(f, "{\"registries\": []}", NULL,
			    "registries.json: registries: expected an object");
	assert_config_error(f, "{\"retry\": 3}", NULL, "registries.json: retry: unknown key");
	assert_config_error(f, "{\"retries\": \"3\"}", NULL,
			    "registries.json: retries: expected an integer from 0 to 100");
	assert_config_error(f, "{\"stallTimeout\": 0}", NULL, "stallTimeout: expected an integer");
	assert_config_error(f, "[]", NULL, "registries.json: expected an object");
	assert_config_error(f, "{", NULL, "registries.json: invalid JSON");
}

static void test_auth_file_errors(void **state)
{
	struct fx *f = *state;
	assert_config_error(f, NULL, "{\"auths\": []}", "config.json: auths: expected an object");
	assert_config_error(f, NULL, "{\"auths\": {\"h:1\": {\"auth\": 5}}}",
			    "config.json: auths.\"h:1\".auth: expected a string");
	assert_config_error(f, NULL, "{\"auths\": {\"h:1\": {\"auth\": \"!!!!\"}}}",
			    "config.json: auths.\"h:1\".auth: not base64 of user:password");
	assert_config_error(f, NULL, "{\"auths\": {\"h:1\": {\"auth\": \"dXNlcg==\"}}}",
			    "auths.\"h:1\".auth: not base64 of user:password"); /* "user" */
	assert_config_error(f, NULL, "{\"auths\": {\"h\": {\"username\": \"u\"}}}",
			    "config.json: auths.\"h\": username without password");
	assert_config_error(f, NULL, "{\"auths\": {\"h\": {\"username\": \"u\", \"password\": 1}}}",
			    "config.json: auths.\"h\".password: expected a string");
	assert_config_error(f, NULL, "{\"auths\": {\"h\": \"x\"}}",
			    "config.json: auths.\"h\": expected an object");
}

static void test_config_files_missing(void **state)
{
	struct fx *f = *state;
	char missing[160], config[160];
	snprintf(missing, sizeof(missing), "%s/absent.json", f->dir.path);
	assert_int_equal(registry_config_load(missing, NULL, &f->config, &f->err), -ENOENT);
	assert_contains(f->err->msg, missing);
	berth_error_freep(&f->err);
	put_text(f, "registries.json", "{\"maxParallelDownloads\": 5}");
	snprintf(config, sizeof(config), "%s/registries.json", f->dir.path);
	assert_int_equal(registry_config_load(config, missing, &f->config, &f->err), -ENOENT);
	berth_error_freep(&f->err);
	/* a default auth file that is missing is no error */
	setenv("REGISTRY_AUTH_FILE", missing, 1);
	int r = registry_config_load(config, NULL, &f->config, &f->err);
	unsetenv("REGISTRY_AUTH_FILE");
	assert_int_equal(r, 0);
	assert_int_equal(registry_config_max_parallel(f->config), 5);
	registry_config_free(TAKE_PTR(f->config));
	assert_int_equal(load_config(f, NULL, NULL), 0);
	assert_int_equal(registry_config_max_parallel(f->config), 0);
}

/* ---- endpoints: mirrors and schemes ---- */

static void test_mirror_first(void **state)
{
	struct fx *f = *state;
	int mirror = serve(f, L.layout, NULL);
	int port = serve(f, L.layout, NULL);
	char conf[256];
	snprintf(conf, sizeof(conf),
		 "{\"registries\": {\"127.0.0.1:%d\": {\"mirrors\": [\"http://127.0.0.1:%d/\"]}}}",
		 port, mirror);
	open_at(f, port, conf, NULL);
	pull_counting(f, mirror, 1, 1);
	assert_int_equal(bjson_object_size(bjson_object_get(stats(f, port), "requests")), 0);
}

static void test_mirror_fallback(void **state)
{
	struct fx *f = *state;
	int empty = serve(f, L.empty, NULL);
	int port = serve(f, L.layout, NULL);
	char conf[256];
	snprintf(conf, sizeof(conf),
		 "{\"registries\": {\"127.0.0.1:%d\": {\"mirrors\": [\"http://127.0.0.1:%d\", "
		 "\"http://127.0.0.1:%d\"]}}}",
		 port, closed_port(), empty);
	open_at(f, port, conf, NULL);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_int_equal(fetch(f, &L.small, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_fetched(f, &L.small, 0);
	assert_true(t1.tv_sec - t0.tv_sec < 2); /* a mirror that is down is not retried */
	assert_int_equal(counter(stats(f, empty), "requests", blob_path(&L.small)), 1);
	assert_int_equal(counter(stats(f, port), "requests", blob_path(&L.small)), 1);
}

/* A name that is not loopback gets https: seen as the CONNECT the fake registry gets as proxy. */
static void test_https_by_default(void **state)
{
	struct fx *f = *state;
	int proxy = serve(f, L.empty, NULL);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", proxy);
	setenv("https_proxy", url, 1);
	setenv("http_proxy", url, 1);
	assert_int_equal(load_config(f, "{\"retries\": 0}", NULL), 0);
	const char *domains[] = { "registry.invalid", "docker.io" };
	const char *hosts[] = { "registry.invalid", "registry-1.docker.io" };
	for (size_t i = 0; i < ARRAY_SIZE(domains); i++) {
		registry_free(TAKE_PTR(f->reg));
		assert_int_equal(registry_open(f->config, domains[i], REPO, &f->reg, &f->err), 0);
		assert_true(get_manifest(f, "latest") < 0);
		char want[128];
		snprintf(want, sizeof(want), "GET https://%s/v2/" REPO "/manifests/latest",
			 hosts[i]);
		assert_contains(f->err->msg, want);
		snprintf(want, sizeof(want), "%s:443", hosts[i]);
		const struct json *connect = bjson_object_get(stats(f, proxy), "connect");
		assert_string_equal(bjson_string(bjson_array_get(connect, i)), want);
	}
}

static void test_insecure_by_config(void **state)
{
	struct fx *f = *state;
	int proxy = serve(f, L.layout, NULL);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", proxy);
	setenv("http_proxy", url, 1);
	assert_int_equal(
		load_config(f, "{\"registries\": {\"registry.invalid\": {\"insecure\": true}}}",
			    NULL),
		0);
	assert_int_equal(registry_open(f->config, "registry.invalid", REPO, &f->reg, &f->err), 0);
	assert_int_equal(get_manifest(f, "latest"), 0);
	assert_memory_equal(f->body, L.manifest.data, L.manifest.len);
	const struct json *proxied = bjson_object_get(stats(f, proxy), "proxied");
	assert_string_equal(bjson_string(bjson_array_get(proxied, 0)),
			    "http://registry.invalid/v2/" REPO "/manifests/latest");
}

/* Loopback is insecure by default, and the config can say otherwise. */
static void test_loopback_secure_by_config(void **state)
{
	struct fx *f = *state;
	int port = serve(f, L.layout, NULL);
	char conf[160];
	snprintf(conf, sizeof(conf),
		 "{\"registries\": {\"127.0.0.1:%d\": {\"insecure\": false}}, \"retries\": 0}",
		 port);
	open_at(f, port, conf, NULL);
	assert_true(get_manifest(f, "latest") < 0);
	char want[128];
	snprintf(want, sizeof(want),
		 "GET https://127.0.0.1:%d/v2/" REPO "/manifests/latest: ", port);
	assert_contains(f->err->msg, want);
}

int main(void)
{
	/* the tests talk to 127.0.0.1 directly, whatever proxy the machine has */
	const char *proxies[] = { "http_proxy", "https_proxy", "all_proxy", "no_proxy",
				  "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY" };
	for (size_t i = 0; i < ARRAY_SIZE(proxies); i++)
		unsetenv(proxies[i]);
	signal(SIGPIPE, SIG_IGN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_manifest_by_tag),
		T(test_manifest_media_types),
		T(test_manifest_by_digest),
		T(test_manifest_too_large),
		T(test_manifest_unknown),
		T(test_manifest_bad_reference),
		T(test_blob_whole),
		T(test_blob_resume_offset),
		T(test_blob_ignore_range),
		T(test_blob_cut_resumed),
		T(test_blob_cut_and_range_ignored),
		T(test_blob_more_than_size),
		T(test_blob_callback_error),
		T(test_blob_unknown),
		T(test_fail_first_retried),
		T(test_retries_exhausted),
		T(test_stall_retried),
		T(test_bearer_token_reused),
		T(test_bearer_threads),
		T(test_bearer_with_credentials),
		T(test_bearer_without_credentials),
		T(test_bearer_expiry_and_access_token),
		T(test_basic_auth),
		T(test_basic_missing_or_wrong),
		T(test_redirect_without_auth),
		T(test_config_errors),
		T(test_auth_file_errors),
		T(test_config_files_missing),
		T(test_mirror_first),
		T(test_mirror_fallback),
		T(test_https_by_default),
		T(test_insecure_by_config),
		T(test_loopback_secure_by_config),
	};
	return cmocka_run_group_tests(tests, layout_setup, layout_teardown);
}
