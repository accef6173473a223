#!/bin/sh
# Encodes the images of a list in N shards spread over hosts with GNU parallel, then joins the
# shards in order into one features stream (cap-stream(5): shards concatenate).
#   pipelines/parallel-encode.sh --hosts 2/h1,2/h2,: --shards 8 --list images.txt -o features.mp \
#       [--parallel "parallel --sshdelay 0.1"] [--dry-run] -- cap-encode --weights W [OPTIONS]
# --hosts is parallel's --sshlogin list (N/host runs N jobs there; ':' is this machine). Every
# host must see the list, the images and the output folder at the same paths (a shared
# folder; the jobs run in this folder) and have the command (give its absolute path, or a path
# relative to this folder). Shard K is written to OUT.K, joined into OUT when all succeeded.
# --dry-run prints the jobs' commands (parallel --dry-run) and runs nothing.
set -eu
prog=parallel-encode.sh
usage() { sed -n '2,12s/^# \{0,1\}//p' "$0" >&2; exit 2; }
hosts="" shards="" list="" out="" par=parallel dry=""
while [ $# -gt 0 ]; do
	case $1 in
	--hosts) hosts=$2; shift 2 ;;
	--shards) shards=$2; shift 2 ;;
	--list) list=$2; shift 2 ;;
	-o) out=$2; shift 2 ;;
	--parallel) par=$2; shift 2 ;;
	--dry-run) dry=--dry-run; shift ;;
	--) shift; break ;;
	-h|--help) usage ;;
	*) echo "$prog: unknown option $1" >&2; usage ;;
	esac
done
[ -n "$hosts" ] && [ -n "$list" ] && [ -n "$out" ] && [ $# -gt 0 ] || usage
case $shards in ''|*[!0-9]*|0) echo "$prog: --shards must be a positive integer, got '$shards'" >&2; exit 2 ;; esac
[ -r "$list" ] || { echo "$prog: $list: cannot read the image list" >&2; exit 1; }
command -v "${par%% *}" >/dev/null || {
	echo "$prog: '${par%% *}' not found: install GNU parallel (Debian: apt-get install parallel)" >&2; exit 1; }

# The encoder's command line, quoted for the shell that parallel starts on each host.
cmd=""
for a in "$@"; do
	cmd="$cmd '$(printf '%s' "$a" | sed "s/'/'\\\\''/g")'"
done
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
$par $dry --halt now,fail=1 -S "$hosts" --workdir "$PWD" \
	"$cmd --shard {}/$shards -o $(q "$out").{} < $(q "$list")" ::: $(seq 1 "$shards")
[ -n "$dry" ] && exit 0
parts=""
for k in $(seq 1 "$shards"); do parts="$parts $out.$k"; done
# shellcheck disable=SC2086
cat $parts > "$out.tmp" && mv "$out.tmp" "$out"
rm -f $parts
