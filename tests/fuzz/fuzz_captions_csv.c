#include <string.h>
#define CAPTION_FORMAT CAP_CAPTIONS_CSV
#include "captions.inc"
