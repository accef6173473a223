"""PyTorch side of bench/generate.sh (Debian's torch, /usr/bin/python3).

  generate_torch.py model TOKENIZER.json OUT.safetensors FEATURES.mp N
      a decoder with PyTorch's default init (E=256, H=512, D=2048, V from the tokenizer), saved
      with the tokenizer for cap-generate (the fallback when cap-train cannot make one: its
      captions run to --max-len); and N random non-negative 2048-d features
  generate_torch.py features NAMES.txt OUT.mp [N]
      random non-negative 2048-d features for the images named in NAMES.txt (or N of them)
  generate_torch.py run MODEL.safetensors FEATURES.mp BEAM THREADS BATCH
      captions every feature with the same loop as cap-generate, batched: greedy (BEAM 1) or
      beam search with BEAM rows per image (finished rows are masked, not dropped); prints one
      JSON line with the seconds of the loop, of the whole run, and captions/s."""
import json, os, sys, time
t_start = time.monotonic()
import msgpack, numpy as np, torch, torch.nn as nn
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "py"))
import caplib

START, END = 1, 2

class Decoder(nn.Module):
    def __init__(self, D, E, H, V):
        super().__init__()
        self.proj = nn.Linear(D, E)
        self.embed = nn.Embedding(V, E)
        self.lstm = nn.LSTM(E, H, 1, batch_first=True)
        self.linear = nn.Linear(H, V)

def read_features(path):
    it = msgpack.Unpacker(open(path, "rb"), raw=False)
    next(it)
    names, feats = [], []
    for r in it:
        names.append(r["image"]); feats.append(np.frombuffer(r["feature"], "<f4"))
    return names, np.stack(feats)

def write_features(path, names, seed):
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        f.write(msgpack.packb({"format": "cap", "version": 1, "kind": "features", "dim": 2048}))
        for n in names:
            x = (np.abs(rng.standard_normal(2048)) * 0.5).astype("<f4")
            f.write(msgpack.packb({"image": n, "feature": x.tobytes(), "shape": [2048]}))

if sys.argv[1] == "features":
    names = [l.strip() for l in open(sys.argv[2]) if l.strip()]
    if len(sys.argv) > 4: names = names[:int(sys.argv[4])]
    write_features(sys.argv[3], names, 1)
    sys.exit(0)

if sys.argv[1] == "model":
    _, _, tokp, out, featp, n = sys.argv
    tok = open(tokp).read()
    V = len(json.loads(tok)["model"]["vocab"])
    torch.manual_seed(0)
    m = Decoder(2048, 256, 512, V)
    caplib.write_safetensors(out, {k: v.numpy() for k, v in m.state_dict().items()},
                             {"format": "cap-decoder", "tokenizer_json": tok})
    write_features(featp, ["img%05d.jpg" % i for i in range(int(n))], 0)
    sys.exit(0)

_, _, modelp, featp, beam, threads, batch = sys.argv
K, threads, batch = int(beam), int(threads), int(batch)
torch.set_num_threads(threads)
tensors, _ = caplib.read_safetensors(modelp)
V = tensors["embed.weight"].shape[0]
m = Decoder(2048, 256, 512, V)
m.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in tensors.items()}, strict=True)
m.eval()
names, feats = read_features(featp)
MAXLEN = 20

def greedy(f):
    B = f.shape[0]
    _, st = m.lstm(m.proj(f).unsqueeze(1))
    ids = torch.full((B,), START, dtype=torch.long)
    out = torch.zeros((B, MAXLEN), dtype=torch.long)
    live = torch.ones(B, dtype=torch.bool)
    lp = torch.zeros(B)
    for t in range(MAXLEN):
        h, st = m.lstm(m.embed(ids).unsqueeze(1), st)
        logp = torch.log_softmax(m.linear(h.squeeze(1)), -1)
        logp[:, 0] = -float("inf"); logp[:, START] = -float("inf")
        v, w = logp.max(1)
        lp += torch.where(live, v, torch.zeros_like(v))
        out[:, t] = torch.where(live, w, torch.zeros_like(w))
        live &= w != END
        if not live.any(): break
        ids = w
    return out, lp

def beam(f):
    B = f.shape[0]
    _, (h, c) = m.lstm(m.proj(f).unsqueeze(1))
    h = h.repeat_interleave(K, 1); c = c.repeat_interleave(K, 1)
    score = torch.full((B, K), -float("inf"), dtype=torch.float64); score[:, 0] = 0
    words = torch.zeros((B, K, MAXLEN), dtype=torch.long)
    ids = torch.full((B * K,), START, dtype=torch.long)
    nfin = [0] * B
    best = [(-float("inf"), None)] * B
    for t in range(MAXLEN):
        o, (h, c) = m.lstm(m.embed(ids).unsqueeze(1), (h, c))
        logp = torch.log_softmax(m.linear(o.squeeze(1)), -1).double()
        logp[:, 0] = -float("inf"); logp[:, START] = -float("inf")
        cand = (score.view(B * K, 1) + logp).view(B, K * V)
        top, idx = cand.topk(K, dim=1)
        src, w = idx // V, idx % V
        newscore = torch.full((B, K), -float("inf"), dtype=torch.float64)
        neww = torch.zeros_like(words)
        topl, srcl, wl = top.tolist(), src.tolist(), w.tolist()
        for b in range(B):
            j = 0
            for i in range(K - nfin[b]):
                if topl[b][i] == -float("inf"): break
                if wl[b][i] == END:
                    nfin[b] += 1
                    if topl[b][i] > best[b][0]: best[b] = (topl[b][i], words[b, srcl[b][i], :t].tolist())
                    continue
                newscore[b, j] = topl[b][i]
                neww[b, j] = words[b, srcl[b][i]]; neww[b, j, t] = wl[b][i]
                j += 1
        rows = (torch.arange(B).unsqueeze(1) * K + src).view(-1)
        h = h.index_select(1, rows); c = c.index_select(1, rows)
        ids = w.view(-1); score = newscore; words = neww
        if torch.isinf(score).all(): break
    for b in range(B):
        for j in range(K):
            if score[b, j] > best[b][0]: best[b] = (float(score[b, j]), words[b, j].tolist())
    return best

x = torch.from_numpy(feats)
t0 = time.monotonic()
with torch.no_grad():
    for i in range(0, len(names), batch):
        (greedy if K == 1 else beam)(x[i:i + batch])
t1 = time.monotonic()
print(json.dumps({"loop_s": t1 - t0, "total_s": t1 - t_start, "captions": len(names),
                  "captions_per_s": len(names) / (t1 - t0)}))
