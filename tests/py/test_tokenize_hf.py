"""cap-tokenize against Hugging Face tokenizers (npm `tokenizers`, the Node binding of the Rust
library, run by hf_tokenizers.js): Tokenizer.fromFile(cap's tokenizer.json) encodes the real
Flickr8k captions, tricky Unicode and punctuation, and every Unicode code point to exactly cap's
ids; tokenizer.json files saved by that library are read by cap-tokenize and give the same
stream. Python's msgpack reads the captions stream; a stream Python writes is decoded."""
import hashlib, json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
import caplib as C
import msgpack

hf = C.hf_oracle("Hugging Face tokenizers oracle")

d = C.tmpdir()
TOK = C.tool("cap-tokenize")

def hf_encode(tok_json, texts):
    return hf("encode", tok_json, input=json.dumps(texts).encode())

def node(*args):
    hf(*args, parse=False)

def read_stream(path):
    with open(path, "rb") as f:
        u = msgpack.Unpacker(f, raw=False)
        header = next(u)
        return header, list(u)

def write_tsv(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write("t%d.jpg\t%s\n" % (i, t))

def compare(name, tok_json, stream):
    """HF ids for every record's text equal the record's ids."""
    _, recs = read_stream(stream)
    want = hf_encode(tok_json, [r["text"] for r in recs])
    bad = [(r["text"], r["ids"], w) for r, w in zip(recs, want) if r["ids"] != w]
    C.check(len(recs) > 0 and not bad, "%s: %d captions, HF ids == cap ids" % (name, len(recs)),
            ("%d differ, first: %r" % (len(bad), bad[:1]))[:600])
    return recs

# ---- the real captions
flickr = C.data("flickr8k", "Flickr8k.token.txt")
if flickr:
    train = C.data("flickr8k", "Flickr_8k.trainImages.txt")
    tj = os.path.join(d, "tok.json")
    C.run([TOK, "vocab", "--split", train, "-o", tj, flickr])
    full = os.path.join(d, "full.mp")
    C.run([TOK, "encode", "--tokenizer", tj, "-o", full, flickr])
    h, recs = read_stream(full)
    tok_text = open(tj, encoding="utf-8").read()
    vocab = json.loads(tok_text)["model"]["vocab"]
    C.check(h.get("format") == "cap" and h.get("version") == 1 and h.get("kind") == "captions"
            and h.get("vocab_size") == len(vocab) and h.get("tokenizer_json") == tok_text
            and h.get("tokenizer") == hashlib.sha256(tok_text.encode()).hexdigest()
            and h.get("source") == "Flickr8k.token.txt",
            "python msgpack reads the header: kind, vocab_size, tokenizer_json, sha256 digest, source")
    C.check(len(recs) == 40455 and all(set(r) == {"image", "n", "text", "ids"} for r in recs)
            and recs[0]["image"] == "1000268201_693b08cb0e.jpg" and recs[0]["n"] == 0
            and all(isinstance(i, int) for r in recs for i in r["ids"]),
            "python msgpack reads 40455 records {image, n, text, ids}")
    compare("Flickr8k token file, train vocabulary", tj, full)

    # Decode: cap's text is HF's decode (special tokens skipped) where no word is <unk>, which
    # cap prints and HF leaves out.
    known = [r for r in recs if 3 not in r["ids"]][:5000]
    try:
        hf_text = hf("decode", tj, input=json.dumps([r["ids"] for r in known]).encode())
    except RuntimeError:
        hf_text = []
    out = C.run([TOK, "decode", "--tokenizer", tj, full]).stdout.decode().splitlines()
    cap_text = [l.split("\t", 1)[1] for l in out]
    cap_known = [t for t, r in zip(cap_text, recs) if 3 not in r["ids"]][:5000]
    C.check(len(known) == 5000 and hf_text == cap_known,
            "decode: cap's text equals HF decode(ids, skip_special_tokens) for 5000 captions")

    # A file saved by the library itself (its own writer) reads to the same tokenizer.
    resaved = os.path.join(d, "resaved.json")
    node("resave", tj, resaved)
    C.check(open(resaved, encoding="utf-8").read() != tok_text, "HF's writer lays the file out differently")
    full2 = os.path.join(d, "full2.mp")
    C.run([TOK, "encode", "--tokenizer", resaved, "-o", full2, flickr])
    C.check(open(full2, "rb").read() == open(full, "rb").read(),
            "the HF-resaved tokenizer.json gives a byte-identical stream (same digest, same ids)")

    # A tokenizer built through the library's API (WordLevel + Lowercase + Whitespace, so
    # punctuation kept) equals cap's --keep-punct vocabulary.
    kp = os.path.join(d, "kp.json")
    C.run([TOK, "vocab", "--keep-punct", "--split", train, "-o", kp, flickr])
    built = os.path.join(d, "built.json")
    node("build", kp, built)
    s1, s2 = os.path.join(d, "kp.mp"), os.path.join(d, "built.mp")
    C.run([TOK, "encode", "--tokenizer", kp, "-o", s1, flickr])
    C.run([TOK, "encode", "--tokenizer", built, "-o", s2, flickr])
    C.check(open(s1, "rb").read() == open(s2, "rb").read(),
            "a tokenizer built and saved by HF's API gives the same stream as cap's --keep-punct one")
    compare("Flickr8k token file, --keep-punct vocabulary", built, s2)

    # Decode: a captions stream written by Python (not by cap) decodes with the words.
    py = os.path.join(d, "py.mp")
    inv = {i: w for w, i in vocab.items()}
    with open(py, "wb") as f:
        f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "captions", "vocab_size": len(vocab),
                               "tokenizer": h["tokenizer"], "tokenizer_json": tok_text}))
        for r in recs[:500]:
            f.write(msgpack.packb({"image": r["image"], "n": r["n"], "ids": r["ids"], "extra": [1, 2]}))
    out = C.run([TOK, "decode", py]).stdout.decode().splitlines()
    want = ["%s\t%s" % (r["image"], " ".join(inv[i] for i in r["ids"][1:-1])) for r in recs[:500]]
    C.check(out == want, "decode of a Python-written stream prints image<TAB>words", repr(out[:1]) + repr(want[:1]))
else:
    C.skip("Flickr8k captions against HF: no $CAP_DATA/flickr8k")

# ---- tricky text: Unicode and punctuation, with a vocabulary of every word in it
tricky = [
    "A dog's ball.", "Hello,world!!  ok?!", "", "   ", "...", "dog--sled", "snake_case x2 3.5 1,000",
    "ÉCOLE Ærø Øresund ŒUVRE", "İstanbul İİ", "ΟΔΟΣ ΣΑΣ Σ", "x\u200dy a\u200cb", "½ ² ³ ⅓ Ⅻ ⅻ", "Ⓐ ⓑ 🅰",
    "a\u00a0b\u3000c\u2028d\u0085e\u000bf", "café’s “quoted” «guillemets» ‹x›", "dog🐕! 🐕dog 👍🏽",
    "a<start>b <end> <pad><unk>", "<START> <star <end", "x<end>.y", "ǅungla ǈ ǋ", "ẞ ß straße",
    "ﬁ ﬂ ﬀ", "K Ω Å", "Ａｂｃ　ＸＹＺ", "日本語の文 中文，句子。", "한국어 문장!", "עברית, ירושלים",
    "العربية ٣٤٥ ۶", "हिन्दी भाषा", "ไทย ภาษา", "e\u0301 n\u0303 a\u030a", "Ⅷ ⅷ ↈ", "𐐀𐐨 𞤀𞤢",
    "tab\there", "back\\slash \"quote\"", "‿tie ⁀ ﹏", "\u0130\u0307", "\ufeffbom", "\u00ad soft\u00adhyphen",
    "Ⅰ ＿ ﹍ _ __ ___", "Æ" * 50 + "!" * 20, "can't won't it's", "a/b\\c|d", "#1 @home $5 %x ^y &z *w",
]
for mode, extra in (("default", []), ("--keep-punct", ["--keep-punct"])):
    src = os.path.join(d, "tricky%s.tsv" % mode)
    write_tsv(src, tricky)
    tj = os.path.join(d, "tricky%s.json" % mode)
    C.run([TOK, "vocab", "--min-count", "1", "-o", tj] + extra + [src])
    st = os.path.join(d, "tricky%s.mp" % mode)
    C.run([TOK, "encode", "--tokenizer", tj, "-o", st, src])
    compare("tricky Unicode and punctuation (%s)" % mode, tj, st)

# ---- every code point (but NUL, LF, CR, which the line format cannot carry) uppercased inside a
# word, with a vocabulary of every resulting word: any difference in lowercasing or in what joins
# a word shows as another id. With --keep-punct, each code point of the first planes' symbol
# blocks (where all the white space is) alone, so that white space and punctuation must agree.
def all_cps(name, cps, fmt, per_line, extra):
    lines = [" ".join(fmt % chr(c) for c in cps[k:k + per_line]) for k in range(0, len(cps), per_line)]
    src = os.path.join(d, name + ".tsv")
    write_tsv(src, lines)
    tj = os.path.join(d, name + ".json")
    C.run([TOK, "vocab", "--min-count", "1", "-o", tj] + extra + [src])
    st = os.path.join(d, name + ".mp")
    C.run([TOK, "encode", "--tokenizer", tj, "-o", st, src])
    return tj, st

cps = [c for c in range(1, 0x110000) if not (0xD800 <= c <= 0xDFFF) and c not in (10, 13)]
tj, st = all_cps("all", cps, "Q%sZ", 2048, [])
compare("all %d code points, uppercase in a word" % len(cps), tj, st)
few = [c for c in cps if c < 0x3400 or 0xFE00 <= c <= 0xFFFF]
tj, st = all_cps("alone", few, "%s", 2048, ["--keep-punct"])
compare("%d code points alone, --keep-punct" % len(few), tj, st)

C.finish()
