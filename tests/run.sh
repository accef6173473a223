#!/bin/sh
# Runs the whole suite: unit test programs (build/tests/test_*), command tests (tests/cmd/*.sh)
# and oracle tests against Python/Node (tests/py/*.py). Every test prints lines
# "ok - ...", "not ok - ..." or "skip - ..."; a program that exits non-zero without printing
# a "not ok" line counts as one failure (a crash must never pass). Ends with one line
# "N passed, N failed, N skipped". Optional argument: a pattern that selects tests by name.
set -u
here=$(cd "$(dirname "$0")" && pwd)
pattern=${1:-}
: "${CAP_BIN:?CAP_BIN must name the directory of the built tools}"
export CAP_BIN CAP_TESTBIN CAP_TESTTOOLS PYTHON
export CAP_DATA=${CAP_DATA:-$(cd "$here/../.." && pwd)/shared/data}
export PATH="$CAP_BIN:$PATH"
log=$(mktemp -d "${TMPDIR:-/tmp}/cap-check.XXXXXX")
trap 'rm -rf "$log"' EXIT
pass=0 fail=0 skip=0

run_one() { # name, command...
	name=$1; shift
	case "$name" in *"$pattern"*) ;; *) return ;; esac
	out="$log/out"
	start=$(date +%s)
	"$@" >"$out" 2>"$log/err"
	rc=$?
	p=$(grep -c '^ok' "$out"); f=$(grep -c '^not ok' "$out"); s=$(grep -c '^skip' "$out")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		f=1; echo "not ok - $name exited with status $rc" >>"$out"
	fi
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	echo "== $name: $p passed, $f failed, $s skipped ($(( $(date +%s) - start ))s)"
	if [ "$f" -ne 0 ]; then
		grep -E '^(not ok|skip)' "$out" | cut -c1-400 | sed 's/^/   /'
		echo "   -- stderr (last 20 lines):"; tail -n 20 "$log/err" | sed 's/^/   /'
	else
		grep '^skip' "$out" | sed 's/^/   /'
	fi
}

for t in "${CAP_TESTBIN:-}"/test_*; do
	[ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
done
# The ops again with oneDNN held to AVX2 and cap's own AVX-512 loops off: another processor's
# kernels, packed layouts (oneDNN's reorders instead of lib/ops/cpu/pack.c) and refusals.
[ -x "${CAP_TESTBIN:-}/test_ops" ] &&
	run_one "unit/test_ops-avx2" env DNNL_MAX_CPU_ISA=AVX2 CAP_CPU_OFF=avx512f "$CAP_TESTBIN/test_ops"
# and the training pass on them (cpu against ref, gradients against finite differences)
[ -x "${CAP_TESTBIN:-}/test_decoder_grad" ] &&
	run_one "unit/test_decoder_grad-avx2" env DNNL_MAX_CPU_ISA=AVX2 CAP_CPU_OFF=avx512f "$CAP_TESTBIN/test_decoder_grad"
for t in "$here"/cmd/*.sh; do
	[ "$(basename "$t")" = lib.sh ] && continue   # the helpers the tests source
	[ -f "$t" ] && run_one "cmd/$(basename "$t")" sh "$t"
done
for t in "$here"/py/test_*.py; do
	[ -f "$t" ] && run_one "py/$(basename "$t")" "$PYTHON" "$t"
done
# The parity tests again on the ref backend (plain C from end to end): --device ref must agree
# with the oracles as --device cpu does. Skipped under the sanitizers, where plain C loops over
# ResNet-152 take too long to be worth it.
if [ "${CAP_SANITIZE:-0}" != 1 ]; then
	for t in "$here"/py/test_*_parity.py; do
		[ -f "$t" ] && run_one "py/ref/$(basename "$t")" env CAP_DEVICE=ref "$PYTHON" "$t"
	done
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
