/* The encoder's identity, carried from a features stream's header into the model that is
 * trained on it, so that the model refuses features of another encoder.
 *
 * In a features header (tools/cap-encode.c writes it; man/cap-stream.5):
 *   "encoder":    {"arch", "depth", "weights" ("sha256:HEX" or "random:SEED"),
 *                  ["weights_file"], "precision"}
 *   "preprocess": {"mode": "resize-crop", "resize", "crop"} or {"mode": "squash", "size"}
 * In a model's safetensors metadata, key "encoder" (CAP_ENCODER_ID_META_KEY), a JSON object:
 *   {"arch":"resnet152","depth":152,"weights":"random:1","precision":"fp32",
 *    "preprocess":{"mode":"squash","size":224}}            (and "weights_file" when known)
 * Two identities are the same encoder when depth, weights and the preprocessing (mode and
 * sizes) are equal; the arch spelling, the file name and the precision (bf16 features are
 * within 3e-3 of fp32) do not count. */
#ifndef CAP_ENCODER_ID_H
#define CAP_ENCODER_ID_H
#include <msgpack.h>
#include <stddef.h>

#define CAP_ENCODER_ID_META_KEY "encoder"

typedef struct cap_encoder_id {
	char arch[32];
	int depth;
	char weights[96];        /* "sha256:HEX" or "random:SEED" */
	char weights_file[256];  /* "" when not known */
	char precision[8];       /* "fp32", "bf16" or "" */
	char mode[16];           /* "resize-crop" or "squash" */
	int resize;              /* resize-crop: the shorter side before the crop; squash: 0 */
	int crop;                /* resize-crop: the crop; squash: the size */
} cap_encoder_id;

/* From a features header: 1 and *id; 0 when the header names no encoder in cap-encode's form
 * (a stream of another producer: no "encoder" map with "weights" and "depth", or no
 * "preprocess" map with a "mode"); -1 with cap_errmsg() when the preprocess mode lacks its
 * sizes. */
int cap_encoder_id_from_header(const msgpack_object *header, cap_encoder_id *id);
/* From a model's "encoder" metadata value: 0, or -1 with cap_errmsg(). */
int cap_encoder_id_from_meta(const char *json, cap_encoder_id *id);
/* The metadata value for *id (JSON as above); malloc'd, free() it. */
char *cap_encoder_id_meta(const cap_encoder_id *id);
/* What cap-train records: the metadata value for a features header, or NULL when the header
 * names no encoder or is malformed (then cap_errmsg() says why, or is "" when absent). */
char *cap_encoder_id_meta_from_header(const msgpack_object *header);
/* The same from a features file (reads only its header; not for stdin "-"). */
char *cap_encoder_id_meta_from_file(const char *path);
/* A short description: "resnet152 random:1, squash 224" or
 * "resnet152 sha256:0123456789ab... (resnet152-f82ba261.pth), resize 232 crop 224". */
void cap_encoder_id_describe(const cap_encoder_id *id, char *buf, size_t n);
/* 1 when a and b are the same encoder (see above), else 0. */
int cap_encoder_id_same(const cap_encoder_id *a, const cap_encoder_id *b);

/* The check cap-generate (and cap-train --init/--resume) run: the model's "encoder" metadata
 * (model_meta; NULL when the model records none) against a features header. Returns 0 when
 * they are the same encoder, or when either side is unknown (*unknown is then set to 1 if
 * unknown is not NULL); -1 with cap_errmsg() naming both, e.g.
 *   "feats.mp: features of resnet152 random:0, resize 256 crop 224, but model.safetensors was
 *    trained on features of resnet152 random:1, squash 224"
 * and also -1 when the model's metadata or the header is malformed. */
int cap_encoder_id_check(const char *model_meta, const char *model_name,
                         const msgpack_object *header, const char *features_name, int *unknown);
/* The same check with the features' identity as metadata text too (what
 * cap_encoder_id_meta_from_header gave; NULL when they name none). */
int cap_encoder_id_check_meta(const char *model_meta, const char *model_name,
                              const char *features_meta, const char *features_name, int *unknown);
/* The same check from files: the "encoder" metadata of the
 * safetensors file model_path (a model, or a checkpoint that records it) against the header of
 * the features file features_path (not stdin). 0, or -1 with cap_errmsg() as above (also when
 * a file cannot be read). */
int cap_encoder_id_check_files(const char *model_path, const char *features_path, int *unknown);
#endif
