/* msgpack objects as JSON text, for cap-dump and for tests. Float32 tensors (bin fields) are
 * summarised as {"dtype":"float32","n":N,"head":[...],"min":..,"max":..,"mean":..} unless full,
 * in which case they are printed as a JSON array of every value. Strings that are not valid
 * UTF-8 are printed with U+FFFD in place of the bad bytes. */
#ifndef CAP_MPJSON_H
#define CAP_MPJSON_H
#include <msgpack.h>
#include "core/buf.h"

typedef struct cap_mpjson_opts {
	int full;              /* tensors and long strings in full */
	size_t max_string;     /* without full: strings longer than this are cut, saying how long */
} cap_mpjson_opts;

void cap_mpjson_append(cap_buf *b, const msgpack_object *o, const cap_mpjson_opts *opts);
#endif
