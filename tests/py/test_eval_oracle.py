"""cap-eval's metrics against oracles on random caption sets:
- BLEU-1..4 against nltk's corpus_bleu (Debian python3-nltk) within 1e-6 where every n-gram
  order has a match, and per-image BLEU against nltk's sentence_bleu likewise;
- CIDEr-D and ROUGE-L against the re-implementation below, written from the definitions in
  coco-caption's cider_scorer.py / rouge.py (Vedantam et al. 2015; Lin 2004, beta 1.2), in a
  different style (Counters, full LCS table) from the C code.
The scores come from tests/tools/cap-metrics-words (lib/eval/metrics.h on exact word lists) and,
when cap-eval is built, from cap-eval itself on a generated stream."""
import json, math, os, random, sys
from collections import Counter
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import *

try:
    from nltk.translate.bleu_score import corpus_bleu, sentence_bleu
except Exception as e:  # nltk is a declared test dependency; say so instead of passing
    notok("nltk importable", str(e)); finish()

def ngrams(ws, n):
    return Counter(tuple(ws[i:i + n]) for i in range(len(ws) - n + 1))

def cider_d(items):
    """items: list of (hyp, [refs]) as word lists."""
    N = len(items)
    df = Counter()
    for _, refs in items:
        df.update(set(g for r in refs for n in range(1, 5) for g in ngrams(r, n)))
    def vec(ws):
        v = [dict() for _ in range(4)]
        for n in range(1, 5):
            for g, tf in ngrams(ws, n).items():
                v[n - 1][g] = tf * (math.log(N) - math.log(max(1.0, df[g])))
        norms = [math.sqrt(sum(x * x for x in d.values())) for d in v]
        return v, norms, max(0, len(ws) - 1)  # coco's "length" counts bigrams
    out = []
    for hyp, refs in items:
        vh, nh, lh = vec(hyp)
        total = 0.0
        for r in refs:
            vr, nr, lr = vec(r)
            pen = math.exp(-((lh - lr) ** 2) / (2 * 6.0 ** 2))
            for k in range(4):
                s = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] and nr[k]:
                    s /= nh[k] * nr[k]
                total += s * pen
        out.append(total / 4 / len(refs) * 10)
    return sum(out) / len(out), out

def lcs(a, b):
    t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a)):
        for j in range(len(b)):
            t[i + 1][j + 1] = t[i][j] + 1 if a[i] == b[j] else max(t[i][j + 1], t[i + 1][j])
    return t[-1][-1]

def rouge_l(items, beta=1.2):
    out = []
    for hyp, refs in items:
        p = max((lcs(r, hyp) / len(hyp)) if hyp else 0.0 for r in refs)
        rc = max((lcs(r, hyp) / len(r)) if r else 0.0 for r in refs)
        out.append((1 + beta ** 2) * p * rc / (rc + beta ** 2 * p) if p and rc else 0.0)
    return sum(out) / len(out), out

def random_set(rng, n_images, vocab=12):
    words = ["w%d" % i for i in range(vocab)]
    items = []
    for i in range(n_images):
        refs = [[rng.choice(words) for _ in range(rng.randint(3, 12))] for _ in range(rng.randint(1, 5))]
        # hypothesis: a mutated copy of a reference, so that 3- and 4-grams match often
        hyp = list(rng.choice(refs))
        for _ in range(rng.randint(0, 4)):
            op = rng.random()
            if op < 0.4 and hyp: hyp[rng.randrange(len(hyp))] = rng.choice(words)
            elif op < 0.7: hyp.insert(rng.randint(0, len(hyp)), rng.choice(words))
            elif hyp: del hyp[rng.randrange(len(hyp))]
        # nltk counts max(1, #n-grams) as a sentence's n-gram total, so a hypothesis shorter
        # than 4 words adds a phantom 4-gram there; coco-caption (and cap) add 0. Keep >= 4.
        while len(hyp) < 4: hyp.append(rng.choice(words))
        items.append((hyp, refs))
    return items

def score_tool(items, extra=""):
    lines = []
    for i, (hyp, refs) in enumerate(items):
        lines.append("img%d\tH\t%s" % (i, " ".join(hyp)))
        for r in refs: lines.append("img%d\tR\t%s" % (i, " ".join(r)))
    p = run([tool("cap-metrics-words")], input=("\n".join(lines) + "\n" + extra).encode(), check_rc=False)
    if p.returncode != 0:
        return None, p.stderr.decode()
    out = [json.loads(l) for l in p.stdout.decode().splitlines()]
    return out[0], out[1:]

def orders_match(items):
    hyps = [h for h, _ in items]; refs = [r for _, r in items]
    for n in range(1, 5):
        if sum(min(c, max(ngrams(r, n)[g] for r in rs)) for h, rs in zip(hyps, refs)
               for g, c in ngrams(h, n).items()) == 0:
            return False
    return True

rng = random.Random(5)
W = [(1.0,), (0.5, 0.5), (1 / 3.0,) * 3, (0.25,) * 4]
for trial, n_images in enumerate([1, 3, 20, 200]):
    items = random_set(rng, n_images)
    corpus, per = score_tool(items)
    if corpus is None:
        notok("cap-metrics-words runs (%d images)" % n_images, per); continue
    if orders_match(items):
        want = [corpus_bleu([r for _, r in items], [h for h, _ in items], weights=W[k]) for k in range(4)]
        err = max(abs(a - b) for a, b in zip(corpus["bleu"], want))
        check(err < 1e-6, "corpus BLEU-1..4 equal nltk corpus_bleu, %d images (max diff %.2e)" % (n_images, err),
              "%s vs %s" % (corpus["bleu"], want))
    else:
        skip("corpus BLEU vs nltk, %d images: some order has no match" % n_images)
    # per image, where every order matches in that image
    worst, compared = 0.0, 0
    for (h, rs), p in zip(items, per):
        if orders_match([(h, rs)]):
            want = [sentence_bleu(rs, h, weights=W[k]) for k in range(4)]
            worst = max(worst, max(abs(a - b) for a, b in zip(p["bleu"], want))); compared += 1
    if compared:
        check(worst < 1e-6, "per-image BLEU equals nltk sentence_bleu on %d of %d images (max diff %.2e)" % (compared, n_images, worst))
    c, cper = cider_d(items)
    err = max([abs(c - corpus["cider"])] + [abs(a - b["cider"]) for a, b in zip(cper, per)])
    check(err < 1e-9 * max(1.0, c), "CIDEr-D equals the Python re-implementation, %d images (%.6f, diff %.1e)" % (n_images, corpus["cider"], err))
    r, rper = rouge_l(items)
    err = max([abs(r - corpus["rouge_l"])] + [abs(a - b["rouge_l"]) for a, b in zip(rper, per)])
    check(err < 1e-12, "ROUGE-L equals the Python re-implementation, %d images (%.6f, diff %.1e)" % (n_images, corpus["rouge_l"], err))

# nltk's brevity penalty also takes the closest reference length, the shorter on a tie:
# hyp of 4 words against references of 3 and 5 words (the longer would give BP exp(1 - 5/4)).
items = [(["a", "b", "c", "d"], [["a", "b", "c"], ["a", "b", "c", "d", "e"]]), (["x", "y", "z", "q"], [["x", "y", "z", "q"]])]
corpus, _ = score_tool(items)
want = [corpus_bleu([r for _, r in items], [h for h, _ in items], weights=W[k]) for k in range(4)]
check(max(abs(a - b) for a, b in zip(corpus["bleu"], want)) < 1e-6 and abs(corpus["bleu"][0] - 1) < 1e-6,
      "length tie: closest reference, the shorter one, as nltk (%s vs %s)" % (corpus["bleu"], want))

# Missing captions and missing references are counted; an empty set is an error.
items = random_set(rng, 5)
corpus, _ = score_tool(items, "extra\tH\tw1 w2\nlonely\tR\tw3 w4\n")
check(corpus and corpus["n"] == 5 and corpus["hyp_without_ref"] == 1 and corpus["ref_without_hyp"] == 1,
      "generated without reference and reference without caption are counted")
p = run([tool("cap-metrics-words")], input=b"a\tR\tw1\n", check_rc=False)
check(p.returncode == 1 and b"empty" in p.stderr, "no image with both: an error, not a score of 0")

# cap-eval end to end on real captions: the Flickr8k test split, caption #0 of each image as
# the "generated" one against captions #1..#4, text normalised by cap (lowercase, \w+ words,
# punctuation dropped) and here by Python's re (the same for these ASCII captions).
import re
tokens, split = data("flickr8k", "Flickr8k.token.txt"), data("flickr8k", "Flickr_8k.testImages.txt")
if not (tokens and split and os.path.exists(tool("cap-eval"))):
    skip("cap-eval on Flickr8k (data or cap-eval absent)"); finish()
T = tmpdir()
test = set(l.strip() for l in open(split) if l.strip())
hyps, refs = {}, {}
for line in open(tokens, encoding="utf-8"):
    key, text = line.rstrip("\n").split("\t", 1)
    img, n = key.rsplit("#", 1)
    if img not in test: continue
    (hyps.__setitem__(img, text) if n == "0" else refs.setdefault(img, []).append(text))
def words(t):
    return [w for w in re.findall(r"\w+|[^\w\s]+", t.lower()) if re.fullmatch(r"\w+", w)]
# nltk's phantom n-gram for hypotheses under 4 words (see above): leave those images out.
hyps = {i: t for i, t in hyps.items() if len(words(t)) >= 4}
with open(os.path.join(T, "gen.tsv"), "w") as f:
    for img in sorted(hyps): f.write("%s\t%s\n" % (img, hyps[img]))
with open(os.path.join(T, "refs.tsv"), "w") as f:
    for img in sorted(refs):
        for t in refs[img]: f.write("%s\t%s\n" % (img, t))
items = [(words(hyps[i]), [words(r) for r in refs[i]]) for i in sorted(hyps) if i in refs]
p = run([tool("cap-eval"), "--references", os.path.join(T, "refs.tsv"), "--json", "--per-image", os.path.join(T, "gen.tsv")])
got = json.loads(p.stdout)
want = [corpus_bleu([r for _, r in items], [h for h, _ in items], weights=W[k]) for k in range(4)]
err = max(abs(a - b) for a, b in zip(got["bleu"], want))
check(got["images"] == len(items) and len(items) > 900 and err < 1e-6,
      "cap-eval on Flickr8k test (caption #0 vs #1-4): BLEU-1..4 %s equal nltk (diff %.1e)" % (["%.4f" % x for x in got["bleu"]], err))
c, _ = cider_d(items)
r, _ = rouge_l(items)
check(abs(got["cider_d"] - c) < 1e-6 and abs(got["rouge_l"] - r) < 1e-6,
      "cap-eval on Flickr8k: CIDEr-D %.4f and ROUGE-L %.4f equal the re-implementation" % (got["cider_d"], got["rouge_l"]))
check(len(got["per_image"]) == len(items) and got["per_image"][0]["image"] == sorted(hyps)[0], "--per-image lists every image")
finish()
