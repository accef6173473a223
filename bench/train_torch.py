"""Benchmark helper for bench/train.sh.
  make-data DATA OUTDIR      random 2048-d features per Flickr8k train image, and (unless
                             OUTDIR/captions.mp exists, from cap-tokenize) the train captions
                             with words at min count 5 on the train split, as cap streams.
  torch OUTDIR THREADS STEPS the notebook's DecoderRNN (E=256, H=512, batch 64, Adam 1e-3,
                             shuffled batches sorted by length for pack_padded_sequence) for
                             STEPS steps after 3 warm-up steps; prints seconds per step and
                             per epoch.
  torch-bf16 OUTDIR THREADS STEPS   the same under torch.autocast("cpu", torch.bfloat16)
                             (bf16 products through oneDNN, fp32 master weights and Adam),
                             PyTorch's own mixed precision on CPU."""
import os, re, sys, time, json, resource

def make_data(data, out):
    import msgpack, numpy as np
    f8 = os.path.join(data, "flickr8k")
    train = set(open(os.path.join(f8, "Flickr_8k.trainImages.txt")).read().split())
    recs = []
    for ln in open(os.path.join(f8, "Flickr8k.token.txt"), encoding="utf-8"):
        if "\t" not in ln: continue
        key, text = ln.rstrip("\n").split("\t", 1)
        img, n = key.split("#")
        if img in train: recs.append((img, int(n), text))
    words = lambda t: re.findall(r"[a-z]+", t.lower())
    counts = {}
    for _, _, t in recs:
        for w in words(t): counts[w] = counts.get(w, 0) + 1
    vocab = ["<pad>", "<start>", "<end>", "<unk>"] + sorted(w for w, c in counts.items() if c >= 5)
    index = {w: i for i, w in enumerate(vocab)}
    def stream(path, header, records):
        with open(path, "wb") as f:
            f.write(msgpack.packb(dict({"format": "cap", "version": 1}, **header)))
            for r in records: f.write(msgpack.packb(r, use_bin_type=True))
    if not os.path.exists(os.path.join(out, "captions.mp")):  # cap-tokenize did not run
        stream(os.path.join(out, "captions.mp"),
               {"kind": "captions", "tokenizer": "bench", "vocab_size": len(vocab),
                "tokenizer_json": json.dumps({"model": {"vocab": index}})},
               ({"image": i, "n": n, "text": t, "ids": [1] + [index.get(w, 3) for w in words(t)] + [2]}
                for i, n, t in recs))
    rng = np.random.RandomState(0)
    stream(os.path.join(out, "features.mp"), {"kind": "features", "dim": 2048},
           ({"image": i, "feature": rng.uniform(0, 1, 2048).astype(np.float32).tobytes(), "shape": [2048]}
            for i in sorted(train)))
    print("captions %d images %d vocab %d" % (len(recs), len(train), len(vocab)))

def bench_torch(out, threads, steps, bf16=False):
    import msgpack, numpy as np, torch, torch.nn as nn
    from torch.nn.utils.rnn import pack_padded_sequence
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    it = msgpack.Unpacker(open(os.path.join(out, "features.mp"), "rb"), raw=False)
    next(it)
    feat = {r["image"]: np.frombuffer(r["feature"], "<f4") for r in it}
    it = msgpack.Unpacker(open(os.path.join(out, "captions.mp"), "rb"), raw=False)
    V = next(it)["vocab_size"]
    caps = [(r["image"], r["ids"]) for r in it]
    class DecoderRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(2048, 256); self.embed = nn.Embedding(V, 256)
            self.lstm = nn.LSTM(256, 512, 1, batch_first=True); self.linear = nn.Linear(512, V)
        def forward(self, f, ids, lengths):
            e = torch.cat((self.proj(f).unsqueeze(1), self.embed(ids)), 1)
            h, _ = self.lstm(pack_padded_sequence(e, lengths, batch_first=True))
            return self.linear(h[0])
    model = DecoderRNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    perm = np.random.RandomState(1).permutation(len(caps))
    def step(k):
        batch = sorted((caps[j] for j in perm[k * 64:(k + 1) * 64]), key=lambda c: len(c[1]), reverse=True)
        lengths = [len(c[1]) for c in batch]
        ids = torch.zeros(len(batch), lengths[0], dtype=torch.long)
        for i, c in enumerate(batch): ids[i, :lengths[i]] = torch.tensor(c[1])
        f = torch.tensor(np.stack([feat[c[0]] for c in batch]))
        tgt = pack_padded_sequence(ids, lengths, batch_first=True)[0]
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(f, ids, lengths)
            loss = crit(logits.float(), tgt)
        else:
            loss = crit(model(f, ids, lengths), tgt)
        opt.zero_grad(); loss.backward(); opt.step()
        return loss.item()
    for k in range(3): step(k)
    times = []
    for k in range(3, 3 + steps):
        t = time.perf_counter(); step(k); times.append(time.perf_counter() - t)
    s = sorted(times)[len(times) // 2]   # the median step, as bench/train.sh reports ours
    nb = (len(caps) + 63) // 64
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("torch %.4f s/step (median) %.1f s/epoch (%d steps/epoch) peak RSS %.0f MB" % (s, s * nb, nb, rss))

if __name__ == "__main__":
    if sys.argv[1] == "make-data": make_data(sys.argv[2], sys.argv[3])
    else: bench_torch(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[1] == "torch-bf16")
