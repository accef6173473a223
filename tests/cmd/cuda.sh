# The CUDA backend from the tools' side, on any machine: no tool links CUDA (the module is loaded
# with dlopen for --device cuda only); the module exports only its entry point and takes from the
# tools exactly the functions they export for it; --device cuda without a GPU is a clear runtime
# error (exit 1, "no CUDA device"), and without the module a clear usage error (exit 2, "no CUDA
# backend"), for each tool that takes --device. The GPU itself is checked by tests/cuda/run.sh.
. "$(dirname "$0")/lib.sh"
MODULE=$(cd "$CAP_BIN/.." && pwd)/lib/cap/libcap-cuda.so

if command -v ldd >/dev/null; then
	for t in "$CAP_BIN"/cap-*; do
		if ldd "$t" | grep -qiE 'cuda|cublas|cudnn|nvrtc'; then
			notok "$(basename "$t") links no CUDA library ($(ldd "$t" | grep -iE 'cuda|cublas|cudnn' | tr '\n' ' '))"
		else
			ok "$(basename "$t") links no CUDA library"
		fi
	done
else
	skip "ldd not installed: tool libraries not listed"
fi

# Arguments that get each tool past its option checks to opening the device (which comes
# before any file is read).
run_device() { # tool
	case $1 in
	cap-train) "$CAP_BIN/cap-train" --device cuda --features "$T/none.mp" --captions "$T/none.mp" -o "$T/m.st" ;;
	cap-generate) "$CAP_BIN/cap-generate" --device cuda --model "$T/none.st" "$T/none.mp" ;;
	cap-encode) "$CAP_BIN/cap-encode" --device cuda --weights "$T/none.st" "$T/none.jpg" ;;
	esac
}

gpu=0
command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU && gpu=1

if [ -f "$MODULE" ]; then
	ok "the CUDA module was built ($MODULE)"
	syms=$(nm -D --defined-only "$MODULE" | awk '$2 ~ /^[TDB]$/ { print $3 }' | tr '\n' ' ')
	check_eq "the module exports only cap_ops_module_init" "$syms" "cap_ops_module_init "
	need=$(nm -D --undefined-only "$MODULE" | awk '$2 == "U" && $3 ~ /^cap_/ { print $3 }' | sort)
	for t in cap-train cap-generate cap-encode; do
		have=$(nm -D --defined-only "$CAP_BIN/$t" | awk '{ print $3 }')
		missing=""
		for s in $need; do echo "$have" | grep -qx "$s" || missing="$missing $s"; done
		check_eq "$t exports what the module calls back ($(printf "%s " $need))" "$missing" ""
	done
	for t in cap-train cap-generate cap-encode; do
		if [ "$gpu" = 1 ]; then
			skip "$t --device cuda without a GPU: this machine has one"
			continue
		fi
		check_fails "$t --device cuda without a GPU: exit 1, no CUDA device" 1 "no CUDA device" run_device "$t"
		grep -q "^$t: --device cuda: CUDA backend: " "$T/.err" && ok "$t names itself and the backend" ||
			notok "$t names itself and the backend ($(cat "$T/.err"))"
		[ -s "$T/.out" ] && notok "$t wrote nothing on stdout" || ok "$t wrote nothing on stdout"
	done
	# Installed as make install lays it out: PREFIX/bin/cap-train finds PREFIX/lib/cap/libcap-cuda.so.
	mkdir -p "$T/prefix/bin" "$T/prefix/lib/cap"
	cp "$CAP_BIN/cap-train" "$T/prefix/bin/" && cp "$MODULE" "$T/prefix/lib/cap/"
	if [ "$gpu" = 0 ]; then
		check_fails "an installed cap-train finds PREFIX/lib/cap/libcap-cuda.so" 1 "no CUDA device" \
			"$T/prefix/bin/cap-train" --device cuda --features "$T/none.mp" --captions "$T/none.mp" -o "$T/m.st"
	fi
else
	skip "no CUDA module in this build ($MODULE): built without nvcc, or with NVCC= or SANITIZE=1"
fi

# Built without CUDA, or the module missing: a usage error naming the path.
for t in cap-train cap-generate cap-encode; do
	CAP_CUDA_MODULE=$T/no-such-module.so check_fails "$t --device cuda without the module: exit 2" 2 \
		"no CUDA backend (no $T/no-such-module.so)" run_device "$t"
done
# A library that is not a cap module.
libm=$(ldd "$CAP_BIN/cap-train" 2>/dev/null | awk '/libm\.so/ { print $3 }')
if [ -n "$libm" ] && [ -f "$libm" ]; then
	CAP_CUDA_MODULE=$libm check_fails "cap-train --device cuda with a foreign library: exit 1" 1 \
		"is not a cap backend module" run_device cap-train
fi
check_fails "an unknown device is a usage error" 2 "unknown device 'tpu'" \
	"$CAP_BIN/cap-train" --device tpu --features "$T/none.mp" --captions "$T/none.mp" -o "$T/m.st"
