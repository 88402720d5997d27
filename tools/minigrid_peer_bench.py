#!/usr/bin/env python3
"""Throughput of the real MiniGrid, measured the way `duet bench env` measures duet.

One process, one env, uniformly random actions from a seeded numpy RNG, reset on
terminated/truncated, observation generation included (the env is stepped normally).
Prints one JSON line.

Setup: pip install -r tools/requirements-minigrid.txt
Usage: python3 tools/minigrid_peer_bench.py [--env ID] [--steps N] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

import gymnasium as gym
import numpy as np

import minigrid  # registers the env ids


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    env = gym.make(args.env)
    rng = np.random.default_rng(args.seed)
    n_actions = int(env.action_space.n)
    actions = rng.integers(0, n_actions, size=args.steps)  # drawn up front, outside the clock
    quiet = io.StringIO()  # BabyAI levels print rejected samples during reset

    with contextlib.redirect_stdout(quiet):
        env.reset(seed=args.seed)
    episode = 0
    t0 = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(int(a))
        if terminated or truncated:
            episode += 1
            with contextlib.redirect_stdout(quiet):
                env.reset(seed=args.seed + episode)
    seconds = time.perf_counter() - t0

    print(
        json.dumps(
            {
                "impl": "minigrid",
                "minigrid_version": minigrid.__version__,
                "env_id": args.env,
                "steps": args.steps,
                "seconds": round(seconds, 4),
                "steps_per_sec": round(args.steps / seconds, 1),
                "threads": 1,
            }
        )
    )


if __name__ == "__main__":
    main()
