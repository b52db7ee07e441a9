/* The defence against runc CVE-2019-5736: a process inside a container must never be able to
 * reach the runtime's binary on the host through /proc/PID/exe (or by executing /proc/self/exe
 * from a "#!/proc/self/exe" script while the runtime's init is still the one exec'ing).
 *
 * Before it creates anything, the runtime re-executes itself from a sealed memfd copy of its
 * executable, so every process it forks has that copy as its exe: it can be read and executed,
 * never written (F_SEAL_WRITE), and it is not the host file. runc pays ~10 MB and most of its
 * start-up time for this because its binary is large; berth's programs keep their code in
 * libberth and the copy is one small file. */
#include "runtime/runtime.h"
#include "base/cleanup.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

#define REQUIRED_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

bool runtime_exe_is_sealed(void)
{
	_cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return false;
	int seals = fcntl(self, F_GET_SEALS);
	return seals >= 0 && (seals & REQUIRED_SEALS) == REQUIRED_SEALS;
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
	_cleanup_close_ int self = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (self < 0)
		return berth_error_setsys(err, errno, "open /proc/self/exe");
	_cleanup_close_ int fd = copy_to_sealed_memfd(self, err);
	if (fd < 0)
		return fd;
	syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
	return berth_error_setsys(err, errno, "re-execute from a sealed copy");
}
