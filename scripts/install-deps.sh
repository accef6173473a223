#!/bin/sh
# Installs the Debian packages cap builds with and the oracles its tests use.
# Idempotent: packages already present are skipped, so `make deps` is cheap to repeat.
# Usage: scripts/install-deps.sh [build|test|fuzz]   (default: test, which includes build; fuzz
# adds clang and its libFuzzer runtime to test)
set -eu
what=${1:-test}
build_pkgs="build-essential pkg-config libmsgpack-dev libjpeg62-turbo-dev libpng-dev libdnnl-dev mandoc"
# chromium renders cap-report's page in tests/cmd/report.sh; parallel runs the scale-out recipe
# in tests/cmd/pipeline_scaleout.sh; jq runs the man pages' jq examples; Open MPI runs the
# data-parallel tests (tests/cmd/mpi.sh) and builds the MPI module (when mpicc is found).
test_pkgs="jq python3 python3-msgpack python3-numpy python3-torch python3-torchvision python3-pil python3-nltk chromium parallel openmpi-bin libopenmpi-dev"
fuzz_pkgs="clang libclang-rt-14-dev"
pkgs=$build_pkgs
[ "$what" = fuzz ] && pkgs="$pkgs $fuzz_pkgs" && what=test
[ "$what" = test ] && pkgs="$pkgs $test_pkgs"
# Node.js and npm run the Hugging Face tokenizers oracle. A machine may already have them from
# elsewhere (NodeSource's nodejs bundles npm and conflicts with Debian's npm): only install
# Debian's when the commands are missing.
if [ "$what" = test ] && ! { command -v node >/dev/null && command -v npm >/dev/null; }; then
	pkgs="$pkgs nodejs npm"
fi

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	echo "install-deps: installing:$missing" >&2
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
fi

# Hugging Face tokenizers (Node binding), the oracle for tokenizer.json; kept under tests/.
if [ "$what" = test ]; then
	here=$(cd "$(dirname "$0")/.." && pwd)
	if [ -f "$here/tests/package.json" ] && [ ! -d "$here/tests/node_modules/tokenizers" ]; then
		echo "install-deps: npm install tokenizers" >&2
		(cd "$here/tests" && npm install --no-audit --no-fund --silent >&2)
	fi
fi
