#include <string.h>
#define CAPTION_FORMAT CAP_CAPTIONS_KARPATHY
#include "captions.inc"
