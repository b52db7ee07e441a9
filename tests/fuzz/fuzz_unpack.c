/* libFuzzer target: layer unpack (unpack_layer) of any blob, into a fresh directory "root" in a
 * scratch directory of this process's own. After each run the scratch directory must hold
 * "root" and nothing else (an entry that climbed out by one level would land next to it), a
 * refusal must say why, and a success must stay within the limits; then "root" is removed. Inputs
 * that ever crashed it are kept in tests/fuzz/corpus-unpack, which every run replays first. */
#include "base/error.h"
#include "base/fileutil.h"
#include "image/unpack-internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BYTES (4u << 20)
#define MAX_ENTRIES 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch_path[64];
static int scratch = -1;

static void scratch_remove(void)
{
	if (scratch < 0)
		return;
	(void)remove_tree_at(scratch, "root");
	close(scratch);
	rmdir(scratch_path);
}

static int scratch_fd(void)
{
	if (scratch >= 0)
		return scratch;
	snprintf(scratch_path, sizeof(scratch_path), "/tmp/berth-fuzz-unpack-XXXXXX");
	if (!mkdtemp(scratch_path))
		abort();
	scratch = open(scratch_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (scratch < 0)
		abort();
	atexit(scratch_remove);
	return scratch;
}

/* Entries of the directory, "." and ".." aside. */
static int count_entries(int dirfd)
{
	DIR *d = fdopendir(openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	if (!d)
		abort();
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
	closedir(d);
	return n;
}

static void check_result(int r, const struct berth_error *err, const struct unpack_result *res)
{
	if (r < 0) {
		if (!err || !err->msg || !err->msg[0] || strchr(err->msg, '\n') || err->code <= 0)
			abort(); /* every refusal says why, in one line */
		return;
	}
	if (err || !digest_is_valid(res->diff_id) || res->tar_bytes > MAX_BYTES ||
	    res->entries > MAX_ENTRIES)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int parent = scratch_fd();
	if (mkdirat(parent, "root", 0755) < 0)
		abort();
	int root = openat(parent, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int blob = memfd_create("blob", MFD_CLOEXEC);
	if (root < 0 || blob < 0 || write_all(blob, data, size) < 0 ||
	    lseek(blob, 0, SEEK_SET) != 0)
		abort();

	const struct unpack_limits limits = { .max_bytes = MAX_BYTES, .max_entries = MAX_ENTRIES };
	struct unpack_result res;
	struct berth_error *err = NULL;
	int r = unpack_layer(blob, root, &limits, &res, &err);
	check_result(r, err, &res);
	berth_error_free(err);
	close(blob);
	close(root);

	if (count_entries(parent) != 1)
		abort(); /* something was made outside "root" */
	if (remove_tree_at(parent, "root") < 0 || count_entries(parent) != 0)
		abort();
	return 0;
}
