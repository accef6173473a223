/* Readers for the caption files people have: each yields (image, n, text) triples.
 *
 *   flickr8k  Flickr8k.token.txt: "IMAGE#N<TAB>caption" lines; n is N.
 *   csv       captions.txt of the Kaggle Flickr8k/30k sets: a header "image,caption", then
 *             one record per caption, RFC 4180 quoting ("a, b" and "" inside quotes; a quoted
 *             field may span lines; CRLF or LF).
 *   coco      COCO's captions_*.json: "images" [{id, file_name}], "annotations"
 *             [{image_id, caption}]; the image is the file_name.
 *   karpathy  Karpathy's dataset_*.json: "images" [{filename, sentences: [{raw, ...}], ...}];
 *             the text is "raw".
 *   tsv       plain "image<TAB>caption" lines (the caption is everything after the first tab).
 * Except for flickr8k, n counts the captions of each image in order of appearance, from 0.
 *
 * The line formats skip blank lines and strip a final CR; text must be valid UTF-8 without NUL
 * bytes. Errors name the file and the line (JSON formats: the array element).
 *
 * The Flickr8k token file names five captions "2258277193_586949ec62.jpg.1#N", an image that
 * is in no image set or split list. In the flickr8k format, lines whose image name does not end
 * in .jpg, .jpeg or .png (any case) are skipped and counted in cap_caption_source.skipped, so
 * that the tool warns once instead of failing or passing a name no image file has. */
#ifndef CAP_CAPTION_SOURCES_H
#define CAP_CAPTION_SOURCES_H
#include <stddef.h>
#include <stdint.h>
#include "text/tokenizer.h"

typedef enum cap_caption_format {
	CAP_CAPTIONS_AUTO, CAP_CAPTIONS_FLICKR8K, CAP_CAPTIONS_CSV, CAP_CAPTIONS_COCO,
	CAP_CAPTIONS_KARPATHY, CAP_CAPTIONS_TSV
} cap_caption_format;

/* "flickr8k", "csv", "coco", "karpathy", "tsv" (and "auto"); -1 for an unknown name. */
int cap_caption_format_parse(const char *name, cap_caption_format *out);
const char *cap_caption_format_name(cap_caption_format f);
/* Guesses the format from the content: JSON with "annotations" (coco) or with images that have
 * "sentences" (karpathy); a first line "image,caption" (csv); a first line "NAME#DIGITS<TAB>"
 * (flickr8k); a tab in the first line (tsv). CAP_CAPTIONS_AUTO when none fits. */
cap_caption_format cap_caption_detect(const char *data, size_t len);

typedef struct cap_caption {
	const char *image;      /* NUL-terminated */
	size_t image_len;
	uint32_t n;
	const char *text;       /* not NUL-terminated */
	size_t text_len;
	uint64_t line;          /* 1-based line where the caption starts; 0 for JSON formats */
} cap_caption;

/* Called for each caption; a non-zero return stops reading and is returned. */
typedef int (*cap_caption_fn)(void *ctx, const cap_caption *c);

/* State kept across the files of one run (zero-initialise, then set format). */
typedef struct cap_caption_source {
	cap_caption_format format;  /* AUTO: detect each file */
	cap_wordmap *per_image;     /* captions seen per image (numbering); created on demand */
	/* Skipped lines (see above): how many, and the first one's file, line and image. */
	size_t skipped;
	char skipped_file[256], skipped_image[256];
	uint64_t skipped_line;
	size_t skipped_images;      /* distinct image names among them */
	cap_wordmap *skipped_names;
} cap_caption_source;

/* Reads data[0..len), the content of the file called name (used in messages), calling fn for
 * each caption. Returns 0, -1 with cap_errmsg() "NAME: line L: ...", or fn's non-zero value. */
int cap_caption_read(cap_caption_source *src, const char *name, const char *data, size_t len,
                     cap_caption_fn fn, void *ctx);
void cap_caption_source_free(cap_caption_source *src);

#endif
