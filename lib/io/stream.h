/* cap streams: a msgpack header map {"format":"cap","version":1,"kind":KIND,...} followed by
 * one map per record (see man/cap-stream.5). Streams concatenate: a header may appear again
 * between records and must be compatible with the first (equal except for the informational
 * keys listed in CAP_STREAM_INFO_KEYS).
 *
 * Reading is streaming and bounded: the reader finds the extent of each object itself before
 * handing exactly those bytes to msgpack-c, so a hostile length prefix cannot make it reserve
 * more memory than the bytes actually present, a record larger than CAP_STREAM_MAX_RECORD is
 * refused, and a stream that ends inside an object is an error naming the byte offset. */
#ifndef CAP_STREAM_H
#define CAP_STREAM_H
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#define CAP_STREAM_VERSION 1
#define CAP_STREAM_MAX_RECORD (256u << 20)  /* bytes in one msgpack object */
#define CAP_STREAM_MAX_DEPTH 32             /* nesting of arrays/maps in one object */
/* Header keys that may differ between concatenated streams (they describe the producer run). */
#define CAP_STREAM_INFO_KEYS { "tool", "created", "shard", "source", "inputs", "note", NULL }

/* ---- writing ---- */
typedef struct cap_writer cap_writer;

/* Opens path for writing ("-" or NULL: stdout). A file is written as path.tmp.XXXXXX in the
 * same directory and renamed over path by cap_writer_close(), so a crash or an error never
 * leaves a complete-looking file. */
cap_writer *cap_writer_open(const char *path);
/* The packer for the next object; pack exactly one object (header or record), then call
 * cap_writer_end(). Objects are buffered whole and written with one fwrite. */
msgpack_packer *cap_writer_packer(cap_writer *w);
int cap_writer_end(cap_writer *w);
/* Packs the header's first three entries; the caller then packs n_extra more key/value pairs
 * and calls cap_writer_end(). */
void cap_pack_header(msgpack_packer *pk, const char *kind, size_t n_extra);
/* Flushes, closes and (for files) renames into place. Returns -1 on any write error, in which
 * case nothing is left at path. Frees w either way. */
int cap_writer_close(cap_writer *w);
/* Discards the output: removes the temporary file. Frees w. */
void cap_writer_abort(cap_writer *w);

/* Packing helpers. */
void cap_pack_str(msgpack_packer *pk, const char *s);
void cap_pack_strn(msgpack_packer *pk, const char *s, size_t n);
void cap_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void cap_pack_kv_uint(msgpack_packer *pk, const char *key, uint64_t val);
void cap_pack_kv_int(msgpack_packer *pk, const char *key, int64_t val);
void cap_pack_kv_double(msgpack_packer *pk, const char *key, double val);
/* A float32 tensor as bin of little-endian floats (numpy.frombuffer(b, "<f4")). */
void cap_pack_f32_bin(msgpack_packer *pk, const float *x, size_t n);
void cap_pack_u32_array(msgpack_packer *pk, const uint32_t *x, size_t n);

/* ---- reading ---- */
typedef struct cap_reader cap_reader;

/* Opens one or more files read one after another as one stream ("-" is stdin; n == 0 means
 * stdin). Reads and checks the first header; want_kind (or NULL for any) must match, e.g.
 * "cap-train: feats.mp: expected a 'features' stream, got 'captions'" without the program
 * name. Returns NULL with cap_errmsg() on error. */
cap_reader *cap_reader_open(const char *const *paths, int n, const char *want_kind);
void cap_reader_close(cap_reader *r);
/* The first header (valid until close), its kind, and the name of the current file. */
const msgpack_object *cap_reader_header(const cap_reader *r);
const char *cap_reader_kind(const cap_reader *r);
const char *cap_reader_name(const cap_reader *r);
/* Next record: 1 and *rec (valid until the next call), 0 at the end, -1 on error (message
 * names the file, the record number and the byte offset). Headers met on the way are checked
 * and skipped. */
int cap_reader_next(cap_reader *r, const msgpack_object **rec);
/* 0-based number of the record last returned, counted across all files. */
uint64_t cap_reader_index(const cap_reader *r);
/* Byte offset in the current file where the record last returned starts. */
uint64_t cap_reader_offset(const cap_reader *r);
/* Records a message "FILE: record N (byte OFF): " + fmt for the record last returned, and
 * returns -1, so tools report record-level problems uniformly. */
int cap_reader_fail(const cap_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- msgpack object helpers (no error message; return NULL/-1 when absent or mistyped) ---- */
const msgpack_object *cap_map_get(const msgpack_object *map, const char *key);
int cap_obj_is_str(const msgpack_object *o, const char *s);
/* Copies a str into a new NUL-terminated string; NULL if o is not a str or holds a NUL. */
char *cap_obj_strdup(const msgpack_object *o);
int cap_obj_uint(const msgpack_object *o, uint64_t *out);
int cap_obj_int(const msgpack_object *o, int64_t *out);
int cap_obj_double(const msgpack_object *o, double *out);  /* int or float */
int cap_obj_equal(const msgpack_object *a, const msgpack_object *b);

/* Record field getters that fail through cap_reader_fail with the key named. */
int cap_rec_str(const cap_reader *r, const msgpack_object *rec, const char *key,
                const char **s, size_t *len);
int cap_rec_uint(const cap_reader *r, const msgpack_object *rec, const char *key, uint64_t *out);
/* A float32 tensor field: bin of exactly n*4 bytes, copied (unaligned-safe) into out. */
int cap_rec_f32(const cap_reader *r, const msgpack_object *rec, const char *key, float *out, size_t n);
/* An array of unsigned ints (at most max); *out is malloc'd. */
int cap_rec_u32_array(const cap_reader *r, const msgpack_object *rec, const char *key,
                      uint32_t **out, size_t *n, size_t max);
#endif
