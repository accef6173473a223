# A Flickr8k-scale training run, cap-train beside the PyTorch loop on the same streams: the real
# train and dev captions (cap-tokenize, min count 5 on the train split), features from
# `cap-encode --weights random` on the real JPEGs of $CAP_DATA/flickr8k/images; where there are
# fewer JPEGs than the captions name images (a partial copy of the dataset), the features of the
# encoded ones are repeated, in order, under the missing names. Both sides train the same
# decoder (E=256, H=512, batch 64, Adam 1e-3) for $EPOCHS whole epochs with a validation loss
# after each; printed: seconds per epoch, the train and validation loss of every epoch, and the
# step-loss curve (mean loss over each tenth of an epoch) of both.
#   BENCH=quick   a short check: 300 train and 100 dev images, 2 epochs, at most 48 JPEGs encoded
#   EPOCHS=5 THREADS=2 TRAIN_IMAGES=6000 DEV_IMAGES=1000 ENCODE_IMAGES=all   the settings
# PyTorch runs on OpenBLAS when bench/run.sh found one ($TORCH_OPENBLAS), else on the
# libblas.so.3 installed.
set -u
PY=${PYTHON:-/usr/bin/python3}
if [ "${BENCH:-}" = quick ]; then
	: "${EPOCHS:=2}" "${TRAIN_IMAGES:=300}" "${DEV_IMAGES:=100}" "${ENCODE_IMAGES:=48}"
fi
EPOCHS=${EPOCHS:-5} THREADS=${THREADS:-2}
TRAIN_IMAGES=${TRAIN_IMAGES:-6000} DEV_IMAGES=${DEV_IMAGES:-1000} ENCODE_IMAGES=${ENCODE_IMAGES:-all}
D=${CAP_DATA:-../shared/data}/flickr8k
[ -f "$D/Flickr8k.token.txt" ] && [ -d "$D/images" ] || { echo "skip: no Flickr8k (captions and images) in $D"; exit 0; }
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/cap-bench-f8k.XXXXXX")
trap 'rm -rf "$W"' EXIT
PATH=${CAP_BIN:-$here/../build/bin}:$PATH
set -e

head -n "$TRAIN_IMAGES" "$D/Flickr_8k.trainImages.txt" >"$W/train.txt"
head -n "$DEV_IMAGES" "$D/Flickr_8k.devImages.txt" >"$W/dev.txt"
cap-tokenize vocab --split "$W/train.txt" -o "$W/tok.json" "$D/Flickr8k.token.txt" 2>/dev/null
for s in train dev; do
	cap-tokenize encode --tokenizer "$W/tok.json" --split "$W/$s.txt" -o "$W/$s.mp" "$D/Flickr8k.token.txt" 2>/dev/null
done

# The JPEGs there are, encoded once; then one feature per image the captions name.
find "$D/images" -name '*.jpg' | sort >"$W/jpegs.txt"
[ "$ENCODE_IMAGES" = all ] || { head -n "$ENCODE_IMAGES" "$W/jpegs.txt" >"$W/j" && mv "$W/j" "$W/jpegs.txt"; }
n_jpegs=$(wc -l <"$W/jpegs.txt")
start=$(date +%s.%N)
cap-encode --weights random --basename --threads "$THREADS" -o "$W/encoded.mp" <"$W/jpegs.txt" 2>"$W/encode.err" ||
	{ cat "$W/encode.err"; exit 1; }
enc_s=$(echo "$(date +%s.%N) - $start" | bc)
"$PY" - "$W" <<'EOF'
import msgpack, sys
w = sys.argv[1]
it = msgpack.Unpacker(open(w + "/encoded.mp", "rb"), raw=False)
header = next(it)
recs = [r for r in it if r.get("format") != "cap"]
have = {r["image"]: r for r in recs}
names = sorted(set(open(w + "/train.txt").read().split()) | set(open(w + "/dev.txt").read().split()))
header["note"] = "features of %d JPEGs, repeated under the %d names the captions need" % (len(recs), len(names))
with open(w + "/features.mp", "wb") as f:
    f.write(msgpack.packb(header, use_bin_type=True))
    missing = [n for n in names if n not in have]
    slot = {n: i % len(recs) for i, n in enumerate(missing)}
    for n in names:
        r = have.get(n) or recs[slot[n]]
        f.write(msgpack.packb(dict(r, image=n), use_bin_type=True))
print("# data: %d train + %d dev images; %d JPEGs encoded, %d of the needed images among them, the other %d repeat their features"
      % (len(open(w + "/train.txt").read().split()), len(open(w + "/dev.txt").read().split()),
         len(recs), len(names) - len(missing), len(missing)))
EOF
"$PY" -c '
import msgpack, sys
for s in ("train", "dev"):
    it = msgpack.Unpacker(open(sys.argv[1] + "/" + s + ".mp", "rb"), raw=False); h = next(it)
    print("# %s: %d captions, vocab %d" % (s, sum(1 for _ in it), h["vocab_size"]))' "$W"
echo "# cap-encode --weights random: $n_jpegs JPEGs in $(printf %.1f "$enc_s") s; threads $THREADS; $EPOCHS epochs each side"

start=$(date +%s.%N)
cap-train --features "$W/features.mp" --captions "$W/train.mp" --val-captions "$W/dev.mp" \
	--epochs "$EPOCHS" --threads "$THREADS" --log "$W/log.mp" -o "$W/model.st" 2>"$W/train.err" ||
	{ tail -5 "$W/train.err"; exit 1; }
echo "# cap-train: $(printf %.1f "$(echo "$(date +%s.%N) - $start" | bc)") s in all (loading included)"
# The same run in bf16 where the processor has AVX512-BF16, for its loss curve against fp32's.
start=$(date +%s.%N)
if cap-train --features "$W/features.mp" --captions "$W/train.mp" --val-captions "$W/dev.mp" --precision bf16 \
	--epochs "$EPOCHS" --threads "$THREADS" --log "$W/log16.mp" -o "$W/model16.st" 2>"$W/train16.err"; then
	echo "# cap-train --precision bf16: $(printf %.1f "$(echo "$(date +%s.%N) - $start" | bc)") s in all (loading included)"
else
	echo "# cap-train --precision bf16: $(tail -n 1 "$W/train16.err")"
	rm -f "$W/log16.mp"
fi
OB=${TORCH_OPENBLAS:-}
blas="libblas.so.3 as installed"
[ -n "$OB" ] && [ -f "$OB/libblas.so.3" ] && blas="OpenBLAS"
if [ "$blas" = OpenBLAS ]; then
	LD_LIBRARY_PATH="$OB" OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-Haswell} "$PY" "$here/flickr8k_train_torch.py" \
		"$W/features.mp" "$W/train.mp" "$W/dev.mp" "$EPOCHS" "$THREADS" "$W/torch.json" >"$W/torch.out"
else
	"$PY" "$here/flickr8k_train_torch.py" "$W/features.mp" "$W/train.mp" "$W/dev.mp" "$EPOCHS" "$THREADS" \
		"$W/torch.json" >"$W/torch.out"
fi
"$PY" - "$W" "$blas" <<'EOF'
import json, msgpack, sys
w, blas = sys.argv[1], sys.argv[2]
log = [r for r in msgpack.Unpacker(open(w + "/log.mp", "rb"), raw=False) if r.get("format") != "cap"]
ours_ep = [r for r in log if r["type"] == "epoch"]
ours_steps = [r["loss"] for r in log if r["type"] == "step"]
t = json.load(open(w + "/torch.json"))
print("epoch | cap-train s  train   val   | PyTorch (%s) s  train   val   | speed-up" % blas)
for a, b in zip(ours_ep, t["epochs"]):
    print("%5d | %8.1f   %.4f  %.4f | %8.1f   %.4f  %.4f | %5.2fx" % (a["epoch"], a["seconds"], a["train_loss"],
          a["val_loss"], b["seconds"], b["train_loss"], b["val_loss"], b["seconds"] / a["seconds"]))
n = len(ours_steps) // len(ours_ep) if ours_ep else 0
k = max(1, n // 10)
try:
    log16 = [r for r in msgpack.Unpacker(open(w + "/log16.mp", "rb"), raw=False) if r.get("format") != "cap"]
except OSError:
    log16 = []
bf_ep = [r for r in log16 if r["type"] == "epoch"]
bf_steps = [r["loss"] for r in log16 if r["type"] == "step"]
if bf_ep:
    print("epoch | cap-train fp32 s  train   val   | bf16 s  train   val   | bf16 speed-up  train loss diff  val loss diff")
    for a, b in zip(ours_ep, bf_ep):
        print("%5d | %8.1f   %.4f  %.4f | %6.1f  %.4f  %.4f | %5.2fx  %+7.3f%%  %+7.3f%%" % (a["epoch"], a["seconds"],
              a["train_loss"], a["val_loss"], b["seconds"], b["train_loss"], b["val_loss"], a["seconds"] / b["seconds"],
              100 * (b["train_loss"] - a["train_loss"]) / a["train_loss"], 100 * (b["val_loss"] - a["val_loss"]) / a["val_loss"]))
print("step-loss curve (mean over %d steps; %d steps an epoch):" % (k, n))
print("  steps        cap-train  PyTorch" + ("   cap bf16  bf16-fp32" if bf_steps else ""))
worst = 0
for i in range(0, min(len(ours_steps), len(t["steps"])), k):
    a, b = ours_steps[i:i + k], t["steps"][i:i + k]
    line = "  %5d-%-5d  %8.4f  %8.4f" % (i + 1, i + len(a), sum(a) / len(a), sum(b) / len(b))
    c = bf_steps[i:i + k]
    if len(c) == len(a):
        d = (sum(c) - sum(a)) / sum(a)
        worst = max(worst, abs(d))
        line += "   %8.4f  %+7.3f%%" % (sum(c) / len(c), 100 * d)
    print(line)
if bf_steps:
    print("bf16 against fp32: the largest difference of a tenth-of-an-epoch mean loss is %.3f%%" % (100 * worst))
EOF
