# scripts/get-weights.sh offline, through file:// URLs: a good download is checked against the
# SHA-256 prefix of its name and kept; a wrong hash and a truncated download are refused and
# leave nothing; no network (an absent URL) says what to do; the torchvision names and their
# --resize; cap-encode's hint when --weights names no file.
. "$(dirname "$0")/lib.sh"
G=$ROOT/scripts/get-weights.sh
mkdir -p "$T/server" "$T/bad"
head -c 300000 /dev/urandom >"$T/blob"
h=$(sha256sum "$T/blob" | cut -c1-8)
cp "$T/blob" "$T/server/resnet152-$h.pth"
check "a download through file:// checked and kept" sh -c "'$G' --base-url 'file://$T/server' -d '$T/w' resnet152-$h.pth >'$T/out.txt' 2>'$T/err.txt'"
check_same "the file downloaded" "$T/w/resnet152-$h.pth" "$T/blob"
check_eq "prints the cap-encode option" "$(cat "$T/out.txt")" "cap-encode --weights $T/w/resnet152-$h.pth"
grep -q "matches" "$T/err.txt" && ok "says the hash matches" || notok "says the hash matches"
check_eq "no partial file left" "$(ls "$T/w" | wc -l)" 1
touch -d '2020-01-01' "$T/w/resnet152-$h.pth"
CAP_WEIGHTS_URL="file://$T/nowhere" "$G" -d "$T/w" "resnet152-$h.pth" >/dev/null 2>"$T/err.txt"
check_eq "already there: checked, not downloaded again" "$?:$(grep -c 'already there' "$T/err.txt"):$(stat -c %Y "$T/w/resnet152-$h.pth")" \
	"0:1:$(date -d 2020-01-01 +%s)"

# a wrong hash: the name promises another SHA-256
cp "$T/blob" "$T/bad/resnet152-00000000.pth"
check_fails "a wrong hash refused" 1 "does not start with 00000000" "$G" --base-url "file://$T/bad" -d "$T/w2" resnet152-00000000.pth
check_eq "a wrong hash: nothing kept" "$(ls "$T/w2" | wc -l)" 0
# a truncated download: the first 100000 bytes of the file the name describes
head -c 100000 "$T/blob" >"$T/bad/resnet152-$h.pth"
check_fails "a truncated download refused" 1 "(100000 bytes) is incomplete or corrupt" \
	"$G" --base-url "file://$T/bad" -d "$T/w3" "resnet152-$h.pth"
check_eq "a truncated download: nothing kept" "$(ls "$T/w3" | wc -l)" 0
# a damaged file already in place is fetched again
head -c 10 "$T/blob" >"$T/w3/resnet152-$h.pth"
check "a damaged file in place is downloaded again" "$G" --base-url "file://$T/server" -d "$T/w3" "resnet152-$h.pth"
check_same "the damaged file replaced" "$T/w3/resnet152-$h.pth" "$T/blob"

# no network (here: a URL that does not exist): what to do instead
check_fails "no network: says what to do" 1 "without network: fetch that URL" \
	"$G" --base-url "file://$T/nowhere" -d "$T/w4" v2
grep -q "file://$T/nowhere/resnet152-f82ba261.pth" "$T/.err" && grep -q -- "--base-url file:///path/to/folder" "$T/.err" \
	&& ok "no network: names the URL and the offline way" || notok "no network: names the URL and the offline way"
# the torchvision files and their preprocessing (a folder holding files named as torchvision's)
mkdir -p "$T/tv"
head -c 1000 /dev/urandom >"$T/tv/resnet152-f82ba261.pth"
check_fails "v2 is resnet152-f82ba261.pth, checked against f82ba261" 1 "does not start with f82ba261" \
	"$G" --base-url "file://$T/tv" -d "$T/w5" v2
check_fails "v1 is resnet152-394f9c45.pth" 1 "file://$T/tv/resnet152-394f9c45.pth" "$G" --base-url "file://$T/tv" -d "$T/w5" v1
check_fails "a name without a hash refused" 2 "not a torchvision file name" "$G" -d "$T/w5" resnet152.pth
check_fails "an unknown option refused" 2 "unknown option" "$G" --nope
grep -q 'resnet152-f82ba261.pth) echo " --resize 232"' "$G" && ok "V2 goes with --resize 232" || notok "V2 goes with --resize 232"
grep -q 'resnet152-f82ba261\.pth' "$ROOT/man/cap-encode.1" && grep -q 'Fl -resize Cm 232' "$ROOT/man/cap-encode.1" \
	&& ok "cap-encode(1) names the files and --resize 232" || notok "cap-encode(1) names the files and --resize 232"

# cap-encode: a --weights file that is not there gets the hint
check_fails "cap-encode: missing weights file hints at get-weights.sh" 1 "nosuch.pth: no such file.*scripts/get-weights.sh" \
	cap-encode --weights "$T/nosuch.pth" "$ROOT/examples/shapes/big_blue_circle_black.png"
