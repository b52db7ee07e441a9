/* Scope-bound cleanup, in the manner of systemd's _cleanup_. Every destructor here accepts
 * "nothing held" (NULL, -EBADF), so a variable can be declared before it is acquired. */
#ifndef BERTH_BASE_CLEANUP_H
#define BERTH_BASE_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

static inline void freep(void *p)
{
	free(*(void **)p);
}
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
static inline void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}
static inline void strv_freep(char ***v)
{
	strv_free(*v);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)
#define _cleanup_strv_ _cleanup_(strv_freep)
#define _cleanup_error_ _cleanup_(berth_error_freep)

/* Hand ownership on: returns the value and leaves "nothing held" behind. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _t = (p);                                                            \
		(p) = NULL;                                                                        \
		_t;                                                                                \
	})
#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _t = (fd);                                                                     \
		(fd) = -EBADF;                                                                     \
		_t;                                                                                \
	})

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
