# Every tool answers --help and --version, refuses unknown options with status 2,
# and every man page lints clean with mandoc -Tlint -W warning.
. "$(dirname "$0")/lib.sh"
for t in "$CAP_BIN"/cap-*; do
	tn=$(basename "$t")
	check "$tn --help exits 0" "$t" --help
	grep -q "usage" "$T/.out" && ok "$tn --help prints usage on stdout" || notok "$tn --help prints usage on stdout"
	check "$tn --version exits 0" "$t" --version
	grep -q "^$tn cap " "$T/.out" && ok "$tn --version names itself" || notok "$tn --version names itself ($(cat "$T/.out"))"
	check_fails "$tn refuses an unknown option" 2 "" "$t" --no-such-option
	[ -f "$ROOT/man/$tn.1" ] && ok "$tn has a man page" || notok "$tn has a man page (man/$tn.1)"
done
if command -v mandoc >/dev/null; then
	for m in "$ROOT"/man/*.[0-9]; do
		if out=$(mandoc -Tlint -W warning "$m" 2>&1) && [ -z "$out" ]; then ok "mandoc lint $(basename "$m")"
		else notok "mandoc lint $(basename "$m"): $out"; fi
	done
else
	skip "mandoc not installed: man pages not linted"
fi
