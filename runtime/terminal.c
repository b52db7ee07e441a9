/* The container's terminal: a pty allocated from the container's own devpts (so the slave has a
 * name inside the container), its master handed to whoever listens on the console socket, as
 * runc does (SCM_RIGHTS, the pty's name as payload). */
#include "runtime/spawn-internal.h"
#include "base/cleanup.h"
#include "base/socketutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>


static int bind_console(const char *slave_name, struct berth_error **err)
{
	int fd = open("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno != EEXIST)
		return berth_error_setsys(err, errno, "create /dev/console");
	if (fd >= 0)
		close(fd);
	if (mount(slave_name, "/dev/console", NULL, MS_BIND, NULL) < 0)
		return berth_error_setsys(err, errno, "bind %s on /dev/console", slave_name);
	return 0;
}

int terminal_setup(const struct spawn_request *rq, bool console, struct berth_error **err)
{
	const struct oci_process *p = rq->process;
	if (rq->console_fd < 0)
		return berth_error_set(err, EINVAL, "process.terminal: a terminal needs --console-socket");
	_cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		return berth_error_setsys(err, errno,
					  "process.terminal: open /dev/ptmx (is devpts mounted at /dev/pts?)");
	char name[64];
	if (unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0)
		return berth_error_setsys(err, errno, "process.terminal: set up the pty");
	_cleanup_close_ int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return berth_error_setsys(err, errno, "process.terminal: open %s", name);
	if (fchown(slave, p->uid, (gid_t)-1) < 0)
		return berth_error_setsys(err, errno, "process.terminal: chown %s", name);
	if (p->has_console_size) {
		struct winsize ws = { .ws_row = p->console_height, .ws_col = p->console_width };
		if (ioctl(slave, TIOCSWINSZ, &ws) < 0)
			return berth_error_setsys(err, errno, "process.consoleSize");
	}
	if (console) {
		int r = bind_console(name, err);
		if (r < 0)
			return r;
	}
	int r = unix_send_with_fd(rq->console_fd, name, strlen(name), master);
	if (r < 0)
		return berth_error_setsys(err, -r, "--console-socket: send the pty");
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		return berth_error_setsys(err, errno, "process.terminal: make %s the controlling tty",
					  name);
	for (int fd = 0; fd <= 2; fd++)
		if (dup2(slave, fd) < 0)
			return berth_error_setsys(err, errno, "process.terminal: dup2");
	return 0;
}
