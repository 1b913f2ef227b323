"""The scaled catalog: perturbed copies of the real products, and noisy copies of their vectors."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.product import MAX_PRICE, MAX_TITLE, Product

# (kind, text) variants appended to synthetic titles; colour variants also set the colour field.
VARIANTS: tuple[tuple[str, str], ...] = (
    *(("size", s) for s in ("Size S", "Size M", "Size L", "Size XL", "Size XXL", "One Size")),
    *(("size", s) for s in ("Pack of 2", "Pack of 3", "Pack of 6", "12 oz", "32 oz", "1 Gallon", "Twin", "Queen")),
    *(("color", c) for c in ("Black", "White", "Navy Blue", "Red", "Grey", "Green", "Beige", "Pink", "Brown")),
)


def make_synthetic(products: Sequence[Product], n: int, seed: int) -> tuple[list[Product], list[int]]:
    """`n` perturbed copies of real products (round-robin) and the index of each one's original.

    Each copy gets id `{id}-s{n}`, a title with two words swapped, one or two words dropped, or a word
    from another product's title inserted, a size/colour variant suffix, and a price jittered by ±15 %.
    """
    rng = random.Random(seed)
    titles = [p.title.split() for p in products]
    out: list[Product] = []
    bases: list[int] = []
    for i in range(n):
        b = i % len(products)
        base = products[b]
        words = list(titles[b])
        op = rng.randrange(3)
        if op == 0 and len(words) >= 2:
            j = rng.randrange(len(words) - 1)
            words[j], words[j + 1] = words[j + 1], words[j]
        elif op == 1 and len(words) >= 4:
            for _ in range(rng.randint(1, 2)):
                words.pop(rng.randrange(len(words)))
        else:
            other = titles[rng.randrange(len(titles))]
            words.insert(rng.randrange(len(words) + 1), rng.choice(other) if other else "new")
        kind, variant = rng.choice(VARIANTS)
        update: dict[str, Any] = {"id": f"{base.id}-s{i}", "title": (" ".join(words) + ", " + variant)[:MAX_TITLE]}
        if kind == "color":
            update["color"] = variant
        if base.price is not None:
            update["price"] = min(round(base.price * rng.uniform(0.85, 1.15), 2), MAX_PRICE)
        out.append(Product.model_validate({**base.model_dump(), **update}))
        bases.append(b)
    return out, bases


def noise_sigma_for(cosine: float, dim: int) -> float:
    """Per-dimension sigma so that normalise(v + noise) has about this cosine to a unit vector v."""
    cosine = min(max(cosine, 0.5), 0.9999)
    return math.sqrt((1.0 / cosine**2 - 1.0) / dim)


def perturbed(base: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    vecs = base + rng.normal(0.0, sigma, size=base.shape).astype(np.float32)
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)
