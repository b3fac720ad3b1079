"""Write the shared inputs: texts.json (captions + hard cases) and images224.npy (uint8 N,224,224,3)."""

import json

import numpy as np
from PIL import Image
from shared import OUT, D

rows = [json.loads(l) for l in open(f"{D}/openmoji-captions.jsonl")]
caps = [r["metadata"] for r in rows[:: len(rows) // 40][:40]]
hard = [
    "Hello, World!",
    "HELLO WORLD",
    "café au lait",
    "naïve résumé — déjà vu",
    "Crème Brûlée?!",
    "don't stop; won't stop...",
    "(parenthetical) [bracketed] {braced}",
    "e-mail @ 3:45 p.m. #tag $5.00 100%",
    "über straße Ærø",
    "日本語のテキスト",
    "emoji 😀 face",
    "a",
    "",
    "   spaces   everywhere   ",
    "The quick brown fox jumps over the lazy dog " * 6,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "x" * 150,
    "Mixed CASE words With ACRONYMS like NASA and IBM",
    "tab\tseparated\nnewline",
    "smiling face with heart-eyes",
]
texts = caps + hard
json.dump(texts, open(f"{OUT}/texts.json", "w"), ensure_ascii=False, indent=0)
files = sorted(r["id"] for r in rows)[:: len(rows) // 30][:30]
imgs = []
for f in files:
    im = Image.open(f"{D}/openmoji/{f}").convert("RGB").resize((224, 224), Image.BILINEAR)
    imgs.append(np.asarray(im, dtype=np.uint8))
np.save(f"{OUT}/images224.npy", np.stack(imgs))
json.dump(files, open(f"{OUT}/image_files.json", "w"))
print(len(texts), "texts", len(imgs), "images")
