#!/bin/sh
# Run HERE (a Debian machine with cap's build dependencies and ../shared/data), before
# tests/cuda/run.sh is run on a GPU machine that lacks them: collects into build/carry (ignored by
# git; name it in the device run's carry list) what that run builds and checks with:
#   lib/      libmsgpackc.a libpng16.a libz.a libjpeg.a (linked statically there), oneDNN's
#             libdnnl.so.2 (xz-compressed: 40 MB as it is, the device run's tree may hold 64 MiB)
#             with the libgomp and libOpenCL it loads (from Debian's packages)
#   include/  the headers of those libraries
#   cudnn/include/  cuDNN's headers, for a build there when the machine has only the library
#   data/flickr8k/  Flickr8k.token.txt and Flickr_8k.trainImages.txt (the training benchmark's
#             captions, tokenized there by cap-tokenize) and CARRY_IMAGES (default 256) JPEGs of
#             images_224 for the feature parity and the end-to-end encode benchmark
# and then builds the tools, the tests and the CUDA module into build/gpu with those libraries and
# this machine's nvcc (same version as there), so that the run there need not build (carry
# build/gpu/bin, build/gpu/tests and build/gpu/lib/cap too).
# Usage: tests/cuda/prepare.sh   (CAP_DATA, CARRY_IMAGES as in the environment)
set -eu
cd "$(dirname "$0")/../.."
C=build/carry
DATA=${CAP_DATA:-$(cd .. && pwd)/shared/data}
N=${CARRY_IMAGES:-256}
ML=/usr/lib/x86_64-linux-gnu
rm -rf "$C"
mkdir -p "$C/lib" "$C/include" "$C/data/flickr8k/images_224"

for a in libmsgpackc.a:libmsgpack-dev libpng16.a:libpng-dev libz.a:zlib1g-dev libjpeg.a:libjpeg62-turbo-dev; do
	f=${a%%:*}
	[ -f "$ML/$f" ] || { echo "prepare: $ML/$f missing (Debian package ${a#*:})" >&2; exit 1; }
	cp "$ML/$f" "$C/lib/"
done
for s in libdnnl.so.2 libgomp.so.1 libOpenCL.so.1; do
	[ -e "$ML/$s" ] || { echo "prepare: $ML/$s missing (libdnnl-dev installs it)" >&2; exit 1; }
	cp -L "$ML/$s" "$C/lib/$s"
done
python3 -c 'import lzma, shutil, sys
with open(sys.argv[1], "rb") as f, lzma.open(sys.argv[1] + ".xz", "wb", preset=6) as g: shutil.copyfileobj(f, g)' "$C/lib/libdnnl.so.2"
rm "$C/lib/libdnnl.so.2"

I=/usr/include
for h in msgpack.h png.h pngconf.h pnglibconf.h jpeglib.h jmorecfg.h jerror.h zlib.h zconf.h \
         dnnl.h dnnl_config.h dnnl_types.h dnnl_version.h; do
	cp "$I/$h" "$C/include/"
done
mkdir -p "$C/include/msgpack"
cp "$I"/msgpack/*.h "$C/include/msgpack/"   # the C headers only (the C++ ones are 7 MB)
cp -r "$I/oneapi" "$C/include/"
cp "$I/x86_64-linux-gnu/jconfig.h" "$C/include/"

mkdir -p "$C/cudnn/include"
cp /usr/local/cuda/include/cudnn*.h "$C/cudnn/include/" 2>/dev/null || echo "prepare: no cuDNN headers here" >&2

F=$DATA/flickr8k
if [ -d "$F/images_224" ]; then
	cp "$F/Flickr8k.token.txt" "$F/Flickr_8k.trainImages.txt" "$C/data/flickr8k/"
	ls "$F/images_224" | sort | head -n "$N" | while read -r f; do cp "$F/images_224/$f" "$C/data/flickr8k/images_224/"; done
else
	echo "prepare: no $F/images_224: the run will skip the data checks" >&2
fi
echo "prepare: $(du -sh "$C" | cut -f1) in $C ($(ls "$C/data/flickr8k/images_224" | wc -l) images)"
rm -rf build/gpu
PYTHON=${PYTHON:-/usr/bin/python3} REBUILD=1 BUILD_ONLY=1 tests/cuda/run.sh | grep -E '^(ok|not ok)'
strip --strip-debug build/gpu/bin/* build/gpu/tests/test_ops build/gpu/tests/test_cuda_math build/gpu/tests/tools/* build/gpu/lib/cap/*.so
echo "prepare: build/gpu: $(du -sh build/gpu/bin build/gpu/tests build/gpu/lib/cap | awk '{ printf "%s %s  ", $2, $1 }')"
