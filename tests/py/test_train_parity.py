"""cap-train against the same decoder in PyTorch (the notebook's DecoderRNN with
pack_padded_sequence and CrossEntropyLoss, trained with torch.optim.Adam): with --init and
--no-shuffle, 20 steps on the same batches give the same per-step losses (1e-4 relative) and the
same final weights (1e-3 relative), for 1 and 2 layers, with and without clipping. Captions are
real Flickr8k text (cap-tokenize when built, else a tiny word splitter); features are random.
Also: the model file loads with load_state_dict(strict=True) and carries the tokenizer."""
import json, os, re, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import *

try:
    import msgpack, numpy as np, torch, torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence
except ImportError as e:
    skip("train parity: %s" % e); finish()

tok_file = data("flickr8k", "Flickr8k.token.txt")
if not tok_file:
    skip("train parity: no Flickr8k captions in $CAP_DATA"); finish()

torch.set_num_threads(1)
D, E, H, B, STEPS = 96, 32, 48, 8, 20
NCAP = B * STEPS
d = tmpdir()

# ---- captions: the first NCAP Flickr8k captions, tokenized by cap-tokenize (min count 2) ----
lines = open(tok_file, encoding="utf-8").read().splitlines()[:NCAP]
def pack_stream(path, header, records):
    with open(path, "wb") as f:
        f.write(msgpack.packb(dict({"format": "cap", "version": 1}, **header), use_bin_type=True))
        for r in records:
            f.write(msgpack.packb(r, use_bin_type=True))
if os.path.exists(tool("cap-tokenize")):
    src = os.path.join(d, "Flickr8k.token.txt")
    open(src, "w", encoding="utf-8").write("\n".join(lines) + "\n")
    run([tool("cap-tokenize"), "vocab", "--min-count", "2", "--format", "flickr8k", "-o",
         os.path.join(d, "tok.json"), src])
    run([tool("cap-tokenize"), "encode", "--tokenizer", os.path.join(d, "tok.json"), "--format",
         "flickr8k", "-o", os.path.join(d, "caps.mp"), src])
    it = msgpack.Unpacker(open(os.path.join(d, "caps.mp"), "rb"), raw=False)
    hdr = next(it)
    caps = list(it)
    V, tok_json, tok_digest = hdr["vocab_size"], hdr["tokenizer_json"], hdr["tokenizer"]
    ok("captions tokenized by cap-tokenize (V=%d)" % V)
else:  # cap-tokenize not built: a tiny word splitter stands in
    words = lambda t: re.findall(r"[a-z]+", t.lower())
    recs = [(ln.split("\t")[0].split("#")[0], int(ln.split("\t")[0].split("#")[1]), ln.split("\t", 1)[1])
            for ln in lines]
    counts = {}
    for _, _, t in recs:
        for w in words(t):
            counts[w] = counts.get(w, 0) + 1
    vocab = ["<pad>", "<start>", "<end>", "<unk>"] + sorted(w for w, c in counts.items() if c >= 2)
    index = {w: i for i, w in enumerate(vocab)}
    V, tok_digest = len(vocab), "test-digest"
    tok_json = json.dumps({"model": {"vocab": index}, "note": "test tokenizer \"quoted\"\n"})
    caps = [{"image": img, "n": n, "text": t, "ids": [1] + [index.get(w, 3) for w in words(t)] + [2]}
            for img, n, t in recs]
    pack_stream(os.path.join(d, "caps.mp"), {"kind": "captions", "tokenizer": tok_digest,
                "vocab_size": V, "tokenizer_json": tok_json}, caps)
check(len(caps) == NCAP, "%d captions" % len(caps))
rng = np.random.RandomState(0)
images = sorted(set(c["image"] for c in caps))
feat = {img: rng.uniform(0, 1, D).astype(np.float32) for img in images}
# Features carry a directory part, captions only file names: the join uses base names.
pack_stream(os.path.join(d, "feats.mp"), {"kind": "features", "dim": D},
            [{"image": "imgs/" + img, "feature": feat[img].tobytes(), "shape": [D]} for img in images] +
            [{"image": "imgs/unused.jpg", "feature": np.zeros(D, np.float32).tobytes(), "shape": [D]}])

class DecoderRNN(nn.Module):
    def __init__(self, D, E, H, V, L):
        super().__init__()
        self.proj = nn.Linear(D, E)
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True)
        self.linear = nn.Linear(H, V)
    def forward(self, features, captions, lengths):
        emb = self.embed(captions)
        emb = torch.cat((self.proj(features).unsqueeze(1), emb), 1)
        packed = pack_padded_sequence(emb, lengths, batch_first=True)
        hiddens, _ = self.lstm(packed)
        return self.linear(hiddens[0])

def collate(batch):
    batch = sorted(batch, key=lambda c: len(c["ids"]), reverse=True)  # stable, as cap-train
    lengths = [len(c["ids"]) for c in batch]
    ids = torch.zeros(len(batch), max(lengths), dtype=torch.long)
    for i, c in enumerate(batch):
        ids[i, :lengths[i]] = torch.tensor(c["ids"])
    f = torch.tensor(np.stack([feat[c["image"]] for c in batch]))
    return f, ids, lengths

def torch_train(model, clip):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    losses = []
    for s in range(STEPS):
        f, ids, lengths = collate(caps[s * B:(s + 1) * B])
        targets = pack_padded_sequence(ids, lengths, batch_first=True)[0]
        loss = crit(model(f, ids, lengths), targets)
        model.zero_grad()
        loss.backward()
        if clip:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return losses

def read_metrics(path):
    out = list(msgpack.Unpacker(open(path, "rb"), raw=False))
    return out[0], out[1:]

for L in (1, 2):
    for clip in (0, 0.05):
        name = "L=%d clip=%s" % (L, clip or "off")
        torch.manual_seed(L * 10 + (clip > 0))
        model = DecoderRNN(D, E, H, V, L)
        init = os.path.join(d, "init.safetensors")
        write_safetensors(init, {k: v.detach().numpy() for k, v in model.state_dict().items()})
        out = os.path.join(d, "model-%d-%d.safetensors" % (L, clip > 0))
        args = [tool("cap-train"), "--features", os.path.join(d, "feats.mp"), "--captions",
                os.path.join(d, "caps.mp"), "-o", out, "--init", init, "--no-shuffle", "--batch", str(B),
                "--epochs", "1", "--log", os.path.join(d, "m.mp"), "--threads", "1"]
        if clip:
            args += ["--clip-norm", str(clip)]
        p = run(args)
        hdr, recs_m = read_metrics(os.path.join(d, "m.mp"))
        ours = [r["loss"] for r in recs_m if r["type"] == "step"]
        theirs = torch_train(model, clip)
        check(len(ours) == STEPS, "%s: %d steps logged" % (name, len(ours)))
        e = max(abs(a - b) / abs(b) for a, b in zip(ours, theirs))
        check(e <= 1e-4, "%s: per-step losses match PyTorch (max rel err %.2e; %.4f -> %.4f)"
              % (name, e, theirs[0], theirs[-1]), "ours %s theirs %s" % (ours[:3], theirs[:3]))
        w, meta = read_safetensors(out)
        sd = model.state_dict()
        worst = max((rel_err(w[k], sd[k].numpy()), k) for k in sd)
        check(worst[0] <= 1e-3 and set(w) == set(sd),
              "%s: final weights match PyTorch (worst rel err %.2e in %s)" % (name, worst[0], worst[1]))
        if L == 2 and clip:
            m2 = DecoderRNN(D, E, H, V, L)
            try:
                m2.load_state_dict({k: torch.tensor(np.array(v)) for k, v in w.items()}, strict=True)
                ok("model file loads with load_state_dict(strict=True)")
            except Exception as ex:
                notok("model file loads with load_state_dict(strict=True)", str(ex))
            check(meta.get("tokenizer_json") == tok_json and meta.get("tokenizer") == tok_digest
                  and meta.get("vocab_size") == str(V) and meta.get("feature_dim") == str(D),
                  "model metadata carries the tokenizer and sizes")
            check(b"1 captions without a feature" not in p.stderr and b"1 features without" in p.stderr,
                  "unmatched features are reported", p.stderr.decode()[:300])
finish()
