/* Preprocessing as torchvision 0.14's evaluation transform on a PIL image:
 *   RESIZE_CROP: Resize(resize) -> CenterCrop(crop) -> ToTensor -> Normalize(ImageNet)
 *   SQUASH:      Resize((size, size))                -> ToTensor -> Normalize(ImageNet)
 * Resize is Pillow's Image.resize(BILINEAR) with its antialiasing (the triangle filter widened
 * by the scale factor when reducing), reproduced bit for bit: the same separable fixed-point
 * passes (horizontal first, then vertical), coefficient rounding and clipping.
 * Resize(n) makes the shorter side n and the longer int(n * long / short), as torchvision's
 * _compute_resized_output_size; CenterCrop takes top = int(round((h - crop) / 2.0)) with
 * round-half-to-even, likewise left. The crop is cut from only the rows and columns the
 * resize has to compute, which gives identical pixels for less work. */
#ifndef CAP_RESIZE_H
#define CAP_RESIZE_H
#include "image/image.h"

typedef enum cap_preprocess_mode {
	CAP_PREPROCESS_RESIZE_CROP,  /* shorter side to resize, then centre crop of crop x crop */
	CAP_PREPROCESS_SQUASH        /* both sides to crop (resize is ignored), no crop */
} cap_preprocess_mode;

typedef struct cap_preprocess_opts {
	cap_preprocess_mode mode;
	int resize;   /* default 256 */
	int crop;     /* default 224; the output side in both modes */
} cap_preprocess_opts;

/* Default: RESIZE_CROP, 256, 224. */
void cap_preprocess_opts_default(cap_preprocess_opts *o);
/* Checks sizes (1..CAP_IMAGE_MAX_SIDE, crop <= resize in RESIZE_CROP mode); -1 + cap_fail. */
int cap_preprocess_opts_check(const cap_preprocess_opts *o);

/* The size Resize gives for a w x h image (before any crop). -1 if it would be < 1. */
int cap_preprocess_resized_size(const cap_preprocess_opts *o, int w, int h, int *rw, int *rh);

/* Pillow-exact BILINEAR resize of the whole image to ow x oh (out->rgb allocated;
 * free with cap_image_free). Same size as the input gives a copy, as Pillow does. */
int cap_image_resize(const cap_image *in, int ow, int oh, cap_image *out);

/* The same result computed the plain way (whole image, scalar loops): the reference the fast
 * path is tested against. Not for production use. */
int cap_image_resize_ref(const cap_image *in, int ow, int oh, cap_image *out);

/* The uint8 image after Resize and CenterCrop (or the squash), crop x crop, allocated. */
int cap_preprocess_u8(const cap_image *img, const cap_preprocess_opts *o, cap_image *out);

/* ImageNet's channel statistics as torchvision's docs write them: mean (0.485, 0.456, 0.406),
 * std (0.229, 0.224, 0.225). cap_preprocess uses them rounded to float; cap-encode records them
 * in the features header. */
extern const double cap_imagenet_mean[3], cap_imagenet_std[3];

/* The full transform: out receives 3 x crop x crop floats, CHW, (x/255 - mean) / std with
 * ImageNet's mean and std, computed in float32 as torch does.
 * Allocates only temporaries. */
int cap_preprocess(const cap_image *img, const cap_preprocess_opts *o, float *out);
/* The ToTensor + Normalize part alone, on a crop x crop uint8 image. */
void cap_normalize(const cap_image *img, float *out);
#endif
