# Helpers for command tests (sourced). Every check prints one ok/not ok line.
# CAP_BIN is on PATH; T is a scratch directory removed at exit; DATA is ../shared/data.
set -u
T=$(mktemp -d "${TMPDIR:-/tmp}/cap-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
DATA=${CAP_DATA:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

ok()    { echo "ok - $*"; }
notok() { echo "not ok - $*"; }
skip()  { echo "skip - $*"; }

# check NAME CMD...: the command must exit 0.
check() { local name=$1; shift; if "$@" >"$T/.out" 2>"$T/.err"; then ok "$name"; else notok "$name (exit $?)"; sed 's/^/#   /' "$T/.err" | head -5; fi; }
# check_fails NAME STATUS PATTERN CMD...: the command must exit with STATUS and say PATTERN on stderr.
check_fails() {
	local name=$1 want=$2 pat=$3 rc
	shift 3
	"$@" >"$T/.out" 2>"$T/.err"; rc=$?
	if [ "$rc" -eq "$want" ] && grep -q -- "$pat" "$T/.err"; then ok "$name"
	else notok "$name (exit $rc, want $want; stderr: $(head -c 300 "$T/.err"))"; fi
}
# check_same NAME FILE1 FILE2: byte-identical files.
check_same() { if cmp -s "$2" "$3"; then ok "$1"; else notok "$1 ($2 and $3 differ)"; fi; }
# check_eq NAME GOT WANT
check_eq() { if [ "$2" = "$3" ]; then ok "$1"; else notok "$1 (got '$2', want '$3')"; fi; }
have_data() { [ -n "$DATA" ] && [ -d "$DATA/flickr8k" ]; }
