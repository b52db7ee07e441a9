/* libFuzzer target: cri/pod-manifest*.c. The input is a manifest as berthd reads it from its
 * static pod directory. A refusal must be one line that starts with the file's name and carries
 * EINVAL; an accepted manifest must hash the same twice, have a QoS class, and come out of the
 * parser again unchanged from its own text. The input (up to 64 bytes) is also tried as a
 * quantity: a parsed one must format to a text that parses back to the same value. Seeds in
 * tests/fuzz/corpus-pod-manifest: a manifest with every field in YAML and in JSON, a small
 * one, and a refused one. */
#include "base/error.h"
#include "cri/pod-manifest.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_refusal(int r, const struct berth_error *err)
{
	if (r == -ENOMEM)
		return;
	if (r != -EINVAL || !err || err->code != EINVAL || strncmp(err->msg, "f.yaml: ", 8) != 0 ||
	    strchr(err->msg, '\n'))
		abort();
}

static void check_manifest(struct pod_manifest *m, const char *text, size_t size)
{
	char *a = pod_manifest_hash(m), *b = pod_manifest_hash(m);
	if (a && b && strcmp(a, b) != 0)
		abort();
	enum pod_qos q = pod_manifest_qos(m);
	if (q != POD_QOS_BEST_EFFORT && q != POD_QOS_BURSTABLE && q != POD_QOS_GUARANTEED)
		abort();
	/* the same text again gives the same tree */
	struct pod_manifest *again = NULL;
	if (pod_manifest_parse(text, size, "g.yaml", &again, NULL) == 0 &&
	    !pod_manifest_equal(m, again) && a && b)
		abort();
	pod_manifest_free(again);
	free(a);
	free(b);
}

static void fuzz_quantity(const uint8_t *data, size_t size)
{
	char s[65];
	int64_t v, back;
	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	for (int unit = K8S_QUANTITY_UNITS; unit <= K8S_QUANTITY_MILLI; unit++) {
		struct berth_error *err = NULL;
		if (k8s_quantity_parse(s, (enum k8s_quantity_unit)unit, &v, &err) == 0) {
			char buf[K8S_QUANTITY_MAX];
			k8s_quantity_format(v, (enum k8s_quantity_unit)unit, buf);
			if (v < 0 || k8s_quantity_parse(buf, (enum k8s_quantity_unit)unit, &back,
							NULL) != 0 || back != v)
				abort();
		} else if (!err || !err->msg) {
			abort();
		}
		berth_error_free(err);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pod_manifest *m = NULL;
	struct berth_error *err = NULL;
	int r = pod_manifest_parse((const char *)data, size, "f.yaml", &m, &err);
	if (r < 0)
		check_refusal(r, err);
	else if (!m || err)
		abort();
	else
		check_manifest(m, (const char *)data, size);
	pod_manifest_free(m);
	berth_error_free(err);
	fuzz_quantity(data, size);
	return 0;
}
