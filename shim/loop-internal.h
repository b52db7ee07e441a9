/* berth-shim's event loop: epoll over fds, each watched through a struct loop_source that its
 * owner embeds (container_of gets the owner back in the callback).
 *
 * Why not libuv, as the daemon uses: the shim is a static program (Debian ships no static
 * libuv) whose resident memory is the point, and it needs only fds, one signalfd and one timer.
 *
 * Each epoll_wait returns one event, handled before the next wait: a callback may unwatch and
 * free any source (its own included) without another pending event pointing at freed memory,
 * and a level-triggered fd that stays ready is served round-robin with the others. */
#ifndef BERTH_SHIM_LOOP_INTERNAL_H
#define BERTH_SHIM_LOOP_INTERNAL_H

#include "base/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

struct loop_source;
typedef void (*loop_cb)(struct loop_source *src, uint32_t events);

struct loop_source {
	int fd;          /* -1: not watched */
	uint32_t events; /* EPOLLIN, EPOLLOUT; 0: quiet (out of the epoll set meanwhile, since
			    a pipe whose writers are gone would report EPOLLHUP without end) */
	loop_cb cb;
};

struct loop {
	int epfd;
	bool quit;
};

int loop_init(struct loop *l, struct berth_error **err);
void loop_clear(struct loop *l);
/* Watches fd (the caller keeps owning it) with src; cb gets the events epoll reports. On
 * failure src still holds fd, unwatched. */
int loop_watch(struct loop *l, struct loop_source *src, int fd, uint32_t events, loop_cb cb,
	       struct berth_error **err);
/* Changes the events watched (0: none for now). */
void loop_set_events(struct loop *l, struct loop_source *src, uint32_t events);
/* Stops watching (before the fd is closed); a source not watched is fine. */
void loop_unwatch(struct loop *l, struct loop_source *src);
/* Runs until quit is set; -errno when epoll itself fails. */
int loop_run(struct loop *l, struct berth_error **err);

#endif
