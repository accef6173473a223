"""tokenizer.json leniency, case by case against Hugging Face tokenizers (npm `tokenizers`, run
by hf_tokenizers.js): each case changes one thing in a tokenizer.json cap wrote. Where the
library refuses the file, cap refuses it too, with an error naming the key. Where the library
accepts it, cap either accepts it and gives the library's ids, or refuses it with the reason
(cap implements one tokenizer pipeline; a file meaning something else is refused, never
misread). The library's own verdict is checked too, so a change of the oracle shows here."""
import copy, json, os, sys
sys.path.insert(0, os.path.dirname(__file__))
import caplib as C
import msgpack

hf_run = C.hf_oracle("tokenizer.json leniency")

d = C.tmpdir()
TOK = C.tool("cap-tokenize")
caps = os.path.join(d, "caps.txt")
with open(caps, "w") as f:
    f.write("a.jpg#0\tA dog runs on the grass .\nb.jpg#0\tA cat sits , the dog runs !\n")
base_path = os.path.join(d, "tok.json")
C.run([TOK, "vocab", "--min-count", "1", "-o", base_path, caps])
BASE = json.load(open(base_path))
TEXTS = ["A dog runs on the grass .", "the <start> cat <end> sits", "Zebra dog!", ""]

def pp(t): return t["post_processor"]
def split(t): return t["pre_tokenizer"]["pretokenizers"][0]
def renamed(obj, old, new): obj[new] = obj.pop(old)

HF_ERR, OK = "error", "ok"
# name, change (of the parsed file, or of its text when it takes a str), HF's verdict,
# cap's: OK or a substring of its message (the key it names).
CASES = [
    ("unchanged", lambda t: None, OK, OK),
    # top level
    ("version 2.0", lambda t: t.update(version="2.0"), HF_ERR, "version: unknown tokenizer version '2.0'"),
    ("version 1.00", lambda t: t.update(version="1.00"), HF_ERR, "version: unknown tokenizer version"),
    ("version a number", lambda t: t.update(version=1.0), HF_ERR, "version: must be the string"),
    ("version null", lambda t: t.update(version=None), HF_ERR, "version: must be the string"),
    ("version absent", lambda t: t.pop("version"), OK, OK),
    ("an unknown top-level key", lambda t: t.update(extra=1), HF_ERR, "extra: not a key of tokenizer.json"),
    ("model renamed modle", lambda t: renamed(t, "model", "modle"), HF_ERR, "modle: not a key"),
    ("added_tokens renamed", lambda t: renamed(t, "added_tokens", "added_token"), HF_ERR, "added_token: not a key"),
    ("normalizer renamed", lambda t: renamed(t, "normalizer", "normaliser"), HF_ERR, "normaliser: not a key"),
    ("pre_tokenizer renamed", lambda t: renamed(t, "pre_tokenizer", "pretokenizer"), HF_ERR, "pretokenizer: not a key"),
    ("post_processor renamed", lambda t: renamed(t, "post_processor", "postprocessor"), HF_ERR, "postprocessor: not a key"),
    ("truncation absent", lambda t: t.pop("truncation"), OK, OK),
    ("padding absent", lambda t: t.pop("padding"), OK, OK),
    ("decoder absent", lambda t: t.pop("decoder"), OK, OK),
    ("truncation an object", lambda t: t.update(truncation={"x": 1}), HF_ERR, "truncation:"),
    ("padding an object", lambda t: t.update(padding={"x": 1}), HF_ERR, "padding:"),
    ("decoder of no known type", lambda t: t.update(decoder={"type": "Nope"}), HF_ERR, "decoder:"),
    ("decoder WordPiece (cap joins words with spaces)",
     lambda t: t.update(decoder={"type": "WordPiece", "prefix": "##", "cleanup": True}), OK, "decoder: must be null"),
    ("top level an array", lambda s: s and "[]", HF_ERR, "the top level is not an object"),
    ("trailing characters", lambda s: s + "xyz", HF_ERR, "trailing characters"),
    ("a duplicate top-level key (cap's JSON reader refuses duplicates)",
     lambda s: s.replace('"version": "1.0",', '"version": "1.0",\n  "version": "1.0",'), OK, 'duplicate key "version"'),
    # added_tokens
    ("added token without content", lambda t: t["added_tokens"][0].pop("content"), HF_ERR, "added_tokens[0]: field 'content'"),
    ("added token content a number", lambda t: t["added_tokens"][0].update(content=5), HF_ERR, "added_tokens[0]: field 'content'"),
    ("added token without id", lambda t: t["added_tokens"][0].pop("id"), HF_ERR, "added_tokens[0]: field 'id'"),
    ("added token id a string", lambda t: t["added_tokens"][0].update(id="0"), HF_ERR, "added_tokens[0]: field 'id'"),
    ("added token without single_word", lambda t: t["added_tokens"][0].pop("single_word"), HF_ERR, "added_tokens[0]: field 'single_word'"),
    ("added token without lstrip", lambda t: t["added_tokens"][1].pop("lstrip"), HF_ERR, "added_tokens[1]: field 'lstrip'"),
    ("added token without rstrip", lambda t: t["added_tokens"][2].pop("rstrip"), HF_ERR, "added_tokens[2]: field 'rstrip'"),
    ("added token without normalized", lambda t: t["added_tokens"][3].pop("normalized"), HF_ERR, "added_tokens[3]: field 'normalized'"),
    ("added token without special", lambda t: t["added_tokens"][0].pop("special"), HF_ERR, "added_tokens[0]: field 'special'"),
    ("added token rstrip a string", lambda t: t["added_tokens"][0].update(rstrip="false"), HF_ERR, "added_tokens[0]: 'rstrip'"),
    ("added token with an unknown key", lambda t: t["added_tokens"][0].update(extra=1), OK, OK),
    ("added token special false", lambda t: t["added_tokens"][0].update(special=False), OK, OK),
    ("added token given twice", lambda t: t["added_tokens"].append(copy.deepcopy(t["added_tokens"][0])), OK, OK),
    ("added_tokens null", lambda t: t.update(added_tokens=None), HF_ERR, "added_tokens: missing"),
    ("added_tokens absent (the specials would be normalised and split)", lambda t: t.pop("added_tokens"), OK, "added_tokens: missing"),
    # normalizer
    ("normalizer type lowercase", lambda t: t["normalizer"].update(type="lowercase"), HF_ERR, "normalizer:"),
    ("normalizer with an unknown key", lambda t: t["normalizer"].update(extra=1), OK, OK),
    ("normalizer null (no lowercasing)", lambda t: t.update(normalizer=None), OK, "normalizer: null is not supported"),
    # pre_tokenizer
    ("Split without invert", lambda t: split(t).pop("invert"), HF_ERR, "Split: field 'invert' is missing"),
    ("Split invert a string", lambda t: split(t).update(invert="false"), HF_ERR, "pre_tokenizer: Split"),
    ("Split behavior lowercase", lambda t: split(t).update(behavior="removed"), HF_ERR, "pre_tokenizer: Split must have behavior Removed"),
    ("Split with an unknown key", lambda t: split(t).update(extra=1), OK, OK),
    ("Split on another pattern", lambda t: split(t).update(pattern={"String": "x"}), OK, "Split pattern is not cap's"),
    ("Sequence key renamed", lambda t: renamed(t["pre_tokenizer"], "pretokenizers", "pre_tokenizers"), HF_ERR, "field 'pretokenizers'"),
    ("pre-tokenizer of no known type", lambda t: t["pre_tokenizer"]["pretokenizers"][1].update(type="Whitespaces"), HF_ERR, "pre_tokenizer:"),
    ("Whitespace alone (punctuation kept)", lambda t: t.update(pre_tokenizer={"type": "Whitespace"}), OK, OK),
    # post_processor
    ("template: a special token not in special_tokens",
     lambda t: pp(t)["single"][2]["SpecialToken"].update(id="<fin>"), OK, "TemplateProcessing \"<start> $A <end>\""),
    ("special_tokens: <end> absent", lambda t: pp(t)["special_tokens"].pop("<end>"), OK, 'special_tokens: "<end>" must have ids [2]'),
    ("special_tokens: <end> with another id", lambda t: pp(t)["special_tokens"]["<end>"].update(ids=[5]), OK, 'special_tokens: "<end>" must have ids [2]'),
    ("special_tokens: <end> without tokens", lambda t: pp(t)["special_tokens"]["<end>"].pop("tokens"), HF_ERR, 'special_tokens: "<end>"'),
    ("special_tokens: <end> without id", lambda t: pp(t)["special_tokens"]["<end>"].pop("id"), HF_ERR, 'special_tokens: "<end>"'),
    ("special_tokens absent", lambda t: pp(t).pop("special_tokens"), HF_ERR, "field 'special_tokens'"),
    ("special_tokens: one more entry", lambda t: pp(t)["special_tokens"].update({"<pad>": {"id": "<pad>", "ids": [0], "tokens": ["<pad>"]}}), OK, OK),
    ("template without pair", lambda t: pp(t).pop("pair"), HF_ERR, "field 'pair'"),
    ("template without single", lambda t: pp(t).pop("single"), HF_ERR, "field 'single'"),
    ("template pair empty (cap encodes single sequences)", lambda t: pp(t).update(pair=[]), OK, OK),
    ("template: a piece of no known kind", lambda t: pp(t)["pair"].append({"Foo": {}}), HF_ERR, "pair[4]"),
    ("template: a piece without type_id", lambda t: pp(t)["single"][0]["SpecialToken"].pop("type_id"), HF_ERR, "single[0]: SpecialToken: field 'type_id'"),
    ("template: type_id a string", lambda t: pp(t)["single"][0]["SpecialToken"].update(type_id="0"), HF_ERR, "single[0]: SpecialToken: field 'type_id'"),
    ("template: sequence C", lambda t: pp(t)["single"][1]["Sequence"].update(id="C"), HF_ERR, "single[1]: Sequence: 'id'"),
    ("template: type_id 1", lambda t: pp(t)["single"][1]["Sequence"].update(type_id=1), OK, OK),
    ("template with an unknown key", lambda t: pp(t).update(extra=1), OK, OK),
    ("post_processor null (no <start>, <end>)", lambda t: t.update(post_processor=None), OK, "post_processor: cap needs"),
    # model
    ("model without type", lambda t: t["model"].pop("type"), OK, "model: field 'type' is missing"),
    ("model with an unknown key", lambda t: t["model"].update(extra=1), OK, OK),
    ("vocab renamed", lambda t: renamed(t["model"], "vocab", "vocabulary"), HF_ERR, "model: vocab: missing"),
    ("unk_token absent", lambda t: t["model"].pop("unk_token"), HF_ERR, "model: unk_token"),
    ("unk_token not in the vocabulary", lambda t: t["model"].update(unk_token="<oov>"), OK, "model: unk_token"),
    ("vocab id negative", lambda t: t["model"]["vocab"].update(zzz=-1), HF_ERR, 'model: vocab: the id of "zzz"'),
    ("vocab id fractional", lambda t: t["model"]["vocab"].update(zzz=9.5), HF_ERR, 'model: vocab: the id of "zzz"'),
    ("vocab id a string", lambda t: t["model"]["vocab"].update(zzz="9"), HF_ERR, 'model: vocab: the id of "zzz"'),
    ("vocab id used twice (ids must be 0..n-1)", lambda t: t["model"]["vocab"].update(zzz=5), OK, "model: vocab: id 5 is used twice"),
]

files, want = [], []
for i, (name, change, hf_want, cap_want) in enumerate(CASES):
    path = os.path.join(d, "case%02d.json" % i)
    try:
        text = change(open(base_path).read())   # changes of the text
        if not isinstance(text, str): raise TypeError
    except (AttributeError, TypeError):
        t = copy.deepcopy(BASE)
        change(t)
        text = json.dumps(t, indent=2)
    with open(path, "w") as f:
        f.write(text)
    files.append(path)

texts = os.path.join(d, "texts.json")
json.dump(TEXTS, open(texts, "w"))
def hf_load(texts, files):
    return hf_run("load", texts, *files)
# Verdicts first; ids only for the files cap should accept (the library panics, killing the
# process, when it encodes with some of the others, e.g. an unk_token not in the vocabulary).
hf = hf_load("-", files)
hf.update(hf_load(texts, [f for f, c in zip(files, CASES) if c[3] == OK and "error" not in hf[f]]))
tsv = os.path.join(d, "texts.tsv")
with open(tsv, "w") as f:
    for i, t in enumerate(TEXTS): f.write("t%d.jpg\t%s\n" % (i, t))

for (name, change, hf_want, cap_want), path in zip(CASES, files):
    h = hf[path]
    hf_got = HF_ERR if "error" in h else OK
    C.check(hf_got == hf_want, "oracle: Hugging Face tokenizers %s: %s" % ("refuses" if hf_want == HF_ERR else "accepts", name),
            h.get("error", "accepted")[:300])
    out = os.path.join(d, "out.mp")
    if os.path.exists(out): os.unlink(out)
    r = C.run([TOK, "encode", "--tokenizer", path, "-o", out, tsv], check_rc=False)
    err = r.stderr.decode(errors="replace")
    if cap_want == OK:
        ids = []
        if r.returncode == 0:
            with open(out, "rb") as f:
                ids = [rec["ids"] for rec in list(msgpack.Unpacker(f, raw=False))[1:]]
        C.check(r.returncode == 0 and ids == h.get("ids"), "cap accepts, with the library's ids: " + name,
                "exit %d %s; cap %s, HF %s" % (r.returncode, err.strip()[:200], ids, h.get("ids")))
    else:
        named = cap_want in err and os.path.basename(path) in err and err.count("\n") == 1
        C.check(r.returncode == 1 and named and not os.path.exists(out),
                "cap refuses (%s): %s" % ("as the library does" if hf_want == HF_ERR else "not its pipeline", name),
                "exit %d, want 1 and %r in: %s" % (r.returncode, cap_want, err.strip()[:300]))
C.finish()
