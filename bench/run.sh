#!/bin/sh
# make bench: runs every bench/*.sh (or those whose name contains $1), each of which measures a
# cap tool and the PyTorch equivalent side by side on this machine and prints medians and the
# ratio. Benchmarks are not tests: they assert nothing about time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
pattern=${1:-}
: "${CAP_BIN:?}" "${PYTHON:=/usr/bin/python3}"
export CAP_BIN PYTHON
export CAP_DATA=${CAP_DATA:-$(cd "$here/../.." && pwd)/shared/data}
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')," \
     "$(free -g | awk '/Mem:/{print $2}') GiB; torch $($PYTHON -c 'import torch; print(torch.__version__)' 2>/dev/null)"
echo "# date: $(date -u +%Y-%m-%dT%H:%MZ); cap $(git -C "$here/.." rev-parse --short HEAD 2>/dev/null)"
for b in "$here"/*.sh; do
	n=$(basename "$b" .sh)
	[ "$n" = run ] && continue
	case "$n" in *"$pattern"*) ;; *) continue ;; esac
	echo "## $n"
	sh "$b" || echo "(bench $n failed with status $?)"
done
