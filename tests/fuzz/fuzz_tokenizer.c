/* tokenizer.json (lib/text/tokenizer.c): the parser, then, for a file it accepts, encoding and
 * decoding with it (the input's own bytes as text, every id as ids). */
#include "fuzz.h"
#include "text/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cap_tokenizer *t = cap_tokenizer_parse((const char *)data, size);
	if (!t) return 0;
	cap_pretok pre = { 0 };
	cap_tokenizer_encode(t, (const char *)data, size < 512 ? size : 512, &pre);
	static const char text[] = "A <start>dog<end> RUNS, on the <unk> grass ...";
	cap_tokenizer_encode(t, text, sizeof text - 1, &pre);
	uint32_t ids[64];
	size_t n = cap_tokenizer_vocab_size(t);
	for (size_t i = 0; i < 64; i++) ids[i] = (uint32_t)(i < n ? i : i * 7919u);
	cap_buf out = { 0 };
	cap_tokenizer_decode(t, ids, 64, &out);
	cap_tokenizer_decode(t, pre.ids, pre.n_ids, &out);
	cap_buf_free(&out);
	cap_pretok_free(&pre);
	cap_tokenizer_free(t);
	return 0;
}
