#!/usr/bin/env python3
"""Training throughput of rl-starter-files-style PPO in torch (CPU, one thread), measured
the way `duet bench train` measures duet: env frames per second, updates included.

Same network as duet's student (MiniGrid's standard CNN: 2x2 convs 16-32-64 with a 2x2
max-pool, 64-unit tanh actor and critic heads) over the same one-hot 7x7 observation
(11 object + 6 colour + 3 state channels), and torch-ac's PPO with rl-starter-files'
MiniGrid hyper-parameters: 16 envs, 128 frames per env per update, 4 epochs, minibatch
256, Adam lr 1e-3 eps 1e-8, gamma 0.99, GAE lambda 0.95, clip 0.2 (value too), entropy
0.01, value 0.5, grad-norm clip 0.5. The envs are the real `minigrid` package's, stepped
in this one process (rl-starter-files forks one process per env; one thread here is the
comparison asked for). Prints one JSON line.

Setup: pip install -r tools/requirements-torch-peer.txt
Usage: python3 tools/torch_ac_peer.py [--env ID] [--frames N] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn

import minigrid  # noqa: F401  (registers the env ids)

OBJECT_TYPES, COLORS, STATES = 11, 6, 3
CHANNELS = OBJECT_TYPES + COLORS + STATES


def one_hot(images: np.ndarray) -> torch.Tensor:
    """[batch, 7, 7, 3] integer images -> [batch, 20, 7, 7] one-hot floats (as duet encodes)."""
    batch, rows, cols, _ = images.shape
    out = np.zeros((batch, rows, cols, CHANNELS), dtype=np.float32)
    b, r, c = np.indices((batch, rows, cols))
    out[b, r, c, images[..., 0]] = 1.0
    out[b, r, c, OBJECT_TYPES + images[..., 1]] = 1.0
    out[b, r, c, OBJECT_TYPES + COLORS + images[..., 2]] = 1.0
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def init_params(module):
    """rl-starter-files' init: N(0, 1) rows scaled to unit norm, zero bias (Linear only)."""
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(0, 1)
        module.weight.data *= 1 / torch.sqrt(module.weight.data.pow(2).sum(1, keepdim=True))
        module.bias.data.fill_(0)


class ACModel(nn.Module):
    def __init__(self, n_actions: int):
        super().__init__()
        self.image_conv = nn.Sequential(
            nn.Conv2d(CHANNELS, 16, (2, 2)),
            nn.ReLU(),
            nn.MaxPool2d((2, 2)),
            nn.Conv2d(16, 32, (2, 2)),
            nn.ReLU(),
            nn.Conv2d(32, 64, (2, 2)),
            nn.ReLU(),
        )
        self.actor = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, n_actions))
        self.critic = nn.Sequential(nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))
        self.apply(init_params)

    def forward(self, obs: torch.Tensor):
        x = self.image_conv(obs).reshape(obs.shape[0], -1)
        dist = torch.distributions.Categorical(logits=self.actor(x))
        return dist, self.critic(x).squeeze(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    procs, frames_per_proc, epochs, batch_size = 16, 128, 4, 256
    discount, gae_lambda, clip_eps = 0.99, 0.95, 0.2
    entropy_coef, value_loss_coef, max_grad_norm = 0.01, 0.5, 0.5

    envs = [gym.make(args.env) for _ in range(procs)]
    obs = np.stack([env.reset(seed=args.seed + 10_000 * i)[0]["image"] for i, env in enumerate(envs)])
    model = ACModel(envs[0].action_space.n)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)

    frames, updates, episodes, successes = 0, 0, 0, 0
    start = time.perf_counter()
    while frames < args.frames:
        # Collect: 128 steps of 16 envs, as torch-ac's collect_experiences.
        observations = torch.zeros(frames_per_proc, procs, CHANNELS, 7, 7)
        actions = torch.zeros(frames_per_proc, procs, dtype=torch.long)
        values = torch.zeros(frames_per_proc, procs)
        rewards = torch.zeros(frames_per_proc, procs)
        masks = torch.zeros(frames_per_proc, procs)
        log_probs = torch.zeros(frames_per_proc, procs)
        for step in range(frames_per_proc):
            x = one_hot(obs)
            with torch.no_grad():
                dist, value = model(x)
            action = dist.sample()
            next_obs, done = [], []
            for i, env in enumerate(envs):
                o, reward, terminated, truncated, _ = env.step(int(action[i]))
                if terminated or truncated:
                    episodes += 1
                    successes += int(reward > 0)
                    o, _ = env.reset()
                next_obs.append(o["image"])
                rewards[step, i] = reward
                done.append(terminated or truncated)
            observations[step], actions[step], values[step] = x, action, value
            log_probs[step] = dist.log_prob(action)
            masks[step] = 1.0 - torch.tensor(done, dtype=torch.float32)
            obs = np.stack(next_obs)
        with torch.no_grad():
            _, next_value = model(one_hot(obs))
        advantages = torch.zeros(frames_per_proc, procs)
        running = torch.zeros(procs)
        for step in reversed(range(frames_per_proc)):
            following = values[step + 1] if step + 1 < frames_per_proc else next_value
            delta = rewards[step] + discount * following * masks[step] - values[step]
            running = delta + discount * gae_lambda * running * masks[step]
            advantages[step] = running
        # torch-ac flattens env-major; the order only matters for the shuffled minibatches.
        flat = lambda t: t.transpose(0, 1).reshape(-1, *t.shape[2:])  # noqa: E731
        b_obs, b_act, b_val, b_adv, b_logp = map(flat, (observations, actions, values, advantages, log_probs))
        b_ret = b_val + b_adv
        # Update: 4 epochs of shuffled minibatches of 256, as torch-ac's PPOAlgo.
        for _ in range(epochs):
            order = torch.randperm(b_obs.shape[0])
            for begin in range(0, b_obs.shape[0], batch_size):
                idx = order[begin : begin + batch_size]
                dist, value = model(b_obs[idx])
                entropy = dist.entropy().mean()
                ratio = torch.exp(dist.log_prob(b_act[idx]) - b_logp[idx])
                surr1 = ratio * b_adv[idx]
                surr2 = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * b_adv[idx]
                policy_loss = -torch.min(surr1, surr2).mean()
                value_clipped = b_val[idx] + torch.clamp(value - b_val[idx], -clip_eps, clip_eps)
                value_loss = torch.max((value - b_ret[idx]).pow(2), (value_clipped - b_ret[idx]).pow(2)).mean()
                loss = policy_loss - entropy_coef * entropy + value_loss_coef * value_loss
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                optimizer.step()
        frames += frames_per_proc * procs
        updates += 1
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "bench": "train",
                "implementation": "torch-ac-style",
                "torch": torch.__version__,
                "env": args.env,
                "num_envs": procs,
                "frames": frames,
                "updates": updates,
                "episodes": episodes,
                "success_rate": successes / max(episodes, 1),
                "seconds": seconds,
                "frames_per_sec": frames / seconds,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
