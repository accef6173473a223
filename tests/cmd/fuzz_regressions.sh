# Inputs the fuzzers (tests/fuzz) once found a fault with, kept in tests/fuzz/regressions/NAME
# (NAME: the harness): each goes through the tool that reads such files, in the regular build,
# and must be answered within 20 s and 1 GB of address space with exit 0 or 1 (a clean error),
# never a crash, a hang or an allocation the input does not justify. `make fuzz` runs them
# through the harnesses too.
. "$(dirname "$0")/lib.sh"
R=$ROOT/tests/fuzz/regressions
# Sanitizer builds reserve terabytes of address space: there the memory bound is left out.
VLIMIT="ulimit -v 1000000;"
(eval "$VLIMIT"; cap-dump --version) >/dev/null 2>&1 || { VLIMIT=; echo "# no address-space limit (a sanitizer build)"; }
run_limited() { (eval "$VLIMIT"; timeout 20 "$@") >"$T/out" 2>"$T/err"; }
for dir in "$R"/*/; do
	name=$(basename "$dir")
	for f in "$dir"*; do
		[ -f "$f" ] || continue
		case $name in
		stream) run_limited cap-dump --full "$f" ;;
		png|jpeg) run_limited "$CAP_TESTTOOLS/cap-imgdump" "$f" ;;
		tokenizer) echo 4 5 6 >"$T/ids"; run_limited cap-tokenize decode --tokenizer "$f" "$T/ids" ;;
		captions_*) run_limited cap-tokenize vocab --min-count 1 --format "${name#captions_}" -o "$T/tok.json" "$f" ;;
		safetensors|pth) run_limited "$CAP_TESTTOOLS/cap-tensors" --load "$f" ;;
		model) run_limited cap-generate --model "$f" "$T/none" ;;
		*) notok "$name/$(basename "$f"): no tool for this harness in tests/cmd/fuzz_regressions.sh"; continue ;;
		esac
		rc=$?
		size=$(wc -c <"$T/out")
		[ $rc -le 1 ] && [ "$size" -lt 1000000 ] && ok "$name/$(basename "$f"): exit $rc, $size bytes out" \
			|| notok "$name/$(basename "$f"): exit $rc (124: timed out), $size bytes out: $(head -c 300 "$T/err")"
	done
done
# The two faults, each shown directly as well:
check_eq "a record of nested non-string map keys prints in bounded size" \
	"$(cap-dump --full "$R/stream/nested-map-keys.mp" 2>/dev/null | wc -c)" 661
check_fails "a PNG declaring a 1 GB text chunk: refused at once, naming the chunk" 1 "chunk tEXt at byte 33 declares 1073741823 bytes" \
	sh -c "$VLIMIT exec '$CAP_TESTTOOLS/cap-imgdump' '$R/png/huge-text-chunk.png'"
