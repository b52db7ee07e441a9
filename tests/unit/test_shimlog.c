/* shim/crilog.c: the CRI log format, line splitting, partial lines, rotation, reopen, drops. */
#include "unit.h"

#include "shim/crilog-internal.h"

#include <stdbool.h>
#include <sys/stat.h>

struct fx {
	struct unit_tmpdir dir;
	char path[128];
	struct crilog *log;
	struct berth_error *err;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f || unit_tmpdir_create(&f->dir) < 0)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/pods/c/0.log", f->dir.path);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	crilog_free(f->log);
	berth_error_freep(&f->err);
	unit_tmpdir_remove(&f->dir);
	free(f);
	return 0;
}

static void open_log(struct fx *f, size_t line_max, uint64_t max_size, unsigned max_files)
{
	struct crilog_options o = { .path = f->path, .line_max = line_max, .max_size = max_size,
				    .max_files = max_files };
	MUST_OK(f, crilog_open(&o, &f->log, &f->err));
}

static char *slurp(const char *path)
{
	FILE *in = fopen(path, "re");
	if (!in)
		fail_msg("open %s: %s", path, strerror(errno));
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof(buf) - 1, in);
	fclose(in);
	buf[n] = '\0';
	return buf;
}

/* Checks every record's time stamp ("2026-11-27T15:04:05.123456789Z ") and returns the records
 * without it, one per line. */
static char *strip_times(const char *text)
{
	static char out[1 << 16];
	size_t o = 0;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		assert_non_null(end); /* every record ends with a newline */
		assert_true(end - line >= 31);
		for (int i = 0; i < 30; i++) {
			char c = line[i];
			bool ok = i == 4 || i == 7 ? c == '-'
				: i == 10	   ? c == 'T'
				: i == 13 || i == 16 ? c == ':'
				: i == 19	   ? c == '.'
				: i == 29	   ? c == 'Z'
						   : c >= '0' && c <= '9';
			if (!ok)
				fail_msg("bad time stamp at %d in \"%.*s\"", i, (int)(end - line),
					 line);
		}
		assert_int_equal(line[30], ' ');
		size_t n = (size_t)(end - line) - 31 + 1;
		memcpy(out + o, line + 31, n);
		o += n;
		line = end + 1;
	}
	out[o] = '\0';
	return out;
}

static void feed(struct fx *f, enum crilog_stream s, const char *text)
{
	crilog_write(f->log, s, text, strlen(text));
}

static void test_complete_lines(void **state)
{
	struct fx *f = *state;
	open_log(f, 16, 0, 0);
	feed(f, CRILOG_STDOUT, "hello\nworld\n");
	feed(f, CRILOG_STDERR, "oops\n\n");
	assert_string_equal(strip_times(slurp(f->path)),
			    "stdout F hello\nstdout F world\nstderr F oops\nstderr F \n");
	assert_int_equal(crilog_drops(f->log), 0);
}

static void test_long_line_split(void **state)
{
	struct fx *f = *state;
	open_log(f, 8, 0, 0);
	feed(f, CRILOG_STDOUT, "0123456789abcdefXYZ\n");
	feed(f, CRILOG_STDOUT, "12345678\n");  /* exactly line_max: not split */
	feed(f, CRILOG_STDOUT, "123456789\n"); /* one more */
	feed(f, CRILOG_STDOUT, "abcdefgh");    /* split across writes */
	feed(f, CRILOG_STDOUT, "ijklmnopq\n");
	assert_string_equal(strip_times(slurp(f->path)),
			    "stdout P 01234567\nstdout P 89abcdef\nstdout F XYZ\n"
			    "stdout F 12345678\n"
			    "stdout P 12345678\nstdout F 9\n"
			    "stdout P abcdefgh\nstdout P ijklmnop\nstdout F q\n");
}

/* A line waits for its newline across reads; the streams keep separate buffers. */
static void test_partial_lines(void **state)
{
	struct fx *f = *state;
	open_log(f, 16, 0, 0);
	feed(f, CRILOG_STDOUT, "ab");
	feed(f, CRILOG_STDERR, "x\ny");
	feed(f, CRILOG_STDOUT, "c\nd");
	feed(f, CRILOG_STDERR, "z\n");
	assert_string_equal(strip_times(slurp(f->path)),
			    "stderr F x\nstdout F abc\nstderr F yz\n");
	/* the end of a stream writes its partial last line as F */
	crilog_end_stream(f->log, CRILOG_STDOUT);
	crilog_end_stream(f->log, CRILOG_STDERR); /* nothing pending */
	assert_string_equal(strip_times(slurp(f->path)),
			    "stderr F x\nstdout F abc\nstderr F yz\nstdout F d\n");
}

/* Without a newline the buffer fills: a P record of line_max bytes, the rest waits. */
static void test_full_buffer(void **state)
{
	struct fx *f = *state;
	open_log(f, 4, 0, 0);
	feed(f, CRILOG_STDOUT, "abcd");
	assert_string_equal(slurp(f->path), "");
	feed(f, CRILOG_STDOUT, "efgh");
	assert_string_equal(strip_times(slurp(f->path)), "stdout P abcd\n");
	crilog_end_stream(f->log, CRILOG_STDOUT);
	assert_string_equal(strip_times(slurp(f->path)), "stdout P abcd\nstdout F efgh\n");
}

static void check_mode(const char *path, mode_t want)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, want);
}

/* The file is 0640 in 0755 directories, whatever the umask; a failed start removes them. */
static void test_created_and_removed(void **state)
{
	struct fx *f = *state;
	mode_t old = umask(077);
	open_log(f, 16, 0, 0);
	umask(old);
	char dir[160];
	check_mode(f->path, 0640);
	snprintf(dir, sizeof(dir), "%s/pods", f->dir.path);
	check_mode(dir, 0755);
	snprintf(dir, sizeof(dir), "%s/pods/c", f->dir.path);
	check_mode(dir, 0755);
	crilog_remove_created(f->log);
	assert_int_equal(unit_count_entries(f->dir.path), 0);
}

/* An existing file is appended to and never removed by crilog_remove_created. */
static void test_existing_file_kept(void **state)
{
	struct fx *f = *state;
	snprintf(f->path, sizeof(f->path), "%s/0.log", f->dir.path);
	int fd = open(f->path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old\n", 4), 4);
	close(fd);
	open_log(f, 16, 0, 0);
	feed(f, CRILOG_STDOUT, "new\n");
	crilog_remove_created(f->log);
	char *text = slurp(f->path);
	assert_int_equal(strncmp(text, "old\n", 4), 0);
	assert_string_equal(strip_times(text + 4), "stdout F new\n");
}

static unsigned record_number(const char *record)
{
	return (unsigned)atoi(record + strlen("stdout F line-"));
}

/* Records in one file: consecutive numbers; returns the first, *last the last. */
static unsigned check_file_sequence(const char *path, uint64_t max_size, unsigned *last)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true((uint64_t)st.st_size <= max_size);
	char *recs = strip_times(slurp(path));
	unsigned first = record_number(recs), n = first;
	for (char *r = strchr(recs, '\n'); r && r[1]; r = strchr(r + 1, '\n'))
		assert_int_equal(record_number(r + 1), ++n);
	*last = n;
	return first;
}

static void test_rotation(void **state)
{
	struct fx *f = *state;
	const uint64_t max = 200; /* a record is 31 + 16 + 1 = 48 bytes: 4 per file */
	open_log(f, 64, max, 3);
	char line[32];
	for (unsigned i = 100; i < 120; i++) {
		snprintf(line, sizeof(line), "line-%u\n", i);
		feed(f, CRILOG_STDOUT, line);
	}
	char p1[160], p2[160], p3[160];
	snprintf(p1, sizeof(p1), "%s.1", f->path);
	snprintf(p2, sizeof(p2), "%s.2", f->path);
	snprintf(p3, sizeof(p3), "%s.3", f->path);
	assert_int_equal(access(p3, F_OK), -1); /* at most 3 files, the live one included */
	unsigned last2, last1, last0;
	unsigned first2 = check_file_sequence(p2, max, &last2);
	unsigned first1 = check_file_sequence(p1, max, &last1);
	unsigned first0 = check_file_sequence(f->path, max, &last0);
	/* the files follow on from each other, and end with the last record */
	assert_int_equal(first1, last2 + 1);
	assert_int_equal(first0, last1 + 1);
	assert_int_equal(last0, 119);
	assert_int_equal(last2 - first2 + 1, 4);
}

/* kubelet moves the file away, then asks for a reopen: new records land in a new file. */
static void test_reopen(void **state)
{
	struct fx *f = *state;
	open_log(f, 64, 0, 0);
	feed(f, CRILOG_STDOUT, "before\n");
	char moved[160];
	snprintf(moved, sizeof(moved), "%s.moved", f->path);
	assert_int_equal(rename(f->path, moved), 0);
	MUST_OK(f, crilog_reopen(f->log, &f->err));
	feed(f, CRILOG_STDERR, "after\n");
	assert_string_equal(strip_times(slurp(moved)), "stdout F before\n");
	assert_string_equal(strip_times(slurp(f->path)), "stderr F after\n");
	check_mode(f->path, 0640);
}

/* A full disk drops records (counted); the writer goes on. */
static void test_drops(void **state)
{
	struct fx *f = *state;
	snprintf(f->path, sizeof(f->path), "/dev/full");
	open_log(f, 64, 0, 0);
	feed(f, CRILOG_STDOUT, "a\nb\n");
	feed(f, CRILOG_STDERR, "c");
	crilog_end_stream(f->log, CRILOG_STDERR);
	assert_int_equal(crilog_drops(f->log), 3);
}

static void test_bad_options(void **state)
{
	struct fx *f = *state;
	struct crilog_options o = { .path = "relative.log", .line_max = 16 };
	assert_int_equal(crilog_open(&o, &f->log, &f->err), -EINVAL);
	assert_contains(f->err->msg, "relative.log");
	berth_error_freep(&f->err);
	o.path = f->path;
	o.max_size = 1000;
	o.max_files = 1;
	assert_int_equal(crilog_open(&o, &f->log, &f->err), -EINVAL);
	assert_contains(f->err->msg, "max files");
	berth_error_freep(&f->err);
	o.max_size = 0;
	o.line_max = 0;
	assert_int_equal(crilog_open(&o, &f->log, &f->err), -EINVAL);
	assert_int_equal(unit_count_entries(f->dir.path), 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_complete_lines), T(test_long_line_split), T(test_partial_lines),
		T(test_full_buffer),	T(test_created_and_removed), T(test_existing_file_kept),
		T(test_rotation),	T(test_reopen),		     T(test_drops),
		T(test_bad_options),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
