/* The word-level tokenizer of cap: the same ids as a Hugging Face `tokenizers` WordLevel
 * tokenizer with the Lowercase normalizer and the Whitespace pre-tokenizer, optionally behind a
 * Split that removes punctuation-only runs, and a "<start> $A <end>" template. The vocabulary
 * is read from and written as that library's tokenizer.json (see man/cap-tokenize.1).
 *
 * Encoding a text, exactly as the Rust library does it for such a file:
 *  1. the special tokens' literal text ("<pad>", "<start>", "<end>", "<unk>") is cut out of the
 *     raw text first and becomes its id (added tokens are matched before normalisation);
 *  2. each remaining segment is lowercased code point by code point (Rust char::to_lowercase,
 *     so 'İ' becomes "i̇" and a final 'Σ' becomes 'σ');
 *  3. it is split into runs of \w (Unicode: Alphabetic, marks, Nd, Pc, Join_Control) and runs
 *     of everything else but white space (`\w+|[^\w\s]+`); the second kind ("punctuation") is
 *     dropped unless the tokenizer keeps punctuation;
 *  4. each word maps to its id, or <unk>; <start> and <end> are put around the whole. */
#ifndef CAP_TOKENIZER_H
#define CAP_TOKENIZER_H
#include "core/wordmap.h"
#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"

enum { CAP_TOK_PAD = 0, CAP_TOK_START = 1, CAP_TOK_END = 2, CAP_TOK_UNK = 3, CAP_TOK_NSPECIAL = 4 };
extern const char *const cap_tok_special[CAP_TOK_NSPECIAL];  /* "<pad>", "<start>", ... */
/* Vocabularies larger than this are refused when read (ids are u32 in streams and models). */
#define CAP_TOK_MAX_VOCAB (1u << 24)

/* ---- normalisation and pre-tokenisation (steps 1 to 3 above) ---- */
typedef struct cap_piece {
	size_t off, len;   /* the word in cap_pretok.norm */
	int32_t special;   /* a special token's id, or -1 for a word */
} cap_piece;
/* Scratch space reused from text to text (zero-initialise; free with cap_pretok_free). */
typedef struct cap_pretok {
	char *norm;        /* the lowercased text of all segments, one after another */
	size_t norm_len, norm_cap;
	cap_piece *pieces;
	size_t n, cap;
	uint32_t *ids;     /* cap_tokenizer_encode's result */
	size_t n_ids, ids_cap;
} cap_pretok;
/* Splits text[0..len) into p->pieces. Fails (with "invalid UTF-8 at byte N") on malformed
 * UTF-8. With keep_punct 0, punctuation-only pieces are dropped. */
int cap_pretokenize(cap_pretok *p, const char *text, size_t len, int keep_punct);
void cap_pretok_free(cap_pretok *p);

/* ---- the tokenizer ---- */
typedef struct cap_tokenizer cap_tokenizer;

/* Builds a vocabulary from word counts (counts: word -> count, as cap_pretokenize's words):
 * the four special tokens, then every word counted at least min_count (>= 1) times, by count
 * descending, ties by the bytes of the word (memcmp order, a prefix first). Deterministic. */
cap_tokenizer *cap_tokenizer_build(const cap_wordmap *counts, uint32_t min_count, int keep_punct);
/* Reads a tokenizer.json (cap's or one written by Hugging Face's library). Refuses, naming the
 * part, what cap does not implement: a model other than WordLevel, a normalizer other than
 * Lowercase, a pre-tokenizer other than Whitespace or cap's punctuation Split + Whitespace,
 * truncation or padding, a post-processor other than "<start> $A <end>", special tokens other
 * than <pad>=0, <start>=1, <end>=2, <unk>=3 (also the unk_token), ids that are not 0..V-1. */
cap_tokenizer *cap_tokenizer_parse(const char *json, size_t len);
/* cap_tokenizer_parse of a file; errors start with the path. */
cap_tokenizer *cap_tokenizer_load(const char *path);
void cap_tokenizer_free(cap_tokenizer *t);

size_t cap_tokenizer_vocab_size(const cap_tokenizer *t);
int cap_tokenizer_keep_punct(const cap_tokenizer *t);
/* The word of id (NUL-terminated), or NULL when id >= vocab size. */
const char *cap_tokenizer_word(const cap_tokenizer *t, uint32_t id, size_t *len);
/* The id of a normalised word, or CAP_TOK_UNK. */
uint32_t cap_tokenizer_id(const cap_tokenizer *t, const char *word, size_t len);
/* The canonical tokenizer.json of this tokenizer (what cap-tokenize vocab writes; the same
 * text for a file Hugging Face wrote with the same vocabulary and rule), and the SHA-256 hex of
 * that text: the digest that names the tokenizer in stream headers. */
const char *cap_tokenizer_json(const cap_tokenizer *t, size_t *len);
const char *cap_tokenizer_digest(const cap_tokenizer *t);

/* Encodes text into s->ids[0..s->n_ids): <start>, the ids, <end>. Fails on invalid UTF-8. */
int cap_tokenizer_encode(const cap_tokenizer *t, const char *text, size_t len, cap_pretok *s);
/* Appends the words of ids to out, separated by single spaces: <pad> and <start> are skipped,
 * the first <end> ends the text, <unk> is written as "<unk>". Fails on an id >= vocab size. */
int cap_tokenizer_decode(const cap_tokenizer *t, const uint32_t *ids, size_t n, cap_buf *out);
#endif
