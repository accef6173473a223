# cap-train: training runs and lowers the loss; --resume after a stop or a kill -9 gives the
# same model bit for bit; NaN stops with the step named; bad input and usage errors.
. "$(dirname "$0")/lib.sh"
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import msgpack' 2>/dev/null; then skip "cap-train: python3-msgpack missing"; exit 0; fi

# Small synthetic streams: 16 images with 64-d features, 48 captions over 50 ids.
"$PY" - "$T" "$HERE/helpers" <<'PYEOF'
import random, sys
sys.path.insert(0, sys.argv[2])
from synth import stream, features, learnable_captions, captions_header
d = sys.argv[1]
rnd = random.Random(5)
imgs = ["img%02d.jpg" % i for i in range(16)]
features(d + "/feats.mp", ["dir/" + i for i in imgs], 64, rnd)
features(d + "/feats32.mp", imgs, 32, rnd)
hdr = captions_header()
stream(d + "/caps.mp", hdr, learnable_captions(imgs, 48, 1))
stream(d + "/val.mp", hdr, learnable_captions(imgs, 16, 2))
stream(d + "/other.mp", dict(hdr, tokenizer="t2"), learnable_captions(imgs, 16, 3))
stream(d + "/nostart.mp", hdr, [{"image": "img00.jpg", "n": 0, "text": "", "ids": [5, 6, 2]}])
stream(d + "/missing.mp", hdr, learnable_captions(imgs, 8, 4) + [{"image": "nope.jpg", "n": 0, "text": "", "ids": [1, 5, 2]}])
PYEOF
A="--features $T/feats.mp --captions $T/caps.mp --embed 16 --hidden 32 --batch 4 --threads 1 --seed 3"
losses() { "$PY" -c 'import msgpack,sys; r=list(msgpack.Unpacker(open(sys.argv[1],"rb"),raw=False)); print(" ".join("%.4f" % x["train_loss"] for x in r if x.get("type") == "epoch"))' "$1"; }

check "trains 6 epochs" cap-train $A --epochs 6 --lr 0.01 -o "$T/m.st" --log "$T/log.mp"
set -- $(losses "$T/log.mp")
[ $# -eq 6 ] && "$PY" -c "import sys; sys.exit(not float('$6') < 0.8 * float('$1'))" \
	&& ok "training loss falls ($1 -> $6)" || notok "training loss falls ($*)"
[ -s "$T/m.st" ] && [ -s "$T/m.st.ckpt" ] && ok "model and checkpoint written" || notok "model and checkpoint written"
grep -q '"tokenizer_json"' "$T/m.st" && ok "model carries tokenizer_json" || notok "model carries tokenizer_json"

# Resume after a stop: 5 steps, then on to 20 (crossing epoch boundaries), with shuffling and
# dropout so that both generators must be restored; compared with an uninterrupted run.
R="$A --dropout 0.3 --layers 2 --epochs 3 --threads 2"
check "uninterrupted 20 steps" cap-train $R --max-steps 20 -o "$T/full.st"
check "first 5 steps" cap-train $R --max-steps 5 -o "$T/part.st"
check "resume to 20 steps" cap-train $R --max-steps 20 --resume "$T/part.st.ckpt" -o "$T/part.st"
check_same "resumed model equals the uninterrupted one" "$T/full.st" "$T/part.st"
check_same "resumed checkpoint equals the uninterrupted one" "$T/full.st.ckpt" "$T/part.st.ckpt"
check "resume at an epoch end" cap-train $R --max-steps 12 -o "$T/e.st"
check "resume from epoch end to 20 steps" cap-train $R --max-steps 20 --resume "$T/e.st.ckpt" -o "$T/e.st"
check_same "model resumed at an epoch boundary equals the uninterrupted one" "$T/full.st" "$T/e.st"

# kill -9 in the middle of a run checkpointing every step, then resume.
K="--features $T/feats.mp --captions $T/caps.mp --embed 64 --hidden 128 --batch 4 --threads 1 --epochs 100"
check "uninterrupted 300 steps" cap-train $K --max-steps 300 -o "$T/k1.st"
cap-train $K --max-steps 300 --save-every 1 -o "$T/k2.st" 2>/dev/null &
pid=$!
i=0
while [ ! -f "$T/k2.st.ckpt" ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.2
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
# A kill -9 during a write leaves that write's temporary file (never a complete-looking one);
# remove it so the check at the end sees only what the other runs left.
rm -f "$T"/k2.st*.tmp.*
ckstep() { "$PY" -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"]["step"])' "$1"; }
meta() { "$PY" -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"].get(sys.argv[2], ""))' "$1" "$2"; }
if [ -f "$T/k2.st.ckpt" ]; then
	s=$(ckstep "$T/k2.st.ckpt")
	[ "$s" -lt 300 ] && ok "killed at step $s of 300" || skip "the run ended before the kill"
	# a run cut short leaves no model that looks finished: only the checkpoint
	if [ "$s" -lt 300 ]; then
		[ ! -e "$T/k2.st" ] && ok "no model file after the kill" || notok "a killed run left $T/k2.st"
	fi
	check "resume after kill -9" cap-train $K --max-steps 300 --resume "$T/k2.st.ckpt" -o "$T/k2.st"
	check_same "model after kill -9 and resume equals the uninterrupted one" "$T/k1.st" "$T/k2.st"
else
	notok "no checkpoint written before the kill"
fi
ls "$T" | grep -q '\.tmp' && notok "no temporary files left ($(ls "$T"))" || ok "no temporary files left"

# Validation and early stopping.
check "validation with early stop" cap-train $A --epochs 40 --lr 0.05 --val-captions "$T/val.mp" --early-stop 2 -o "$T/v.st" --log "$T/v.mp"
"$PY" -c '
import msgpack, sys
r = [x for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "epoch"]
sys.exit(not (len(r) < 40 and all("val_loss" in x and "perplexity" in x for x in r)))' "$T/v.mp" \
	&& ok "val loss and perplexity logged; early stop ended the run" || notok "val loss and perplexity logged; early stop ended the run"
grep -q '"best_epoch' "$T/v.st" && ok "history names the best epoch" || notok "history names the best epoch"
# The model records why and when the run ended.
[ "$(meta "$T/v.st" stop_reason)" = early_stop ] && [ "$(meta "$T/v.st" epochs_requested)" = 40 ] &&
	[ "$(meta "$T/v.st" epochs_done)" -lt 40 ] && [ "$(meta "$T/v.st" device)" = cpu ] &&
	ok "metadata: stop_reason early_stop, epochs asked 40, done $(meta "$T/v.st" epochs_done), device cpu" ||
	notok "metadata of an early-stopped run ($(meta "$T/v.st" stop_reason) $(meta "$T/v.st" epochs_done))"
[ "$(meta "$T/m.st" stop_reason)" = epochs ] && [ "$(meta "$T/m.st" epochs_done)" = 6 ] &&
	ok "metadata: stop_reason epochs after all 6" || notok "metadata of a full run ($(meta "$T/m.st" stop_reason))"
[ "$(meta "$T/full.st" stop_reason)" = max_steps ] && [ "$(meta "$T/full.st" steps)" = 20 ] &&
	ok "metadata: stop_reason max_steps at 20" || notok "metadata of a --max-steps run ($(meta "$T/full.st" stop_reason))"
# With validation the model holds the best epoch's parameters: its val loss is the best logged.
"$PY" - "$T" <<'PYEOF' && ok "the model holds the best validation epoch" || notok "the model holds the best validation epoch"
import json, msgpack, struct, sys
d = sys.argv[1]
f = open(d + "/v.st", "rb"); n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(json.loads(f.read(n))["__metadata__"]["history"])
ep = [e for e in h["epochs"]]
best = min(ep, key=lambda e: e["val_loss"])
sys.exit(not (h["best_epoch"] == best["epoch"] and h["best_epoch"] < len(ep)))
PYEOF
# ... and its parameters are that epoch's: at lr 0 one more epoch reports the same val loss.
cap-train $A --init "$T/v.st" --lr 0 --epochs 1 --val-captions "$T/val.mp" -o "$T/v0.st" --log "$T/v0.mp" 2>/dev/null
"$PY" - "$T" <<'PYEOF' && ok "the saved model's val loss is the best epoch's" || notok "the saved model's val loss is the best epoch's"
import msgpack, sys
d = sys.argv[1]
ep = lambda p: [x for x in msgpack.Unpacker(open(p, "rb"), raw=False) if x.get("type") == "epoch"]
best = min(x["val_loss"] for x in ep(d + "/v.mp"))
again = ep(d + "/v0.mp")[0]["val_loss"]
print("# best %.7f, model %.7f" % (best, again))
sys.exit(not abs(best - again) <= 1e-5 * best)
PYEOF
# The encoder travels with the model: features of another encoder refuse --init.
"$PY" - "$T" <<'PYEOF'
import msgpack, sys
d = sys.argv[1]
it = msgpack.Unpacker(open(d + "/feats.mp", "rb"), raw=False)
h = next(it); recs = list(it)
for seed in (1, 2):
    hh = dict(h, encoder={"arch": "resnet152", "depth": 152, "weights": "random:%d" % seed, "precision": "fp32"},
              preprocess={"mode": "squash", "size": 224, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]})
    with open(d + "/feats-enc%d.mp" % seed, "wb") as f:
        f.write(msgpack.packb(hh))
        for r in recs: f.write(msgpack.packb(r, use_bin_type=True))
PYEOF
E1="--captions $T/caps.mp --embed 16 --hidden 32 --batch 4 --threads 1 --epochs 1"
check "a model on features of encoder random:1" cap-train $E1 --features "$T/feats-enc1.mp" -o "$T/enc1.st"
grep -q 'random:1' "$T/enc1.st" && ok "the model records its encoder" || notok "the model records its encoder"
check_fails "--init with features of another encoder" 1 "allow-encoder-mismatch" cap-train $E1 --features "$T/feats-enc2.mp" --init "$T/enc1.st" -o "$T/x.st"
check "--allow-encoder-mismatch lets it train" cap-train $E1 --features "$T/feats-enc2.mp" --init "$T/enc1.st" --allow-encoder-mismatch -o "$T/x.st"
check "--init with features of the same encoder" cap-train $E1 --features "$T/feats-enc1.mp" --init "$T/enc1.st" -o "$T/x.st"
check_fails "--resume with features of another encoder" 1 "allow-encoder-mismatch" cap-train $E1 --features "$T/feats-enc2.mp" --resume "$T/enc1.st.ckpt" -o "$T/enc1.st"
check_fails "an output folder that cannot take files" 1 "cannot write" cap-train $A --epochs 1 -o /nonexistent-dir/m.st
CAP_PROFILE=1 cap-train $A --epochs 1 -o "$T/prof.st" 2>"$T/prof.err" >/dev/null
grep -q '^cap ops profile (cpu)' "$T/prof.err" && grep -q '^  gemm .*calls .*GFLOP/s' "$T/prof.err" &&
	ok "CAP_PROFILE=1 prints the time of every op" || notok "CAP_PROFILE=1 prints the time of every op ($(tail -n 3 "$T/prof.err"))"
CAP_PROFILE=shapes cap-train $A --epochs 1 -o "$T/prof.st" 2>"$T/shapes.err" >/dev/null
"$PY" - "$T/shapes.err" <<'PYEOF' && ok "CAP_PROFILE=shapes splits every product's calls by shape" || notok "CAP_PROFILE=shapes splits every product's calls by shape ($(tail -n 3 "$T/shapes.err"))"
import re, sys
per_op, per_shape, lstm_input = {}, {}, False
for line in open(sys.argv[1]):
    m = re.match(r"  (\w+) +[0-9.]+ s +[0-9.]+% +(\d+) calls", line)
    if m:
        per_op[m.group(1)] = int(m.group(2))
    m = re.match(r"  (\w+) +ta(\d) tb(\d) M *(\d+) N *(\d+) K *(\d+) +[0-9.]+ s +[0-9.]+% +(\d+) calls +[0-9.]+ GFLOP/s", line)
    if m:
        per_shape[m.group(1)] = per_shape.get(m.group(1), 0) + int(m.group(7))
        # the input projection: (tokens, 4H) = x (tokens, E) W_ih^T, H 32 and E 16 here
        lstm_input |= m.group(1) == "matmul_bias" and m.group(5) == "128" and m.group(6) == "16"
products = {k: v for k, v in per_op.items() if k in ("gemm", "matmul", "matmul_bias")}
sys.exit(not (products and per_shape == products and lstm_input))
PYEOF
CAP_SERIAL_RECURRENCE=1 cap-train $A --epochs 2 -o "$T/serial.st" 2>/dev/null
cap-train $A --epochs 2 -o "$T/par.st" 2>/dev/null
"$PY" - "$T" <<'PYEOF' && ok "a serial recurrence trains to the same weights (1 thread here)" || notok "a serial recurrence trains to the same weights"
import struct, sys, json
d = sys.argv[1]
def body(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; return b[8 + n:]
sys.exit(body(d + "/serial.st") != body(d + "/par.st"))
PYEOF
check "--device ref trains" cap-train $A --epochs 2 --device ref -o "$T/ref.st"
check_fails "--device cuda without a CUDA backend" 2 "no CUDA backend" env CAP_CUDA_MODULE=/nonexistent/libcap-cuda.so cap-train $A --device cuda -o "$T/x.st"
check_fails "an unknown --device" 2 "unknown device" cap-train $A --device tpu -o "$T/x.st"
check_fails "--precision bf16 on a cpu without AVX512-BF16" 1 "needs a processor with AVX512-BF16" env CAP_CPU_OFF=avx512bf16 cap-train $A --precision bf16 -o "$T/x.st"
check_fails "--precision tf32 on cpu" 1 "needs --device cuda" cap-train $A --precision tf32 -o "$T/x.st"

# Failures.
check_fails "NaN loss stops naming the step" 1 "step 2 .*loss is" cap-train $A --lr 1e38 --save-every 1 -o "$T/nan.st"
[ -f "$T/nan.st.ckpt" ] && ok "the last good checkpoint stays after NaN" || notok "the last good checkpoint stays after NaN"
check_fails "tokenizer mismatch with the validation captions" 1 "tokenizer" cap-train $A --val-captions "$T/other.mp" -o "$T/x.st"
check_fails "captions without <start>" 1 "<start>" cap-train --features "$T/feats.mp" --captions "$T/nostart.mp" -o "$T/x.st"
check_fails "a features stream given as captions" 1 "captions" cap-train --features "$T/feats.mp" --captions "$T/feats.mp" -o "$T/x.st"
check "a model on 32-d features" cap-train --features "$T/feats32.mp" --captions "$T/caps.mp" --epochs 1 --embed 8 --hidden 8 -o "$T/m32.st"
check_fails "--init with another feature size" 1 "32-d features" cap-train $A --init "$T/m32.st" -o "$T/x.st"
check "unmatched captions are counted" cap-train --features "$T/feats.mp" --captions "$T/missing.mp" -o "$T/x.st" --epochs 1 --embed 8 --hidden 8
grep -q "1 captions without a feature" "$T/.err" && ok "unmatched caption reported" || notok "unmatched caption reported ($(cat "$T/.err"))"
check_fails "missing --captions" 2 "required" cap-train --features "$T/feats.mp" -o "$T/x.st"
check_fails "--early-stop without --val-captions" 2 "val-captions" cap-train $A --early-stop 2 -o "$T/x.st"
check_fails "bad --batch" 2 "batch" cap-train $A --batch 0 -o "$T/x.st"
check_fails "resume with captions of another tokenizer" 1 "tokenizer" cap-train $A --captions "$T/other.mp" --resume "$T/m.st.ckpt" -o "$T/x.st"
# Damaged model files given to --init.
"$PY" - "$T" <<'PYEOF'
import json, struct, sys
d = sys.argv[1]
raw = open(d + "/m.st", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
def write(path, hdr, data):
    b = json.dumps(hdr).encode()
    open(path, "wb").write(struct.pack("<Q", len(b)) + b + data)
data = raw[8 + n:]
write(d + "/trunc.st", h, data[:-4])
h2 = dict(h); h2["lstm.weight_hh_l0"] = dict(h["lstm.weight_hh_l0"]); h2["lstm.weight_hh_l0"]["shape"] = h["lstm.weight_hh_l0"]["shape"][::-1]
write(d + "/shape.st", h2, data)
h3 = {k: v for k, v in h.items() if k != "linear.bias"}
write(d + "/missing.st", h3, data)
PYEOF
check_fails "--init with a truncated model" 1 "trunc.st" cap-train $A --init "$T/trunc.st" -o "$T/x.st"
check_fails "--init with a wrong shape" 1 "shape.st" cap-train $A --init "$T/shape.st" -o "$T/x.st"
check_fails "--init with a missing tensor" 1 "missing.st" cap-train $A --init "$T/missing.st" -o "$T/x.st"
check_fails "not a checkpoint" 1 "checkpoint" cap-train $A --resume "$T/m.st" -o "$T/x.st"
