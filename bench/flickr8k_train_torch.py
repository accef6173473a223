"""PyTorch side of bench/flickr8k_train.sh: the same decoder as cap-train (proj, embed, LSTM,
linear; E, H from the command line; batch 64, Adam 1e-3, teacher forcing, the cross-entropy
averaged over the real tokens of a batch) trained for whole epochs on the same features and
captions streams, with a validation loss after each epoch.
  flickr8k_train_torch.py FEATURES TRAIN_CAPTIONS DEV_CAPTIONS EPOCHS THREADS OUT.json [E H]
Prints one line per epoch; OUT.json gets {"epochs": [{"epoch", "seconds", "train_loss",
"val_loss"}], "steps": [loss, ...]}. Batches: each epoch a fresh permutation, each batch
sorted by length for pack_padded_sequence (the notebook's collate function)."""
import json, sys, time
import msgpack, numpy as np, torch, torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence

def read(path):
    it = msgpack.Unpacker(open(path, "rb"), raw=False)
    h = next(it)
    return h, [r for r in it if r.get("format") != "cap"]

def main(feats, train, dev, epochs, threads, out, E=256, H=512):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    _, fr = read(feats)
    feat = {r["image"]: np.frombuffer(r["feature"], "<f4") for r in fr}
    D = len(next(iter(feat.values())))
    ht, tr = read(train)
    hd, dv = read(dev)
    V = max(ht["vocab_size"], hd["vocab_size"])
    tr = [(r["image"], r["ids"]) for r in tr if r["image"] in feat]
    dv = [(r["image"], r["ids"]) for r in dv if r["image"] in feat]

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = nn.Linear(D, E); self.embed = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, 1, batch_first=True); self.linear = nn.Linear(H, V)
        def forward(self, f, ids, lengths):
            # inputs proj(f), embed(<start>), embed(w1..wn); targets <start>, w1..wn, <end>
            e = torch.cat((self.proj(f).unsqueeze(1), self.embed(ids)), 1)
            h, _ = self.lstm(pack_padded_sequence(e, lengths, batch_first=True))
            return self.linear(h[0])

    model = Decoder()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss(reduction="sum")

    def batch_loss(batch):
        batch = sorted(batch, key=lambda c: len(c[1]), reverse=True)
        lengths = [len(c[1]) for c in batch]
        ids = torch.zeros(len(batch), lengths[0], dtype=torch.long)
        for i, c in enumerate(batch): ids[i, :lengths[i]] = torch.tensor(c[1])
        f = torch.tensor(np.stack([feat[c[0]] for c in batch]))
        tgt = pack_padded_sequence(ids, lengths, batch_first=True)[0]
        return crit(model(f, ids, lengths), tgt), int(tgt.numel())

    rng = np.random.RandomState(1)
    hist, steps = [], []
    for ep in range(1, epochs + 1):
        model.train()
        perm = rng.permutation(len(tr))
        t0 = time.perf_counter()
        tot = ntok = 0.0
        for k in range(0, len(perm), 64):
            loss, n = batch_loss([tr[j] for j in perm[k:k + 64]])
            opt.zero_grad(); (loss / n).backward(); opt.step()
            steps.append(loss.item() / n)
            tot += loss.item(); ntok += n
        secs = time.perf_counter() - t0
        model.eval()
        vt = vn = 0.0
        with torch.no_grad():
            for k in range(0, len(dv), 64):
                loss, n = batch_loss(dv[k:k + 64])
                vt += loss.item(); vn += n
        hist.append({"epoch": ep, "seconds": secs, "train_loss": tot / ntok, "val_loss": vt / vn})
        print("torch epoch %d/%d: train loss %.4f, val loss %.4f, %.1f s" % (ep, epochs, tot / ntok, vt / vn, secs),
              flush=True)
    json.dump({"epochs": hist, "steps": steps}, open(out, "w"))

if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], a[2], int(a[3]), int(a[4]), a[5], *(int(x) for x in a[6:8]))
