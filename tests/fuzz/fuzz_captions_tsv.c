#include <string.h>
#define CAPTION_FORMAT CAP_CAPTIONS_TSV
#include "captions.inc"
