/* The defence against runc CVE-2019-5736: a process inside a container must never be able to
 * reach the runtime's binary on the host through /proc/PID/exe (or by executing /proc/self/exe
 * from a "#!/proc/self/exe" script while the runtime's init is still the one exec'ing).
 *
 * Before it creates anything, the runtime re-executes itself from a view of its executable that
 * cannot be written, so every process it forks has that view as its exe:
 *   1. a read-only overlayfs over the executable's directory (runc 1.2's idea), as a detached
 *      mount that no mount table shows: nothing is copied and the page cache is the file's own;
 *   2. where overlayfs is unavailable, a sealed memfd copy (F_SEAL_WRITE), as runc 1.1 did. */
#include "runtime/runtime.h"
#include "base/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <linux/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

#define EMPTY_LAYER "/run/berth/empty"

bool runtime_exe_is_sealed(void)
{
	_cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return false;
	int seals = fcntl(self, F_GET_SEALS);
	if (seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS)
		return true;
	struct statfs sfs;
	return fstatfs(self, &sfs) == 0 && sfs.f_type == OVERLAYFS_SUPER_MAGIC &&
	       (sfs.f_flags & ST_RDONLY);
}

/* An fd of our executable seen through a read-only overlay (two lower layers, since overlayfs
 * wants two without an upper one: its directory and an empty one of berth's). */
static int open_through_ro_overlay(void)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0 || exe[0] != '/')
		return -ENOENT;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	*slash = '\0';
	const char *dir = exe[0] ? exe : "/";
	if (strpbrk(dir, ":,\\") || (mkdir("/run/berth", 0711) < 0 && errno != EEXIST) ||
	    (mkdir(EMPTY_LAYER, 0755) < 0 && errno != EEXIST))
		return -EINVAL;
	char layers[4200];
	snprintf(layers, sizeof(layers), "%s:%s", dir, EMPTY_LAYER);
	_cleanup_close_ int fs = (int)syscall(SYS_fsopen, "overlay", FSOPEN_CLOEXEC);
	if (fs < 0 || syscall(SYS_fsconfig, fs, FSCONFIG_SET_STRING, "lowerdir", layers, 0) < 0 ||
	    syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
		return -errno;
	_cleanup_close_ int mnt = (int)syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC,
					       MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
	if (mnt < 0)
		return -errno;
	int fd = openat(mnt, slash + 1, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

static int copy_to_sealed_memfd(int self, struct berth_error **err)
{
	struct stat st;
	if (fstat(self, &st) < 0)
		return berth_error_setsys(err, errno, "stat /proc/self/exe");
	/* MFD_EXEC: kernels with vm.memfd_noexec would otherwise refuse to run it */
	int fd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0 && errno == EINVAL)
		fd = memfd_create("berth-runtime", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return berth_error_setsys(err, errno, "memfd_create");
	off_t off = 0;
	while (off < st.st_size) {
		ssize_t n = sendfile(fd, self, &off, (size_t)(st.st_size - off));
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			return berth_error_setsys(err, e, "copy /proc/self/exe");
		}
	}
	if (fcntl(fd, F_ADD_SEALS, REQUIRED_SEALS) < 0) {
		int e = errno;
		close(fd);
		return berth_error_setsys(err, e, "seal the copy of /proc/self/exe");
	}
	return fd;
}

int runtime_exe_reexec_sealed(char *const argv[], char *const envp[], struct berth_error **err)
{
	if (runtime_exe_is_sealed())
		return 0;
	_cleanup_close_ int view = open_through_ro_overlay();
	if (view >= 0)
		syscall(SYS_execveat, view, "", argv, envp, AT_EMPTY_PATH);
	/* no overlayfs here (or the exec failed): the copy */
	_cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return berth_error_setsys(err, errno, "open /proc/self/exe");
	_cleanup_close_ int fd = copy_to_sealed_memfd(self, err);
	if (fd < 0)
		return fd;
	syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
	return berth_error_setsys(err, errno, "re-execute from a sealed copy");
}
