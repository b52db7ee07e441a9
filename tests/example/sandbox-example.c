/* sandbox-example ROOTFS STATE_ROOT: runs `echo hello` in a container over ROOTFS through
 * libberth's public API alone, and checks what it printed and how it exited.
 *
 * tests/example/test-install.sh compiles it against an installed libberth with nothing but
 * `pkg-config --cflags --libs libberth`, which is the point: the header, the shared library
 * and the pkg-config file a packager installs are enough for a program of the library's users. */
#include <berth/sandbox.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, struct berth_error *err)
{
	fprintf(stderr, "sandbox-example: %s: %s\n", what, err ? berth_error_message(err) : "?");
	berth_error_free(err);
	return 1;
}

/* Reads until EOF: the container's end closes when its program exits. */
static size_t read_all(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
	return n;
}

/* pipe: the program's stdout; create hands the write end to the container, and ours must go for
 * EOF to come. */
static int run(struct berth_spec *spec, const char *state_root, int pipe_fds[2])
{
	struct berth_error *err = NULL;
	struct berth_container *c = NULL;
	char buf[256];
	int code = -1, sig = -1;

	int r = berth_container_create(state_root, NULL, spec, &c, &err);
	berth_spec_free(spec); /* a container keeps nothing of its spec */
	close(pipe_fds[1]);
	if (r < 0)
		return fail("create", err);
	if (berth_container_start(c, &err) < 0 ||
	    berth_container_wait(c, 30000, &code, &sig, &err) < 0) {
		(void)berth_container_destroy(c, NULL);
		berth_container_free(c);
		return fail("run", err);
	}
	read_all(pipe_fds[0], buf, sizeof(buf));
	printf("container %s: exit code %d, signal %d, output \"%.*s\"\n", berth_container_id(c),
	       code, sig, (int)strcspn(buf, "\n"), buf);
	if (berth_container_destroy(c, &err) < 0) {
		berth_container_free(c);
		return fail("destroy", err);
	}
	berth_container_free(c);
	return strcmp(buf, "hello\n") == 0 && code == 0 && sig == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *args[] = { "echo", "hello", NULL };
	struct berth_error *err = NULL;
	int p[2];

	if (argc != 3) {
		fprintf(stderr, "usage: sandbox-example ROOTFS STATE_ROOT\n");
		return 2;
	}
	struct berth_spec *spec = berth_spec_new();
	if (!spec || pipe(p) < 0)
		return fail("setup", NULL);
	if (berth_spec_set_rootfs(spec, argv[1], &err) < 0 ||
	    berth_spec_set_args(spec, args, &err) < 0 ||
	    berth_spec_set_stdio(spec, -1, p[1], STDERR_FILENO, &err) < 0) {
		berth_spec_free(spec);
		return fail("spec", err);
	}
	int r = run(spec, argv[2], p);
	close(p[0]);
	return r;
}
