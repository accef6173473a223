# cap-train under mpirun (data parallelism, lib/train/dist.h): 2 and 3 ranks give one process's
# losses per step and final weights (within 1e-5) on a global batch of 64 that 3 ranks split
# unevenly, for 1 and 2 layers, with and without clipping and dropout, and the same validation
# and early stop; rank 0 alone writes; a rank killed with kill -9 fails the run with a clear
# message and leaves a usable checkpoint, from which 3 ranks continue a run 2 began; a stream
# missing on one rank's node, or other data there, stops every rank with that rank's message;
# a build without MPI says so. Skips, saying so, where mpirun is absent.
. "$(dirname "$0")/lib.sh"
PY=${PYTHON:-/usr/bin/python3}
if ! "$PY" -c 'import msgpack, numpy' 2>/dev/null; then skip "mpi: python3-msgpack or numpy missing"; exit 0; fi

"$PY" - "$T" "$HERE/helpers" <<'PYEOF'
import os, random, sys
sys.path.insert(0, sys.argv[2])
from synth import stream, features, learnable_captions, captions_header
d = sys.argv[1]
imgs = ["img%02d.jpg" % i for i in range(16)]
features(d + "/feats.mp", imgs, 64, random.Random(7))
def caps(n, seed): return learnable_captions(imgs, n, seed, lengths=(2, 12))
hdr = captions_header()
# 130 captions: batches of 64, 64 and 2 (3 ranks: 21/21/22, and 0/1/1 for the last one)
stream(d + "/caps.mp", hdr, caps(130, 1))
stream(d + "/other.mp", hdr, caps(130, 9))
stream(d + "/val.mp", hdr, caps(40, 2))
# "nodes": rank r reads node<r>/; node1 lacks the features, node4 holds other captions
for r in range(5):
    os.mkdir("%s/node%d" % (d, r))
    if r != 1: os.symlink(d + "/feats.mp", "%s/node%d/feats.mp" % (d, r))
    os.symlink(d + ("/other.mp" if r == 4 else "/caps.mp"), "%s/node%d/caps.mp" % (d, r))
PYEOF
A="--features $T/feats.mp --captions $T/caps.mp --embed 16 --hidden 32 --batch 64 --threads 1 --seed 4"

# A build without MPI (no module) started as one of several ranks says so; one rank needs none.
check_fails "several ranks without the MPI module: says so" 1 "no MPI support" \
	env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 CAP_MPI_MODULE="$T/none.so" cap-train $A --epochs 1 -o "$T/x.st"
check "CAP_MPI=0: one process whatever the environment says" \
	env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=1 CAP_MPI=0 CAP_MPI_MODULE="$T/none.so" cap-train $A --epochs 1 -o "$T/x.st"
check "one rank of one needs no MPI module" \
	env OMPI_COMM_WORLD_SIZE=1 OMPI_COMM_WORLD_RANK=0 CAP_MPI_MODULE="$T/none.so" cap-train $A --epochs 1 -o "$T/x.st"
if command -v ldd >/dev/null; then
	ldd "$CAP_BIN/cap-train" | grep -q mpi && notok "cap-train does not link MPI" || ok "cap-train does not link MPI"
fi
if [ "${CAP_NCCL_BUILT:-0}" = 1 ]; then
	m="$CAP_BIN/../lib/cap/libcap-nccl.so"
	syms=$(nm -D --defined-only "$m" 2>/dev/null | awk '$2 == "T" { print $3 }')
	check_eq "the NCCL module is built and exports its entry point only" "$syms" "cap_dist_module_init"
	skip "NCCL module not run: no GPU on this machine"
else
	skip "NCCL module not built (no nccl.h and CUDA runtime found)"
fi

if ! command -v mpirun >/dev/null; then skip "mpi: mpirun not found (Debian: openmpi-bin)"; exit 0; fi
if [ "${CAP_MPI_BUILT:-1}" != 1 ]; then skip "mpi: this build has no MPI module (no mpicc)"; exit 0; fi
syms=$(nm -D --defined-only "$CAP_BIN/../lib/cap/libcap-mpi.so" 2>/dev/null | awk '$2 == "T" { print $3 }')
check_eq "the MPI module exports its entry point only" "$syms" "cap_dist_module_init"
# Open MPI in a container: as root, more ranks than cores, shared memory without ptrace.
MPIRUN="mpirun"
if mpirun --version 2>&1 | grep -q "Open MPI"; then
	export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm=isolated \
	       OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_hwloc_base_binding_policy=none
	[ "$(id -u)" -eq 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# Under the sanitizers, leaks of the MPI library (not cap's) are not reported for the ranks.
MPIRUN="env ASAN_OPTIONS=${ASAN_OPTIONS:-}${ASAN_OPTIONS:+:}detect_leaks=0 $MPIRUN"
mpi() { n=$1; shift; timeout 120 $MPIRUN -np "$n" "$@"; }

# compare LOG1 MODEL1 LOG2 MODEL2: step losses within 1e-5 relative, weights within 1e-5.
compare() {
	"$PY" - "$@" <<'PYEOF'
import json, msgpack, numpy as np, struct, sys
def steps(p):
    return {x["step"]: x["loss"] for x in msgpack.Unpacker(open(p, "rb"), raw=False) if x.get("type") == "step"}
def tensors(p):
    raw = open(p, "rb").read(); n = struct.unpack("<Q", raw[:8])[0]; h = json.loads(raw[8:8 + n]); d = raw[8 + n:]
    return {k: np.frombuffer(d[v["data_offsets"][0]:v["data_offsets"][1]], "<f4") for k, v in h.items() if k != "__metadata__"}
a, b = steps(sys.argv[1]), steps(sys.argv[3])
common = sorted(set(a) & set(b))
rel = max(abs(a[s] - b[s]) / abs(a[s]) for s in common)
ta, tb = tensors(sys.argv[2]), tensors(sys.argv[4])
w = max(float(np.max(np.abs(ta[k] - tb[k]))) for k in ta)
ok = len(common) == len(b) and len(common) > 0 and rel <= 1e-5 and w <= 1e-5 and ta.keys() == tb.keys()
print("%d steps, loss rel diff %.2g, weights diff %.2g" % (len(common), rel, w))
sys.exit(0 if ok else 1)
PYEOF
}
meta() { "$PY" -c 'import json,struct,sys; f=open(sys.argv[1],"rb"); n=struct.unpack("<Q",f.read(8))[0]; print(json.loads(f.read(n))["__metadata__"].get(sys.argv[2]))' "$1" "$2"; }

check_fails "mpirun -np 2 of a build without the MPI module: says so, exits 1" 1 "rank 1 of 2, but this build of cap has no MPI support" \
	mpi 2 env CAP_MPI_MODULE="$T/none.so" cap-train $A --epochs 1 -o "$T/x.st"

i=0
for cfg in "--layers 1" "--layers 2" "--layers 1 --dropout 0.3 --clip-norm 0.05" "--layers 2 --dropout 0.3 --clip-norm 0.05"; do
	i=$((i + 1))
	R="$A $cfg --epochs 3 --max-steps 7"
	check "one process, $cfg" cap-train $R -o "$T/s$i.st" --log "$T/s$i.mp"
	for n in 2 3; do
		if mpi $n cap-train $R -o "$T/p$i.$n.st" --log "$T/p$i.$n.mp" >"$T/.out" 2>"$T/.err"; then
			res=$(compare "$T/s$i.mp" "$T/s$i.st" "$T/p$i.$n.mp" "$T/p$i.$n.st")
			[ $? -eq 0 ] && ok "mpirun -np $n, $cfg: one process's losses and weights ($res)" \
				|| notok "mpirun -np $n, $cfg: one process's losses and weights ($res)"
		else
			notok "mpirun -np $n, $cfg ran (exit $?): $(tail -c 300 "$T/.err")"
		fi
	done
done
check_eq "the model records world_size" "$(meta "$T/p1.3.st" world_size)/$(meta "$T/s1.st" world_size)" "3/1"
"$PY" -c 'import msgpack,sys; h=next(msgpack.Unpacker(open(sys.argv[1],"rb"),raw=False)); sys.exit(h.get("world_size") != 2)' "$T/p1.2.mp" \
	&& ok "the log header records world_size" || notok "the log header records world_size"
[ "$(grep -c "^epoch 2/3" "$T/.err")" -eq 1 ] && ok "rank 0 alone prints progress" || notok "rank 0 alone prints progress ($(cat "$T/.err"))"
[ -f "$T/p1.2.st.ckpt" ] && ! ls "$T" | grep -q '\.tmp' && ok "one checkpoint, no stray files" || notok "one checkpoint, no stray files"

# Validation shared among the ranks: the same validation losses and the same early stop.
V="$A --layers 1 --lr 0.05 --epochs 30 --val-captions $T/val.mp --early-stop 2"
check "one process with early stop" cap-train $V -o "$T/v1.st" --log "$T/v1.mp"
if mpi 3 cap-train $V -o "$T/v3.st" --log "$T/v3.mp" >"$T/.out" 2>"$T/.err"; then
	"$PY" - "$T/v1.mp" "$T/v3.mp" <<'PYEOF' && ok "mpirun -np 3: the same validation losses and early stop" || notok "mpirun -np 3: the same validation losses and early stop"
import msgpack, sys
e = [[x for x in msgpack.Unpacker(open(p, "rb"), raw=False) if x.get("type") == "epoch"] for p in sys.argv[1:]]
sys.exit(not (len(e[0]) == len(e[1]) < 30 and all(abs(a["val_loss"] - b["val_loss"]) <= 1e-5 * a["val_loss"] for a, b in zip(*e))))
PYEOF
	check_eq "mpirun -np 3: the same best epoch" "$(meta "$T/v3.st" history | sed 's/.*best_epoch//')" "$(meta "$T/v1.st" history | sed 's/.*best_epoch//')"
else
	notok "mpirun -np 3 with validation ran: $(tail -c 300 "$T/.err")"
fi

# kill -9 of rank 1 in the middle of a run checkpointing every step: the run fails saying so;
# the last complete checkpoint resumes under 3 ranks and continues the same run.
K="$A --layers 2 --dropout 0.2 --embed 32 --hidden 96 --epochs 1000"
check "one process, 120 steps" cap-train $K --max-steps 120 -o "$T/k1.st" --log "$T/k1.mp"
# shellcheck disable=SC2016
timeout 120 $MPIRUN -np 2 sh -c 'echo $$ > "$0/pid.${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}"; exec "$@"' "$T" \
	cap-train $K --max-steps 120 --save-every 1 -o "$T/k2.st" >/dev/null 2>"$T/kill.err" &
mp=$!
w=0
while { [ ! -f "$T/k2.st.ckpt" ] || [ ! -s "$T/pid.1" ]; } && [ $w -lt 600 ]; do sleep 0.05; w=$((w + 1)); done
sleep 0.3
[ -s "$T/pid.1" ] && kill -9 "$(cat "$T/pid.1")" 2>/dev/null
wait $mp
rc=$?
rm -f "$T"/k2.st*.tmp.*
if [ -f "$T/k2.st.ckpt" ]; then
	s=$(meta "$T/k2.st.ckpt" step)
	if [ "$s" -lt 120 ]; then
		[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qi "signal 9\|killed" "$T/kill.err" \
			&& ok "a rank killed at step $s fails the run (exit $rc: $(grep -i -m1 "signal 9\|killed" "$T/kill.err" | cut -c1-100))" \
			|| notok "a rank killed at step $s fails the run (exit $rc: $(head -c 300 "$T/kill.err"))"
		if mpi 3 cap-train $K --max-steps 120 --resume "$T/k2.st.ckpt" -o "$T/k2.st" --log "$T/k3.mp" >"$T/.out" 2>"$T/.err"; then
			res=$(compare "$T/k1.mp" "$T/k1.st" "$T/k3.mp" "$T/k2.st")
			[ $? -eq 0 ] && ok "3 ranks resume 2 ranks' checkpoint and continue the run ($res)" \
				|| notok "3 ranks resume 2 ranks' checkpoint and continue the run ($res)"
		else
			notok "3 ranks resume after kill -9: $(tail -c 300 "$T/.err")"
		fi
	else
		skip "the run ended before the kill"
	fi
else
	notok "no checkpoint written before the kill ($(head -c 300 "$T/kill.err"))"
fi

# A stream missing on rank 1's node; other captions on rank 1's node (node4 as rank 1).
# shellcheck disable=SC2016
check_fails "a stream missing on one rank's node stops all ranks with its message" 1 \
	"rank 1 of 3: .*node1/feats.mp: No such file" \
	mpi 3 sh -c 'r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}; exec cap-train --features "$0/node$r/feats.mp" --captions "$0/node$r/caps.mp" --epochs 2 --batch 64 --embed 16 --hidden 32 --threads 1 -o "$0/bad.st"' "$T"
# shellcheck disable=SC2016
check_fails "other captions on one rank's node stop all ranks" 1 "rank 1 of 2: the captions .*differ from rank 0's" \
	mpi 2 sh -c 'r=${OMPI_COMM_WORLD_RANK:-${PMI_RANK:-0}}; [ "$r" = 1 ] && r=4; exec cap-train --features "$0/node$r/feats.mp" --captions "$0/node$r/caps.mp" --epochs 2 --batch 64 --embed 16 --hidden 32 --threads 1 -o "$0/bad.st"' "$T"
[ ! -e "$T/bad.st" ] && ok "no model written by a failed run" || notok "no model written by a failed run"
check_fails "a NaN loss stops every rank, told once" 1 "step 2 .*loss is" mpi 2 cap-train $A --lr 1e38 -o "$T/nan.st"
[ "$(grep -c "loss is" "$T/.err")" -eq 1 ] && ok "the NaN message is printed once" || notok "the NaN message is printed once ($(cat "$T/.err"))"

# pipelines/slurm/train-mpi.sbatch with a stand-in srun (no Slurm here) that starts 2 ranks with
# mpirun: the options it gives srun, a model from 2 ranks, and RESUME=1 continuing the run.
mkdir "$T/fakebin"
cat >"$T/fakebin/srun" <<SHEOF
#!/bin/sh
echo "srun \$*" >>"\$FAKE_SRUN_LOG"
while [ \$# -gt 0 ]; do case \$1 in --*) shift ;; *) break ;; esac; done
exec timeout 120 $MPIRUN -np 2 "\$@"
SHEOF
chmod +x "$T/fakebin/srun"
S="$ROOT/pipelines/slurm/train-mpi.sbatch"
check "train.sbatch runs srun cap-train" env PATH="$T/fakebin:$PATH" FAKE_SRUN_LOG="$T/srun.log" SLURM_CPUS_PER_TASK=1 \
	sh "$S" "$T/feats.mp" "$T/caps.mp" "$T/sb.st" --epochs 1 --batch 64 --embed 16 --hidden 32
grep -q -- "--kill-on-bad-exit=1 .*cap-train --features $T/feats.mp --captions $T/caps.mp -o $T/sb.st --threads 1" "$T/srun.log" \
	&& ok "train.sbatch: srun --kill-on-bad-exit, the streams and one thread a task" || notok "train.sbatch: srun options ($(cat "$T/srun.log"))"
check_eq "train.sbatch: the model comes from 2 ranks" "$(meta "$T/sb.st" world_size)" "2"
check "train.sbatch RESUME=1 continues from the checkpoint" env PATH="$T/fakebin:$PATH" FAKE_SRUN_LOG="$T/srun.log" \
	SLURM_CPUS_PER_TASK=1 RESUME=1 sh "$S" "$T/feats.mp" "$T/caps.mp" "$T/sb.st" --epochs 2 --batch 64 --embed 16 --hidden 32
check_eq "train.sbatch RESUME=1: two epochs in all" "$(meta "$T/sb.st" epochs_done)" "2"
check_fails "train.sbatch without its arguments" 2 "usage" sh "$S" "$T/feats.mp"
