/* libFuzzer target: the image documents a pull reads from a registry (kind detection, index,
 * manifest, image config) and, on what parses, platform selection and chain IDs. Every refusal
 * must carry a message. */
#include "base/error.h"
#include "image/manifest-internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void must_explain(int r, struct berth_error **err)
{
	if (r < 0 && (!*err || !(*err)->msg || !(*err)->msg[0]))
		abort();
	*err = berth_error_free(*err);
}

static void fuzz_index(const char *text, size_t len)
{
	struct berth_error *err = NULL;
	struct index x;
	int r = index_parse(text, len, &x, &err);
	must_explain(r, &err);
	if (r < 0)
		return;
	struct platform p;
	const struct descriptor *d = NULL;
	platform_host(&p);
	r = index_select(&x, &p, &d, &err);
	must_explain(r, &err);
	if (r == 0 && !digest_is_valid(d->digest))
		abort();
	index_clear(&x);
}

static void fuzz_config(const char *text, size_t len)
{
	struct berth_error *err = NULL;
	struct image_config c;
	int r = image_config_parse(text, len, &c, &err);
	must_explain(r, &err);
	if (r < 0)
		return;
	char(*chains)[DIGEST_LEN + 1] = calloc(c.n_diff_ids + 1, sizeof(*chains));
	if (chains && chain_ids((const char(*)[DIGEST_LEN + 1])c.diff_ids, c.n_diff_ids, chains, &err) == 0)
		for (size_t i = 0; i < c.n_diff_ids; i++)
			if (!digest_is_valid(chains[i]))
				abort();
	berth_error_free(err);
	free(chains);
	image_config_clear(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	struct berth_error *err = NULL;
	enum manifest_kind kind;
	int r = manifest_kind_of(text, size, NULL, &kind, &err);
	must_explain(r, &err);
	if (r == 0 && kind == MANIFEST_INDEX) {
		fuzz_index(text, size);
	} else if (r == 0) {
		struct manifest m;
		r = manifest_parse(text, size, &m, &err);
		must_explain(r, &err);
		if (r == 0)
			manifest_clear(&m);
	}
	fuzz_config(text, size);
	struct platform p;
	r = platform_parse(text, &p, &err);
	must_explain(r, &err);
	free(text);
	return 0;
}
