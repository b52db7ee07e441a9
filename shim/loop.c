/* The epoll loop (loop-internal.h). */
#include "shim/loop-internal.h"
#include "base/cleanup.h"
#include "base/log.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

int loop_init(struct loop *l, struct berth_error **err)
{
	*l = (struct loop){ .epfd = epoll_create1(EPOLL_CLOEXEC) };
	return l->epfd < 0 ? berth_error_setsys(err, errno, "epoll_create1") : 0;
}

void loop_clear(struct loop *l)
{
	closep(&l->epfd);
	l->epfd = -EBADF;
}

static int ctl(struct loop *l, struct loop_source *src, uint32_t old, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };
	int op = !old ? EPOLL_CTL_ADD : !events ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (old == events)
		return 0;
	return epoll_ctl(l->epfd, op, src->fd, &ev) < 0 ? -errno : 0;
}

int loop_watch(struct loop *l, struct loop_source *src, int fd, uint32_t events, loop_cb cb,
	       struct berth_error **err)
{
	*src = (struct loop_source){ .fd = fd, .cb = cb };
	int r = ctl(l, src, 0, events);
	if (r < 0)
		return berth_error_setsys(err, -r, "epoll_ctl add fd %d", fd);
	src->events = events;
	return 0;
}

void loop_set_events(struct loop *l, struct loop_source *src, uint32_t events)
{
	if (src->fd < 0)
		return;
	/* cannot fail for an fd that is watched, with valid events (or ENOMEM: then say so) */
	int r = ctl(l, src, src->events, events);
	if (r < 0)
		log_error("epoll_ctl fd %d: %s", src->fd, strerror(-r));
	else
		src->events = events;
}

void loop_unwatch(struct loop *l, struct loop_source *src)
{
	if (src->fd >= 0)
		(void)ctl(l, src, src->events, 0);
	src->fd = -1;
	src->events = 0;
}

int loop_run(struct loop *l, struct berth_error **err)
{
	while (!l->quit) {
		struct epoll_event ev;
		int n = epoll_wait(l->epfd, &ev, 1, -1);
		if (n < 0 && errno != EINTR)
			return berth_error_setsys(err, errno, "epoll_wait");
		if (n == 1) {
			struct loop_source *src = ev.data.ptr;
			src->cb(src, ev.events);
		}
	}
	return 0;
}
