/* cri/pod-manifest-quantity.c: Kubernetes resource quantities (k8s.io/apimachinery's
 * resource.Quantity), exactly: the number is kept as an integer mantissa and powers of 10 and 2,
 * and the result is rounded up once at the end, as Quantity.Value() and MilliValue() do.
 *
 *   quantity ::= [+-] number suffix
 *   number   ::= digits | digits "." digits | digits "." | "." digits
 *   suffix   ::= "" | n u m k M G T P E | Ki Mi Gi Ti Pi Ei | (e|E) [+-] digits
 */
#include "cri/pod-manifest.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef unsigned __int128 u128;

#define U128_MAX (~(u128)0)
/* 10^38 < 2^128 < 10^39: a mantissa has at most 38 significant digits */
#define MAX_POW10 38

struct quantity {
	u128 mantissa; /* the digits, without the decimal point */
	int exp10;     /* value = mantissa * 10^exp10 * 2^exp2 */
	int exp2;
	bool negative;
};

static const struct {
	const char *suffix;
	int exp10;
	int exp2;
} suffixes[] = {
	{ "", 0, 0 },	   { "n", -9, 0 },  { "u", -6, 0 },  { "m", -3, 0 },  { "k", 3, 0 },   { "M", 6, 0 },   { "G", 9, 0 },
	{ "T", 12, 0 },	   { "P", 15, 0 },  { "E", 18, 0 },  { "Ki", 0, 10 }, { "Mi", 0, 20 },
	{ "Gi", 0, 30 },   { "Ti", 0, 40 }, { "Pi", 0, 50 }, { "Ei", 0, 60 },
};

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Reads digits into q->mantissa; `fraction` digits lower exp10. Returns the number read, or -1
 * when the mantissa would not fit. */
static int read_digits(const char **s, struct quantity *q, bool fraction)
{
	int n = 0;
	for (; is_digit(**s); (*s)++, n++) {
		unsigned d = (unsigned)(**s - '0');
		if (q->mantissa > (U128_MAX - d) / 10)
			return -1;
		q->mantissa = q->mantissa * 10 + d;
		if (fraction)
			q->exp10--;
	}
	return n;
}

/* An exponent's digits: large ones are clamped (the result is then too large or rounds to 1). */
static bool read_exponent(const char *s, int *ret)
{
	bool neg = *s == '-';
	int v = 0;
	if (*s == '+' || *s == '-')
		s++;
	if (!is_digit(*s))
		return false;
	for (; is_digit(*s); s++)
		if (v < 100000)
			v = v * 10 + (*s - '0');
	if (*s)
		return false;
	*ret = neg ? -v : v;
	return true;
}

static bool read_suffix(const char *s, struct quantity *q)
{
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
		if (strcmp(s, suffixes[i].suffix) == 0) {
			q->exp10 += suffixes[i].exp10;
			q->exp2 = suffixes[i].exp2;
			return true;
		}
	int e;
	if ((s[0] == 'e' || s[0] == 'E') && read_exponent(s + 1, &e)) {
		q->exp10 += e;
		return true;
	}
	return false;
}

/* 0 ok, -EINVAL not a quantity, -ERANGE too many digits */
static int read_quantity(const char *s, struct quantity *q)
{
	*q = (struct quantity){ 0 };
	if (*s == '+' || *s == '-')
		q->negative = *s++ == '-';
	int whole = read_digits(&s, q, false), frac = 0;
	if (whole < 0)
		return -ERANGE;
	if (*s == '.') {
		s++;
		frac = read_digits(&s, q, true);
		if (frac < 0)
			return -ERANGE;
	}
	if (whole == 0 && frac == 0)
		return -EINVAL;
	return read_suffix(s, q) ? 0 : -EINVAL;
}

/* ceil(q) as an int64, or -ERANGE */
static int quantity_value(const struct quantity *q, int64_t *ret)
{
	u128 n = q->mantissa;
	if (n == 0) {
		*ret = 0;
		return 0;
	}
	if (n > (U128_MAX >> q->exp2))
		return -ERANGE;
	n <<= q->exp2;
	for (int e = q->exp10; e > 0; e--) {
		if (n > U128_MAX / 10)
			return -ERANGE;
		n *= 10;
	}
	if (q->exp10 < -MAX_POW10) {
		n = 1; /* n < 10^39: a positive number below 1 */
	} else if (q->exp10 < 0) {
		u128 d = 1;
		for (int e = q->exp10; e < 0; e++)
			d *= 10;
		n = n / d + (n % d != 0);
	}
	if (n > INT64_MAX)
		return -ERANGE;
	*ret = (int64_t)n;
	return 0;
}

int k8s_quantity_parse(const char *s, enum k8s_quantity_unit unit, int64_t *ret,
		       struct berth_error **err)
{
	struct quantity q;
	int64_t v;
	int r = read_quantity(s, &q);
	if (r == -EINVAL)
		return berth_error_set(err, EINVAL, "invalid quantity \"%s\"", s);
	if (r == 0 && q.negative && q.mantissa != 0)
		return berth_error_set(err, EINVAL, "negative quantity \"%s\"", s);
	if (unit == K8S_QUANTITY_MILLI)
		q.exp10 += 3;
	if (r == 0)
		r = quantity_value(&q, &v);
	if (r < 0)
		return berth_error_set(err, ERANGE, "quantity \"%s\" is too large", s);
	*ret = v;
	return 0;
}

char *k8s_quantity_format(int64_t v, enum k8s_quantity_unit unit, char buf[K8S_QUANTITY_MAX])
{
	static const char *const binary[] = { "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei" };
	if (unit == K8S_QUANTITY_MILLI) {
		if (v % 1000 == 0)
			snprintf(buf, K8S_QUANTITY_MAX, "%" PRId64, v / 1000);
		else
			snprintf(buf, K8S_QUANTITY_MAX, "%" PRId64 "m", v);
		return buf;
	}
	size_t i = 0;
	while (v != 0 && i + 1 < sizeof(binary) / sizeof(binary[0]) && v % 1024 == 0) {
		v /= 1024;
		i++;
	}
	snprintf(buf, K8S_QUANTITY_MAX, "%" PRId64 "%s", v, binary[i]);
	return buf;
}
