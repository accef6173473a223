# Data-parallel cap-train (mpirun -np N, lib/train/dist.h): steps per second for N = 1 and 2
# ranks of one thread each, on the sizes of bench/train.sh (E=256, H=512, V=2539, batch 64,
# 2048-d features: 4.2 M parameters, a 16.9 MB gradient summed every step), and the share of a
# step spent in the sums over the ranks ("reduce_seconds" of the metrics log: the all-reduce of
# the gradient and of the loss, waiting for the slower rank included). Synthetic data (random
# features, captions of 8-20 ids, as Flickr8k's lengths), so that it needs no data set.
# STEPS steps are timed after 3 warm-up steps. Not a test: it asserts nothing about time.
set -u
PY=${PYTHON:-/usr/bin/python3}
STEPS=${STEPS:-30}
here=$(cd "$(dirname "$0")" && pwd)
PATH=${CAP_BIN:-$here/../build/bin}:$PATH
command -v mpirun >/dev/null || { echo "skip: no mpirun (Debian: openmpi-bin)"; exit 0; }
[ -f "$(dirname "$(command -v cap-train)")/../lib/cap/libcap-mpi.so" ] || { echo "skip: cap built without MPI"; exit 0; }
W=$(mktemp -d "${TMPDIR:-/tmp}/cap-bench-mpi.XXXXXX")
trap 'rm -rf "$W"' EXIT
"$PY" - "$W" "$here/../tests/cmd/helpers" <<'PYEOF'
import random, sys
sys.path.insert(0, sys.argv[2])
from synth import stream, features
d = sys.argv[1]
rnd = random.Random(1)
n = 1000
features(d + "/feats.mp", ["i%d" % i for i in range(n)], 2048, rnd)
stream(d + "/caps.mp", {"kind": "captions", "vocab_size": 2539},
       ({"image": "i%d" % (k % n), "n": k // n, "text": "",
         "ids": [1] + [rnd.randrange(4, 2539) for _ in range(rnd.randint(6, 18))] + [2]} for k in range(5 * n)))
PYEOF
if mpirun --version 2>&1 | grep -q "Open MPI"; then
	export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm=isolated \
	       OMPI_MCA_rmaps_base_oversubscribe=1
	[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
echo "# E=256 H=512 V=2539 batch 64, 4.2 M parameters; $STEPS steps after 3 warm-up steps; one thread a rank"
run() { # N
	n=$1
	A="--features $W/feats.mp --captions $W/caps.mp -o $W/m$n.st --threads 1 --epochs 1 --max-steps $((STEPS + 3)) --log $W/log$n.mp"
	if [ "$n" -eq 1 ]; then cap-train $A 2>"$W/err"; else mpirun -np "$n" cap-train $A 2>"$W/err"; fi ||
		{ echo "N=$n failed: $(tail -3 "$W/err")"; return; }
	"$PY" - "$W/log$n.mp" "$n" <<'PYEOF'
import msgpack, sys
r = [x for x in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if x.get("type") == "step"][3:]
s = sorted(x["seconds"] for x in r)[len(r) // 2]
tot = sum(x["seconds"] for x in r); red = sum(x.get("reduce_seconds", 0) for x in r)
print("N=%s  %.4f s/step (median)  %.2f steps/s  %6.0f tokens/s  sums over the ranks %.1f%% of a step"
      % (sys.argv[2], s, 1 / s, sum(x["tokens"] for x in r) / tot, 100 * red / tot))
PYEOF
}
run 1
run 2
