"""Fine-tunes the encoder end to end with a softmax head over the layer-pooled features, on the CPU.

An option of IntentClassifier (`finetune_epochs`): the tuned transformer is written to a directory (under a
cache dir, never committed) and the usual logistic heads are then fitted on its features.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from assistant.intents.features import layer_pool_module, load_transformer


def finetune_encoder(
    base: Path,
    texts: Sequence[str],
    labels: Sequence[str],
    target: Path,
    *,
    layers: Sequence[int],
    max_seq_length: int,
    epochs: int,
    lr: float = 5e-5,
    head_lr: float = 2e-3,
    batch_size: int = 32,
    seed: int = 0,
) -> Path:
    """Train `base` on (texts, labels) and save the transformer and tokenizer into `target`."""
    import torch

    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer, model = load_transformer(base)
    pool = layer_pool_module(model, layers)
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    y_all = [index[label] for label in labels]
    dim = int(model.config.hidden_size) * len(layers)
    head = torch.nn.Linear(dim, len(classes))
    # Features have unit norm; the scale lets the softmax get confident without huge head weights.
    scale = 10.0 * len(layers) ** 0.5
    opt = torch.optim.AdamW(
        [{"params": model.parameters(), "lr": lr}, {"params": head.parameters(), "lr": head_lr}], weight_decay=0.01
    )
    steps = epochs * ((len(texts) + batch_size - 1) // batch_size)
    warmup = max(1, int(0.06 * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * max(0.0, 1 - s / steps))
    started = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = list(range(len(texts)))
        rng.shuffle(order)
        # Length-sorted within chunks of 100 batches: little padding, still shuffled batches.
        chunk = batch_size * 100
        batches = [
            block[i : i + batch_size]
            for start in range(0, len(order), chunk)
            for block in [sorted(order[start : start + chunk], key=lambda j: len(texts[j]))]
            for i in range(0, len(block), batch_size)
        ]
        rng.shuffle(batches)
        total = 0.0
        for batch in batches:
            enc = tokenizer(
                [texts[j] for j in batch], padding=True, truncation=True, max_length=max_seq_length, return_tensors="pt"
            )
            logits = head(pool(enc["input_ids"], enc["attention_mask"]) * scale)
            loss = torch.nn.functional.cross_entropy(logits, torch.tensor([y_all[j] for j in batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(batch)
        elapsed = time.perf_counter() - started
        print(f"fine-tune epoch {epoch + 1}/{epochs}: loss {total / len(texts):.4f} ({elapsed:.0f}s)", file=sys.stderr)
    target.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(str(target))
    tokenizer.save_pretrained(str(target))
    return target
