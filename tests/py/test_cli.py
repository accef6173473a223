"""The tools' shared command-line conventions, on a tiny generated run (no data needed):
binary streams refused on a terminal (a real pseudo-terminal), -h as --help, messages named
after the tool and not its path, one short hint for unknown options and bad values, -o for
every tool with the umask honoured, cap-tokenize decode of a generated stream, and cap-dump of a
model file (its metadata and training history)."""
import json, os, pty, select, subprocess, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from caplib import tool, check, run, tmpdir, write_stream, read_stream, finish, notok
import numpy as np

d = tmpdir()
P = lambda *a: os.path.join(d, *a)
TOOLS = ["cap-tokenize", "cap-encode", "cap-train", "cap-generate", "cap-eval", "cap-dump"]

# ---- a tiny run: 8 images, 2 captions each, 16-d features, a small decoder ----
words = ["red", "blue", "green", "black"]
with open(P("caps.txt"), "w") as f:
    for i in range(8):
        for n in range(2):
            f.write("img%d.jpg#%d\tA %s ball on the grass\n" % (i, n, words[i % 4]))
rng = np.random.default_rng(0)
write_stream(P("feats.mp"), "features", {"dim": 16},
             [{"image": "img%d.jpg" % i, "feature": rng.standard_normal(16).astype("<f4").tobytes(),
               "shape": [16]} for i in range(8)])
run([tool("cap-tokenize"), "vocab", "--min-count", "1", "-o", P("tok.json"), P("caps.txt")])
run([tool("cap-tokenize"), "encode", "--tokenizer", P("tok.json"), "-o", P("caps.mp"), P("caps.txt")])
run([tool("cap-train"), "--features", P("feats.mp"), "--captions", P("caps.mp"), "--epochs", "3",
     "--embed", "8", "--hidden", "16", "--batch", "4", "--threads", "1", "-o", P("model.safetensors")])
M = P("model.safetensors")
run([tool("cap-generate"), "--model", M, "-o", P("gen.mp"), P("feats.mp")])

# ---- binary streams and terminals ----
def on_tty(args):
    """Runs args with stdout on a pseudo-terminal: (exit status, stderr, what reached the tty)."""
    master, slave = pty.openpty()
    p = subprocess.run(args, stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    got = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk: break
        got += chunk
    os.close(master)
    return p.returncode, p.stderr.decode(errors="replace"), got

binary_cmds = {
    "cap-generate": ([tool("cap-generate"), "--model", M, P("feats.mp")], "--text"),
    "cap-encode": ([tool("cap-encode"), "--weights", "random", P("none.png")], "-o FILE"),
    "cap-tokenize encode": ([tool("cap-tokenize"), "encode", "--tokenizer", P("tok.json"), P("caps.txt")], "-o FILE"),
}
for name, (args, hint) in binary_cmds.items():
    rc, err, got = on_tty(args)
    check(rc == 2 and err.startswith(name.split()[0] + ": not writing a binary stream to a terminal")
          and hint in err and "cap-dump" in err and got == b"",
          "%s refuses to write its stream to a terminal, suggesting %s or cap-dump" % (name, hint),
          "exit %d, stderr %r, %d bytes on the tty" % (rc, err[:200], len(got)))
    # the same command writing to a pipe is not refused
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    check(b"terminal" not in p.stderr, "%s to a pipe is not refused" % name, p.stderr.decode()[:200])
rc, err, got = on_tty([tool("cap-generate"), "--model", M, "--text", P("feats.mp")])
check(rc == 0 and got.count(b"img") == 8, "cap-generate --text writes captions to a terminal",
      "exit %d, %r" % (rc, got[:100]))
rc, err, got = on_tty([tool("cap-generate"), "--model", M, "-o", P("gen-tty.mp"), P("feats.mp")])
check(rc == 0 and open(P("gen-tty.mp"), "rb").read() == open(P("gen.mp"), "rb").read(),
      "cap-generate -o FILE with stdout on a terminal writes the file", err[:200])
rc, err, got = on_tty([tool("cap-dump"), P("gen.mp")])
check(rc == 0 and b'"kind":"generated"' in got, "cap-dump prints JSON to a terminal", err[:200])

# ---- -h is --help; names, hints ----
link = P("bin")
os.makedirs(link)
for t in TOOLS:
    a = run([tool(t), "-h"], check_rc=False)
    b = run([tool(t), "--help"], check_rc=False)
    check(a.returncode == 0 and a.stdout == b.stdout and b"usage" in a.stdout, "%s -h is --help" % t,
          "exit %d: %r" % (a.returncode, a.stderr[:200]))
    # argv[0] a path: messages still start with the bare name
    os.symlink(os.path.abspath(tool(t)), os.path.join(link, t))
    full = os.path.join(link, t)
    sub = ["encode"] if t == "cap-tokenize" else []
    u = run([full] + sub + ["--no-such-option"], check_rc=False)
    err = u.stderr.decode()
    check(u.returncode == 2 and err == "%s: unknown option '--no-such-option'\nTry '%s --help'.\n" % (t, t),
          "%s called by its path: an unknown option is named, with a short hint" % t, repr(err[:300]))
    u = run([full] + sub + ["-o"], check_rc=False)
    err = u.stderr.decode()
    check(u.returncode == 2 and err == "%s: option '-o' needs a value\nTry '%s --help'.\n" % (t, t),
          "%s: a missing value gets the same hint" % t, repr(err[:300]))
run_cmds = [("cap-generate", ["--beam", "x"]), ("cap-encode", ["--batch", "0"]), ("cap-train", ["--epochs", "-1"]),
            ("cap-tokenize", ["vocab", "--min-count", "x"]), ("cap-eval", ["--references", "r", "--format", "x"])]
for t, args in run_cmds:
    u = run([os.path.join(link, t)] + args, check_rc=False)
    lines = u.stderr.decode().splitlines()
    check(u.returncode == 2 and len(lines) == 2 and lines[0].startswith(t + ": --" + args[-2].lstrip("-")) and
          lines[1] == "Try '%s --help'." % t, "%s: a bad value gives the same short hint" % t, repr(lines))
u = run([os.path.join(link, "cap-dump"), P("no-such.mp")], check_rc=False)
check(u.returncode == 1 and u.stderr.decode().startswith("cap-dump: ") and "no-such.mp" in u.stderr.decode(),
      "errors start with the tool's name and name the file", repr(u.stderr[:200]))
u = run([os.path.join(link, "cap-generate"), "--t", "1"], check_rc=False)
check(u.returncode == 2 and b"ambiguous option '--t' (--temperature" in u.stderr,
      "an ambiguous abbreviation lists the candidates", repr(u.stderr[:200]))

# ---- -o everywhere, honouring the umask ----
ev = run([tool("cap-eval"), "--references", P("caps.mp"), P("gen.mp")]).stdout
run([tool("cap-eval"), "--references", P("caps.mp"), "-o", P("scores.txt"), P("gen.mp")])
check(open(P("scores.txt"), "rb").read() == ev and b"BLEU-4" in ev, "cap-eval -o writes the scores")
dump = run([tool("cap-dump"), P("gen.mp")]).stdout
run([tool("cap-dump"), "--output", P("gen.jsonl"), P("gen.mp")])
check(open(P("gen.jsonl"), "rb").read() == dump, "cap-dump -o writes the JSON lines")
for mask, want in ((0o022, 0o644), (0o077, 0o600)):
    old = os.umask(mask)
    try:
        for t, args in (("cap-dump", [P("gen.mp")]), ("cap-eval", ["--references", P("caps.mp"), P("gen.mp")]),
                        ("cap-generate", ["--model", M, P("feats.mp")]),
                        ("cap-tokenize", ["encode", "--tokenizer", P("tok.json"), P("caps.txt")])):
            out = P("mode-%s-%o" % (t, mask))
            k = 1 if t == "cap-tokenize" else 0
            run([tool(t)] + args[:k] + ["-o", out] + args[k:])
            mode = os.stat(out).st_mode & 0o777
            check(mode == want, "%s -o under umask %03o makes a %03o file" % (t, mask, want), "got %03o" % mode)
    finally:
        os.umask(old)

# ---- cap-tokenize decode of a generated stream ----
h, recs = read_stream(P("gen.mp"))
check(json.loads(h.get("tokenizer_json", "{}")).get("model", {}).get("vocab") is not None,
      "the generated stream's header carries the tokenizer")
dec = run([tool("cap-tokenize"), "decode", P("gen.mp")], check_rc=False)
txt = run([tool("cap-generate"), "--model", M, "--text", P("feats.mp")]).stdout
check(dec.returncode == 0 and dec.stdout == txt and len(dec.stdout.splitlines()) == 8,
      "cap-tokenize decode of a generated stream prints the captions cap-generate --text prints",
      repr(dec.stderr[:200]))

# ---- cap-dump of a model file ----
p = run([tool("cap-dump"), M], check_rc=False)
try:
    info = json.loads(p.stdout)
except ValueError as e:
    info = {}
    notok("cap-dump of a model prints one JSON object", "%s: %r" % (e, p.stdout[:200]))
meta = info.get("metadata", {})
hist = meta.get("history", {})
check(p.stdout.count(b"\n") == 1 and info.get("format") == "safetensors" and meta.get("format") == "cap-decoder",
      "cap-dump of a model: one JSON line with its metadata")
check(isinstance(hist, dict) and [e.get("epoch") for e in hist.get("epochs", [])] == [1, 2, 3] and
      all(e["train_loss"] > 0 for e in hist["epochs"]),
      "the training history is JSON: three epochs with their losses", repr(hist)[:300])
check(info.get("digest") == h.get("model"), "its digest is the model named by generated streams")
names = [t["name"] for t in info.get("tensors", [])]
shapes = {t["name"]: t["shape"] for t in info.get("tensors", [])}
check(names[:2] == ["proj.weight", "proj.bias"] and shapes.get("proj.weight") == [8, 16] and
      info.get("parameters") == sum(int(np.prod(s)) for s in shapes.values()),
      "tensors are listed with their shapes and counted", repr(shapes)[:300])
tj = meta.get("tokenizer_json", "")
check(isinstance(tj, str) and "--full shows all" in tj, "the tokenizer is summarised without --full")
full = json.loads(run([tool("cap-dump"), "--full", M]).stdout)
check(json.loads(full["metadata"]["tokenizer_json"]) == json.load(open(P("tok.json"))),
      "with --full the model's tokenizer is the one it was trained with")
u = run([tool("cap-dump"), M, P("gen.mp")], check_rc=False)
check(u.returncode == 2 and b"not both" in u.stderr, "a model and a stream together are refused")
with open(P("bad.safetensors"), "wb") as f:
    f.write((40).to_bytes(8, "little") + b'{"x": {"dtype": "F32", "shape": [2]')
u = run([tool("cap-dump"), P("bad.safetensors")], check_rc=False)
check(u.returncode == 1 and u.stderr.startswith(b"cap-dump: ") and b"bad.safetensors" in u.stderr,
      "a truncated model file is an error naming it", repr(u.stderr[:200]))
finish()
