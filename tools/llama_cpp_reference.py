#!/usr/bin/env python3
"""llama.cpp's reference figures for duet's Gemma 3 forward pass (tests/gemma3_real.rs).

Runs llama.cpp (llama-cpp-python, one thread) on the same GGUF as duet and prints the
constants the Rust test compares against: the perplexity of tests/fixtures/text/paragraph.txt,
of essay.txt + paragraph.txt (all targets, and targets from position 512 on, past the local
layers' window), and the top next-token log-probs after "The capital of France is".

Setup: python3 -m pip install -r tools/requirements-llama-cpp.txt   (builds llama.cpp)
Usage: python3 tools/llama_cpp_reference.py [--model PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
TEXTS = ROOT / "tests" / "fixtures" / "text"
WINDOW = 512


def default_model() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "duet" / "models" / "gemma-3-270m-q4_k_m.gguf"


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def target_nll(model: Llama, text: str) -> np.ndarray:
    """Negative log-likelihood of every token after <bos>, in order."""
    tokens = model.tokenize(text.encode(), add_bos=True, special=False)
    model.reset()
    model.eval(tokens)
    log_probs = log_softmax(np.array(model.scores[: len(tokens)], dtype=np.float64))
    return np.array([-log_probs[i, tokens[i + 1]] for i in range(len(tokens) - 1)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=default_model())
    args = parser.parse_args()
    model = Llama(
        model_path=str(args.model), n_ctx=1024, n_threads=1, n_batch=1024, n_ubatch=1024,
        logits_all=True, verbose=False,
    )
    paragraph = (TEXTS / "paragraph.txt").read_text()
    essay = (TEXTS / "essay.txt").read_text()
    short = target_nll(model, paragraph)
    long = target_nll(model, essay + "\n" + paragraph)

    prompt = model.tokenize(b"The capital of France is", add_bos=True, special=False)
    model.reset()
    model.eval(prompt)
    next_log_probs = log_softmax(np.array(model.scores[len(prompt) - 1], dtype=np.float64))
    top = np.argsort(-next_log_probs)[:5]
    print(json.dumps({
        "llama_cpp_python": __import__("llama_cpp").__version__,
        "model": str(args.model),
        "paragraph_tokens": len(short) + 1,
        "paragraph_perplexity": round(math.exp(short.mean()), 4),
        "long_text_tokens": len(long) + 1,
        "long_text_perplexity": round(math.exp(long.mean()), 4),
        "long_text_perplexity_beyond_window": round(math.exp(long[WINDOW - 1:].mean()), 4),
        "france_next_tokens": [
            [model.detokenize([int(t)]).decode(errors="replace"), round(float(next_log_probs[t]), 2)] for t in top
        ],
    }))


if __name__ == "__main__":
    main()
