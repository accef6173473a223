#include <string.h>
#define CAPTION_FORMAT CAP_CAPTIONS_COCO
#include "captions.inc"
