/* The tokenizer and the caption readers: UTF-8, Unicode classes and lowercase, pre-tokenisation
 * (Unicode, punctuation, special-token text), vocabulary determinism, tokenizer.json round trip
 * and refusals, encode/decode, and every caption format with its errors. The ids' agreement with
 * Hugging Face's own library is tests/py/test_tokenize_hf.py. */
#include "check.h"
#include "core/buf.h"
#include "text/caption_sources.h"
#include "core/error.h"
#include "text/tokenizer.h"
#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>

/* The pieces of text joined by '|' (specials as "#id"), e.g. "a|dog|s". */
static const char *pieces(const char *text, int keep_punct)
{
	static cap_buf out;
	static cap_pretok p;
	cap_buf_reset(&out);
	if (cap_pretokenize(&p, text, strlen(text), keep_punct) < 0) return "ERROR";
	for (size_t i = 0; i < p.n; i++) {
		if (i) cap_buf_addc(&out, '|');
		if (p.pieces[i].special >= 0) cap_buf_printf(&out, "#%d", p.pieces[i].special);
		else cap_buf_add(&out, p.norm + p.pieces[i].off, p.pieces[i].len);
	}
	cap_buf_add(&out, "", 0);
	return out.data;
}

#define PIECES(text, keep, want) do { const char *got_ = pieces(text, keep); \
	CHECK(strcmp(got_, want) == 0, "pre-tokenise %s%s -> %s (got %s)", #text, keep ? " (keep punct)" : "", want, got_); } while (0)

static void test_utf8(void)
{
	size_t bad = 99;
	CHECK(cap_utf8_check("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, &bad) == 0, "valid UTF-8 accepted");
	static const struct { const char *s; size_t n, at; const char *what; } badv[] = {
		{ "ab\xc0\x80", 4, 2, "overlong NUL" }, { "\xe0\x80\xaf", 3, 0, "overlong 3-byte" },
		{ "x\xed\xa0\x80", 4, 1, "surrogate" }, { "\xf4\x90\x80\x80", 4, 0, "above U+10FFFF" },
		{ "abc\xe2\x82", 5, 3, "truncated" }, { "\x80", 1, 0, "lone continuation" },
		{ "a\xff", 2, 1, "byte FF" }, { "\xc3(", 2, 0, "bad continuation" },
	};
	for (size_t i = 0; i < sizeof badv / sizeof *badv; i++)
		CHECK(cap_utf8_check(badv[i].s, badv[i].n, &bad) < 0 && bad == badv[i].at,
		      "invalid UTF-8 refused at the right byte: %s", badv[i].what);
	int round = 1;
	for (uint32_t cp = 0; cp < 0x110000; cp++) {
		if (cp >= 0xD800 && cp <= 0xDFFF) continue;
		char b[4];
		size_t n = cap_utf8_put(cp, b), i = 0;
		if (cap_utf8_check(b, n, NULL) < 0 || cap_utf8_next(b, &i) != cp || i != n) { round = 0; break; }
	}
	CHECK(round, "every code point encodes, validates and decodes back");
}

static uint32_t lower1(uint32_t cp) { uint32_t o[3]; return cap_uni_lower(cp, o) == 1 ? o[0] : 0; }

static void test_unicode(void)
{
	CHECK(lower1('A') == 'a' && lower1('z') == 'z' && lower1('_') == '_', "ASCII lowercase");
	CHECK(lower1(0xC9) == 0xE9 && lower1(0x3A3) == 0x3C3 && lower1(0x1E9E) == 0xDF && lower1(0x1C4) == 0x1C6 &&
	      lower1(0x1C5) == 0x1C6 && lower1(0x410) == 0x430 && lower1(0x10400) == 0x10428 && lower1(0x2160) == 0x2170,
	      "lowercase: É, Σ (never final ς), ẞ, Ǆ, ǅ, Cyrillic, Deseret, Roman numeral");
	CHECK(lower1(0x100) == 0x101 && lower1(0x101) == 0x101 && lower1(0x102) == 0x103, "stride-2 runs (Ā ā Ă)");
	uint32_t o[3];
	CHECK(cap_uni_lower(0x130, o) == 2 && o[0] == 'i' && o[1] == 0x307, "İ lowercases to two code points");
	CHECK(lower1(0x212A) == 'k' && lower1(0x2126) == 0x3C9, "Kelvin and Ohm signs");
	CHECK(cap_uni_is_word('_') && cap_uni_is_word('7') && !cap_uni_is_word('-') && !cap_uni_is_word('\''),
	      "\\w ASCII: _ and digits yes, - and ' no");
	CHECK(cap_uni_is_word(0xE9) && cap_uni_is_word(0x301) && cap_uni_is_word(0x4E00) && cap_uni_is_word(0x663) &&
	      cap_uni_is_word(0x216B) && cap_uni_is_word(0x24B6) && cap_uni_is_word(0x200D) && cap_uni_is_word(0x203F),
	      "\\w: é, combining acute, CJK, Arabic-Indic 3, Ⅻ (Nl), Ⓐ (Other_Alphabetic), ZWJ, ‿ (Pc)");
	CHECK(!cap_uni_is_word(0xB2) && !cap_uni_is_word(0xBD) && !cap_uni_is_word(0x1F600) && !cap_uni_is_word(0x2019) &&
	      !cap_uni_is_word(0xA0), "not \\w: ², ½ (No), emoji, ’, NBSP");
	CHECK(cap_uni_is_space(0xA0) && cap_uni_is_space(0x3000) && cap_uni_is_space(0x85) && cap_uni_is_space(0x2028) &&
	      cap_uni_is_space('\v') && !cap_uni_is_space(0x200B) && !cap_uni_is_space(0x180E),
	      "\\s: NBSP, ideographic space, NEL, LS, VT; not ZWSP nor Mongolian vowel separator");
}

static void test_pretokenize(void)
{
	PIECES("A dog's ball.", 0, "a|dog|s|ball");
	PIECES("A dog's ball.", 1, "a|dog|'|s|ball|.");
	PIECES("Hello,world!!  ok?!", 1, "hello|,|world|!!|ok|?!");
	PIECES("Hello,world!!  ok?!", 0, "hello|world|ok");
	PIECES("", 0, "");
	PIECES(" \t\n ", 1, "");
	PIECES("...", 0, "");
	PIECES("dog--sled", 1, "dog|--|sled");
	PIECES("snake_case x2 3.5", 1, "snake_case|x2|3|.|5");
	PIECES("ÉCOLE Ærø", 0, "école|ærø");
	PIECES("İstanbul", 0, "i\xcc\x87stanbul");  /* the dot above is a mark, so one word */
	PIECES("ΟΔΟΣ", 0, "οδοσ");                 /* no final sigma: HF lowercases char by char */
	PIECES("x\xe2\x80\x8dy ½ ²", 1, "x\xe2\x80\x8dy|½|²");
	PIECES("a\xc2\xa0" "b\xe3\x80\x80" "c", 0, "a|b|c");     /* NBSP and U+3000 split */
	PIECES("caf\xc3\xa9\xe2\x80\x99s", 1, "café|’|s");
	PIECES("dog\xf0\x9f\x90\x95!", 1, "dog|\xf0\x9f\x90\x95!"); /* emoji and ! are one punctuation run */
	PIECES("a<start>b <end>", 0, "a|#1|b|#2");
	PIECES("<pad><unk>", 0, "#0|#3");
	PIECES("<START> <star <end", 1, "<|start|>|<|star|<|end");
	PIECES("x<end>.y", 1, "x|#2|.|y");
	CHECK(strcmp(pieces("ok \xff", 0), "ERROR") == 0 && strstr(cap_errmsg(), "invalid UTF-8 at byte 3"),
	      "invalid UTF-8 refused with its offset (%s)", cap_errmsg());
}

static cap_wordmap *counts_of(const char *const *w, const uint32_t *c, size_t n, int reverse)
{
	cap_wordmap *m = cap_wordmap_new();
	for (size_t k = 0; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k;
		*cap_wordmap_put(m, w[i], strlen(w[i]), NULL) = c[i];
	}
	return m;
}

static void test_vocab(void)
{
	static const char *const w[] = { "dog", "a", "the", "cat", "ab", "b", "rare", "zebra", "é" };
	static const uint32_t c[] = { 7, 9, 9, 7, 7, 5, 4, 5, 6 };
	size_t n = sizeof w / sizeof *w;
	cap_wordmap *m1 = counts_of(w, c, n, 0), *m2 = counts_of(w, c, n, 1);
	cap_tokenizer *t1 = cap_tokenizer_build(m1, 5, 0), *t2 = cap_tokenizer_build(m2, 5, 0);
	size_t l1, l2;
	const char *j1 = cap_tokenizer_json(t1, &l1), *j2 = cap_tokenizer_json(t2, &l2);
	CHECK(l1 == l2 && memcmp(j1, j2, l1) == 0 && strcmp(cap_tokenizer_digest(t1), cap_tokenizer_digest(t2)) == 0,
	      "vocabulary independent of insertion order (byte-identical tokenizer.json)");
	static const char *const want[] = { "<pad>", "<start>", "<end>", "<unk>", "a", "the", "ab", "cat", "dog",
	                                    "é", "b", "zebra" };
	int order = cap_tokenizer_vocab_size(t1) == 12;
	for (uint32_t i = 0; order && i < 12; i++) order = strcmp(cap_tokenizer_word(t1, i, NULL), want[i]) == 0;
	CHECK(order, "specials 0-3, then count descending, ties bytewise; min count 5 drops 'rare'");
	CHECK(cap_tokenizer_id(t1, "dog", 3) == 8 && cap_tokenizer_id(t1, "rare", 4) == CAP_TOK_UNK &&
	      cap_tokenizer_word(t1, 12, NULL) == NULL, "id lookup, unknown word is <unk>");
	cap_tokenizer *t3 = cap_tokenizer_build(m1, 1, 0);
	CHECK(cap_tokenizer_vocab_size(t3) == 13, "min count 1 keeps every word");

	/* Round trip through the JSON, and the same vocabulary in another layout. */
	cap_tokenizer *r = cap_tokenizer_parse(j1, l1);
	CHECK(r && strcmp(cap_tokenizer_digest(r), cap_tokenizer_digest(t1)) == 0 && !cap_tokenizer_keep_punct(r),
	      "tokenizer.json reads back to the same digest");
	cap_buf compact = { 0 };
	for (size_t i = 0; i < l1; i++)
		if (j1[i] != '\n' && !(j1[i] == ' ' && i > 0 && (j1[i - 1] == ' ' || j1[i - 1] == '\n'))) cap_buf_addc(&compact, j1[i]);
	cap_tokenizer *rc = cap_tokenizer_parse(compact.data, compact.len);
	CHECK(rc && strcmp(cap_tokenizer_digest(rc), cap_tokenizer_digest(t1)) == 0,
	      "the same tokenizer written compactly has the same digest");
	cap_tokenizer *kp = cap_tokenizer_build(m1, 5, 1);
	size_t lk;
	const char *jk = cap_tokenizer_json(kp, &lk);
	cap_tokenizer *rk = cap_tokenizer_parse(jk, lk);
	CHECK(rk && cap_tokenizer_keep_punct(rk) && strcmp(cap_tokenizer_digest(kp), cap_tokenizer_digest(t1)) != 0,
	      "--keep-punct is written into the file and changes the digest");

	/* Encode and decode. */
	cap_pretok s = { 0 };
	CHECK(cap_tokenizer_encode(t1, "A dog, a CAT; a gnu.", 20, &s) == 0 && s.n_ids == 8 && s.ids[0] == 1 &&
	      s.ids[1] == 4 && s.ids[2] == 8 && s.ids[3] == 4 && s.ids[4] == 7 && s.ids[5] == 4 && s.ids[6] == 3 && s.ids[7] == 2,
	      "encode: <start> a dog a cat a <unk> <end>");
	CHECK(cap_tokenizer_encode(t1, "", 0, &s) == 0 && s.n_ids == 2, "empty caption is <start> <end>");
	cap_buf out = { 0 };
	uint32_t ids[] = { 1, 0, 4, 8, 3, 2, 5, 5 };
	CHECK(cap_tokenizer_decode(t1, ids, 8, &out) == 0 && strcmp(out.data, "a dog <unk>") == 0,
	      "decode skips <start>/<pad>, shows <unk>, stops at <end> (%s)", out.data);
	uint32_t badid[] = { 1, 12 };
	cap_buf_reset(&out);
	CHECK(cap_tokenizer_decode(t1, badid, 2, &out) < 0 && strstr(cap_errmsg(), "outside the vocabulary"),
	      "decode refuses an id outside the vocabulary");

	/* What cap refuses to read. */
	static const struct { const char *from, *to, *why; } edits[] = {
		{ "\"type\": \"Lowercase\"", "\"type\": \"NFD\"", "normalizer: NFD is not supported" },
		{ "\"normalizer\": {\n    \"type\": \"Lowercase\"\n  }", "\"normalizer\": null", "normalizer: null" },
		{ "\"type\": \"WordLevel\"", "\"type\": \"BPE\"", "model: type BPE" },
		{ "\"padding\": null", "\"padding\": {}", "padding: must be null" },
		{ "\"Regex\": \"[^", "\"Regex\": \"[^x", "Split pattern" },
		{ "\"behavior\": \"Removed\"", "\"behavior\": \"Isolated\"", "behavior Removed" },
		{ "\"zebra\": 11", "\"zebra\": 12", "not an integer in 0..11" },
		{ "\"zebra\": 11", "\"zebra\": 10", "id 10 is used twice" },
		{ "\"<unk>\": 3", "\"<UNK>\": 3", "id 3 must be <unk>" },
		{ "\"unk_token\": \"<unk>\"", "\"unk_token\": \"[UNK]\"", "unk_token" },
		{ "\"id\": \"<end>\",\n          \"type_id\": 0", "\"id\": \"A\",\n          \"type_id\": 0", "post_processor" },
		{ "\"normalized\": false", "\"normalized\": true", "normalized false" },
		{ "\"content\": \"<pad>\"", "\"content\": \"[PAD]\"", "added_tokens[0]" },
		{ "\"model\"", "\"modell\"", "modell: not a key of tokenizer.json" },
		{ "{\n  \"version\"", "[{\n  \"version\"", "line 1" },
	};
	for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
		const char *at = strstr(j1, edits[i].from);
		if (!at) { CHECK(0, "edit %zu applies", i); continue; }
		cap_buf e = { 0 };
		cap_buf_add(&e, j1, (size_t)(at - j1));
		cap_buf_adds(&e, edits[i].to);
		cap_buf_adds(&e, at + strlen(edits[i].from));
		cap_tokenizer *x = cap_tokenizer_parse(e.data, e.len);
		CHECK(!x && strstr(cap_errmsg(), edits[i].why), "refused: %s (%s)", edits[i].why, cap_errmsg());
		cap_tokenizer_free(x);
		cap_buf_free(&e);
	}
	CHECK(!cap_tokenizer_load("/nonexistent/tok.json") && strstr(cap_errmsg(), "/nonexistent/tok.json: No such file"),
	      "a missing tokenizer.json is named (%s)", cap_errmsg());

	cap_pretok_free(&s);
	cap_buf_free(&out);
	cap_buf_free(&compact);
	cap_tokenizer_free(t1); cap_tokenizer_free(t2); cap_tokenizer_free(t3); cap_tokenizer_free(r);
	cap_tokenizer_free(rc); cap_tokenizer_free(kp); cap_tokenizer_free(rk);
	cap_wordmap_free(m1); cap_wordmap_free(m2);
}

static void test_wordmap(void)
{
	cap_wordmap *m = cap_wordmap_new();
	char k[32];
	for (uint32_t i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof k, "w%u", i * 7919u);
		*cap_wordmap_put(m, k, (size_t)n, NULL) = i;
	}
	int ok = cap_wordmap_size(m) == 100000;
	for (uint32_t i = 0; ok && i < 100000; i++) {
		int n = snprintf(k, sizeof k, "w%u", i * 7919u);
		const uint32_t *v = cap_wordmap_get(m, k, (size_t)n);
		ok = v && *v == i && strcmp(cap_wordmap_key(m, i, NULL), k) == 0;
	}
	CHECK(ok && !cap_wordmap_get(m, "w1", 2) && !cap_wordmap_get(m, "", 0), "word map: 100000 keys stored and found");
	int added;
	cap_wordmap_put(m, "", 0, &added);
	CHECK(added && cap_wordmap_get(m, "", 0), "word map: the empty key");
	cap_wordmap_free(m);
}

/* ---- caption formats ---- */

static cap_buf got;
static int collect(void *ctx, const cap_caption *c)
{
	(void)ctx;
	cap_buf_printf(&got, "%s#%u@%llu:%.*s\n", c->image, c->n, (unsigned long long)c->line, (int)c->text_len, c->text);
	return 0;
}

/* Reads s as format f ("auto" detects) and returns the collected captions or "ERROR: msg". */
static const char *read_as(const char *s, const char *f, cap_caption_source *keep)
{
	cap_caption_source src = { 0 };
	cap_caption_source *p = keep ? keep : &src;
	cap_caption_format_parse(f, &p->format);
	cap_buf_reset(&got);
	if (cap_caption_read(p, "in.txt", s, strlen(s), collect, NULL) != 0) {
		cap_buf_reset(&got);
		cap_buf_printf(&got, "ERROR: %s", cap_errmsg());
	}
	if (!keep) cap_caption_source_free(&src);
	cap_buf_add(&got, "", 0);
	return got.data;
}

#define READS(s, f, want) do { const char *g_ = read_as(s, f, NULL); \
	CHECK(strcmp(g_, want) == 0, "%s: %s", f, #s); if (strcmp(g_, want)) printf("#   got: %s\n", g_); } while (0)
#define FAILS(s, f, why) do { const char *g_ = read_as(s, f, NULL); \
	CHECK(strncmp(g_, "ERROR: ", 7) == 0 && strstr(g_, why), "%s refused: %s (%s)", f, why, g_); } while (0)

static void test_formats(void)
{
	/* Flickr8k, with the defective image name of the real file. */
	cap_caption_source src = { 0 };
	const char *fl = "1000_a.jpg#0\tA dog .\n1000_a.jpg#1\tTwo dogs\r\n\n2258277193_586949ec62.jpg.1#0\tpeople\n"
	                 "2258277193_586949ec62.jpg.1#1\tmore\n9_b.jpg#4\tlast";
	CHECK(strcmp(read_as(fl, "auto", &src), "1000_a.jpg#0@1:A dog .\n1000_a.jpg#1@2:Two dogs\n9_b.jpg#4@6:last\n") == 0 &&
	      src.skipped == 2 && src.skipped_images == 1 && src.skipped_line == 4 &&
	      strcmp(src.skipped_image, "2258277193_586949ec62.jpg.1") == 0,
	      "flickr8k: #N numbering, CRLF, blank line, 'IMAGE.jpg.1' lines skipped and counted");
	cap_caption_source_free(&src);
	FAILS("a.jpg#0\tok\na.jpg caption\n", "flickr8k", "in.txt: line 2: expected IMAGE#N<TAB>caption, found no tab");
	FAILS("a.jpg#0\tok\na.jpg#x\tbad\n", "flickr8k", "in.txt: line 2: expected IMAGE#N<TAB>caption, \"a.jpg#x\" does not end in #N");
	FAILS("a.jpg#0\tok\n\nb.jpg#1\tbad \xe9t\xe9\n", "flickr8k", "in.txt: line 3: invalid UTF-8 at byte 13 of the line");
	FAILS("#0\tno image\n", "flickr8k", "line 1: expected IMAGE#N");

	/* Kaggle captions.txt (RFC 4180). */
	READS("image,caption\r\na.jpg,A dog .\r\na.jpg,\"A dog, a cat\"\r\nb.jpg,\"He said \"\"hi\"\"\"\r\n"
	      "b.jpg,\"two\nlines\"\nc.jpg,\n", "auto",
	      "a.jpg#0@2:A dog .\na.jpg#1@3:A dog, a cat\nb.jpg#0@4:He said \"hi\"\nb.jpg#1@5:two\nlines\nc.jpg#0@7:\n");
	READS("\xef\xbb\xbfimage,caption\na.jpg,x", "auto", "a.jpg#0@2:x\n");
	READS("a.jpg,no header\n", "csv", "a.jpg#0@1:no header\n");
	FAILS("image,caption\na.jpg,a, b\n", "auto", "in.txt: line 2: expected 2 fields (image,caption), found 3");
	FAILS("image,caption\na.jpg,ok\nb.jpg,\"open\nstill open\n", "auto", "in.txt: line 3: quoted field not closed");
	FAILS("image,caption\na.jpg,\"q\"x\n", "auto", "line 2: unexpected character after a closing quote");
	FAILS("image,caption\n,empty image\n", "auto", "line 2: empty image name");
	FAILS("image,caption\na.jpg,\"\xc3\"\n", "auto", "line 2: invalid UTF-8 at byte 1 of the caption");

	/* COCO and Karpathy JSON. */
	const char *coco = "{\"info\": {}, \"images\": [{\"id\": 7, \"file_name\": \"COCO_7.jpg\"}, "
	                   "{\"id\": 9, \"file_name\": \"COCO_9.jpg\"}], \"annotations\": [{\"image_id\": 9, \"id\": 1, "
	                   "\"caption\": \"A cat.\"}, {\"image_id\": 7, \"caption\": \"A dog\\n\"}, "
	                   "{\"image_id\": 9, \"caption\": \"Another cat\"}]}";
	READS(coco, "auto", "COCO_9.jpg#0@0:A cat.\nCOCO_7.jpg#0@0:A dog\n\nCOCO_9.jpg#1@0:Another cat\n");
	FAILS("{\"images\": [{\"id\": 1, \"file_name\": \"x.jpg\"}], \"annotations\": [{\"image_id\": 2, \"caption\": \"c\"}]}",
	      "auto", "in.txt: annotations[0]: image_id 2 is not in \"images\"");
	FAILS("{\"images\": [], \"annotations\": [{\"image_id\": 2, \"caption\": \"c\",}]}", "coco", "in.txt: line 1, column");
	const char *karp = "{\"dataset\": \"flickr8k\", \"images\": [{\"filename\": \"1.jpg\", \"split\": \"train\", "
	                   "\"sentences\": [{\"raw\": \"A dog runs.\", \"tokens\": [\"a\", \"dog\", \"runs\"]}, "
	                   "{\"raw\": \"Dog!\", \"tokens\": [\"dog\"]}]}, {\"filename\": \"2.jpg\", \"sentences\": []}]}";
	READS(karp, "auto", "1.jpg#0@0:A dog runs.\n1.jpg#1@0:Dog!\n");
	FAILS("{\"images\": [{\"filename\": \"1.jpg\", \"sentences\": [{\"tokens\": []}]}]}", "karpathy",
	      "images[0].sentences[0].raw: missing");

	/* Plain TSV; numbering by appearance across files of one source. */
	cap_caption_source two = { 0 };
	read_as("a.png\tfirst\nb.png\tx\ty\n", "auto", &two);
	CHECK(strcmp(read_as("a.png\tsecond\n", "tsv", &two), "a.png#1@1:second\n") == 0,
	      "tsv: n continues per image across files");
	cap_caption_source_free(&two);
	READS("a.png\tx\ty\n", "tsv", "a.png#0@1:x\ty\n");
	FAILS("a.png\tok\nno tab here\n", "tsv", "in.txt: line 2: expected image<TAB>caption, found no tab");

	/* Detection and its failures. */
	CHECK(cap_caption_detect("x.jpg#0\tc", 9) == CAP_CAPTIONS_FLICKR8K && cap_caption_detect("x.jpg\tc", 7) == CAP_CAPTIONS_TSV &&
	      cap_caption_detect("image,caption\n", 14) == CAP_CAPTIONS_CSV && cap_caption_detect(coco, strlen(coco)) == CAP_CAPTIONS_COCO &&
	      cap_caption_detect(karp, strlen(karp)) == CAP_CAPTIONS_KARPATHY, "formats detected");
	FAILS("just some text\n", "auto", "in.txt: line 1: unknown format");
	FAILS("{\"foo\": 1}", "auto", "unknown format");
	FAILS(" \n\n", "auto", "in.txt: empty input");
	cap_caption_format f;
	CHECK(cap_caption_format_parse("xml", &f) < 0 && cap_caption_format_parse("karpathy", &f) == 0 &&
	      f == CAP_CAPTIONS_KARPATHY && strcmp(cap_caption_format_name(CAP_CAPTIONS_CSV), "csv") == 0, "format names");
}


/* Hostile input: every truncation and random byte changes of each format and of a
 * tokenizer.json must give a result or an error, never a crash (run under ASan by
 * `make check SANITIZE=1`). */
static int count_only(void *ctx, const cap_caption *c) { (*(size_t *)ctx)++; (void)c; return 0; }

static void test_hostile(void)
{
	static const char *const samples[] = {
		"1000_a.jpg#0\tA dog .\n1000_a.jpg#1\tTwo \xc3\xa9 dogs\r\n2258277193_586949ec62.jpg.1#0\tx\n",
		"image,caption\r\na.jpg,\"A dog, a \"\"cat\"\"\"\r\nb.jpg,\"two\nlines\"\nc.jpg,\n",
		"{\"images\": [{\"id\": 7, \"file_name\": \"a.jpg\"}], \"annotations\": [{\"image_id\": 7, \"caption\": \"A cat\"}]}",
		"{\"images\": [{\"filename\": \"1.jpg\", \"sentences\": [{\"raw\": \"A dog.\"}]}]}",
		"a.png\tfirst\nb.png\tx\ty\n",
	};
	uint64_t rng = 88172645463325252ull;
	size_t calls = 0;
	for (size_t s = 0; s < sizeof samples / sizeof *samples; s++) {
		size_t n = strlen(samples[s]);
		char *buf = malloc(n + 1);
		for (int f = 0; f <= CAP_CAPTIONS_TSV; f++) {
			for (size_t cut = 0; cut <= n; cut++) {  /* every truncation, into an exact-size buffer */
				char *exact = malloc(cut ? cut : 1);
				memcpy(exact, samples[s], cut);
				cap_caption_source src = { .format = (cap_caption_format)f };
				cap_caption_read(&src, "t", exact, cut, count_only, &calls);
				cap_caption_source_free(&src);
				free(exact);
			}
			for (int k = 0; k < 300; k++) {  /* 1 to 3 random bytes replaced */
				memcpy(buf, samples[s], n);
				for (int j = 0; j < 1 + k % 3; j++) {
					rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
					buf[rng % n] = (char)(rng >> 32);
				}
				cap_caption_source src = { .format = (cap_caption_format)f };
				cap_caption_read(&src, "t", buf, n, count_only, &calls);
				cap_caption_source_free(&src);
			}
		}
		free(buf);
	}
	CHECK(1, "caption readers survive every truncation and 9000 random corruptions (%zu captions read)", calls);

	static const char *const w[] = { "dog", "a", "\xc3\xa9t\xc3\xa9" };
	static const uint32_t c[] = { 3, 2, 1 };
	cap_wordmap *m = counts_of(w, c, 3, 0);
	cap_tokenizer *t = cap_tokenizer_build(m, 1, 0);
	size_t n, parsed = 0;
	const char *j = cap_tokenizer_json(t, &n);
	char *buf = malloc(n);
	for (size_t cut = 0; cut < n; cut += 3) {
		char *exact = malloc(cut ? cut : 1);
		memcpy(exact, j, cut);
		cap_tokenizer *x = cap_tokenizer_parse(exact, cut);
		parsed += x != NULL;
		cap_tokenizer_free(x);
		free(exact);
	}
	for (int k = 0; k < 3000; k++) {
		memcpy(buf, j, n);
		rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
		buf[rng % n] = (char)(rng >> 32);
		cap_tokenizer *x = cap_tokenizer_parse(buf, n);
		if (x) {  /* whatever was accepted must encode and decode */
			cap_pretok s = { 0 };
			cap_buf out = { 0 };
			if (cap_tokenizer_encode(x, "A dog <unk> \xc3\xa9t\xc3\xa9!", 18, &s) == 0)
				cap_tokenizer_decode(x, s.ids, s.n_ids, &out);
			cap_pretok_free(&s);
			cap_buf_free(&out);
			parsed++;
		}
		cap_tokenizer_free(x);
	}
	CHECK(1, "tokenizer.json reader survives truncations and 3000 corruptions (%zu accepted)", parsed);
	free(buf);
	cap_tokenizer_free(t);
	cap_wordmap_free(m);
}

int main(void)
{
	test_utf8();
	test_unicode();
	test_pretokenize();
	test_vocab();
	test_wordmap();
	test_formats();
	test_hostile();
	cap_buf_free(&got);
	return check_exit();
}
