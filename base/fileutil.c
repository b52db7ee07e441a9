#include "base/fileutil.h"
#include "base/cleanup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_file_at(int dirfd, const char *path, char **ret, size_t *ret_len, struct berth_error **err)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return berth_error_setsys(err, errno, "open %s", path);

	size_t cap = 4096, len = 0;
	_cleanup_free_ char *buf = malloc(cap);
	if (!buf)
		return berth_error_set(err, ENOMEM, "read %s: out of memory", path);
	for (;;) {
		if (len + 1 >= cap) {
			char *nbuf = realloc(buf, cap * 2);
			if (!nbuf)
				return berth_error_set(err, ENOMEM, "read %s: out of memory", path);
			buf = nbuf;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return berth_error_setsys(err, errno, "read %s", path);
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

int write_file_at(int dirfd, const char *path, const char *data, struct berth_error **err)
{
	_cleanup_close_ int fd =
		openat(dirfd, path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return berth_error_setsys(err, errno, "open %s", path);
	size_t len = strlen(data);
	ssize_t n = write(fd, data, len);
	if (n < 0)
		return berth_error_setsys(err, errno, "write %s", path);
	if ((size_t)n != len)
		return berth_error_set(err, EIO, "write %s: short write", path);
	return 0;
}

int write_file_atomic_at(int dirfd, const char *name, const void *data, size_t len, mode_t mode,
			 bool sync, struct berth_error **err)
{
	char tmp[256];
	if (snprintf(tmp, sizeof(tmp), ".%s.tmp", name) >= (int)sizeof(tmp))
		return berth_error_set(err, ENAMETOOLONG, "write %s: name too long", name);
	/* a temp file left by a crash would keep its old mode: start from a fresh one */
	if (unlinkat(dirfd, tmp, 0) < 0 && errno != ENOENT)
		return berth_error_setsys(err, errno, "remove %s", tmp);
	_cleanup_close_ int fd =
		openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0)
		return berth_error_setsys(err, errno, "create %s", tmp);
	int r = write_all(fd, data, len);
	if (r == 0 && sync && fsync(fd) < 0)
		r = -errno;
	if (r == 0 && renameat(dirfd, tmp, dirfd, name) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return berth_error_setsys(err, -r, "write %s", name);
	}
	return 0;
}

static int remove_dir_contents(int fd)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		int q = remove_tree_at(dirfd(d), de->d_name);
		if (q < 0 && r == 0)
			r = q;
	}
	closedir(d);
	return r;
}

int remove_tree_at(int dirfd, const char *name)
{
	if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	int r = remove_dir_contents(fd);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}
