/* libFuzzer target: runtime-spec config.json parsing (oci_config_parse) and, on what parses,
 * the process object again (exec -p) and the JSON writer round trip. Inputs that ever crashed
 * it are kept in tests/fuzz/corpus, which every run replays first. */
#include "base/error.h"
#include "base/json.h"
#include "runtime/config-internal.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	struct oci_config *c = NULL;
	struct berth_error *err = NULL;
	if (oci_config_parse(text, &c, &err) == 0) {
		/* what parsed must also write back out as JSON */
		struct json_writer *w = bjson_writer_new(false);
		if (w) {
			bjson_writer_value(w, c->annotations);
			char *out = NULL;
			if (bjson_writer_finish(w, &out, NULL) == 0)
				free(out);
		}
		oci_config_free(c);
	} else if (!err || !err->msg || !err->msg[0]) {
		abort(); /* every refusal must say why */
	}
	berth_error_free(err);

	struct json *j = NULL;
	if (bjson_parse(text, &j, NULL) == 0) {
		struct oci_process p = { 0 };
		struct berth_error *perr = NULL;
		(void)oci_process_parse(bjson_object_get(j, "process"), "process", &p, &perr);
		oci_process_clear(&p);
		berth_error_free(perr);
		bjson_free(j);
	}
	free(text);
	return 0;
}
