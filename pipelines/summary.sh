#!/bin/sh
# A table of the pipeline runs under the given folders (default: build): one line a run folder
# (a folder holding settings.txt, as pipelines/*.mk write them), with the settings whose values
# differ between the runs and the scores of scores.txt (BLEU-1, BLEU-4, CIDEr-D, ROUGE-L).
# Tab-separated, with a header line; "-" where a run has no value (e.g. no scores yet).
#   pipelines/summary.sh [FOLDER...]
set -eu
[ $# -gt 0 ] || set -- build
for d in "$@"; do
	[ -d "$d" ] || { echo "summary.sh: $d: not a folder" >&2; exit 1; }
done
runs=$(find "$@" -maxdepth 3 -name settings.txt -type f 2>/dev/null | sort | sed 's|/settings.txt$||')
if [ -z "$runs" ]; then
	echo "summary.sh: no run under $* (a run folder holds settings.txt)" >&2
	exit 1
fi
for r in $runs; do
	# One line a value: RUN<TAB>s<TAB>KEY<TAB>VALUE or RUN<TAB>m<TAB>METRIC<TAB>VALUE.
	sed -n "s|^\([^=]*\)=\(.*\)$|$r	s	\1	\2|p" "$r/settings.txt"
	[ -f "$r/scores.txt" ] && sed -n "s|^\([A-Za-z0-9-]*\)	\([0-9.]*\)$|$r	m	\1	\2|p" "$r/scores.txt"
	echo "$r	r		"
done | awk -F '\t' '
	$2 == "r" { if (!($1 in seen)) { seen[$1] = 1; order[++nr] = $1 } next }
	$2 == "s" { if (!($3 in kseen)) { kseen[$3] = 1; keys[++nk] = $3 } val[$1, $3] = $4; next }
	$2 == "m" { score[$1, $3] = $4; next }
	END {
		# the settings that differ between runs (all of them absent from some run count too)
		nd = 0
		for (i = 1; i <= nk; i++) {
			k = keys[i]; diff = 0
			for (j = 2; j <= nr; j++)
				if (((order[j], k) in val) != ((order[1], k) in val) || val[order[j], k] != val[order[1], k]) diff = 1
			if (diff) dk[++nd] = k
		}
		nm = split("BLEU-1 BLEU-4 CIDEr-D ROUGE-L", m, " ")
		line = "run"
		for (i = 1; i <= nd; i++) { k = dk[i]; sub(/^[^.]*\./, "", k); line = line "\t" k }
		for (i = 1; i <= nm; i++) line = line "\t" m[i]
		print line
		for (j = 1; j <= nr; j++) {
			r = order[j]; line = r
			for (i = 1; i <= nd; i++) line = line "\t" (((r, dk[i]) in val) ? val[r, dk[i]] : "-")
			for (i = 1; i <= nm; i++) line = line "\t" (((r, m[i]) in score) ? score[r, m[i]] : "-")
			print line
		}
	}'
