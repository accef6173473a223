#!/bin/sh
# Downloads torchvision's ImageNet weights of ResNet-152 for cap-encode and checks them.
#   scripts/get-weights.sh [-d DIR] [--base-url URL] [v2 | v1 | all | NAME.pth ...]
#     v2   resnet152-f82ba261.pth  IMAGENET1K_V2 (82.3% top-1): cap-encode --resize 232
#     v1   resnet152-394f9c45.pth  IMAGENET1K_V1 (78.3% top-1): cap-encode (--resize 256, the default)
#     all  both; NAME.pth any torchvision file named NAME-HEX.pth
# Default: v2 into DIR=weights. The hex in each torchvision file name is the start of the file's
# SHA-256: the download is checked against it (sha256sum) and kept only when it matches, so a
# truncated or corrupt download is never left under the final name. A file already there that
# matches is not downloaded again. The files come from URL/NAME, URL being --base-url, else
# $CAP_WEIGHTS_URL, else https://download.pytorch.org/models (file:// URLs work too, with curl).
# Downloads with curl, or wget when there is no curl.
# Without network: fetch the file on a machine that has it (the URL is printed), copy it into
# DIR and run this script again to check it, or point --base-url at a folder holding it
# (--base-url file:///media/usb/weights).
set -eu
prog=get-weights.sh
dir=weights
base=${CAP_WEIGHTS_URL:-https://download.pytorch.org/models}
names=""
usage() { sed -n '2,19s/^# \{0,1\}//p' "$0" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	-d) [ $# -ge 2 ] || usage; dir=$2; shift 2 ;;
	--base-url) [ $# -ge 2 ] || usage; base=$2; shift 2 ;;
	--base-url=*) base=${1#--base-url=}; shift ;;
	-h|--help) usage ;;
	v1) names="$names resnet152-394f9c45.pth"; shift ;;
	v2) names="$names resnet152-f82ba261.pth"; shift ;;
	all) names="$names resnet152-f82ba261.pth resnet152-394f9c45.pth"; shift ;;
	-*) echo "$prog: unknown option $1" >&2; usage ;;
	*) names="$names $1"; shift ;;
	esac
done
[ -n "$names" ] || names=resnet152-f82ba261.pth
base=${base%/}

# The SHA-256 prefix a torchvision name carries: NAME-HEX.pth with 8 or more hex digits.
prefix_of() {
	printf '%s\n' "$1" | sed -n 's/^.*-\([0-9a-f]\{8,64\}\)\.[A-Za-z0-9]*$/\1/p'
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
resize_of() {
	case $1 in
	resnet152-f82ba261.pth) echo " --resize 232" ;;   # torchvision's IMAGENET1K_V2 transforms
	*) echo "" ;;                                     # IMAGENET1K_V1: Resize(256), the default
	esac
}
fetch() { # URL OUT
	if command -v curl >/dev/null; then
		curl -fL --retry 2 --connect-timeout 20 ${CAP_CURL_OPTS:-} -o "$2" "$1"
	elif command -v wget >/dev/null; then
		case $1 in
		file://*) cp "${1#file://}" "$2" ;;
		*) wget -q -O "$2" "$1" ;;
		esac
	else
		echo "$prog: neither curl nor wget is installed (apt-get install curl)" >&2
		return 1
	fi
}

mkdir -p "$dir" || { echo "$prog: cannot create the folder $dir" >&2; exit 1; }
status=0
for name in $names; do
	case $name in */*) echo "$prog: $name: give a file name, not a path" >&2; exit 2 ;; esac
	want=$(prefix_of "$name")
	if [ -z "$want" ]; then
		echo "$prog: $name: not a torchvision file name NAME-HEX.pth (HEX: the start of its SHA-256)" >&2
		exit 2
	fi
	out=$dir/$name
	if [ -f "$out" ]; then
		got=$(sha "$out")
		case $got in
		"$want"*) echo "$prog: $out: already there, SHA-256 $got matches" >&2
			echo "cap-encode --weights $out$(resize_of "$name")"
			continue ;;
		*) echo "$prog: $out: its SHA-256 $got does not start with $want: downloading it again" >&2 ;;
		esac
	fi
	url=$base/$name
	part=$out.part
	rm -f "$part"
	echo "$prog: downloading $url" >&2
	if ! fetch "$url" "$part"; then
		rm -f "$part"
		cat >&2 <<EOF
$prog: cannot download $url
$prog: without network: fetch that URL on a machine that has network, copy the file to
$prog: $out and run this script again (it checks the file), or give a folder that
$prog: holds it: $0 --base-url file:///path/to/folder -d $dir $name
EOF
		status=1
		continue
	fi
	got=$(sha "$part")
	case $got in
	"$want"*) ;;
	*)
		size=$(wc -c <"$part" | tr -d ' ')
		rm -f "$part"
		echo "$prog: $url: SHA-256 $got does not start with $want: the download ($size bytes) is incomplete or corrupt; nothing kept" >&2
		status=1
		continue ;;
	esac
	mv "$part" "$out"
	echo "$prog: $out: SHA-256 $got matches" >&2
	echo "cap-encode --weights $out$(resize_of "$name")"
done
exit $status
