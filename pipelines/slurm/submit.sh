#!/bin/sh
# Runs pipelines/flickr8k.mk on a Slurm cluster: a job array whose task K encodes shard K of
# SHARDS (cap-encode --shard K/SHARDS), then a job that depends on the whole array (afterok),
# joins the shards and trains, generates, evaluates and writes the report.
#   pipelines/slurm/submit.sh [--dry-run] [VAR=VALUE...] [-- SBATCH-OPTIONS...]
# VAR=VALUE are the variables of pipelines/flickr8k.mk (OUT, IMAGES, WEIGHTS, PREPROCESS,
# SHARDS (default 4), EPOCHS, ...); they are written to OUT/slurm.mk, the makefile every job
# runs, so the jobs see the same settings whatever their environment. Run it in the folder the
# jobs should run in (it must be shared with the compute nodes). The image lists and the
# settings stamps are made here first (make prepare), so a wrong IMAGES fails before anything
# is queued. SBATCH-OPTIONS (e.g. --partition=cpu --account=me) go to both sbatch calls;
# each job's log is OUT/slurm-*.log. --dry-run prints the sbatch commands instead.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dry=""
[ "${1:-}" = --dry-run ] && { dry=1; shift; }
out=build/flickr8k shards=4
mk=$(mktemp)
trap 'rm -f "$mk"' EXIT
while [ $# -gt 0 ]; do
	case $1 in
	--) shift; break ;;
	[A-Za-z_]*=*)
		var=${1%%=*} val=${1#*=}
		case $var in *[!A-Za-z0-9_]*) echo "submit.sh: bad variable name '$var'" >&2; exit 2 ;; esac
		[ "$var" = OUT ] && out=$val
		[ "$var" = SHARDS ] && shards=$val
		# make reads VALUE literally: $ doubled
		printf '%s = %s\n' "$var" "$(printf '%s' "$val" | sed 's/\$/$$/g')" >>"$mk"
		shift ;;
	*) echo "submit.sh: expected VAR=VALUE or --, got '$1'" >&2; exit 2 ;;
	esac
done
case $shards in ''|*[!0-9]*|0) echo "submit.sh: SHARDS must be a positive integer, got '$shards'" >&2; exit 2 ;; esac
mkdir -p "$out"
run=$(cd "$out" && pwd)/slurm.mk
{
	echo "# Written by pipelines/slurm/submit.sh: the settings of this run, for every job."
	grep -v '^SHARDS = ' "$mk" || true
	echo "SHARDS = $shards"
	echo "include $here/../flickr8k.mk"
	echo 'print-%: ; @echo $($*)'
} >"$run"
make --no-print-directory -f "$run" prepare
sb() { if [ -n "$dry" ]; then echo "sbatch $*" >&2; echo "dry-run-$#"; else sbatch "$@"; fi; }
jid=$(sb --parsable --array=1-"$shards" --chdir="$PWD" --export=ALL,CAP_RUN="$run" \
	--output="$out/slurm-encode-%a.log" "$@" "$here/encode.sbatch")
jid=${jid%%;*}
tid=$(sb --parsable --dependency=afterok:"$jid" --chdir="$PWD" --export=ALL,CAP_RUN="$run" \
	--output="$out/slurm-train.log" "$@" "$here/train.sbatch")
tid=${tid%%;*}
echo "submit.sh: encoding array $jid ($shards tasks), then job $tid (join, train, report); run folder $out"
