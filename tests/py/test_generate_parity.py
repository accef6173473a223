"""cap-generate against PyTorch (python3-torch) on a random model written here with the
PyTorch names (and on a cap-train model when cap-train and the Flickr8k captions are there):
- greedy ids equal those of the same nn.Module running the same loop, batched;
- beam search (K = 2, 3, 5) equal to the plain Python beam search below, run on that module
  one image at a time: top-1 ids equal, log-probability within 1e-4;
- a model that never emits <end> still returns (captions of --max-len words);
- --length-penalty ranks as GNMT's ((5 + len) / 6)^A, --nbest lists ranked hypotheses;
- sampling is reproducible with the same seed whatever the batch size;
- feature dimension and tokenizer mismatches are clear errors."""
import json, math, os, struct, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import *
import msgpack, numpy as np
import torch
import torch.nn as nn

torch.set_num_threads(1)
T = os.environ.get("KEEP_T") or tmpdir()
START, END = 1, 2

class Decoder(nn.Module):
    def __init__(self, D, E, H, V, L=1):
        super().__init__()
        self.proj = nn.Linear(D, E)
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, L, batch_first=True)
        self.linear = nn.Linear(H, V)

    def start(self, feats):           # the image step; its prediction is not used
        _, st = self.lstm(self.proj(feats).unsqueeze(1))
        return st

    def step(self, ids, st):          # ids (B,) -> log-probs (B, V), new state
        out, st = self.lstm(self.embed(ids).unsqueeze(1), st)
        return torch.log_softmax(self.linear(out.squeeze(1)), dim=-1), st

def make_tokenizer(nwords):
    """A tokenizer.json with words w0.. from cap-tokenize (min-count 1)."""
    path = os.path.join(T, "captions.tsv")
    with open(path, "w") as f:
        for i in range(nwords):
            f.write("img%d.jpg\t%s\n" % (i, " ".join("w%d" % j for j in range(i + 1))))
    out = os.path.join(T, "tokenizer.json")
    run([tool("cap-tokenize"), "vocab", "--min-count", "1", "-o", out, path])
    return out

def write_model(path, module, tokenizer_json, extra_meta=None):
    tensors = {k: v.detach().numpy().astype(np.float32) for k, v in module.state_dict().items()}
    meta = {"format": "cap-decoder", "tokenizer_json": tokenizer_json}
    meta.update(extra_meta or {})
    write_safetensors(path, tensors, meta)

def write_features(path, names, feats):
    with open(path, "wb") as f:
        f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "features", "dim": feats.shape[1],
                               "dtype": "float32", "encoder": "test"}))
        for n, x in zip(names, feats):
            f.write(msgpack.packb({"image": n, "feature": x.astype("<f4").tobytes(), "shape": [len(x)]}))

def read_generated(data):
    it = msgpack.Unpacker(raw=False); it.feed(data)
    objs = list(it)
    return objs[0], objs[1:]

def torch_greedy(model, feats, max_len):
    with torch.no_grad():
        st = model.start(torch.from_numpy(feats))
        B = feats.shape[0]
        ids = torch.full((B,), START, dtype=torch.long)
        out = [[] for _ in range(B)]; lp = [0.0] * B; live = [True] * B
        for t in range(max_len):
            logp, st = model.step(ids, st)
            masked = logp.clone(); masked[:, [0, START]] = -float("inf")   # never words
            w = torch.argmax(masked, dim=1)
            for b in range(B):
                if not live[b]: continue
                lp[b] += float(logp[b, w[b]])
                if int(w[b]) == END: live[b] = False
                else: out[b].append(int(w[b]))
            if not any(live): break
            ids = w
        return out, lp

def torch_beam(model, feat, K, max_len, alpha=0.0):
    """Straightforward beam search for one image: all candidates sorted by summed
    log-probability (ties: earlier hypothesis, lower word id)."""
    with torch.no_grad():
        st = model.start(torch.from_numpy(feat[None]))
        live = [([], 0.0, st, START)]   # (words, score, state, last id)
        done = []
        for t in range(max_len):
            if not live: break
            ids = torch.tensor([h[3] for h in live])
            h0 = torch.cat([h[2][0] for h in live], dim=1); c0 = torch.cat([h[2][1] for h in live], dim=1)
            logp, (h1, c1) = model.step(ids, (h0, c0))
            lp = logp.double().numpy()
            cands = [(live[i][1] + lp[i, w], i, w) for i in range(len(live)) for w in range(lp.shape[1])
                     if w not in (0, START)]
            cands.sort(key=lambda c: (-c[0], c[1], c[2]))
            nxt = []
            for s, i, w in cands[:K - len(done)]:
                if w == END:
                    done.append((live[i][0], s, True))
                else:
                    nxt.append((live[i][0] + [w], s, (h1[:, i:i + 1], c1[:, i:i + 1]), w))
            live = nxt
        done += [(h[0], h[1], False) for h in live]
        key = (lambda d: d[1] / ((5 + len(d[0])) / 6.0) ** alpha) if alpha > 0 else (lambda d: d[1])
        return sorted(done, key=key, reverse=True)  # stable: finishing order on ties

def generate(model_path, feat_path, *args):
    p = run([tool("cap-generate"), "--model", model_path] + list(args) + [feat_path])
    return read_generated(p.stdout)

for need in ("cap-generate", "cap-tokenize"):
    if not os.path.exists(tool(need)):
        skip("%s not built" % need); finish()

torch.manual_seed(7)
rng = np.random.default_rng(7)
NW = 60
tokp = make_tokenizer(NW)
tok_json = open(tokp).read()
V = NW + 4
D, E, H = 64, 32, 48
model = Decoder(D, E, H, V)
with torch.no_grad():
    # sharpen the random model so that captions differ and some end early
    model.linear.weight.mul_(6.0)
model_path = os.path.join(T, "model.safetensors")
write_model(model_path, model, tok_json)
N = 37
names = ["img%03d.jpg" % i for i in range(N)]
feats = rng.standard_normal((N, D)).astype(np.float32)
feat_path = os.path.join(T, "feats.mp")
write_features(feat_path, names, feats)

# ---- greedy ----
want_ids, want_lp = torch_greedy(model, feats, 13)
want20 = torch_greedy(model, feats, 20)[0]
hdr, recs = generate(model_path, feat_path, "--batch", "8", "--max-len", "13")
check(hdr.get("kind") == "generated" and hdr.get("decoding", {}).get("method") == "greedy" and
      len(hdr.get("model", "")) == 64 and len(hdr.get("tokenizer", "")) == 64,
      "generated header names the model, tokenizer and decoding", str(hdr))
check([r["image"] for r in recs] == names, "one record per image, in input order")
got = [r["ids"] for r in recs]
nmatch = sum(g == w for g, w in zip(got, want_ids))
check(nmatch == N, "greedy ids equal the PyTorch loop on all %d images (%d equal)" % (N, nmatch))
err = max(abs(r["logprob"] - w) for r, w in zip(recs, want_lp))
check(err < 1e-4, "greedy logprob equals PyTorch's within 1e-4 (max diff %.2e)" % err)
lens = [len(w) for w in want_ids]
check(min(lens) < 13 and max(lens) == 13, "the test model gives both ended and cut captions (lengths %d..%d)" % (min(lens), max(lens)))
vocab = {v: k for k, v in json.load(open(tokp))["model"]["vocab"].items()}
check(all(r["caption"] == " ".join(vocab[i] for i in r["ids"]) for r in recs) and
      all(START not in r["ids"] and END not in r["ids"] for r in recs),
      "captions are the decoded ids, without <start>/<end>")
_, recs2 = generate(model_path, feat_path, "--batch", "64", "--threads", "2", "--max-len", "13")
check([r["ids"] for r in recs2] == got, "greedy independent of --batch and --threads")

# ---- beam ----
for K in (2, 3, 5):
    hdr, recs = generate(model_path, feat_path, "--beam", str(K), "--batch", "5", "--nbest", str(K))
    ok_ids, worst, nb_ok = 0, 0.0, True
    for i, r in enumerate(recs[:20]):
        ref = torch_beam(model, feats[i], K, 20)
        if r["ids"] == ref[0][0]: ok_ids += 1
        worst = max(worst, abs(r["logprob"] - ref[0][1]))
        if len(r["nbest"]) != len(ref) or [h["ids"] for h in r["nbest"]] != [d[0] for d in ref]:
            nb_ok = False
    check(ok_ids == 20, "beam K=%d: top-1 ids equal the Python beam search on 20 images (%d equal)" % (K, ok_ids))
    check(worst < 1e-4, "beam K=%d: logprob within 1e-4 (max diff %.2e)" % (K, worst))
    check(nb_ok, "beam K=%d: the n-best list equals the reference's finished hypotheses, ranked" % K)

# ---- length penalty ----
hdr, recs = generate(model_path, feat_path, "--beam", "4", "--length-penalty", "1.0", "--nbest", "4")
ok_lp = 0
for i, r in enumerate(recs[:12]):
    ref = torch_beam(model, feats[i], 4, 20, alpha=1.0)
    ok_lp += r["ids"] == ref[0][0]
check(ok_lp == 12, "--length-penalty 1: best by GNMT score equals the reference (%d of 12)" % ok_lp)

# ---- a model that never ends ----
with torch.no_grad():
    model.linear.bias[END] = -100.0
noend_path = os.path.join(T, "noend.safetensors")
write_model(noend_path, model, tok_json)
for K in ("1", "3"):
    p = run([tool("cap-generate"), "--model", noend_path, "--beam", K, "--max-len", "7", feat_path], check_rc=False)
    if not check(p.returncode == 0, "beam %s without any <end> returns" % K, p.stderr.decode()[:300]): continue
    _, recs = read_generated(p.stdout)
    ref = torch_beam(model, feats[0], int(K), 7)
    check(all(len(r["ids"]) == 7 for r in recs) and recs[0]["ids"] == ref[0][0] and abs(recs[0]["logprob"] - ref[0][1]) < 1e-4,
          "beam %s without <end>: captions of --max-len words, best equals the reference" % K)

# ---- sampling ----
def sample(*args):
    return [(r["ids"], r["logprob"]) for r in generate(model_path, feat_path, "--sample", *args)[1]]
a = sample("--seed", "11", "--temperature", "0.8", "--top-k", "5")
a2 = sample("--seed", "11", "--temperature", "0.8", "--top-k", "5")
b = sample("--seed", "11", "--temperature", "0.8", "--top-k", "5", "--batch", "3")
c = sample("--seed", "12", "--temperature", "0.8", "--top-k", "5")
check(a == a2, "sampling: same seed, same captions and log-probabilities")
# Another batch size changes the matrix products' rounding (1e-7), not the draws.
check([x[0] for x in a] == [x[0] for x in b] and max(abs(x[1] - y[1]) for x, y in zip(a, b)) < 1e-4,
      "sampling: same seed, same captions whatever --batch")
check(all(START not in x[0] and 0 not in x[0] and END not in x[0] for x in a + c),
      "sampling never emits <pad>, <start> or <end> as words")
check(a != c, "sampling: another seed gives other captions")
g = sample("--seed", "3", "--top-k", "1")
check([x[0] for x in g] == want20, "sampling with --top-k 1 is greedy")

# ---- --text ----
p = run([tool("cap-generate"), "--model", model_path, "--text", "-o", os.path.join(T, "gen.txt"), feat_path])
check(p.stdout == b"", "-o writes the file, not stdout")
p.stdout = open(os.path.join(T, "gen.txt"), "rb").read()
_, recs = generate(model_path, feat_path)
check(p.stdout.decode() == "".join("%s\t%s\n" % (r["image"], r["caption"]) for r in recs), "--text prints IMAGE<TAB>caption")

# ---- a model trained by cap-train ----
def cap_train_model():
    """Trains a small decoder with cap-train on synthetic captions and features."""
    words = ["a", "dog", "cat", "runs", "sits", "on", "the", "grass", "red", "ball", "man", "jumps"]
    r = np.random.default_rng(3)
    caps = os.path.join(T, "train.tsv")
    with open(caps, "w") as f:
        for i in range(48):
            for k in range(3):
                n = int(r.integers(3, 9))
                f.write("t%03d.jpg\t%s\n" % (i, " ".join(words[int(x)] for x in r.integers(0, len(words), n))))
    tk = os.path.join(T, "train-tok.json")
    run([tool("cap-tokenize"), "vocab", "--min-count", "1", "-o", tk, caps])
    cstream = os.path.join(T, "train.captions.mp")
    run([tool("cap-tokenize"), "encode", "--tokenizer", tk, "-o", cstream, caps])
    fe = r.standard_normal((48, D)).astype(np.float32)
    fstream = os.path.join(T, "train.features.mp")
    write_features(fstream, ["t%03d.jpg" % i for i in range(48)], fe)
    out = os.path.join(T, "trained.safetensors")
    p = run([tool("cap-train"), "--features", fstream, "--captions", cstream, "-o", out, "--embed", "16",
             "--hidden", "24", "--epochs", "3", "--batch", "16", "--threads", "1", "--seed", "5"], check_rc=False)
    return (out, fe) if p.returncode == 0 else (None, p.stderr.decode()[-400:])

if os.path.exists(tool("cap-train")):
    out, fe = cap_train_model()
    if check(out is not None, "cap-train trains a small model", "" if out else fe):
        tensors, meta = read_safetensors(out)
        V2 = tensors["embed.weight"].shape[0]
        tm = Decoder(D, 16, 24, V2)
        tm.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
        fpath = os.path.join(T, "trained-feats.mp")
        write_features(fpath, ["t%03d.jpg" % i for i in range(48)], fe)
        want, wlp = torch_greedy(tm, fe, 20)
        _, recs = generate(out, fpath)
        check([r["ids"] for r in recs] == want and max(abs(r["logprob"] - w) for r, w in zip(recs, wlp)) < 1e-4,
              "cap-train model: greedy ids equal the PyTorch loop on the loaded state_dict")
        _, recs = generate(out, fpath, "--beam", "3")
        ok3 = sum(r["ids"] == torch_beam(tm, fe[i], 3, 20)[0][0] for i, r in enumerate(recs[:10]))
        check(ok3 == 10, "cap-train model: beam 3 equals the Python beam search (%d of 10)" % ok3)
else:
    skip("cap-train not built: no trained-model parity")

# ---- errors ----
bad = os.path.join(T, "bad.mp")
write_features(bad, names[:2], rng.standard_normal((2, D + 1)).astype(np.float32))
p = run([tool("cap-generate"), "--model", model_path, bad], check_rc=False)
check(p.returncode == 1 and b"dimension" in p.stderr and p.stdout == b"", "feature dimension mismatch is a clear error", p.stderr.decode()[:300])
m2 = os.path.join(T, "notok.safetensors")
write_safetensors(m2, {k: v.detach().numpy() for k, v in model.state_dict().items()}, {"format": "cap-decoder"})
p = run([tool("cap-generate"), "--model", m2, feat_path], check_rc=False)
check(p.returncode == 1 and b"tokenizer" in p.stderr, "model without a tokenizer is refused", p.stderr.decode()[:300])
small = Decoder(D, E, H, V - 5)
m3 = os.path.join(T, "mismatch.safetensors")
write_model(m3, small, tok_json)
p = run([tool("cap-generate"), "--model", m3, feat_path], check_rc=False)
check(p.returncode == 1 and b"tokenizer" in p.stderr, "tokenizer/model vocabulary mismatch is refused", p.stderr.decode()[:300])
p = run([tool("cap-generate"), "--model", model_path, "--beam", "2", "--nbest", "3", feat_path], check_rc=False)
check(p.returncode == 2 and b"--nbest" in p.stderr, "--nbest above --beam is a usage error")
finish()
