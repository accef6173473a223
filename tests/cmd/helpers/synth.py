"""Small synthetic cap streams for the command tests and benches (imported by their inline
Python): one way to write a stream, random features, and captions a decoder can learn."""
import random
import struct

import msgpack


def stream(path, header, recs):
    """A cap stream: the header (format, version and `header`), then one record each."""
    with open(path, "wb") as f:
        f.write(msgpack.packb(dict({"format": "cap", "version": 1}, **header)))
        for r in recs:
            f.write(msgpack.packb(r, use_bin_type=True))


def features(path, images, dim, rnd):
    """A features stream: one uniform [0, 1) float32 vector of `dim` per image name."""
    stream(path, {"kind": "features", "dim": dim},
           ({"image": im, "feature": struct.pack("<%df" % dim, *[rnd.random() for _ in range(dim)]),
             "shape": [dim]} for im in images))


def learnable_captions(images, n, seed, lengths=(3, 9), vocab=50):
    """n caption records over `images` whose word ids depend on the image, so that a model has
    something to learn: <start> (1), words from 4 on, <end> (2)."""
    r = random.Random(seed)
    m = len(images)
    return [{"image": images[k % m], "n": k // m, "text": "",
             "ids": [1] + [4 + (k % m + 3 * j) % (vocab - 4) for j in range(r.randint(*lengths))] + [2]}
            for k in range(n)]


# The header of a captions stream of a made-up tokenizer.
def captions_header(tokenizer="t1", vocab=50):
    return {"kind": "captions", "tokenizer": tokenizer, "vocab_size": vocab,
            "tokenizer_json": "{\"model\": {}}"}
