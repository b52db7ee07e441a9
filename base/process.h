/* Processes as {pid, pidfd} pairs: created with clone3(CLONE_PIDFD), signalled and reaped
 * through the pidfd, so a recycled pid can never be hit. */
#ifndef BERTH_BASE_PROCESS_H
#define BERTH_BASE_PROCESS_H

#include <stdint.h>
#include <sys/types.h>

/* clone3 with CLONE_PIDFD (plus flags; into cgroup_fd unless it is -1). Returns 0 in the child,
 * the pid in the parent (with *ret_pidfd set), -errno on failure. Like fork: no new stack. */
pid_t process_clone(uint64_t flags, int cgroup_fd, int *ret_pidfd);
/* Reaps the child behind pidfd and returns its status as a shell reports it (128+N for signal
 * N). timeout_ms < 0 waits for ever; on timeout the child is killed, reaped, and -ETIMEDOUT
 * returned. */
int process_wait(int pidfd, int timeout_ms);
int process_signal(int pidfd, int sig);
/* In a child about to exec: no signal blocked, every disposition at its default. A blocked mask
 * and ignored signals survive exec, and the caller may have either (berth-shim blocks SIGCHLD,
 * SIGTERM and SIGINT for its signalfd): what it runs starts clean, whoever started it. */
void process_reset_signals(void);

#endif
