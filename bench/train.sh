# cap-train against the same decoder in PyTorch (bench/train_torch.py), side by side at the
# same thread count: E=256, H=512, batch 64, Adam, on the Flickr8k train captions (tokenized by
# cap-tokenize at min-count 5, V about 2,539) with random 2048-d features per image.
# Seconds per step: the median over STEPS steps after warm-up, extrapolated to the epoch; ours
# RUNS times (3) interleaved, the median of the runs' medians used for the ratios
# (469 steps); bf16 against fp32 also as the median ratio of PAIRS (5) back-to-back runs of
# PSTEPS (200) steps; BENCH_FULL=1 also times one whole epoch of cap-train. Peak RSS from
# /usr/bin/time -v (ours) and getrusage (PyTorch).
# PyTorch's BLAS: Debian's torch 1.13 is built with BLAS_INFO=generic and calls whatever
# libblas.so.3 is selected; with only libblas3 (netlib's reference BLAS) installed its matrix
# products are ~15x slower than with OpenBLAS. For a fair baseline PyTorch also runs with
# OpenBLAS (OPENBLAS_CORETYPE=Haswell) when one is found: TORCH_OPENBLAS=DIR (a directory
# holding OpenBLAS's libblas.so.3, e.g. from `apt-get download libopenblas0-pthread` and
# `dpkg -x`), or the installed /usr/lib/x86_64-linux-gnu/openblas-pthread. The ratio is
# reported against the fastest PyTorch.
set -u
PY=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-2}
STEPS=${STEPS:-40}
TSTEPS=${TSTEPS:-10}  # PyTorch steps (it is the slow side)
D=${CAP_DATA:-../shared/data}/flickr8k
[ -f "$D/Flickr8k.token.txt" ] || { echo "skip: no Flickr8k in $D"; exit 0; }
here=$(cd "$(dirname "$0")" && pwd)
W=$(mktemp -d "${TMPDIR:-/tmp}/cap-bench-train.XXXXXX")
trap 'rm -rf "$W"' EXIT
PATH=${CAP_BIN:-$here/../build/bin}:$PATH

if command -v cap-tokenize >/dev/null; then
	cap-tokenize vocab --split "$D/Flickr_8k.trainImages.txt" -o "$W/tok.json" "$D/Flickr8k.token.txt" 2>/dev/null &&
	cap-tokenize encode --tokenizer "$W/tok.json" --split "$D/Flickr_8k.trainImages.txt" \
		-o "$W/captions.mp" "$D/Flickr8k.token.txt" 2>/dev/null
fi
"$PY" "$here/train_torch.py" make-data "$(dirname "$D")" "$W" >/dev/null  # features (+ captions if needed)
[ -s "$W/captions.mp" ] || { echo "no captions"; exit 1; }
"$PY" -c '
import msgpack, sys
it = msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False); h = next(it)
print("# data: %d captions, vocab %d" % (sum(1 for _ in it), h["vocab_size"]))' "$W/captions.mp"

ours() { # label, extra options
	label=$1; shift
	/usr/bin/time -v cap-train --features "$W/features.mp" --captions "$W/captions.mp" -o "$W/m.st" \
		--threads "$THREADS" --epochs 1 --log "$W/log.mp" "$@" 2>"$W/time.txt" >/dev/null || { cat "$W/time.txt"; return; }
	rss=$(awk '/Maximum resident/ {print $6}' "$W/time.txt")
	"$PY" -c '
import msgpack, os, sys
r = [x for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "step"][3:]
secs = sorted(x["seconds"] for x in r); tok = sum(x["tokens"] for x in r) / len(r)
s = secs[len(secs) // 2]; mean = sum(secs) / len(secs)
print("%-28s %.4f s/step (median of %d steps; mean %.4f) %6.1f s/epoch (469 steps) %4.0f tokens/step  peak RSS %.0f MB"
      % (sys.argv[2], s, len(secs), mean, s * 469, tok, int(sys.argv[3]) / 1024))
# FLOPs of the step: per token the forward is 2 (4HE + 4HH + HV), the backward twice that; per
# caption the projection 2 DE, times 3 likewise (E 256, H 512, D 2048, batch 64).
# The rate is the FLOPs of each step over the seconds of that step, the median over the steps:
# the token counts of shuffled batches are skewed (a few long ones), so the seconds of the median
# step against the FLOPs of the mean step would overstate it (91% where the steps ran at 84-86%).
V = next(msgpack.Unpacker(open(sys.argv[5], "rb"), raw=False))["vocab_size"]
E, H, D, B = 256, 512, 2048, 64
def flops(t): return 3 * t * 2 * (4 * H * E + 4 * H * H + H * V) + 3 * B * 2 * D * E
fl = flops(tok)
rates = sorted(flops(x["tokens"]) / x["seconds"] / 1e9 for x in r)
g = rates[len(rates) // 2]
tput = sum(flops(x["tokens"]) for x in r) / sum(x["seconds"] for x in r) / 1e9
peak = float(os.environ.get("PEAK_BF16_GFLOPS" if "bf16" in sys.argv[2] else "PEAK_GFLOPS") or 0)
print("%-28s %.2f GFLOP a mean step; per step %.1f GFLOP/s (median; %.1f over all)%s" % ("", fl / 1e9, g, tput,
      ", %.0f%% of the measured %.0f GFLOP/s peak" % (100 * g / peak, peak) if peak else ""))
open(sys.argv[4], "a").write("%.6f %.6f\n" % (s, g))' "$W/log.mp" "$label" "$rss" "$W/runs.$label" "$W/captions.mp"
}
summary() { # label: the median over the runs of the runs' median steps -> $W/s.label
	"$PY" -c '
import os, sys
runs = sorted(tuple(map(float, l.split())) for l in open(sys.argv[1]))
s = runs[len(runs) // 2][0]
g = sorted(r[1] for r in runs)[len(runs) // 2]
peak = float(os.environ.get("PEAK_BF16_GFLOPS" if "bf16" in sys.argv[2] else "PEAK_GFLOPS") or 0)
print("%-28s median of %d runs: %.4f s/step (runs %s), %.1f GFLOP/s a step (runs %s)%s" % (sys.argv[2], len(runs), s,
      " ".join("%.4f" % r[0] for r in runs), g, " ".join("%.0f" % r[1] for r in runs),
      ", %.0f%% of the measured %.0f GFLOP/s peak" % (100 * g / peak, peak) if peak else ""))
open(sys.argv[3], "w").write("%.6f" % s)' "$W/runs.$1" "$1" "$W/s.$1"
}
# Where a step's time goes: one more run under CAP_PROFILE (each op timed to its end), the
# products' rate inside the step against the peak (the share the step would reach if every
# other op took no time) and the other ops' milliseconds a step. The profile covers every step,
# warm-up included, and its timing adds a little to each op.
profile() { # label, extra options
	label=$1; shift
	CAP_PROFILE=1 cap-train --features "$W/features.mp" --captions "$W/captions.mp" -o "$W/m.st" \
		--threads "$THREADS" --epochs 1 --log "$W/plog.mp" "$@" 2>"$W/prof.txt" >/dev/null || { tail -n 3 "$W/prof.txt"; return; }
	"$PY" -c '
import msgpack, os, re, sys
steps = sum(1 for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "step")
prod_t = prod_f = 0.0; other = []
for l in open(sys.argv[2]):
    if "by shape" in l: break
    m = re.match(r"\s+(\w+)\s+([0-9.]+) s\s+[0-9.]+%\s+\d+ calls(?:\s+([0-9.]+) GFLOP/s)?", l)
    if not m: continue
    t = float(m.group(2))
    if m.group(3): prod_t += t; prod_f += t * float(m.group(3))
    else: other.append((t, m.group(1)))
other.sort(reverse=True)
peak = float(os.environ.get("PEAK_BF16_GFLOPS" if "bf16" in sys.argv[3] else "PEAK_GFLOPS") or 0)
rate = prod_f / prod_t if prod_t else 0
print("%-28s products %.1f ms a step at %.1f GFLOP/s%s; other ops %.1f ms a step (%s)" % (sys.argv[3] + " profiled",
      1e3 * prod_t / steps, rate, " (%.0f%% of the measured peak: the share with the other ops at no time)" % (100 * rate / peak) if peak else "",
      1e3 * sum(t for t, _ in other) / steps, ", ".join("%s %.2f" % (n, 1e3 * t / steps) for t, n in other[:5])))' \
		"$W/plog.mp" "$W/prof.txt" "$label"
}
RUNS=${RUNS:-3}
echo "# threads $THREADS; ours $STEPS steps, PyTorch $TSTEPS steps, each after 3 warm-up steps; ours $RUNS runs each, interleaved"
bf16=0
[ -n "${PEAK_BF16_GFLOPS:-}" ] && bf16=1
for run in $(seq "$RUNS"); do
	ours "cap-train (shuffled)" --max-steps $((STEPS + 3))
	ours "cap-train --no-shuffle" --max-steps $((STEPS + 3)) --no-shuffle
	[ "$bf16" = 1 ] && ours "cap-train --precision bf16" --max-steps $((STEPS + 3)) --precision bf16
done
summary "cap-train (shuffled)"
summary "cap-train --no-shuffle"
if [ "$bf16" = 1 ]; then
	summary "cap-train --precision bf16"
	"$PY" -c 'import sys; print("bf16 step against fp32 (both shuffled, medians of the runs): %.2fx faster" % (float(open(sys.argv[1]).read()) / float(open(sys.argv[2]).read())))' \
		"$W/s.cap-train (shuffled)" "$W/s.cap-train --precision bf16"
	# The bf16 target is a ratio, and this VM drifts by 5-20% within minutes: runs of the two
	# precisions back to back, each pair's ratio of its medians, the median of the pairs'
	# ratios. Longer runs than the window above, so that oneDNN's making of primitives for new
	# token counts (most of it in the first few dozen steps) weighs less.
	PAIRS=${PAIRS:-5} PSTEPS=${PSTEPS:-200}
	: >"$W/pairs"
	for i in $(seq "$PAIRS"); do
		for p in fp32 bf16; do
			cap-train --features "$W/features.mp" --captions "$W/captions.mp" -o "$W/m.st" --threads "$THREADS" \
				--epochs 1 --max-steps $((PSTEPS + 3)) --precision $p --log "$W/pl-$p.mp" 2>/dev/null >/dev/null ||
				{ echo "pair $i: cap-train --precision $p failed"; continue 2; }
		done
		"$PY" -c '
import msgpack, sys
def med(f):
    s = sorted(x["seconds"] for x in msgpack.Unpacker(open(f, "rb"), raw=False) if x.get("type") == "step")
    s = s[3:] if len(s) > 3 else s
    return s[len(s) // 2]
a, b = med(sys.argv[1]), med(sys.argv[2])
print("%.4f %.4f %.3f" % (a, b, a / b))' "$W/pl-fp32.mp" "$W/pl-bf16.mp" >>"$W/pairs"
	done
	"$PY" -c '
import sys
p = [tuple(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
if p:
    r = sorted(x[2] for x in p)
    print("bf16 step against fp32 in %d interleaved pairs of %s steps: median %.2fx (pairs %s; fp32 %s, bf16 %s s/step)" % (
          len(p), sys.argv[2], r[len(r) // 2], " ".join("%.2f" % x[2] for x in p),
          " ".join("%.4f" % x[0] for x in p), " ".join("%.4f" % x[1] for x in p)))' "$W/pairs" "$PSTEPS"
else
	echo "cap-train --precision bf16: not measured (this processor has no AVX512-BF16)"
fi
profile "cap-train (shuffled)" --max-steps $((STEPS + 3))
[ "$bf16" = 1 ] && profile "cap-train --precision bf16" --max-steps $((STEPS + 3)) --precision bf16
"$PY" "$here/train_torch.py" torch "$W" "$THREADS" "$TSTEPS" | sed 's/^torch/torch (libblas.so.3 as installed)/' | tee "$W/torch.txt"
OB=${TORCH_OPENBLAS:-/usr/lib/x86_64-linux-gnu/openblas-pthread}
if [ -f "$OB/libblas.so.3" ]; then
	LD_LIBRARY_PATH="$OB" OPENBLAS_CORETYPE=Haswell "$PY" "$here/train_torch.py" torch "$W" "$THREADS" "$TSTEPS" |
		sed 's/^torch/torch (OpenBLAS)/' | tee -a "$W/torch.txt"
fi
# PyTorch's own mixed precision on CPU (autocast to bf16, its products through oneDNN), the
# peer of --precision bf16.
if [ -n "${PEAK_BF16_GFLOPS:-}" ]; then
	"$PY" "$here/train_torch.py" torch-bf16 "$W" "$THREADS" "$TSTEPS" | sed 's/^torch/torch-bf16 (autocast)/' >"$W/torch16.txt"
	cat "$W/torch16.txt"
fi
"$PY" -c '
import re, sys
def best(path):
    try: return min(float(re.search(r"\) ([0-9.]+) s/step", l).group(1)) for l in open(path))
    except (OSError, ValueError): return None
t32, t16 = best(sys.argv[1]), best(sys.argv[3])
for lab, t, peer in (("cap-train (shuffled)", t32, "fastest PyTorch fp32"), ("cap-train --no-shuffle", t32, "fastest PyTorch fp32"),
                     ("cap-train --precision bf16", t16, "PyTorch bf16 autocast")):
    try: s = float(open(sys.argv[2] + "/s." + lab).read())
    except OSError: continue
    if t: print("ratio %s / %s: %.2fx" % (peer, lab, t / s))' "$W/torch.txt" "$W" "$W/torch16.txt"
if [ "${BENCH_FULL:-0}" = 1 ]; then
	start=$(date +%s.%N)
	cap-train --features "$W/features.mp" --captions "$W/captions.mp" -o "$W/m.st" --threads "$THREADS" --epochs 1 2>&1 | tail -1
	echo "cap-train one full epoch: $(echo "$(date +%s.%N) - $start" | bc) s (including loading)"
fi
