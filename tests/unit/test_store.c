/* image/store.c, gc.c, inspect.c, mount.c: the store's blobs, resumable ingests, names, snapshots,
 * garbage collection, check, disk usage and container root filesystems, on images the test
 * builds itself (uncompressed tar layers made with libarchive). Runs as root (overlay mounts). */
#include "unit.h"

#include "base/cleanup.h"
#include "base/fileutil.h"
#include "base/json.h"
#include "image/store-internal.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

struct fx {
	struct unit_tmpdir tmp;
	struct image_store *s;
	struct berth_error *err;
	char root[96];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->tmp) < 0)
		return -1;
	snprintf(f->root, sizeof(f->root), "%s/store", f->tmp.path);
	struct image_store_options o = { .root = f->root };
	if (image_store_open(&o, &f->s, &f->err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	image_store_free(f->s);
	berth_error_free(f->err);
	unit_tmpdir_remove(&f->tmp);
	free(f);
	return 0;
}

/* A layer: NULL-terminated "path=content" (file), "path/" (dir), "path->target" (symlink). */
static size_t make_tar(const char *const *entries, char *buf, size_t cap)
{
	struct archive *a = archive_write_new();
	size_t used = 0;
	archive_write_set_format_pax_restricted(a);
	archive_write_add_filter_none(a);
	archive_write_set_bytes_in_last_block(a, 1);
	assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
	for (const char *const *e = entries; *e; e++) {
		struct archive_entry *en = archive_entry_new();
		char path[256];
		const char *eq = strchr(*e, '='), *arrow = strstr(*e, "->");
		size_t len = eq ? (size_t)(eq - *e) : arrow ? (size_t)(arrow - *e) : strlen(*e);
		snprintf(path, sizeof(path), "%.*s", (int)len, *e);
		archive_entry_set_pathname(en, path);
		archive_entry_set_mtime(en, 1700000000, 0);
		if (eq) {
			archive_entry_set_filetype(en, AE_IFREG);
			archive_entry_set_perm(en, 0644);
			archive_entry_set_size(en, (la_int64_t)strlen(eq + 1));
		} else if (arrow) {
			archive_entry_set_filetype(en, AE_IFLNK);
			archive_entry_set_perm(en, 0777);
			archive_entry_set_symlink(en, arrow + 2);
		} else {
			archive_entry_set_filetype(en, AE_IFDIR);
			archive_entry_set_perm(en, 0755);
		}
		assert_int_equal(archive_write_header(a, en), ARCHIVE_OK);
		if (eq)
			archive_write_data(a, eq + 1, strlen(eq + 1));
		archive_entry_free(en);
	}
	archive_write_close(a);
	archive_write_free(a);
	return used;
}

struct built {
	char manifest[DIGEST_LEN + 1];
	char config[DIGEST_LEN + 1];
	char layers[4][DIGEST_LEN + 1];
	char chains[4][DIGEST_LEN + 1];
	size_t n;
};

/* Stores the layers, a config and a manifest, unpacks the snapshots and names the image. */
static void build_image(struct fx *f, const char *name, const char *const *const *layers, struct built *b)
{
	static char tar[1 << 20];
	char diff_ids[4][DIGEST_LEN + 1];
	uint64_t sizes[4];
	*b = (struct built){ 0 };
	for (; layers[b->n]; b->n++) {
		size_t len = make_tar(layers[b->n], tar, sizeof(tar));
		MUST_OK(f, store_blob_write(f->s, NULL, tar, len, b->layers[b->n], &f->err));
		memcpy(diff_ids[b->n], b->layers[b->n], DIGEST_LEN + 1);
		sizes[b->n] = len;
	}
	MUST_OK(f, chain_ids((const char(*)[DIGEST_LEN + 1])diff_ids, b->n, b->chains, &f->err));
	char config[2048];
	int off = snprintf(config, sizeof(config),
			   "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[");
	for (size_t i = 0; i < b->n; i++)
		off += snprintf(config + off, sizeof(config) - (size_t)off, "%s\"%s\"", i ? "," : "", diff_ids[i]);
	snprintf(config + off, sizeof(config) - (size_t)off, "]}}");
	MUST_OK(f, store_blob_write(f->s, NULL, config, strlen(config), b->config, &f->err));
	char manifest[4096];
	off = snprintf(manifest, sizeof(manifest),
		       "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\","
		       "\"size\":%zu},\"layers\":[",
		       MT_OCI_MANIFEST, MT_OCI_CONFIG, b->config, strlen(config));
	for (size_t i = 0; i < b->n; i++)
		off += snprintf(manifest + off, sizeof(manifest) - (size_t)off,
				"%s{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%llu}", i ? "," : "", MT_OCI_LAYER,
				b->layers[i], (unsigned long long)sizes[i]);
	snprintf(manifest + off, sizeof(manifest) - (size_t)off, "]}");
	MUST_OK(f, store_blob_write(f->s, NULL, manifest, strlen(manifest), b->manifest, &f->err));
	for (size_t i = 0; i < b->n; i++) {
		struct descriptor d = { .media_type = MT_OCI_LAYER, .size = sizes[i] };
		memcpy(d.digest, b->layers[i], sizeof(d.digest));
		if (!store_snapshot_exists(f->s, b->chains[i]))
			MUST_OK(f, store_snapshot_create(f->s, &d, diff_ids[i], b->chains[i], &f->err));
	}
	struct descriptor md = { .media_type = MT_OCI_MANIFEST, .size = strlen(manifest) };
	memcpy(md.digest, b->manifest, sizeof(md.digest));
	MUST_OK(f, store_index_put(f->s, name, &md, &f->err));
}

static const char *const base_layer[] = { "etc/", "etc/os=berth\n", "bin/", "bin/sh=#!shell\n", "gone=x", "dir/",
					  "dir/a=1", NULL };
static const char *const top_layer[] = { "etc/os=berth 2\n", ".wh.gone", "dir/", "dir/.wh..wh..opq", "dir/b=2",
					 "link->etc/os", NULL };

static void test_blob_write_verifies(void **state)
{
	struct fx *f = *state;
	char d[DIGEST_LEN + 1];
	MUST_OK(f, store_blob_write(f->s, NULL, "hello", 5, d, &f->err));
	assert_true(store_blob_exists(f->s, d, 5));
	assert_false(store_blob_exists(f->s, d, 6));
	char other[DIGEST_LEN + 1];
	MUST_OK(f, digest_of_buffer("other", 5, other, &f->err));
	assert_true(store_blob_write(f->s, other, "hello", 5, NULL, &f->err) < 0);
	assert_contains(f->err->msg, "content has digest");
	assert_false(store_blob_exists(f->s, other, 5));
}

static void test_ingest_resumes_and_rejects(void **state)
{
	struct fx *f = *state;
	const char *data = "0123456789abcdef";
	char d[DIGEST_LEN + 1];
	MUST_OK(f, digest_of_buffer(data, 16, d, &f->err));
	struct ingest in;
	MUST_OK(f, ingest_open(f->s, d, 16, &in, &f->err));
	assert_int_equal(in.offset, 0);
	MUST_OK(f, ingest_write(&in, data, 6, &f->err));
	ingest_close(f->s, &in, false); /* interrupted */
	MUST_OK(f, ingest_open(f->s, d, 16, &in, &f->err));
	assert_int_equal(in.offset, 6);
	MUST_OK(f, ingest_write(&in, data + 6, 10, &f->err));
	assert_true(ingest_write(&in, "x", 1, &f->err) < 0); /* more than the descriptor says */
	assert_contains(f->err->msg, "more than the 16 bytes");
	f->err = berth_error_free(f->err);
	MUST_OK(f, ingest_commit(f->s, &in, &f->err));
	ingest_close(f->s, &in, false);
	assert_true(store_blob_exists(f->s, d, 16));
	assert_int_equal(unit_count_entries(strcat(strcpy((char[160]){ 0 }, f->root), "/ingest")), 0);

	/* wrong content: rejected, and the partial file is gone */
	char d2[DIGEST_LEN + 1];
	MUST_OK(f, digest_of_buffer("expected", 8, d2, &f->err));
	MUST_OK(f, ingest_open(f->s, d2, 8, &in, &f->err));
	MUST_OK(f, ingest_write(&in, "tampered", 8, &f->err));
	assert_true(ingest_commit(f->s, &in, &f->err) < 0);
	assert_contains(f->err->msg, "rejected and removed");
	ingest_close(f->s, &in, false);
	assert_false(store_blob_exists(f->s, d2, 8));
	assert_int_equal(unit_count_entries(strcat(strcpy((char[160]){ 0 }, f->root), "/ingest")), 0);
}

static void test_names_and_find(void **state)
{
	struct fx *f = *state;
	const char *const *layers[] = { base_layer, NULL };
	struct built a, b;
	build_image(f, "docker.io/library/busybox:latest", layers, &a);
	build_image(f, "127.0.0.1:5000/x/y:v1", layers, &b);
	assert_string_equal(a.manifest, b.manifest);
	struct store_entry *v;
	size_t n, i;
	MUST_OK(f, store_index_load(f->s, &v, &n, &f->err));
	assert_int_equal(n, 2);
	MUST_OK(f, store_find(v, n, "busybox", &i, &f->err));
	assert_string_equal(v[i].name, "docker.io/library/busybox:latest");
	MUST_OK(f, store_find(v, n, "127.0.0.1:5000/x/y:v1", &i, &f->err));
	assert_int_equal(i, 1);
	char prefix[16];
	snprintf(prefix, sizeof(prefix), "%.12s", digest_hex(a.manifest));
	MUST_OK(f, store_find(v, n, prefix, &i, &f->err));
	assert_true(store_find(v, n, "nothere", &i, &f->err) < 0);
	assert_contains(f->err->msg, "image \"nothere\": not in the store");
	store_entries_free(v, n);
	/* the layout names images as skopeo and umoci read them */
	char *text = NULL;
	int cfd = openat(f->tmp.fd, "store/content", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(cfd >= 0);
	assert_int_equal(read_file_at(cfd, "index.json", &text, NULL, NULL), 0);
	assert_contains(text, "\"org.opencontainers.image.ref.name\":\"127.0.0.1:5000/x/y:v1\"");
	free(text);
	assert_int_equal(read_file_at(cfd, "oci-layout", &text, NULL, NULL), 0);
	assert_contains(text, "\"imageLayoutVersion\":\"1.0.0\"");
	free(text);
	close(cfd);
}

static void test_rootfs_overlay_and_lease(void **state)
{
	struct fx *f = *state;
	const char *const *layers[] = { base_layer, top_layer, NULL };
	struct built b;
	build_image(f, "127.0.0.1:5000/app:v1", layers, &b);
	char dir[160], path[512], *text = NULL;
	snprintf(dir, sizeof(dir), "%s/ctr", f->tmp.path);
	MUST_OK(f, image_rootfs_create(f->s, "127.0.0.1:5000/app:v1", dir, &f->err));
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_int_equal(read_file_at(dfd, "rootfs/etc/os", &text, NULL, NULL), 0);
	assert_string_equal(text, "berth 2\n");
	free(text);
	assert_int_equal(read_file_at(dfd, "rootfs/bin/sh", &text, NULL, NULL), 0);
	free(text);
	assert_true(faccessat(dfd, "rootfs/gone", F_OK, AT_SYMLINK_NOFOLLOW) < 0); /* whiteout */
	assert_true(faccessat(dfd, "rootfs/dir/a", F_OK, AT_SYMLINK_NOFOLLOW) < 0); /* opaque dir */
	assert_int_equal(faccessat(dfd, "rootfs/dir/b", F_OK, AT_SYMLINK_NOFOLLOW), 0);
	/* writes go to the container's upper dir, never into a snapshot */
	int nfd = openat(dfd, "rootfs/new", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	assert_true(nfd >= 0);
	close(nfd);
	assert_int_equal(faccessat(dfd, "upper/new", F_OK, 0), 0);
	close(dfd);
	/* a second root filesystem in the same dir is refused */
	assert_true(image_rootfs_create(f->s, "127.0.0.1:5000/app:v1", dir, &f->err) < 0);
	assert_contains(f->err->msg, "already has a root filesystem");
	f->err = berth_error_free(f->err);
	snprintf(path, sizeof(path), "%s/leases", f->root);
	assert_int_equal(unit_count_entries(path), 1);

	/* removing the image keeps the leased snapshots; removing the rootfs releases them */
	MUST_OK(f, image_remove(f->s, "127.0.0.1:5000/app:v1", &f->err));
	snprintf(path, sizeof(path), "%s/snapshots", f->root);
	assert_int_equal(unit_count_entries(path), 2);
	MUST_OK(f, image_rootfs_remove(f->s, dir, &f->err));
	MUST_OK(f, image_rootfs_remove(f->s, dir, &f->err)); /* idempotent */
	snprintf(path, sizeof(path), "%s/rootfs", dir);
	assert_true(access(path, F_OK) < 0);
	struct image_gc_result res;
	MUST_OK(f, image_prune(f->s, false, &res, &f->err));
	assert_int_equal(res.snapshots_removed, 2);
	snprintf(path, sizeof(path), "%s/snapshots", f->root);
	assert_int_equal(unit_count_entries(path), 0);
	snprintf(path, sizeof(path), "%s/content/blobs/sha256", f->root);
	assert_int_equal(unit_count_entries(path), 0);
}

static void test_gc_keeps_shared_layers(void **state)
{
	struct fx *f = *state;
	const char *const *one[] = { base_layer, NULL };
	const char *const *two[] = { base_layer, top_layer, NULL };
	struct built a, b;
	build_image(f, "127.0.0.1:5000/one:v1", one, &a);
	build_image(f, "127.0.0.1:5000/two:v1", two, &b);
	char path[256];
	snprintf(path, sizeof(path), "%s/snapshots", f->root);
	assert_int_equal(unit_count_entries(path), 2); /* the base layer is stored once */
	MUST_OK(f, image_remove(f->s, "127.0.0.1:5000/two:v1", &f->err));
	assert_int_equal(unit_count_entries(path), 1);
	assert_true(store_snapshot_exists(f->s, a.chains[0]));
	snprintf(path, sizeof(path), "%s/content/blobs/sha256", f->root);
	assert_int_equal(unit_count_entries(path), 3); /* one's manifest, config and layer */
	/* garbage in ingest/ and an unfinished unpack go too */
	snprintf(path, sizeof(path), "%s/ingest/%064d.partial", f->root, 0);
	FILE *p = fopen(path, "w");
	fputs("partial", p);
	fclose(p);
	snprintf(path, sizeof(path), "%s/snapshots/.tmp-999999-x", f->root);
	assert_int_equal(mkdir(path, 0700), 0);
	struct image_gc_result res;
	MUST_OK(f, image_prune(f->s, false, &res, &f->err));
	assert_true(access(path, F_OK) < 0);
	snprintf(path, sizeof(path), "%s/ingest", f->root);
	assert_int_equal(unit_count_entries(path), 0);
	/* prune --all removes images no container uses */
	MUST_OK(f, image_prune(f->s, true, &res, &f->err));
	struct image_summary *v;
	size_t n;
	MUST_OK(f, image_list(f->s, &v, &n, &f->err));
	assert_int_equal(n, 0);
	image_summary_free(v, n);
}

static void test_check_finds_damage(void **state)
{
	struct fx *f = *state;
	const char *const *layers[] = { base_layer, top_layer, NULL };
	struct built b;
	build_image(f, "127.0.0.1:5000/app:v1", layers, &b);
	char **problems = NULL;
	MUST_OK(f, image_check(f->s, &problems, &f->err));
	assert_null(problems);
	/* flip a layer blob's content and lose a snapshot's record */
	char path[1024];
	snprintf(path, sizeof(path), "%s/content/blobs/sha256/%s", f->root, digest_hex(b.layers[0]));
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, 600), 1);
	close(fd);
	snprintf(path, sizeof(path), "%s/snapshots/%s/info.json", f->root, digest_hex(b.chains[1]));
	assert_int_equal(unlink(path), 0);
	MUST_OK(f, image_check(f->s, &problems, &f->err));
	assert_non_null(problems);
	char all[4096] = "";
	size_t off = 0;
	for (char **p = problems; *p && off < sizeof(all); p++)
		off += (size_t)snprintf(all + off, sizeof(all) - off, "%s\n", *p);
	strv_free(problems);
	char want[160];
	snprintf(want, sizeof(want), "blob %s: content has digest", b.layers[0]);
	assert_contains(all, want);
	assert_contains(all, "layer 1: snapshot");
}

static void test_inspect_list_and_usage(void **state)
{
	struct fx *f = *state;
	const char *const *layers[] = { base_layer, top_layer, NULL };
	struct built b;
	build_image(f, "127.0.0.1:5000/app:v1", layers, &b);
	char *json = NULL;
	MUST_OK(f, image_inspect(f->s, "127.0.0.1:5000/app:v1", &json, &f->err));
	struct json *j = NULL;
	assert_int_equal(bjson_parse(json, &j, NULL), 0);
	assert_string_equal(bjson_string(bjson_object_get(j, "digest")), b.manifest);
	assert_string_equal(bjson_string(bjson_object_get(j, "configDigest")), b.config);
	assert_string_equal(bjson_string(bjson_object_get(j, "platform")), "linux/amd64");
	const struct json *layers_j = bjson_object_get(j, "layers");
	assert_int_equal(bjson_array_size(layers_j), 2);
	assert_string_equal(bjson_string(bjson_object_get(bjson_array_get(layers_j, 1), "chainID")), b.chains[1]);
	uint64_t unpacked = 0;
	assert_true(bjson_uint64(bjson_object_get(j, "unpackedSize"), &unpacked));
	assert_int_equal(unpacked, strlen("berth\n") + strlen("#!shell\n") + 1 + 1 + strlen("berth 2\n") + 1);
	bjson_free(j);
	free(json);
	assert_true(image_inspect(f->s, "nothere:v1", &json, &f->err) < 0);
	assert_contains(f->err->msg, "not in the store");
	f->err = berth_error_free(f->err);
	struct image_disk_usage du;
	MUST_OK(f, image_disk_usage(f->s, &du, &f->err));
	assert_true(du.bytes > 0 && du.inodes > 10);
}

int main(void)
{
	/* the overlay mounts stay in a private mount namespace */
	if (unit_private_namespaces("test_store", 0) < 0)
		return 1;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_blob_write_verifies),	T(test_ingest_resumes_and_rejects), T(test_names_and_find),
		T(test_rootfs_overlay_and_lease), T(test_gc_keeps_shared_layers),   T(test_check_finds_damage),
		T(test_inspect_list_and_usage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
