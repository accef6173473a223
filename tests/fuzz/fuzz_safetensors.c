#include "tensors.inc"
