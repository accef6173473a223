/* The model loader (cap_decoder_load, lib/decoder): a safetensors file with the decoder's
 * tensors and metadata, checked for names, shapes and hyperparameters. Only the public
 * function is called. */
#include "fuzz.h"
#include "decoder/decoder.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	int fd = fuzz_memfile(data, size, path, sizeof path);
	cap_decoder *m = cap_decoder_load(path);
	if (m) cap_decoder_free(m);
	close(fd);
	return 0;
}
