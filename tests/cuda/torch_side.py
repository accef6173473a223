"""PyTorch's side of tests/cuda/run.sh, on the GPU machine (PyTorch 2.x with CUDA, torchvision,
msgpack). Subcommands:
  versions                          torch, CUDA, cuDNN, cuBLAS-relevant settings, the GPU
  make-weights OUT                  torchvision resnet152, seeded random init with non-trivial
                                    BatchNorm statistics (so every residual branch counts), as
                                    safetensors with torchvision's names
  compare-losses LOG_A LOG_B TOL    cap-train metrics logs: the per-step losses, max relative diff
  load-model MODEL [MODEL_B]        cap-train's safetensors into the notebook's DecoderRNN with
                                    load_state_dict(strict=True); with MODEL_B, the largest
                                    relative difference of the parameters
  compare-ids A B                   cap-generate streams: the word ids of each image equal
  compare-feats A B TOL             cap-encode streams: max relative error of feature vectors
  train-bench FEATS CAPS STEPS PREC (fp32, tf32, bf16: the model in bf16, bf16-autocast) the same decoder (nn.LSTM on cuDNN), data on the GPU:
                                    seconds per step and per epoch (batch 64)
  encode-bench BATCH ITERS PREC     torchvision resnet152, eval, channels_last, input copied
                                    from host memory each batch as cap-encode's is: img/s
  generate-bench MODEL FEATS N K B  greedy (K=1) or batched beam search (K>1) for N features in
                                    batches of B images, max 20 words: captions/s
  multi "CMD ARGS" ...              several of the benchmarks above in one process (one start of
                                    torch and CUDA instead of one each); a failing one is reported
                                    and the next runs
Exit status 1 when a comparison fails. TORCH_DEVICE=cpu runs the benchmarks on the CPU (to check
this script on a machine without a GPU; the numbers then mean nothing)."""
import math, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
from caplib import read_safetensors, write_safetensors   # no dependence on the safetensors package

DEV = os.environ.get("TORCH_DEVICE", "cuda")

def sync(torch):
    if DEV == "cuda":
        torch.cuda.synchronize()

def unpack(path):
    import msgpack
    with open(path, "rb") as f:
        return list(msgpack.Unpacker(f, raw=False))

def set_precision(torch, prec):
    tf32 = prec == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32

def versions():
    import torch, torchvision
    print("torch %s torchvision %s cuda %s cudnn %s" % (torch.__version__, torchvision.__version__,
          torch.version.cuda, torch.backends.cudnn.version()))
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        print("gpu %s, %d SMs, %.0f GiB" % (p.name, p.multi_processor_count, p.total_memory / 2**30))
    else:
        print("torch sees no GPU")

def make_weights(out):
    import torch, torchvision
    torch.manual_seed(0)
    m = torchvision.models.resnet152()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.5)
                mod.bias.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                mod.running_mean.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)
                mod.running_var.copy_(torch.rand(n, generator=g) * 0.5 + 0.75)
    write_safetensors(out, {k: v.detach().numpy() for k, v in m.state_dict().items()
                            if v.dtype == torch.float32})

def compare_losses(a, b, tol):
    la = [r["loss"] for r in unpack(a)[1:] if r.get("type") == "step"]
    lb = [r["loss"] for r in unpack(b)[1:] if r.get("type") == "step"]
    if not la or len(la) != len(lb):
        print("steps differ: %d vs %d" % (len(la), len(lb)))
        return 1
    e = max(abs(x - y) / abs(y) for x, y in zip(la, lb))
    print("%d steps, losses %.5f -> %.5f, max relative difference %.2e (bound %g)" % (len(la), lb[0], lb[-1], e, tol))
    return 0 if e <= tol else 1

def decoder_class(torch):
    nn = torch.nn
    class DecoderRNN(nn.Module):
        def __init__(self, D, E, H, V, L):
            super().__init__()
            self.proj = nn.Linear(D, E); self.embed = nn.Embedding(V, E)
            self.lstm = nn.LSTM(E, H, L, batch_first=True); self.linear = nn.Linear(H, V)
        def start(self, f):
            _, st = self.lstm(self.proj(f).unsqueeze(1)); return st
        def step(self, ids, st):
            out, st = self.lstm(self.embed(ids).unsqueeze(1), st)
            return torch.log_softmax(self.linear(out.squeeze(1)), dim=-1), st
    return DecoderRNN

def load_decoder(torch, path):
    sd = {k: torch.from_numpy(v.copy()) for k, v in read_safetensors(path)[0].items()}
    D = sd["proj.weight"].shape[1]; E = sd["proj.weight"].shape[0]
    H = sd["lstm.weight_hh_l0"].shape[1]; V = sd["linear.weight"].shape[0]
    L = sum(1 for k in sd if k.startswith("lstm.weight_hh_l"))
    m = decoder_class(torch)(D, E, H, V, L)
    m.load_state_dict(sd, strict=True)
    return m, sd

def load_model(a, b=None):
    import torch
    m, sa = load_decoder(torch, a)
    print("%s: load_state_dict(strict=True) took %d tensors" % (os.path.basename(a), len(sa)))
    if b:
        _, sb = load_decoder(torch, b)
        e = max(float((sa[k] - sb[k]).norm() / max(float(sb[k].norm()), 1e-30)) for k in sa)
        print("largest relative difference of a parameter tensor: %.2e" % e)
    return 0

def compare_ids(a, b):
    ra = [r for r in unpack(a)[1:]]; rb = [r for r in unpack(b)[1:]]
    same = sum(1 for x, y in zip(ra, rb) if x["image"] == y["image"] and x["ids"] == y["ids"])
    print("%d of %d captions with equal ids" % (same, len(rb)))
    return 0 if same == len(rb) == len(ra) and rb else 1

def compare_feats(a, b, tol):
    import numpy as np
    fa = {r["image"]: np.frombuffer(r["feature"], "<f4") for r in unpack(a)[1:]}
    fb = {r["image"]: np.frombuffer(r["feature"], "<f4") for r in unpack(b)[1:]}
    if set(fa) != set(fb) or not fa:
        print("image sets differ (%d vs %d)" % (len(fa), len(fb)))
        return 1
    e = max(float(np.linalg.norm(fa[k].astype(np.float64) - fb[k]) / max(np.linalg.norm(fb[k]), 1e-30)) for k in fb)
    print("%d features, max relative error %.2e (bound %g)" % (len(fb), e, tol))
    return 0 if e <= tol else 1

def train_bench(feats, caps, steps, prec):
    import numpy as np, torch
    from torch.nn.utils.rnn import pack_padded_sequence
    set_precision(torch, prec)
    dev = DEV
    recs = unpack(feats)[1:]
    index = {r["image"]: i for i, r in enumerate(recs)}
    table = torch.tensor(np.stack([np.frombuffer(r["feature"], "<f4") for r in recs])).to(dev)
    c = unpack(caps)
    V = c[0]["vocab_size"]
    caps = [(index[r["image"]], r["ids"]) for r in c[1:] if r["image"] in index]
    torch.manual_seed(0)
    model = decoder_class(torch)(table.shape[1], 256, 512, V, 1).to(dev)
    autocast = prec == "bf16-autocast"   # fp32 master weights, bf16 products: cap's own bf16
    if prec == "bf16":                   # the whole model in bf16: less work, less accuracy
        model = model.to(torch.bfloat16); table = table.to(torch.bfloat16)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    crit = torch.nn.CrossEntropyLoss()
    perm = np.random.RandomState(1).permutation(len(caps))
    nb = (len(caps) + 63) // 64
    batches = []   # prepared on the GPU up front, as cap-train holds the epoch there
    for k in range(min(nb, steps + 3)):
        b = sorted((caps[j] for j in perm[k * 64:(k + 1) * 64]), key=lambda x: len(x[1]), reverse=True)
        lengths = [len(x[1]) for x in b]
        ids = torch.zeros(len(b), lengths[0], dtype=torch.long)
        for i, x in enumerate(b): ids[i, :lengths[i]] = torch.tensor(x[1])
        rows = torch.tensor([x[0] for x in b])
        batches.append((rows.to(dev), ids.to(dev), lengths, pack_padded_sequence(ids, lengths, batch_first=True)[0].to(dev)))
    def step(k):
        rows, ids, lengths, tgt = batches[k % len(batches)]
        with torch.autocast("cuda" if dev == "cuda" else "cpu", dtype=torch.bfloat16, enabled=autocast):
            f = table[rows]
            e = torch.cat((model.proj(f).unsqueeze(1), model.embed(ids)), 1)
            h, _ = model.lstm(pack_padded_sequence(e, lengths, batch_first=True))
            loss = crit(model.linear(h[0]).float(), tgt)
        opt.zero_grad(); loss.backward(); opt.step()
    for k in range(3): step(k)
    sync(torch)
    t = time.perf_counter()
    for k in range(3, 3 + steps): step(k)
    sync(torch)
    s = (time.perf_counter() - t) / steps
    print("torch train %s: %.5f s/step %.2f s/epoch (%d steps/epoch, %d captions)" % (prec, s, s * nb, nb, len(caps)))

def encode_bench(batch, iters, prec):
    import torch, torchvision
    set_precision(torch, prec)
    torch.backends.cudnn.benchmark = True   # PyTorch at its best: cuDNN picks by timing
    m = torchvision.models.resnet152().eval().to(DEV).to(memory_format=torch.channels_last)
    dt = torch.bfloat16 if prec == "bf16" else torch.float32
    m = m.to(dt)
    x = torch.rand(batch, 3, 224, 224) * 4 - 2
    with torch.inference_mode():
        def once():
            y = m(x.to(DEV).to(dt).contiguous(memory_format=torch.channels_last))
            return y.float().cpu()
        for _ in range(2): once()
        sync(torch)
        t = time.perf_counter()
        for _ in range(iters): once()
        sync(torch)
        s = (time.perf_counter() - t) / iters
    print("torch encode %s batch %d: %.1f img/s (%.4f s per batch)" % (prec, batch, batch / s, s))

def generate_bench(model_path, feats, n, K, B):
    import numpy as np, torch
    set_precision(torch, "fp32")
    m, _ = load_decoder(torch, model_path)
    m = m.to(DEV).eval()
    recs = unpack(feats)[1:][:n]
    F = torch.tensor(np.stack([np.frombuffer(r["feature"], "<f4") for r in recs]))
    START, END, MAXLEN = 1, 2, 20
    def greedy(f):
        st = m.start(f); ids = torch.full((f.shape[0],), START, dtype=torch.long, device=DEV)
        live = torch.ones(f.shape[0], dtype=torch.bool, device=DEV); out = []
        for t in range(MAXLEN):
            logp, st = m.step(ids, st)
            logp[:, [0, START]] = -math.inf
            ids = logp.argmax(1); out.append(ids)
            live &= ids != END
            if not bool(live.any()): break
        return torch.stack(out, 1).cpu()
    def beam(f):
        Bn = f.shape[0]; h, c = m.start(f); V = m.linear.out_features
        h = h.repeat_interleave(K, 1); c = c.repeat_interleave(K, 1)
        score = torch.full((Bn, K), -math.inf, device=DEV); score[:, 0] = 0
        ids = torch.full((Bn * K,), START, dtype=torch.long, device=DEV)
        done = torch.zeros(Bn * K, dtype=torch.bool, device=DEV)
        for t in range(MAXLEN):
            logp, (h, c) = m.step(ids, (h, c))
            logp[:, [0, START]] = -math.inf
            logp[done] = -math.inf; logp[done, END] = 0   # a finished beam only stays finished
            cand = (score.view(-1, 1) + logp).view(Bn, K * V)
            score, idx = cand.topk(K, dim=1)
            src = (torch.arange(Bn, device=DEV).view(-1, 1) * K + idx // V).view(-1)
            h = h[:, src]; c = c[:, src]; ids = (idx % V).view(-1); done = done[src] | (ids == END)
            if bool(done.all()): break
        return score.cpu()
    run = greedy if K == 1 else beam
    with torch.inference_mode():
        run(F[:B].to(DEV)); sync(torch)
        t = time.perf_counter()
        for i in range(0, len(F), B): run(F[i:i + B].to(DEV))
        sync(torch)
        s = time.perf_counter() - t
    print("torch generate %s: %d captions in %.2f s, %.0f captions/s" % ("greedy" if K == 1 else "beam %d" % K, len(F), s, len(F) / s))

def main(a):
    cmd = a[0] if a else ""
    if cmd == "multi":
        import shlex, traceback
        for job in a[1:]:
            try:
                main(shlex.split(job))
            except Exception:
                print("torch_side %s failed:" % job); traceback.print_exc(limit=3, file=sys.stdout)
            sys.stdout.flush()
    elif cmd == "versions": versions()
    elif cmd == "make-weights": make_weights(a[1])
    elif cmd == "compare-losses": sys.exit(compare_losses(a[1], a[2], float(a[3])))
    elif cmd == "load-model": sys.exit(load_model(*a[1:3]))
    elif cmd == "compare-ids": sys.exit(compare_ids(a[1], a[2]))
    elif cmd == "compare-feats": sys.exit(compare_feats(a[1], a[2], float(a[3])))
    elif cmd == "train-bench": train_bench(a[1], a[2], int(a[3]), a[4])
    elif cmd == "encode-bench": encode_bench(int(a[1]), int(a[2]), a[3])
    elif cmd == "generate-bench": generate_bench(a[1], a[2], int(a[3]), int(a[4]), int(a[5]))
    else:
        print(__doc__, file=sys.stderr); sys.exit(2)

if __name__ == "__main__":
    main(sys.argv[1:])
