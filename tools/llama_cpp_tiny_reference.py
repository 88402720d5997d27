#!/usr/bin/env python3
"""llama.cpp's logits for duet's tiny llama and qwen2 test models (src/teacher/llm/llama/tests.rs).

The Rust test writes the tiny random GGUF files (fixed seeds) and compares duet's logits with
tests/fixtures/llama_cpp/tiny.json; this script recomputes that fixture with llama.cpp
(llama-cpp-python, one thread) on the same files, so the comparison is against an
independent implementation of both architectures.

Setup: python3 -m pip install -r tools/requirements-llama-cpp.txt   (builds llama.cpp)
Usage:
  DUET_TINY_GGUF_DIR=/tmp/tiny-gguf cargo test --no-default-features --lib tiny_llama_and_qwen2
  python3 tools/llama_cpp_tiny_reference.py --models /tmp/tiny-gguf
(the test fails the first time if the fixture is missing; the files are written before that.)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from llama_cpp import Llama

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "llama_cpp" / "tiny.json"
MODELS = ["tiny-llama.gguf", "tiny-qwen2.gguf"]
# The same ids as LLAMA_CPP_TOKENS in the Rust test.
TOKENS = [72, 258, 261, 32, 49, 263, 10, 101, 101, 264, 0, 200]
# Texts llama.cpp tokenizes with tiny-qwen2.gguf's byte-level vocabulary (pre-tokenizer qwen2).
TEXTS = [
    "x the key 123",
    "Hello  world\n\nthe key",
    "\u00fcn\u00efcode 4567 keys \U0001F511",
    "   leading spaces and trailing   ",
    "tabs\tand\r\nnewlines\n",
    "It's the key's 12th door; they'll open it.",
]


def logits(path: Path) -> list[list[float]]:
    # f32 keys and values (llama.cpp caches f16 by default), so the comparison can be tight.
    model = Llama(
        model_path=str(path), n_ctx=64, n_threads=1, n_batch=64, logits_all=True, verbose=False, type_k=0, type_v=0,
    )
    model.reset()
    model.eval(TOKENS)
    return np.array(model.scores[: len(TOKENS)], dtype=np.float64).round(6).tolist()


def tokenized(path: Path) -> dict[str, list[int]]:
    model = Llama(model_path=str(path), n_ctx=64, n_threads=1, vocab_only=True, verbose=False)
    return {text: model.tokenize(text.encode(), add_bos=False, special=False) for text in TEXTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=Path, required=True, help="where the Rust test wrote the GGUF files")
    args = parser.parse_args()
    fixture = {
        "source": "llama.cpp via llama-cpp-python, tools/llama_cpp_tiny_reference.py",
        "tokens": TOKENS,
        "models": {name: logits(args.models / name) for name in MODELS},
        "tokenized": tokenized(args.models / "tiny-qwen2.gguf"),
    }
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    FIXTURE.write_text(json.dumps(fixture) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
