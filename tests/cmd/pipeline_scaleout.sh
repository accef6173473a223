# Scale-out recipes of pipelines/flickr8k.mk, run locally: GNU parallel over hosts (HOSTS=,
# pipelines/parallel-encode.sh), and the Slurm job array of pipelines/slurm/ with sbatch and
# srun faked by tests/cmd/helpers/fake-slurm (they run each job here, in order).
. "$(dirname "$0")/lib.sh"
. "$HERE/helpers/pipeline.sh"
mini_flickr "$T"
set -- FLICKR="$T/f8k" IMAGES="$T/jpg" MIN_COUNT=1 EPOCHS=2 EMBED=16 HIDDEN=32 BATCH=16 THREADS=2 \
	PREPROCESS="--squash 32 --batch 16"
mk() { make --no-print-directory -C "$ROOT" -f pipelines/flickr8k.mk BIN="$CAP_BIN" "$@"; }

# The reference: the features of one run through make's shards.
mk "$@" SHARDS=2 OUT="$T/local" "$T/local/features.mp" >"$T/local.log" 2>&1
check_eq "features by make's shards" "$?" 0

# GNU parallel: the shards on the hosts ":" (this machine, no ssh), then joined.
if ! command -v parallel >/dev/null; then
	skip "GNU parallel: not installed (scripts/install-deps.sh installs it)"
else
	mk "$@" SHARDS=3 HOSTS=: OUT="$T/par" "$T/par/features.mp" >"$T/par.log" 2>&1
	check_eq "HOSTS=: encodes through parallel" "$?" 0
	grep -q "parallel-encode.sh --parallel \"parallel\" --hosts \":\" --shards 3" "$T/par.log" \
		&& ok "HOSTS= runs pipelines/parallel-encode.sh" || notok "HOSTS= runs pipelines/parallel-encode.sh ($(head -c 300 "$T/par.log"))"
	cap-dump --no-header "$T/par/features.mp" | sort >"$T/par.txt"
	cap-dump --no-header "$T/local/features.mp" | sort >"$T/local.txt"
	check_same "3 shards over parallel: the records of make's 2 shards" "$T/par.txt" "$T/local.txt"
	check_eq "3 shards joined in order: headers of shards 1/3, 2/3, 3/3" "$("$PYTHON" -c '
import sys, msgpack
print(" ".join(o["shard"] for o in msgpack.Unpacker(open(sys.argv[1], "rb"), raw=False) if "format" in o))' "$T/par/features.mp")" "1/3 2/3 3/3"
	check_eq "shard files removed after the join" "$(ls "$T/par"/features.mp.* 2>/dev/null | wc -l)" 0
	# Remote hosts, as a dry run: the command each job would run there.
	"$ROOT/pipelines/parallel-encode.sh" --dry-run --hosts 1/h1,1/h2 --shards 2 --list "$T/local/images.txt" \
		-o "$T/x.mp" -- "$CAP_BIN/cap-encode" --weights random:1 --squash 32 >"$T/dry.txt" 2>"$T/dry.err"
	check_eq "dry run over 2 hosts: one job a shard" "$(grep -c "cap-encode' '--weights' 'random:1' '--squash' '32' --shard [12]/2 -o '$T/x.mp'.[12] < '$T/local/images.txt'" "$T/dry.txt")" 2
	check_eq "dry run: nothing written" "$(ls "$T"/x.mp* 2>/dev/null | wc -l)" 0
	check_fails "parallel-encode.sh: --shards checked" 2 "positive integer" \
		"$ROOT/pipelines/parallel-encode.sh" --hosts : --shards 0 --list "$T/local/images.txt" -o "$T/y.mp" -- cap-encode
	check_fails "parallel-encode.sh: a failing shard fails the join" 1 "" sh -c \
		"'$ROOT/pipelines/parallel-encode.sh' --hosts : --shards 2 --list '$T/local/images.txt' -o '$T/z.mp' -- '$CAP_BIN/cap-encode' --weights '$T/nosuch.safetensors'"
	check_eq "a failing shard: no joined output" "$(ls "$T"/z.mp 2>/dev/null | wc -l)" 0
fi

# Slurm: submit.sh with sbatch and srun faked.
export FAKE_SLURM_DIR="$T/slurm"
mkdir -p "$FAKE_SLURM_DIR"
PATH="$HERE/helpers/fake-slurm:$PATH"
cd "$ROOT"
check_fails "slurm: a wrong IMAGES fails before anything is queued" 2 "IMAGES=$T/nope is not a folder" \
	pipelines/slurm/submit.sh BIN="$CAP_BIN" OUT="$T/sl" "$@" IMAGES="$T/nope" SHARDS=2
check_eq "slurm: nothing submitted" "$(cat "$FAKE_SLURM_DIR/log" 2>/dev/null | wc -l)" 0
pipelines/slurm/submit.sh BIN="$CAP_BIN" OUT="$T/sl" "$@" SHARDS=2 -- --partition=test >"$T/submit.out" 2>"$T/submit.err"
check_eq "slurm: submit.sh succeeds" "$?" 0
L=$FAKE_SLURM_DIR/log
grep -q "^sbatch --parsable --array=1-2 .*--partition=test .*encode.sbatch$" "$L" && ok "slurm: an array of 2 encoding tasks" \
	|| notok "slurm: an array of 2 encoding tasks ($(cat "$L"))"
grep -q "^sbatch --parsable --dependency=afterok:1001 .*--partition=test .*train.sbatch$" "$L" \
	&& ok "slurm: the training job depends on the array (afterok)" || notok "slurm: the training job depends on the array (afterok)"
check_eq "slurm: every job succeeded" "$(cat "$FAKE_SLURM_DIR"/100[12].rc | tr '\n' ' ')" "0 0 "
for k in 1 2; do
	grep -q "cap-encode .*--shard $k/2 " "$T/sl/slurm-encode-$k.log" && ok "slurm: task $k runs cap-encode --shard $k/2" \
		|| notok "slurm: task $k runs cap-encode --shard $k/2 ($(head -c 400 "$T/sl/slurm-encode-$k.log"))"
done
check_eq "slurm: srun runs the steps (2 tasks, 1 training job)" "$(grep -c '^srun make' "$L")" 3
check_eq "slurm: the training job encodes no shard" "$(grep -c -- '--shard' "$T/sl/slurm-train.log")" 0
grep -q "cap-train " "$T/sl/slurm-train.log" && grep -q "cat .*features.1.mp .*features.2.mp" "$T/sl/slurm-train.log" \
	&& ok "slurm: the training job joins the shards and trains" || notok "slurm: the training job joins the shards and trains"
for f in scores.txt report.html settings.txt; do
	[ -s "$T/sl/$f" ] || notok "slurm: run folder holds $f"
done
ok "slurm: the run folder holds scores.txt, report.html, settings.txt"
cap-dump --no-header "$T/sl/features.mp" | sort >"$T/sl.txt"
check_same "slurm: the features of the local run" "$T/sl.txt" "$T/local.txt"
grep -q "submit.sh: encoding array 1001 (2 tasks), then job 1002" "$T/submit.out" && ok "slurm: submit.sh names the jobs" \
	|| notok "slurm: submit.sh names the jobs ($(cat "$T/submit.out"))"
pipelines/slurm/submit.sh --dry-run BIN="$CAP_BIN" OUT="$T/sl2" "$@" PREPROCESS='--squash 32 --batch 16' SHARDS=3 >"$T/dry.out" 2>"$T/dry.err"
check_eq "slurm --dry-run: the two sbatch commands, nothing run" "$(grep -c '^sbatch ' "$T/dry.err") $(cat "$L" | grep -c sl2)" "2 0"
grep -q '^PREPROCESS = --squash 32 --batch 16$' "$T/sl2/slurm.mk" && grep -q '^SHARDS = 3$' "$T/sl2/slurm.mk" \
	&& ok "slurm: the settings written to OUT/slurm.mk" || notok "slurm: the settings written to OUT/slurm.mk"
