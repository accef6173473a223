#include "text/tokenizer.h"
#include "core/error.h"
#include "core/json.h"
#include "core/sha256.h"
#include "core/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cap_tok_special[CAP_TOK_NSPECIAL] = { "<pad>", "<start>", "<end>", "<unk>" };

/* The regex of the Split pre-tokenizer that removes punctuation-only runs. It is [^\w\s]+ with
 * \w spelled out as the Rust regex crate defines it, because the Split runs on Oniguruma, whose
 * \w lacks Join_Control (U+200C, U+200D): with a plain \w the two would disagree there. */
#define PUNCT_REGEX "[^\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}\\s]+"

/* ---------------------------------------------------------------- wordmap */

struct cap_wordmap {
	uint32_t *slots;     /* 0 = empty, else entry index + 1 */
	size_t nslots;       /* power of two */
	size_t *key_off;     /* entry -> offset of its key in keys */
	size_t *key_len;
	uint32_t *hash;
	uint32_t *val;
	size_t n, cap;
	cap_buf keys;        /* keys, each followed by a NUL */
};

static uint32_t hash_bytes(const char *s, size_t n)
{
	uint32_t h = 2166136261u;  /* FNV-1a */
	for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

cap_wordmap *cap_wordmap_new(void)
{
	cap_wordmap *m = cap_xcalloc(1, sizeof *m);
	m->nslots = 64;
	m->slots = cap_xcalloc(m->nslots, sizeof *m->slots);
	return m;
}

void cap_wordmap_free(cap_wordmap *m)
{
	if (!m) return;
	free(m->slots);
	free(m->key_off);
	free(m->key_len);
	free(m->hash);
	free(m->val);
	cap_buf_free(&m->keys);
	free(m);
}

static size_t find_slot(const cap_wordmap *m, const char *key, size_t len, uint32_t h)
{
	size_t mask = m->nslots - 1, i = h & mask;
	for (;;) {
		uint32_t e = m->slots[i];
		if (!e) return i;
		e--;
		if (m->hash[e] == h && m->key_len[e] == len && memcmp(m->keys.data + m->key_off[e], key, len) == 0)
			return i;
		i = (i + 1) & mask;
	}
}

uint32_t *cap_wordmap_get(const cap_wordmap *m, const char *key, size_t len)
{
	uint32_t e = m->slots[find_slot(m, key, len, hash_bytes(key, len))];
	return e ? &m->val[e - 1] : NULL;
}

uint32_t *cap_wordmap_put(cap_wordmap *m, const char *key, size_t len, int *added)
{
	uint32_t h = hash_bytes(key, len);
	size_t i = find_slot(m, key, len, h);
	if (added) *added = 0;
	if (m->slots[i]) return &m->val[m->slots[i] - 1];
	if (m->n >= UINT32_MAX - 1) { fprintf(stderr, "%s: word map full\n", program_invocation_short_name); abort(); }
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->key_off = cap_xrealloc(m->key_off, m->cap * sizeof *m->key_off);
		m->key_len = cap_xrealloc(m->key_len, m->cap * sizeof *m->key_len);
		m->hash = cap_xrealloc(m->hash, m->cap * sizeof *m->hash);
		m->val = cap_xrealloc(m->val, m->cap * sizeof *m->val);
	}
	size_t e = m->n++;
	m->key_off[e] = m->keys.len;
	m->key_len[e] = len;
	m->hash[e] = h;
	m->val[e] = 0;
	cap_buf_add(&m->keys, key, len);
	cap_buf_addc(&m->keys, 0);
	m->slots[i] = (uint32_t)(e + 1);
	if (added) *added = 1;
	if (2 * m->n > m->nslots) {  /* keep the load under one half */
		free(m->slots);
		m->nslots *= 2;
		m->slots = cap_xcalloc(m->nslots, sizeof *m->slots);
		for (size_t k = 0; k < m->n; k++) {
			size_t j = m->hash[k] & (m->nslots - 1);
			while (m->slots[j]) j = (j + 1) & (m->nslots - 1);
			m->slots[j] = (uint32_t)(k + 1);
		}
	}
	return &m->val[e];
}

size_t cap_wordmap_size(const cap_wordmap *m) { return m->n; }

const char *cap_wordmap_key(const cap_wordmap *m, size_t i, size_t *len)
{
	if (len) *len = m->key_len[i];
	return m->keys.data + m->key_off[i];
}

uint32_t cap_wordmap_value(const cap_wordmap *m, size_t i) { return m->val[i]; }

/* ---------------------------------------------------------------- pre-tokenisation */

void cap_pretok_free(cap_pretok *p)
{
	free(p->norm);
	free(p->pieces);
	free(p->ids);
	memset(p, 0, sizeof *p);
}

static void add_piece(cap_pretok *p, size_t off, size_t len, int32_t special)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 32;
		p->pieces = cap_xrealloc(p->pieces, p->cap * sizeof *p->pieces);
	}
	p->pieces[p->n++] = (cap_piece){ off, len, special };
}

static void norm_reserve(cap_pretok *p, size_t extra)
{
	if (p->norm_cap - p->norm_len >= extra) return;
	size_t cap = p->norm_cap ? p->norm_cap : 256;
	while (cap - p->norm_len < extra) cap *= 2;
	p->norm = cap_xrealloc(p->norm, cap);
	p->norm_cap = cap;
}

/* The special token whose text starts at s[0..n), or -1. No special token is a prefix of
 * another, so the leftmost-longest match of the Rust library is simply the one that fits. */
static int special_at(const char *s, size_t n)
{
	for (int k = 0; k < CAP_TOK_NSPECIAL; k++) {
		size_t l = strlen(cap_tok_special[k]);
		if (l <= n && memcmp(s, cap_tok_special[k], l) == 0) return k;
	}
	return -1;
}

enum { CLS_WORD, CLS_PUNCT, CLS_SPACE };

/* The class of each ASCII character, so the common case costs one load. */
static const unsigned char ascii_class[128] = {
	['\t'] = CLS_SPACE, ['\n'] = CLS_SPACE, ['\v'] = CLS_SPACE, ['\f'] = CLS_SPACE, ['\r'] = CLS_SPACE,
	[' '] = CLS_SPACE, ['!'] = CLS_PUNCT, ['"'] = CLS_PUNCT, ['#'] = CLS_PUNCT, ['$'] = CLS_PUNCT,
	['%'] = CLS_PUNCT, ['&'] = CLS_PUNCT, ['\''] = CLS_PUNCT, ['('] = CLS_PUNCT, [')'] = CLS_PUNCT,
	['*'] = CLS_PUNCT, ['+'] = CLS_PUNCT, [','] = CLS_PUNCT, ['-'] = CLS_PUNCT, ['.'] = CLS_PUNCT,
	['/'] = CLS_PUNCT, [':'] = CLS_PUNCT, [';'] = CLS_PUNCT, ['<'] = CLS_PUNCT, ['='] = CLS_PUNCT,
	['>'] = CLS_PUNCT, ['?'] = CLS_PUNCT, ['@'] = CLS_PUNCT, ['['] = CLS_PUNCT, ['\\'] = CLS_PUNCT,
	[']'] = CLS_PUNCT, ['^'] = CLS_PUNCT, ['`'] = CLS_PUNCT, ['{'] = CLS_PUNCT, ['|'] = CLS_PUNCT,
	['}'] = CLS_PUNCT, ['~'] = CLS_PUNCT, [127] = CLS_PUNCT,
	/* controls other than white space are punctuation too */
	[0] = CLS_PUNCT, [1] = CLS_PUNCT, [2] = CLS_PUNCT, [3] = CLS_PUNCT, [4] = CLS_PUNCT, [5] = CLS_PUNCT,
	[6] = CLS_PUNCT, [7] = CLS_PUNCT, [8] = CLS_PUNCT, [14] = CLS_PUNCT, [15] = CLS_PUNCT,
	[16] = CLS_PUNCT, [17] = CLS_PUNCT, [18] = CLS_PUNCT, [19] = CLS_PUNCT, [20] = CLS_PUNCT,
	[21] = CLS_PUNCT, [22] = CLS_PUNCT, [23] = CLS_PUNCT, [24] = CLS_PUNCT, [25] = CLS_PUNCT,
	[26] = CLS_PUNCT, [27] = CLS_PUNCT, [28] = CLS_PUNCT, [29] = CLS_PUNCT, [30] = CLS_PUNCT,
	[31] = CLS_PUNCT,
	/* letters, digits and '_' are CLS_WORD (0) */
};

static int classify(uint32_t cp)
{
	if (cp < 0x80) return ascii_class[cp];
	if (cap_uni_is_word(cp)) return CLS_WORD;
	return cap_uni_is_space(cp) ? CLS_SPACE : CLS_PUNCT;
}

/* Lowercases and splits one segment (no special tokens in it). Splitting after lowercasing
 * matters: the lowercase of a character can be in another class ('İ' -> 'i' + U+0307). */
static void segment(cap_pretok *p, const char *s, size_t n, int keep_punct)
{
	size_t start = p->norm_len;
	norm_reserve(p, 3 * n);  /* a code point's lowercase is at most 3 times its UTF-8 length */
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {  /* ASCII fast path */
			p->norm[p->norm_len++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
			i++;
			continue;
		}
		uint32_t cp = cap_utf8_next(s, &i), low[3];
		size_t k = cap_uni_lower(cp, low);
		for (size_t j = 0; j < k; j++) p->norm_len += cap_utf8_put(low[j], p->norm + p->norm_len);
	}
	int cls = CLS_SPACE;
	size_t run = start;
	for (size_t i = start; i < p->norm_len;) {
		size_t at = i;
		unsigned char c = (unsigned char)p->norm[i];
		int k = c < 0x80 ? (i++, ascii_class[c]) : classify(cap_utf8_next(p->norm, &i));
		if (k == cls) continue;
		if (cls == CLS_WORD || (cls == CLS_PUNCT && keep_punct)) add_piece(p, run, at - run, -1);
		cls = k;
		run = at;
	}
	if (cls == CLS_WORD || (cls == CLS_PUNCT && keep_punct)) add_piece(p, run, p->norm_len - run, -1);
}

int cap_pretokenize(cap_pretok *p, const char *text, size_t len, int keep_punct)
{
	size_t bad;
	if (cap_utf8_check(text, len, &bad) < 0) return cap_fail("invalid UTF-8 at byte %zu", bad);
	p->n = 0;
	p->norm_len = 0;
	size_t seg = 0;
	for (size_t i = 0; i < len; i++) {
		int k;
		if (text[i] != '<' || (k = special_at(text + i, len - i)) < 0) continue;
		segment(p, text + seg, i - seg, keep_punct);
		add_piece(p, p->norm_len, 0, k);
		i += strlen(cap_tok_special[k]) - 1;
		seg = i + 1;
	}
	segment(p, text + seg, len - seg, keep_punct);
	return 0;
}

/* ---------------------------------------------------------------- the tokenizer */

struct cap_tokenizer {
	cap_wordmap *ids;    /* word -> id; key i is the word of id i */
	int keep_punct;
	cap_buf json;        /* canonical tokenizer.json */
	char digest[65];
};

static cap_tokenizer *tok_new(int keep_punct)
{
	cap_tokenizer *t = cap_xcalloc(1, sizeof *t);
	t->ids = cap_wordmap_new();
	t->keep_punct = keep_punct;
	return t;
}

void cap_tokenizer_free(cap_tokenizer *t)
{
	if (!t) return;
	cap_wordmap_free(t->ids);
	cap_buf_free(&t->json);
	free(t);
}

size_t cap_tokenizer_vocab_size(const cap_tokenizer *t) { return cap_wordmap_size(t->ids); }
int cap_tokenizer_keep_punct(const cap_tokenizer *t) { return t->keep_punct; }

const char *cap_tokenizer_word(const cap_tokenizer *t, uint32_t id, size_t *len)
{
	if (id >= cap_wordmap_size(t->ids)) return NULL;
	return cap_wordmap_key(t->ids, id, len);
}

uint32_t cap_tokenizer_id(const cap_tokenizer *t, const char *word, size_t len)
{
	const uint32_t *v = cap_wordmap_get(t->ids, word, len);
	return v ? *v : CAP_TOK_UNK;
}

const char *cap_tokenizer_json(const cap_tokenizer *t, size_t *len)
{
	if (len) *len = t->json.len;
	return t->json.data;
}

const char *cap_tokenizer_digest(const cap_tokenizer *t) { return t->digest; }

/* Writes the canonical tokenizer.json: the layout of the Rust library's pretty printer, so the
 * file reads like one it saved, with the vocabulary in id order. */
static void write_json(cap_tokenizer *t)
{
	cap_buf *b = &t->json;
	cap_buf_reset(b);
	cap_buf_adds(b, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n"
	                "  \"added_tokens\": [\n");
	for (int k = 0; k < CAP_TOK_NSPECIAL; k++)
		cap_buf_printf(b, "    {\n      \"id\": %d,\n      \"content\": \"%s\",\n"
		               "      \"single_word\": false,\n      \"lstrip\": false,\n"
		               "      \"rstrip\": false,\n      \"normalized\": false,\n"
		               "      \"special\": true\n    }%s\n",
		               k, cap_tok_special[k], k + 1 < CAP_TOK_NSPECIAL ? "," : "");
	cap_buf_adds(b, "  ],\n  \"normalizer\": {\n    \"type\": \"Lowercase\"\n  },\n");
	if (t->keep_punct) {
		cap_buf_adds(b, "  \"pre_tokenizer\": {\n    \"type\": \"Whitespace\"\n  },\n");
	} else {
		cap_buf_adds(b, "  \"pre_tokenizer\": {\n    \"type\": \"Sequence\",\n    \"pretokenizers\": [\n"
		                "      {\n        \"type\": \"Split\",\n        \"pattern\": {\n"
		                "          \"Regex\": ");
		cap_buf_json_string(b, PUNCT_REGEX, strlen(PUNCT_REGEX));
		cap_buf_adds(b, "\n        },\n        \"behavior\": \"Removed\",\n        \"invert\": false\n"
		                "      },\n      {\n        \"type\": \"Whitespace\"\n      }\n    ]\n  },\n");
	}
	cap_buf_adds(b,
		"  \"post_processor\": {\n    \"type\": \"TemplateProcessing\",\n    \"single\": [\n"
		"      {\n        \"SpecialToken\": {\n          \"id\": \"<start>\",\n          \"type_id\": 0\n        }\n      },\n"
		"      {\n        \"Sequence\": {\n          \"id\": \"A\",\n          \"type_id\": 0\n        }\n      },\n"
		"      {\n        \"SpecialToken\": {\n          \"id\": \"<end>\",\n          \"type_id\": 0\n        }\n      }\n"
		"    ],\n    \"pair\": [\n"
		"      {\n        \"SpecialToken\": {\n          \"id\": \"<start>\",\n          \"type_id\": 0\n        }\n      },\n"
		"      {\n        \"Sequence\": {\n          \"id\": \"A\",\n          \"type_id\": 0\n        }\n      },\n"
		"      {\n        \"Sequence\": {\n          \"id\": \"B\",\n          \"type_id\": 1\n        }\n      },\n"
		"      {\n        \"SpecialToken\": {\n          \"id\": \"<end>\",\n          \"type_id\": 1\n        }\n      }\n"
		"    ],\n    \"special_tokens\": {\n"
		"      \"<end>\": {\n        \"id\": \"<end>\",\n        \"ids\": [\n          2\n        ],\n"
		"        \"tokens\": [\n          \"<end>\"\n        ]\n      },\n"
		"      \"<start>\": {\n        \"id\": \"<start>\",\n        \"ids\": [\n          1\n        ],\n"
		"        \"tokens\": [\n          \"<start>\"\n        ]\n      }\n    }\n  },\n"
		"  \"decoder\": null,\n  \"model\": {\n    \"type\": \"WordLevel\",\n    \"vocab\": {\n");
	size_t n = cap_wordmap_size(t->ids);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const char *w = cap_wordmap_key(t->ids, i, &len);
		cap_buf_adds(b, "      ");
		cap_buf_json_string(b, w, len);
		cap_buf_printf(b, ": %zu%s\n", i, i + 1 < n ? "," : "");
	}
	cap_buf_adds(b, "    },\n    \"unk_token\": \"<unk>\"\n  }\n}\n");
	cap_sha256_hex(b->data, b->len, t->digest);
}

struct counted { const char *w; size_t len; uint32_t count; };

static int by_count(const void *pa, const void *pb)
{
	const struct counted *a = pa, *b = pb;
	if (a->count != b->count) return a->count > b->count ? -1 : 1;
	int c = memcmp(a->w, b->w, a->len < b->len ? a->len : b->len);
	if (c) return c;
	return (a->len > b->len) - (a->len < b->len);
}

cap_tokenizer *cap_tokenizer_build(const cap_wordmap *counts, uint32_t min_count, int keep_punct)
{
	if (min_count < 1) min_count = 1;
	size_t n = cap_wordmap_size(counts), m = 0;
	struct counted *v = cap_xcalloc(n ? n : 1, sizeof *v);
	for (size_t i = 0; i < n; i++) {
		uint32_t c = cap_wordmap_value(counts, i);
		if (c < min_count) continue;
		v[m].w = cap_wordmap_key(counts, i, &v[m].len);
		v[m].count = c;
		m++;
	}
	qsort(v, m, sizeof *v, by_count);
	cap_tokenizer *t = tok_new(keep_punct);
	for (int k = 0; k < CAP_TOK_NSPECIAL; k++)
		*cap_wordmap_put(t->ids, cap_tok_special[k], strlen(cap_tok_special[k]), NULL) = (uint32_t)k;
	for (size_t i = 0; i < m; i++) {
		int added;
		uint32_t *id = cap_wordmap_put(t->ids, v[i].w, v[i].len, &added);
		if (added) *id = (uint32_t)(cap_wordmap_size(t->ids) - 1);  /* a word can't be "<unk>" */
	}
	free(v);
	write_json(t);
	return t;
}

int cap_tokenizer_encode(const cap_tokenizer *t, const char *text, size_t len, cap_pretok *s)
{
	if (cap_pretokenize(s, text, len, t->keep_punct) < 0) return -1;
	if (s->ids_cap < s->n + 2) {
		s->ids_cap = s->n + 2 > 64 ? 2 * (s->n + 2) : 64;
		s->ids = cap_xrealloc(s->ids, s->ids_cap * sizeof *s->ids);
	}
	size_t k = 0;
	s->ids[k++] = CAP_TOK_START;
	for (size_t i = 0; i < s->n; i++) {
		const cap_piece *p = &s->pieces[i];
		s->ids[k++] = p->special >= 0 ? (uint32_t)p->special : cap_tokenizer_id(t, s->norm + p->off, p->len);
	}
	s->ids[k++] = CAP_TOK_END;
	s->n_ids = k;
	return 0;
}

int cap_tokenizer_decode(const cap_tokenizer *t, const uint32_t *ids, size_t n, cap_buf *out)
{
	int first = 1;
	size_t v = cap_tokenizer_vocab_size(t);
	for (size_t i = 0; i < n; i++) {
		if (ids[i] >= v) return cap_fail("id %u at position %zu is outside the vocabulary (size %zu)", ids[i], i, v);
		if (ids[i] == CAP_TOK_END) break;
		if (ids[i] == CAP_TOK_PAD || ids[i] == CAP_TOK_START) continue;
		size_t len = 0;
		const char *w = cap_tokenizer_word(t, ids[i], &len);
		if (!first) cap_buf_addc(out, ' ');
		cap_buf_add(out, w, len);
		first = 0;
	}
	if (first) cap_buf_add(out, "", 0);  /* keep out->data a valid (empty) string */
	return 0;
}

/* ---------------------------------------------------------------- reading tokenizer.json */

static int is_str(const cap_json *j, const char *s)
{
	return j && j->type == CAP_JSON_STRING && strcmp(j->str, s) == 0;
}

static int is_false_or_absent(const cap_json *o, const char *key)
{
	const cap_json *v = cap_json_get(o, key);
	return !v || (v->type == CAP_JSON_BOOL && !v->boolean);
}

static const char *type_of(const cap_json *o)
{
	const char *s = cap_json_get_str(o, "type");
	return s ? s : "?";
}

/* The pre-tokenizer: Whitespace (keep punctuation) or Sequence[Split(PUNCT_REGEX, Removed),
 * Whitespace] (drop it). */
static int read_pre_tokenizer(const cap_json *p, int *keep_punct)
{
	static const char what[] = "cap implements Whitespace, or a Sequence of cap's punctuation Split "
	                           "(behavior Removed) and Whitespace";
	if (!p || p->type != CAP_JSON_OBJECT) return cap_fail("pre_tokenizer: missing (%s)", what);
	if (is_str(cap_json_get(p, "type"), "Whitespace")) { *keep_punct = 1; return 0; }
	const cap_json *seq = cap_json_get(p, "pretokenizers");
	if (!is_str(cap_json_get(p, "type"), "Sequence") || !seq || seq->type != CAP_JSON_ARRAY)
		return cap_fail("pre_tokenizer: type %s is not supported (%s)", type_of(p), what);
	if (seq->n != 2 || !is_str(cap_json_get(seq->items[0], "type"), "Split") ||
	    !is_str(cap_json_get(seq->items[1], "type"), "Whitespace"))
		return cap_fail("pre_tokenizer: this Sequence is not supported (%s)", what);
	const cap_json *sp = seq->items[0];
	const cap_json *pat = cap_json_get(sp, "pattern");
	if (!is_str(cap_json_get(pat, "Regex"), PUNCT_REGEX))
		return cap_fail("pre_tokenizer: Split pattern is not cap's punctuation regex %s", PUNCT_REGEX);
	if (!is_str(cap_json_get(sp, "behavior"), "Removed") || !is_false_or_absent(sp, "invert"))
		return cap_fail("pre_tokenizer: Split must have behavior Removed and invert false");
	*keep_punct = 0;
	return 0;
}

/* The post-processor must add <start> and <end> around a single sequence. */
static int read_post_processor(const cap_json *p)
{
	static const char what[] = "post_processor: cap needs a TemplateProcessing \"<start> $A <end>\" "
	                           "with <start>=1 and <end>=2";
	if (!p || !is_str(cap_json_get(p, "type"), "TemplateProcessing")) return cap_fail("%s", what);
	const cap_json *s = cap_json_get(p, "single");
	if (!s || s->type != CAP_JSON_ARRAY || s->n != 3) return cap_fail("%s", what);
	if (!is_str(cap_json_get(cap_json_get(s->items[0], "SpecialToken"), "id"), "<start>") ||
	    !is_str(cap_json_get(cap_json_get(s->items[1], "Sequence"), "id"), "A") ||
	    !is_str(cap_json_get(cap_json_get(s->items[2], "SpecialToken"), "id"), "<end>"))
		return cap_fail("%s", what);
	const cap_json *st = cap_json_get(p, "special_tokens");
	for (int k = CAP_TOK_START; k <= CAP_TOK_END; k++) {
		const cap_json *e = cap_json_get(st, cap_tok_special[k]);
		const cap_json *ids = cap_json_get(e, "ids");
		if (!ids || ids->type != CAP_JSON_ARRAY || ids->n != 1 || !ids->items[0]->is_uint ||
		    ids->items[0]->uint != (uint64_t)k)
			return cap_fail("%s", what);
	}
	return 0;
}

/* The added tokens must be the four specials, matched on the raw text as they are. */
static int read_added_tokens(const cap_json *a)
{
	int seen[CAP_TOK_NSPECIAL] = { 0 };
	if (!a || a->type != CAP_JSON_ARRAY) return cap_fail("added_tokens: missing");
	for (size_t i = 0; i < a->n; i++) {
		const cap_json *e = a->items[i];
		const cap_json *id = cap_json_get(e, "id");
		const char *c = cap_json_get_str(e, "content");
		int k = -1;
		for (int s = 0; c && s < CAP_TOK_NSPECIAL; s++)
			if (strcmp(c, cap_tok_special[s]) == 0) k = s;
		if (k < 0 || !id || !id->is_uint || id->uint != (uint64_t)k)
			return cap_fail("added_tokens[%zu]: cap supports only the special tokens <pad>=0, "
			                "<start>=1, <end>=2, <unk>=3 as added tokens", i);
		if (!is_false_or_absent(e, "single_word") || !is_false_or_absent(e, "lstrip") ||
		    !is_false_or_absent(e, "rstrip") || !is_false_or_absent(e, "normalized"))
			return cap_fail("added_tokens[%zu]: %s must have single_word, lstrip, rstrip and "
			                "normalized false", i, c);
		seen[k] = 1;
	}
	for (int k = 0; k < CAP_TOK_NSPECIAL; k++)
		if (!seen[k]) return cap_fail("added_tokens: %s is missing", cap_tok_special[k]);
	return 0;
}

static int read_model(cap_tokenizer *t, const cap_json *m)
{
	if (!m || m->type != CAP_JSON_OBJECT) return cap_fail("model: missing");
	if (!is_str(cap_json_get(m, "type"), "WordLevel"))
		return cap_fail("model: type %s is not supported (cap implements WordLevel)", type_of(m));
	if (!is_str(cap_json_get(m, "unk_token"), "<unk>"))
		return cap_fail("model: unk_token must be \"<unk>\"");
	const cap_json *v = cap_json_get(m, "vocab");
	if (!v || v->type != CAP_JSON_OBJECT) return cap_fail("model: vocab: missing");
	if (v->n > CAP_TOK_MAX_VOCAB) return cap_fail("model: vocab: %zu words, more than %u", v->n, CAP_TOK_MAX_VOCAB);
	if (v->n < CAP_TOK_NSPECIAL) return cap_fail("model: vocab: %zu words, fewer than the 4 special tokens", v->n);
	/* Ids must be exactly 0..n-1: order the words by id, then insert them in that order. */
	size_t *word_of = cap_xmalloc(v->n * sizeof *word_of);
	for (size_t i = 0; i < v->n; i++) word_of[i] = SIZE_MAX;
	int rc = 0;
	for (size_t i = 0; i < v->n && rc == 0; i++) {
		const cap_json *id = v->items[i];
		if (!id->is_uint || id->uint >= v->n)
			rc = cap_fail("model: vocab: the id of \"%s\" is not an integer in 0..%zu", v->keys[i], v->n - 1);
		else if (word_of[id->uint] != SIZE_MAX)
			rc = cap_fail("model: vocab: id %llu is used twice", (unsigned long long)id->uint);
		else
			word_of[id->uint] = i;
	}
	for (size_t id = 0; id < v->n && rc == 0; id++) {
		size_t i = word_of[id];
		if (id < CAP_TOK_NSPECIAL && strcmp(v->keys[i], cap_tok_special[id]) != 0)
			rc = cap_fail("model: vocab: id %zu must be %s, not \"%s\"", id, cap_tok_special[id], v->keys[i]);
		else
			*cap_wordmap_put(t->ids, v->keys[i], v->key_lens[i], NULL) = (uint32_t)id;
	}
	free(word_of);
	return rc;
}

cap_tokenizer *cap_tokenizer_parse(const char *text, size_t len)
{
	cap_json *j = cap_json_parse(text, len);
	if (!j) return NULL;
	cap_tokenizer *t = tok_new(0);
	int rc = 0;
	const cap_json *v;
	if (j->type != CAP_JSON_OBJECT) rc = cap_fail("not a tokenizer.json: the top level is not an object");
	if (rc == 0 && (v = cap_json_get(j, "truncation")) && v->type != CAP_JSON_NULL)
		rc = cap_fail("truncation: must be null (cap never truncates)");
	if (rc == 0 && (v = cap_json_get(j, "padding")) && v->type != CAP_JSON_NULL)
		rc = cap_fail("padding: must be null (cap never pads)");
	if (rc == 0) {
		v = cap_json_get(j, "normalizer");
		if (!v || !is_str(cap_json_get(v, "type"), "Lowercase"))
			rc = cap_fail("normalizer: %s is not supported (cap implements Lowercase)",
			              !v ? "a missing one" : v->type == CAP_JSON_NULL ? "null" : type_of(v));
	}
	if (rc == 0) rc = read_pre_tokenizer(cap_json_get(j, "pre_tokenizer"), &t->keep_punct);
	if (rc == 0) rc = read_post_processor(cap_json_get(j, "post_processor"));
	if (rc == 0) rc = read_added_tokens(cap_json_get(j, "added_tokens"));
	if (rc == 0) rc = read_model(t, cap_json_get(j, "model"));
	cap_json_free(j);
	if (rc < 0) { cap_tokenizer_free(t); return NULL; }
	write_json(t);
	return t;
}

cap_tokenizer *cap_tokenizer_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) { cap_fail("%s", strerror(errno)); cap_fail_prefix("%s", path); return NULL; }
	cap_buf b = { 0 };
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) cap_buf_add(&b, chunk, got);
	int err = ferror(f);
	fclose(f);
	cap_tokenizer *t = NULL;
	if (err) cap_fail("read error");
	else if (b.len == 0) cap_fail("empty file");
	else t = cap_tokenizer_parse(b.data, b.len);
	cap_buf_free(&b);
	if (!t) cap_fail_prefix("%s", path);
	return t;
}
