#!/usr/bin/env python3
"""llama.cpp as a peer of duet's teacher: the same GGUF, the same prompts, one thread.

Runs `duet bench teacher` (which writes every state's prompt with --dump-prompts and
measures duet), then llama.cpp (llama-cpp-python, n_threads=1) on those prompts, and prints
one JSON line per engine from the same run:
  - prompt tokens per CPU-second over the whole prompts, evaluated cold (llama.cpp) and over
    the cold prompt prefixes (duet's figure);
  - llama.cpp's latency of the state part with the prompt prefix cached (no option scoring:
    llama.cpp has no batched option scoring; duet's cached latency includes it).

Setup: python3 -m pip install -r tools/requirements-llama-cpp.txt   (builds llama.cpp)
Usage: python3 tools/llama_cpp_peer.py --duet PATH/TO/duet [--scene scenes/doorkey-8x8.ron]
       [--states 12] [--model PATH] [--prompts FILE (skip running duet, use these prompts)]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from llama_cpp import Llama


def default_model() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "duet" / "models" / "gemma-3-270m-q4_k_m.gguf"


def common_prefix_length(sequences: list[list[int]]) -> int:
    """Tokens every sequence starts with (the shared prompt prefix)."""
    shortest = min(len(sequence) for sequence in sequences)
    for index in range(shortest):
        if any(sequence[index] != sequences[0][index] for sequence in sequences):
            return index
    return shortest


def run_duet(duet: str, scene: str, states: int, model: Path | None, prompts: Path) -> dict:
    command = [duet, "bench", "teacher", "--scene", scene, "--states", str(states),
               "--cold", str(min(states, 4)), "--dump-prompts", str(prompts)]
    if model is not None:
        command += ["--model", str(model)]
    print("running:", " ".join(command), file=sys.stderr)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duet", help="the duet binary (runs `duet bench teacher` first)")
    parser.add_argument("--scene", default="scenes/doorkey-8x8.ron")
    parser.add_argument("--states", type=int, default=12)
    parser.add_argument("--model", type=Path)
    parser.add_argument("--prompts", type=Path, help="JSON lines from `duet bench teacher --dump-prompts`")
    args = parser.parse_args()
    model = args.model or default_model()

    if args.prompts is None:
        if args.duet is None:
            parser.error("give --duet (to run duet and dump its prompts) or --prompts FILE")
        prompts_path = Path(tempfile.mkdtemp(prefix="duet-peer-")) / "prompts.jsonl"
        duet_result = run_duet(args.duet, args.scene, args.states, args.model, prompts_path)
        print(json.dumps({"engine": "duet", **duet_result}))
    else:
        prompts_path = args.prompts
    prompts = [json.loads(line)["prompt"] for line in prompts_path.read_text().splitlines() if line.strip()]

    llm = Llama(model_path=str(model), n_ctx=4096, n_batch=512, n_threads=1, n_threads_batch=1,
                verbose=False)
    token_lists = [llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=False) for prompt in prompts]
    # Warm-up, as duet's model is warm after loading.
    llm.reset()
    llm.eval(token_lists[0][:32])

    cold_tokens = 0
    cold_cpu = 0.0
    cold_wall = 0.0
    for tokens in token_lists:
        llm.reset()
        cpu, wall = time.process_time(), time.perf_counter()
        llm.eval(tokens)
        cold_cpu += time.process_time() - cpu
        cold_wall += time.perf_counter() - wall
        cold_tokens += len(tokens)

    prefix = common_prefix_length(token_lists)
    llm.reset()
    llm.eval(token_lists[0][:prefix])
    state_ms = []
    for tokens in token_lists:
        llm.n_tokens = prefix  # keep the prefix's KV cells; eval drops the rest
        wall = time.perf_counter()
        llm.eval(tokens[prefix:])
        state_ms.append((time.perf_counter() - wall) * 1e3)

    print(json.dumps({
        "engine": "llama.cpp",
        "model": model.name,
        "prompts": len(token_lists),
        "mean_prompt_tokens": cold_tokens / len(token_lists),
        "shared_prefix_tokens": prefix,
        "prompt_tokens_per_cpu_second": cold_tokens / max(cold_cpu, 1e-9),
        "prompt_tokens_per_second": cold_tokens / max(cold_wall, 1e-9),
        "state_part_p50_ms_prefix_cached": statistics.median(state_ms),
        "threads": 1,
    }))


if __name__ == "__main__":
    main()
