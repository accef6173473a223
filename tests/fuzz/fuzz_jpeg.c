#include "image.inc"
