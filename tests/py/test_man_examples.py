"""The EXAMPLES of every man page run as written (jq's idea: the manual's examples are tests).

Each example (a .Dl line or a .Bd -literal block) is taken from the page's source and run in a
scratch directory that holds small generated data under the names the examples use: a
Flickr8k-like dataset of ten drawn JPEGs (in ../shared/data/flickr8k relative to the scratch
directory, where the examples look, and in the directory itself), its tokenizer, captions
streams, features (a stream joined from two shards, as cap-encode --shard makes), a small
model and its generated captions. Shell examples run under bash with -e and pipefail, Python
ones with the Python of the tests, Node ones with the tests' node_modules. The examples of a
page run in order in one directory (a later example may use what an earlier one wrote).
Examples that need the real ResNet-152 weights, the network or a missing program are
skipped, saying why."""
import os, re, shutil, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import ROOT, tool, run, tmpdir, check, skip, ok, notok, write_stream, read_stream, finish

PYTHON = os.environ.get("PYTHON", sys.executable)
BIN = os.path.dirname(tool("cap-train"))
ENV = dict(os.environ, PATH=BIN + os.pathsep + os.environ.get("PATH", ""),
           NODE_PATH=os.path.join(ROOT, "tests", "node_modules"))

def unescape(line):
    for a, b in (("\\e", "\\"), ("\\&", ""), ("\\(aq", "'"), ("\\-", "-"), ("\\(dq", '"')):
        line = line.replace(a, b)
    return line

def examples(page):
    """[(number, text)] of the EXAMPLES section of a man page source."""
    out, block, in_ex = [], None, False
    for line in open(page, encoding="utf-8").read().splitlines():
        if line.startswith(".Sh "):
            in_ex = line.strip() == ".Sh EXAMPLES"
            continue
        if not in_ex:
            continue
        if block is not None:
            if line.startswith(".Ed"):
                out.append("\n".join(block)); block = None
            else:
                block.append(unescape(line))
        elif line.startswith(".Bd -literal"):
            block = []
        elif line.startswith(".Dl "):
            out.append(unescape(line[4:]))
    return list(enumerate(out, 1))

def why_skip(text):
    """None when the example can run here, else the reason it cannot."""
    if re.search(r"resnet152[-.\w]*\.(pth|safetensors)", text):
        return "needs the real ResNet-152 weights (scripts/get-weights.sh)"
    if re.search(r"https?://|curl |wget ", text):
        return "needs the network"
    if re.search(r"\bmpirun\b|\bsbatch\b|\bsrun\b", text):
        return "starts several processes under a launcher (tests/cmd/mpi.sh runs mpirun)"
    if re.search(r"\brun/(test\.captions|generated|model)", text):
        return "needs the run folder of a pipelines/flickr8k.mk run (tests/cmd/report.sh covers cap-report)"
    if re.search(r"\bjq\b", text) and not shutil.which("jq"):
        return "jq is not installed"
    if text.startswith("node ") and not (shutil.which("node") and
            os.path.isdir(os.path.join(ROOT, "tests", "node_modules", "tokenizers"))):
        return "node or the tokenizers package is not installed"
    return None

# ---- the scratch data ----
top = tmpdir()
W = os.path.join(top, "work")                        # where the examples run
F = os.path.join(top, "shared", "data", "flickr8k")  # ../shared/data/flickr8k seen from W
os.makedirs(os.path.join(F, "images"))
os.makedirs(W)
from PIL import Image, ImageDraw
colours = {"red": (220, 30, 30), "blue": (30, 60, 220), "green": (30, 180, 60), "yellow": (230, 210, 40)}
things = ["dog", "ball"]
images, caps = [], []
for i in range(10):
    c = list(colours)[i % 4]; t = things[i // 4 % 2]
    name = "%d_%s_%s.jpg" % (1000 + i, c, t)
    im = Image.new("RGB", (96, 80), (240, 240, 240))
    dr = ImageDraw.Draw(im)
    (dr.ellipse if t == "ball" else dr.rectangle)((20, 15, 76, 65), fill=colours[c])
    im.save(os.path.join(F, "images", name), quality=90)
    images.append(name)
    for n, fmt in enumerate(["A %s %s on the grass .", "A %s %s runs .", "The %s %s is on the grass .",
                             "A %s %s sits on the grass .", "A %s %s is outside ."]):
        caps.append("%s#%d\t%s" % (name, n, fmt % (c, t)))
splits = {"train": images[:6], "dev": images[6:8], "test": images[8:]}
with open(os.path.join(F, "Flickr8k.token.txt"), "w") as f:
    f.write("\n".join(caps) + "\n")
for s, names in splits.items():
    with open(os.path.join(F, "Flickr_8k.%sImages.txt" % s), "w") as f:
        f.write("\n".join(names) + "\n")
for name in os.listdir(F):
    if name != "images":
        shutil.copy(os.path.join(F, name), W)
shutil.copytree(os.path.join(F, "images"), os.path.join(W, "images"))
shutil.copy(os.path.join(F, "Flickr8k.token.txt"), os.path.join(W, "captions.txt"))
for k in (1, 2):
    shutil.copy(os.path.join(F, "images", images[k]), os.path.join(W, "img%d.jpg" % k))

def sh(cmd):
    run(["bash", "-e", "-o", "pipefail", "-c", cmd], check_rc=True)

os.chdir(W)
try:
    sh("cap-tokenize vocab --min-count 1 --split Flickr_8k.trainImages.txt -o tok.json Flickr8k.token.txt"
       " 2>/dev/null; cp tok.json tokenizer.json")
    sh("cap-tokenize encode --tokenizer tok.json --split Flickr_8k.trainImages.txt -o train.mp Flickr8k.token.txt")
    sh("cap-tokenize encode --tokenizer tok.json --split Flickr_8k.testImages.txt -o refs.mp Flickr8k.token.txt")
    # features in two shards joined with cat: the second part's header sits between records
    sh("for k in 1 2; do ls images/*.jpg | cap-encode --weights random --basename --threads 2 "
       "--shard $k/2 -o part$k.mp 2>/dev/null; done; cat part1.mp part2.mp > feats.mp")
    h, recs = read_stream("feats.mp")
    write_stream("test-feats.mp", "features", {k: v for k, v in h.items() if k not in ("format", "version", "kind")},
                 [r for r in recs if r["image"] in splits["test"]])
    sh("cap-train --features feats.mp --captions train.mp --embed 16 --hidden 32 --epochs 3 --batch 8 "
       "--threads 2 -o model.safetensors 2>/dev/null")
    sh("cap-generate --model model.safetensors -o gen.mp test-feats.mp")
except RuntimeError as e:
    notok("the examples' scratch data is made", str(e)[:300])
    finish()
ok("the examples' scratch data is made (features joined from two shards)")

# ---- every page's examples ----
pages = sorted(os.path.join(ROOT, "man", p) for p in os.listdir(os.path.join(ROOT, "man"))
               if re.match(r".*\.[0-9]$", p))
for page in pages:
    name = os.path.basename(page)
    exs = examples(page)
    check(len(exs) > 0, "%s has examples" % name)
    d = os.path.join(top, "run-" + name)
    shutil.copytree(W, d)
    for i, text in exs:
        label = "%s example %d (%s)" % (name, i, text.splitlines()[0][:60])
        why = why_skip(text)
        if why:
            skip("%s: %s" % (label, why))
            continue
        if re.match(r"(import|from) ", text):
            args = [PYTHON, "-c", text]
        else:
            args = ["bash", "-e", "-o", "pipefail", "-c", text]
        p = subprocess.run(args, cwd=d, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        err = p.stderr.decode(errors="replace")
        # warnings are fine (random weights say so); tracebacks and usage errors are not
        bad = re.search(r"Traceback|usage:|command not found|No such file", err)
        # a writer upstream of head may die of SIGPIPE once head has its lines: that is fine
        rc = 0 if p.returncode == 141 and re.search(r"\| *head\b", text) else p.returncode
        check(rc == 0 and not bad, label + " runs as written",
              "exit %d; stderr: %s" % (p.returncode, err[-600:].replace("\n", " | ")))
finish()
