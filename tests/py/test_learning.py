"""The decoder learns and generalises, proven through the real tools (no data needed).

Synthetic scenes have three attributes: a colour (4), an object (4) and a place (3). An image's
feature is the sum of one random vector per attribute value plus noise; its captions come from
a small grammar of those attributes. cap-tokenize, cap-train and cap-generate run on streams
written as the tools write them. Training sees 36 of the 48 combinations (every value of every
attribute, but never these triples); cap-generate then captions new noisy features of the 12
held-out combinations. Most captions must name all three attributes right, where chance is
1 in 48. A control run, trained on the same captions shuffled across images, must stay near
chance: the score comes from the features, not from the grammar."""
import os, random, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import tool, run, tmpdir, check, write_stream, finish
import numpy as np

d = tmpdir()
P = lambda *a: os.path.join(d, *a)
COLOURS = ["red", "blue", "green", "yellow"]
OBJECTS = ["dog", "cat", "ball", "car"]
PLACES = ["beach", "park", "street"]
TEMPLATES = ["a {c} {o} on the {p}", "the {c} {o} is at the {p}", "a {o} that is {c} in the {p}",
             "there is a {c} {o} near the {p}"]
D, NOISE = 64, 0.35
rng = np.random.default_rng(7)
vec = {w: rng.standard_normal(D) for w in COLOURS + OBJECTS + PLACES}
combos = [(c, o, p) for c in range(4) for o in range(4) for p in range(3)]
held = [k for k in combos if (k[0] + k[1] + k[2]) % 4 == 0]      # 12, all values still seen
train = [k for k in combos if k not in held]

def feature(k):
    c, o, p = k
    x = vec[COLOURS[c]] + vec[OBJECTS[o]] + vec[PLACES[p]] + NOISE * rng.standard_normal(D)
    return x.astype("<f4").tobytes()

def scenes(ks, per, prefix):
    """per noisy images of each combination: [(name, combo, feature bytes)]"""
    return [("%s%02d_%d_%d_%d.jpg" % (prefix, j, *k), k, feature(k)) for k in ks for j in range(per)]

tr, te = scenes(train, 4, "tr"), scenes(held, 2, "te")
write_stream(P("feats.mp"), "features", {"dim": D},
             [{"image": n, "feature": f, "shape": [D]} for n, _, f in tr])
write_stream(P("test-feats.mp"), "features", {"dim": D},
             [{"image": n, "feature": f, "shape": [D]} for n, _, f in te])

def captions(path, shuffled):
    """3 captions per training image; shuffled: the captions of another image (the control)."""
    ks = [k for _, k, _ in tr]
    if shuffled:
        random.Random(3).shuffle(ks)
    with open(path, "w") as f:
        for (name, _, _), (c, o, p) in zip(tr, ks):
            for n, t in enumerate(random.Random(name).sample(TEMPLATES, 3)):
                f.write("%s#%d\t%s\n" % (name, n, t.format(c=COLOURS[c], o=OBJECTS[o], p=PLACES[p])))

def train_and_caption(tag, shuffled):
    captions(P(tag + ".txt"), shuffled)
    run([tool("cap-tokenize"), "vocab", "--min-count", "1", "-o", P(tag + ".tok.json"), P(tag + ".txt")])
    run([tool("cap-tokenize"), "encode", "--tokenizer", P(tag + ".tok.json"), "-o", P(tag + ".mp"), P(tag + ".txt")])
    run([tool("cap-train"), "--features", P("feats.mp"), "--captions", P(tag + ".mp"), "--epochs", "50", "--lr", "3e-3",
         "--batch", "16", "--embed", "32", "--hidden", "64", "--seed", "1", "--threads", "1",
         "-o", P(tag + ".model")])
    out = run([tool("cap-generate"), "--model", P(tag + ".model"), "--text", "--threads", "1",
               P("test-feats.mp")]).stdout.decode()
    got = {}
    for line in out.splitlines():
        name, cap = line.split("\t")
        got[name] = cap.split()
    return got

def score(got):
    """(all three right, colour right, object right, place right) as fractions; an attribute is
    right when the caption names its value and no other value of that attribute."""
    right = np.zeros(4)
    for name, k, _ in te:
        words = got.get(name, [])
        ok = []
        for vals, v in ((COLOURS, k[0]), (OBJECTS, k[1]), (PLACES, k[2])):
            named = [w for w in words if w in vals]
            ok.append(named == [vals[v]])
        right += [all(ok)] + ok
    return right / len(te)

got = train_and_caption("real", False)
check(len(got) == len(te), "cap-generate captions every held-out image (%d)" % len(te), "got %d" % len(got))
s = score(got)
example = " / ".join(" ".join(got[n]) for n, _, _ in te[:3])
check(s[0] >= 0.75, "held-out combinations: %.0f%% of captions name colour, object and place right "
      "(chance 2%%)" % (100 * s[0]), "e.g. %s" % example)
check(min(s[1:]) >= 0.85, "each attribute alone: colour %.0f%%, object %.0f%%, place %.0f%% "
      "(chance 25%%, 25%%, 33%%)" % tuple(100 * s[1:]), "e.g. %s" % example)
check(all(re.match(r"^(a|the|there)\b", " ".join(w)) for w in got.values()),
      "the captions follow the grammar", example)
c = score(train_and_caption("control", True))
check(c[0] <= 0.25, "control (captions shuffled across images) stays near chance: %.0f%% all right"
      % (100 * c[0]))
finish()
