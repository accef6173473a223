#!/usr/bin/python3
"""Draws examples/shapes: a toy captioning set made for cap's demo (run once; the PNGs and the
caption files it writes are committed). 48 images of one shape (circle, square, triangle) in one
colour (red, green, blue, yellow), big or small, on white or black, with five captions each in
the Flickr8k token-file format, and train/test split lists like Flickr8k's."""
import itertools, os, random
from PIL import Image, ImageDraw

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "shapes")
os.makedirs(out, exist_ok=True)
rng = random.Random(8)
colours = {"red": (220, 30, 30), "green": (30, 170, 60), "blue": (40, 70, 220), "yellow": (240, 210, 30)}
backgrounds = {"white": (250, 250, 250), "black": (10, 10, 10)}
shapes = ["circle", "square", "triangle"]
sizes = {"big": 26, "small": 12}
lines, names = [], []
for shape, colour, bg, size in itertools.product(shapes, colours, backgrounds, sizes):
    name = "%s_%s_%s_%s.png" % (size, colour, shape, bg)
    img = Image.new("RGB", (64, 64), backgrounds[bg])
    d = ImageDraw.Draw(img)
    r = sizes[size]
    cx, cy = 32 + rng.randint(-4, 4), 32 + rng.randint(-4, 4)
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colours[colour])
    elif shape == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=colours[colour])
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colours[colour])
    img.save(os.path.join(out, name), optimize=True)
    caps = ["A %s %s %s on a %s background ." % (size, colour, shape, bg),
            "a %s %s on %s" % (colour, shape, bg),
            "A %s %s ." % (colour, shape),
            "There is a %s %s %s ." % (size, colour, shape),
            "%s %s %s against %s" % (size.capitalize(), colour, shape, bg)]
    lines += ["%s#%d\t%s" % (name, i, c) for i, c in enumerate(caps)]
    names.append(name)
rng.shuffle(names)
with open(os.path.join(out, "captions.token.txt"), "w") as f:
    f.write("\n".join(lines) + "\n")
with open(os.path.join(out, "train.txt"), "w") as f:
    f.write("\n".join(sorted(names[:36])) + "\n")
with open(os.path.join(out, "test.txt"), "w") as f:
    f.write("\n".join(sorted(names[36:])) + "\n")
