#!/bin/sh
# Runs each libFuzzer harness for SECONDS: tests/fuzz/run.sh BUILD SECONDS fuzz_NAME...
# BUILD holds fuzz/fuzz_NAME (the programs) and seeds/NAME (tests/fuzz/seeds.sh); the inputs
# of tests/fuzz/regressions/NAME (faults found before) are run first with the seeds. The corpus
# grows in BUILD/corpus/NAME (kept between runs), tests/fuzz/NAME.dict is used when present,
# and what a crash leaves is kept in BUILD/crashes/NAME. Prints one line per harness,
# "fuzz NAME: RUNS runs, CRASHES crashes", and exits 1 if any crashed (a crash, a sanitizer
# report, a leak, a timeout of 25 s on one input or more than 2 GB of memory).
set -u
here=$(cd "$(dirname "$0")" && pwd)
B=$1 SECONDS_EACH=$2
shift 2
failed=0
for prog in "$@"; do
	name=${prog#fuzz_}
	corpus=$B/corpus/$name crashes=$B/crashes/$name log=$B/logs/$name.log
	mkdir -p "$corpus" "$crashes" "$B/logs"
	rm -f "$crashes"/*
	set -- -max_total_time="$SECONDS_EACH" -timeout=25 -rss_limit_mb=2048 -max_len=65536 \
		-print_final_stats=1 -artifact_prefix="$crashes/"
	[ -f "$here/$name.dict" ] && set -- "$@" -dict="$here/$name.dict"
	seeds=$B/seeds/$name regress=$here/regressions/$name
	[ -d "$seeds" ] || seeds=
	[ -d "$regress" ] || regress=
	"$B/fuzz/$prog" "$@" "$corpus" $seeds $regress >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
	[ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\)[^0-9].*/\1/p' "$log" | tail -n 1)
	n=$(ls "$crashes" | wc -l)
	[ "$rc" -ne 0 ] && [ "$n" -eq 0 ] && n=1   # died without leaving an input: still a failure
	echo "fuzz $name: ${runs:-0} runs, $n crashes"
	if [ "$n" -ne 0 ]; then
		failed=1
		ls "$crashes" | sed "s|^|  input kept: $crashes/|"
		grep -m 1 -A 12 'ERROR:\|runtime error\|Timeout\|out-of-memory\|leak' "$log" | sed 's/^/  /'
		echo "  whole log: $log"
	fi
done
exit $failed
