/* The stream reader (lib/io/stream.c): header, records, concatenated headers, the record field
 * getters and the JSON rendering cap-dump uses, on any bytes. */
#include "fuzz.h"
#include "core/buf.h"
#include "io/mpjson.h"
#include "io/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof path);
	const char *paths[1] = { path };
	cap_reader *r = cap_reader_open(paths, 1, NULL);
	if (r) {
		uint64_t dim = 0;
		cap_obj_uint(cap_map_get(cap_reader_header(r), "dim"), &dim);
		if (dim > 4096) dim = 4096;
		float feat[4096];
		cap_buf b = { 0 };
		cap_mpjson_opts jo = { .full = 0, .max_string = 40 };
		const msgpack_object *rec;
		while (cap_reader_next(r, &rec) == 1) {
			const char *s;
			size_t len;
			uint32_t *ids = NULL;
			size_t n;
			uint64_t u;
			cap_rec_str(r, rec, "image", &s, &len);
			cap_rec_uint(r, rec, "n", &u);
			if (cap_rec_u32_array(r, rec, "ids", &ids, &n, 1000) == 0) free(ids);
			if (dim) cap_rec_f32(r, rec, "feature", feat, (size_t)dim);
			cap_buf_reset(&b);
			cap_mpjson_append(&b, rec, &jo);
			jo.full = !jo.full;
		}
		cap_buf_free(&b);
		cap_reader_close(r);
	}
	close(fd);
	return 0;
}
