#include <string.h>
#define CAPTION_FORMAT CAP_CAPTIONS_FLICKR8K
#include "captions.inc"
