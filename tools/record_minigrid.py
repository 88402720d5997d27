#!/usr/bin/env python3
"""Record reference trajectories from the real MiniGrid 3.0.0 package.

Writes one gzip'd JSONL file per env id to tests/fixtures/minigrid/<env_id>.jsonl.gz
(one trajectory per line) and prints a summary plus a per-env coverage table that is
recomputed from the written files.  Everything is deterministic: env resets use fixed
seeds and the action RNGs are seeded from (seed, crc32(env_id)).

Trajectory kinds (mixed per env):
  random   - uniform actions 0..6 until terminated/truncated
  biased   - state-aware random policy favouring forward/pickup/toggle/drop
  scripted - BFS planner over env.unwrapped.grid solving the task (plus detours that
             exercise no-op actions, door closing/reopening, dropping, lava deaths, ...)
  edge     - the grid is modified after reset (boxes with contents, balls, free-standing
             doors, lava, extra goals, agent placed on an open door, ...) and then the
             agent acts scripted / biased.  The env id's own termination rules apply.

With --extra, records instead an extra set of env ids (EXTRA_ENV_IDS: families outside
duet's catalogue whose success rules duet derives from the env id and mission: Fetch,
GoToDoor, GoToObject, RedBlueDoors, PutNear, Unlock, LavaGap, ..., single-instruction BabyAI
levels) into tests/fixtures/minigrid-extra/, same format, ~300-600 steps per env id, mixing
random, biased (favouring pickup/toggle/drop/done next to objects) and scripted episodes.
Env ids that are not registered, or BabyAI levels whose missions are instruction sequences
("... then ...", "... and ..."), are skipped with a message.  The extra set gets a shape
check and a rule-coverage table, not the replay check.

Setup: pip install -r tools/requirements-minigrid.txt
Usage: python3 tools/record_minigrid.py [--extra] [--out DIR] [--check-only]
"""

from __future__ import annotations

import os

# BabyAI reads this at import time; with it set, `done` would end BabyAI episodes.
os.environ.pop("BABYAI_DONE_ACTIONS", None)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import gzip  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import zlib  # noqa: E402
from collections import deque  # noqa: E402
from pathlib import Path  # noqa: E402

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

import minigrid  # noqa: E402,F401  (registers the env ids)
from minigrid.core.world_object import Ball, Box, Door, Goal, Key, Lava, Wall  # noqa: E402

MINIGRID_VERSION = "3.0.0"

LEFT, RIGHT, FORWARD, PICKUP, DROP, TOGGLE, DONE = range(7)
DIRS = [(1, 0), (0, 1), (-1, 0), (0, -1)]
COLORS = ["red", "green", "blue", "purple", "yellow", "grey"]
TYPE_IDX = {"empty": 1, "wall": 2, "door": 4, "key": 5, "ball": 6, "box": 7, "goal": 8, "lava": 9}

ENV_IDS = [
    "MiniGrid-Empty-5x5-v0",
    "MiniGrid-Empty-8x8-v0",
    "MiniGrid-Empty-16x16-v0",
    "MiniGrid-DoorKey-5x5-v0",
    "MiniGrid-DoorKey-6x6-v0",
    "MiniGrid-DoorKey-8x8-v0",
    "MiniGrid-DoorKey-16x16-v0",
    "MiniGrid-KeyCorridorS3R1-v0",
    "MiniGrid-KeyCorridorS3R2-v0",
    "MiniGrid-KeyCorridorS3R3-v0",
    "MiniGrid-UnlockPickup-v0",
    "MiniGrid-BlockedUnlockPickup-v0",
    "MiniGrid-FourRooms-v0",
    "MiniGrid-LavaCrossingS9N1-v0",
    "MiniGrid-MultiRoom-N2-S4-v0",
    "BabyAI-GoToRedBallNoDists-v0",
    "BabyAI-GoToObj-v0",
    "BabyAI-PickupLoc-v0",
    "BabyAI-OpenDoor-v0",
]

# Per env: the kinds cycled through (kind, arg).  For random/biased, arg is a max_steps
# override passed to gym.make (None = the env's own max_steps); for scripted/edge it is a
# variant number.  Trajectories are generated until MIN_STEPS and MIN_TRAJ are reached.
R, B, S, E = "random", "biased", "scripted", "edge"
PLANS = {
    "MiniGrid-Empty-5x5-v0": [(R, None), (B, None), (S, 0), (R, 30), (E, 2), (B, None), (S, 1),
                              (E, 4), (S, 2)],
    "MiniGrid-Empty-8x8-v0": [(R, 60), (E, 0), (B, 120), (S, 0), (E, 1), (R, None), (E, 2),
                              (B, None), (E, 3), (S, 1), (E, 4), (E, 5)],
    "MiniGrid-Empty-16x16-v0": [(R, 80), (B, 120), (S, 0), (R, 300), (S, 1), (E, 2), (B, 200)],
    "MiniGrid-DoorKey-5x5-v0": [(R, None), (S, 0), (B, None), (S, 1), (R, 40), (S, 2), (B, 60)],
    "MiniGrid-DoorKey-6x6-v0": [(R, 60), (S, 0), (B, None), (S, 1), (R, None), (S, 2), (B, 80)],
    "MiniGrid-DoorKey-8x8-v0": [(R, 80), (E, 10), (S, 0), (B, 150), (E, 11), (S, 1), (E, 12),
                                (R, 40), (E, 13), (S, 2), (E, 14), (B, 100), (E, 15), (E, 2)],
    "MiniGrid-DoorKey-16x16-v0": [(R, 80), (S, 0), (B, 150), (S, 1), (S, 2), (R, 120)],
    "MiniGrid-KeyCorridorS3R1-v0": [(R, None), (S, 0), (B, None), (S, 1), (B, 80)],
    "MiniGrid-KeyCorridorS3R2-v0": [(R, 100), (S, 0), (B, None), (S, 1), (B, 80)],
    "MiniGrid-KeyCorridorS3R3-v0": [(R, 100), (S, 0), (B, None), (S, 1), (B, 80)],
    "MiniGrid-UnlockPickup-v0": [(R, 100), (S, 0), (B, None), (S, 1), (B, 80)],
    "MiniGrid-BlockedUnlockPickup-v0": [(R, 100), (S, 0), (B, 200), (S, 1), (B, 80)],
    "MiniGrid-FourRooms-v0": [(R, None), (S, 0), (B, None), (S, 1), (R, 30)],
    "MiniGrid-LavaCrossingS9N1-v0": [(R, None), (S, 0), (B, None), (S, 1), (B, 60), (S, 2)],
    "MiniGrid-MultiRoom-N2-S4-v0": [(R, None), (S, 0), (B, None), (S, 1), (B, None)],
    "BabyAI-GoToRedBallNoDists-v0": [(R, None), (S, 0), (B, None), (S, 1), (R, 20)],
    "BabyAI-GoToObj-v0": [(R, None), (S, 0), (B, None), (S, 1), (R, 20)],
    "BabyAI-PickupLoc-v0": [(R, None), (S, 0), (B, None), (S, 1), (B, 30)],
    "BabyAI-OpenDoor-v0": [(R, 60), (S, 0), (B, 80), (S, 1), (R, None)],
}
MIN_STEPS = 1500
MIN_TRAJ = 14


def ints(a):
    """Flatten an array (C order) into a list of python ints."""
    return [int(v) for v in np.asarray(a).reshape(-1)]


def enc(obj):
    return None if obj is None else [int(v) for v in obj.encode()]


def pos_of(p):
    return (int(p[0]), int(p[1]))


# ---------------------------------------------------------------------------------------
# Episode recorder


class Episode:
    def __init__(self, env_id, seed, max_steps=None, setup=None):
        kwargs = {} if max_steps is None else {"max_steps": max_steps}
        self.env_id = env_id
        self.env = gym.make(env_id, **kwargs)
        with contextlib.redirect_stdout(io.StringIO()):  # BabyAI prints rejected samples
            obs, _ = self.env.reset(seed=seed)
        self.u = self.env.unwrapped
        self.rng = np.random.default_rng([seed, zlib.crc32(env_id.encode())])
        self.info = {}
        if setup is not None:
            self.info = setup(self.u, self.rng) or {}
            obs = self.u.gen_obs()
        u = self.u
        grid = u.grid.encode()  # (W, H, 3), does not include the agent
        boxes = {}
        for x in range(u.width):
            for y in range(u.height):
                c = u.grid.get(x, y)
                if c is not None and c.type == "box" and c.contains is not None:
                    boxes[f"{x},{y}"] = enc(c.contains)
        self.rec = {
            "minigrid_version": MINIGRID_VERSION,
            "env_id": env_id,
            "seed": int(seed),
            "width": int(u.width),
            "height": int(u.height),
            "grid": [ints(grid[x, y]) for x in range(u.width) for y in range(u.height)],
            "box_contents": boxes,
            "agent_pos": list(pos_of(u.agent_pos)),
            "agent_dir": int(u.agent_dir),
            "max_steps": int(u.max_steps),
            "mission": str(u.mission),
            "see_through_walls": bool(u.see_through_walls),
            "agent_view_size": int(u.agent_view_size),
            "initial_obs": {"image": ints(obs["image"]), "direction": int(obs["direction"])},
            "steps": [],
        }
        self.done = False

    def step(self, action):
        assert not self.done
        obs, reward, term, trunc, _ = self.env.step(int(action))
        u = self.u
        self.rec["steps"].append(
            {
                "action": int(action),
                "image": ints(obs["image"]),
                "direction": int(obs["direction"]),
                "reward": float(reward),
                "terminated": bool(term),
                "truncated": bool(trunc),
                "carrying": enc(u.carrying),
                "agent_pos": list(pos_of(u.agent_pos)),
                "agent_dir": int(u.agent_dir),
            }
        )
        self.done = bool(term or trunc)
        return not self.done

    def steps(self, actions):
        for a in actions:
            if self.done:
                return False
            self.step(a)
        return not self.done

    def close(self):
        self.env.close()
        return self.rec


# ---------------------------------------------------------------------------------------
# BFS planner over (x, y, dir) using the live grid


def enterable(u, x, y, carrying, avoid, blocked):
    """How the agent can enter (x, y): 'walk', 'open' (toggle a door first) or None."""
    if not (0 <= x < u.width and 0 <= y < u.height) or (x, y) in blocked:
        return None
    c = u.grid.get(x, y)
    if c is None:
        return "walk"
    if c.type in avoid:
        return None
    if c.can_overlap():
        return "walk"
    if c.type == "door" and (
        not c.is_locked
        or (carrying is not None and carrying.type == "key" and carrying.color == c.color)
    ):
        return "open"
    return None


def first_action(u, goal, avoid=("lava", "goal"), carrying="env", blocked=frozenset()):
    """First action of a shortest plan reaching a state with goal(x, y, d) true.

    Returns 'here' if already satisfied, None if unreachable."""
    if carrying == "env":
        carrying = u.carrying
    start = (*pos_of(u.agent_pos), int(u.agent_dir))
    if goal(*start):
        return "here"
    first = {start: None}
    queue = deque([start])
    while queue:
        s = queue.popleft()
        x, y, d = s
        succ = [((x, y, (d - 1) % 4), LEFT), ((x, y, (d + 1) % 4), RIGHT)]
        nx, ny = x + DIRS[d][0], y + DIRS[d][1]
        how = enterable(u, nx, ny, carrying, avoid, blocked)
        if how:
            succ.append(((nx, ny, d), FORWARD if how == "walk" else TOGGLE))
        for ns, a in succ:
            if ns in first:
                continue
            first[ns] = first[s] if first[s] is not None else a
            if goal(*ns):
                return first[ns]
            queue.append(ns)
    return None


def facing(target):
    tx, ty = target
    return lambda x, y, d: (x + DIRS[d][0], y + DIRS[d][1]) == (tx, ty)


def face(ep, target, avoid=("lava", "goal"), cap=300):
    """Walk (opening doors on the way) until facing target.  False if impossible/done."""
    return face_where(ep, facing(target), avoid, cap=cap)


def front(ep):
    return pos_of(ep.u.front_pos)


def front_cell(ep):
    return ep.u.grid.get(*front(ep))


def find(u, type_, color=None):
    out = []
    for x in range(u.width):
        for y in range(u.height):
            c = u.grid.get(x, y)
            if c is not None and c.type == type_ and (color is None or c.color == color):
                out.append((x, y))
    ax, ay = pos_of(u.agent_pos)
    out.sort(key=lambda p: abs(p[0] - ax) + abs(p[1] - ay))
    return out


def pickup_at(ep, target):
    if not face(ep, target):
        return False
    return ep.step(PICKUP)


def go_onto(ep, target, avoid=("lava", "goal")):
    """Face target then step onto it (toggling a closed door first)."""
    if not face(ep, target, avoid):
        return False
    c = front_cell(ep)
    if c is not None and c.type == "door" and not c.is_open:
        if not ep.step(TOGGLE):
            return False
    return ep.step(FORWARD)


def drop_somewhere(ep, keep=()):
    """Drop the carried object on a free cell that leaves every `keep` target faceable."""
    u = ep.u
    if u.carrying is None or ep.done:
        return False
    ax, ay = pos_of(u.agent_pos)
    cands = [
        (x, y)
        for x in range(u.width)
        for y in range(u.height)
        if u.grid.get(x, y) is None and (x, y) != (ax, ay)
    ]
    cands.sort(key=lambda p: (abs(p[0] - ax) + abs(p[1] - ay), p))
    for c in cands[:60]:
        if first_action(u, facing(c)) is None:
            continue
        blocked = frozenset([c])
        if all(first_action(u, facing(t), carrying=None, blocked=blocked) is not None for t in keep):
            return face(ep, c) and ep.step(DROP)
    return False


def face_wall(ep):
    """Turn (no walking) until facing a wall, if any adjacent."""
    for _ in range(4):
        c = front_cell(ep)
        if c is not None and c.type == "wall":
            return True
        if not ep.step(LEFT):
            return False
    return False


# ---------------------------------------------------------------------------------------
# Policies


def random_policy(ep):
    while not ep.done:
        ep.step(ep.rng.integers(0, 7))


def biased_weights(ep):
    """Action weights favouring interaction with what is in front (pickup, toggle, drop)."""
    u = ep.u
    c = front_cell(ep)
    w = np.array([0.15, 0.15, 0.40, 0.07, 0.06, 0.09, 0.03])  # left right fwd pick drop toggle done
    if c is not None:
        if c.can_pickup() and u.carrying is None:
            w[PICKUP] += 1.2
        if c.type == "door":
            w[TOGGLE] += 0.8 if not c.is_open else 0.2
        if c.type == "box":
            w[TOGGLE] += 0.6
        if c.type == "wall":
            w[FORWARD] = 0.05
    elif u.carrying is not None:
        w[DROP] += 0.12
    return w


def biased_action(ep):
    w = biased_weights(ep)
    return int(ep.rng.choice(7, p=w / w.sum()))


def biased_policy(ep, limit=None):
    n = 0
    while not ep.done and (limit is None or n < limit):
        ep.step(biased_action(ep))
        n += 1


# ---------------------------------------------------------------------------------------
# Scripted solvers


def noop_tour(ep):
    """Actions that must not change anything: toggle/pickup/forward into a wall, drop with
    empty hands, done."""
    if face_wall(ep):
        ep.steps([TOGGLE, PICKUP, FORWARD, DROP, DONE])


def goto_goal(ep, avoid=("lava", "goal")):
    goals = find(ep.u, "goal")
    for g in goals:
        if go_onto(ep, g, avoid):
            return True
        if ep.done:
            return True
    return False


def script_empty(ep, variant):
    u = ep.u
    if variant == 0:
        noop_tour(ep)
    elif variant == 1:
        # visit corners and face out of the grid (view extends past the border)
        w, h = u.width, u.height
        for corner, dirs in [((w - 2, 1), (3, 0)), ((1, h - 2), (2, 1)), ((1, 1), (3, 2))]:
            if not face(ep, corner):
                break
            ep.step(FORWARD)
            while not ep.done and u.agent_dir != dirs[0]:
                ep.step(RIGHT)
            ep.steps([LEFT, RIGHT, RIGHT, LEFT])
    goto_goal(ep)


def script_doorkey(ep, variant):
    u = ep.u
    key, door, goal = find(u, "key")[0], find(u, "door")[0], find(u, "goal")[0]
    if variant == 0:
        noop_tour(ep)
        if face(ep, door):  # locked, no key: toggle and forward do nothing
            ep.steps([TOGGLE, FORWARD])
    if not pickup_at(ep, key):
        return
    if variant == 0:
        ep.steps([PICKUP])  # pickup with hands full / nothing in front
    if not face(ep, door):
        return
    ep.step(TOGGLE)  # unlock + open
    if variant in (0, 2):
        ep.steps([TOGGLE, FORWARD, TOGGLE, DROP])  # close, bump, reopen, drop onto the door
    ep.steps([FORWARD, LEFT, RIGHT, FORWARD])  # stand on the open door, look around
    if variant == 0:
        ep.steps([LEFT, LEFT])  # look back through the door
        if drop_somewhere(ep, keep=[goal]):
            ep.steps([DROP, PICKUP, PICKUP])  # drop w/o carrying, pick key again
        if face(ep, door):
            ep.steps([DROP, TOGGLE, TOGGLE])  # drop onto non-empty; close + reopen from inside
    elif variant == 1:
        drop_somewhere(ep, keep=[goal])
    goto_goal(ep)


def locked_pickup(ep, blocked_variant=False, toggle_first=False):
    """KeyCorridor / UnlockPickup / BlockedUnlockPickup: fetch the key, unlock, drop the
    key, pick up the target named in the mission."""
    u = ep.u
    m = re.match(r"pick up the (\w+) (\w+)", u.mission)
    target = find(u, m.group(2), m.group(1))[0]
    door = [p for p in find(u, "door") if u.grid.get(*p).is_locked][0]
    dcolor = u.grid.get(*door).color
    key = find(u, "key", dcolor)[0]
    if blocked_variant:
        # the ball right in front of the door (on the agent's side) blocks it
        ball = (door[0] - 1, door[1])
        if not pickup_at(ep, ball):
            return
        if not drop_somewhere(ep, keep=[door, key]):
            return
    if toggle_first and face(ep, door):
        ep.steps([TOGGLE, FORWARD])  # locked without key: no effect
    if not pickup_at(ep, key):
        return
    if not face(ep, door):
        return
    ep.step(TOGGLE)  # unlock + open
    if toggle_first:
        ep.steps([TOGGLE, TOGGLE])  # close and reopen
    if not drop_somewhere(ep, keep=[target]):
        return
    pickup_at(ep, target)


def script_lava(ep, variant):
    u = ep.u
    if variant == 1:
        # walk into the nearest reachable lava cell after poking it
        for lv in find(u, "lava"):
            if face(ep, lv):
                ep.steps([PICKUP, TOGGLE, FORWARD])
                return
    if variant == 2:
        noop_tour(ep)
    goto_goal(ep)


def script_multiroom(ep, variant):
    u = ep.u
    if variant == 1:
        for d in find(u, "door"):
            if face(ep, d):
                c = front_cell(ep)
                ep.steps([TOGGLE, TOGGLE] if not c.is_open else [TOGGLE])
                ep.steps([TOGGLE, FORWARD])
                break
    goto_goal(ep)


MISSION_RE = re.compile(
    r"(?:go to|pick up|open) (?:the|a) (?:(red|green|blue|purple|yellow|grey) )?"
    r"(ball|box|key|door|object)(?: (in front of you|behind you|on your left|on your right))?$"
)


def babyai_candidates(u):
    """Objects matching the mission's type/colour; those matching the location word (as
    seen from the start pose, inside the start room) first."""
    m = MISSION_RE.match(u.mission)
    assert m, u.mission
    color, type_, loc = m.groups()
    types = ["ball", "box", "key"] if type_ == "object" else [type_]
    cands = [p for t in types for p in find(u, t, color)]
    if not loc:
        return cands
    ax, ay = pos_of(u.agent_pos)
    d1 = DIRS[u.agent_dir]
    d2 = (-d1[1], d1[0])
    room = u.room_from_pos(ax, ay)

    def matches(p):
        v = (p[0] - ax, p[1] - ay)
        dot1, dot2 = v[0] * d1[0] + v[1] * d1[1], v[0] * d2[0] + v[1] * d2[1]
        ok = {"on your left": dot2 < 0, "on your right": dot2 > 0,
              "in front of you": dot1 > 0, "behind you": dot1 < 0}[loc]
        return ok and room.pos_inside(*p)

    return [p for p in cands if matches(p)] + [p for p in cands if not matches(p)]


def script_babyai(ep, variant):
    u = ep.u
    if variant == 1:
        ep.steps([DONE, DROP, TOGGLE])  # `done` is a plain no-op without BABYAI_DONE_ACTIONS
    cands = babyai_candidates(u)
    if u.mission.startswith("go to"):
        for c in cands:
            if not face(ep, c) or ep.done:
                return
            ep.step(DONE)  # success is checked on every step, facing is enough
        return
    if u.mission.startswith("pick up"):
        for i, c in enumerate(cands):
            if ep.done:
                return
            if u.carrying is not None and not drop_somewhere(ep, keep=cands[i:]):
                return
            pickup_at(ep, c)
        return
    if u.mission.startswith("open"):
        for c in cands:
            if ep.done or not face(ep, c):
                return
            ep.step(TOGGLE)
            if not ep.done and variant == 1:
                ep.step(TOGGLE)  # wrong door: close it again


def run_script(ep, variant):
    eid = ep.env_id
    if "Empty" in eid:
        script_empty(ep, variant)
    elif "DoorKey" in eid:
        script_doorkey(ep, variant)
    elif "KeyCorridor" in eid or "UnlockPickup" in eid:
        locked_pickup(ep, blocked_variant="Blocked" in eid, toggle_first=variant == 1)
    elif "LavaCrossing" in eid:
        script_lava(ep, variant)
    elif "MultiRoom" in eid:
        script_multiroom(ep, variant)
    elif "FourRooms" in eid:
        if variant == 1:
            noop_tour(ep)
        goto_goal(ep)
    elif eid.startswith("BabyAI"):
        script_babyai(ep, variant)
    else:
        raise ValueError(eid)
    # finish unsolved episodes with a bounded biased walk
    biased_policy(ep, limit=150)


# ---------------------------------------------------------------------------------------
# Edge-case scenarios (grid modified after reset)


def free_cells(u, exclude=()):
    ax, ay = pos_of(u.agent_pos)
    return [
        (x, y)
        for x in range(1, u.width - 1)
        for y in range(1, u.height - 1)
        if u.grid.get(x, y) is None and (x, y) != (ax, ay) and (x, y) not in exclude
    ]


def random_object(rng):
    col = COLORS[int(rng.integers(0, 6))]
    col2 = COLORS[int(rng.integers(0, 6))]
    k = int(rng.integers(0, 11))
    return [
        lambda: Box(col, contains=Key(col2)),
        lambda: Box(col, contains=Ball(col2)),
        lambda: Box(col),
        lambda: Ball(col),
        lambda: Key(col),
        lambda: Door(col, is_open=True),
        lambda: Door(col),
        lambda: Door(col, is_locked=True),
        lambda: Lava(),
        lambda: Goal(),
        lambda: Wall(),
    ][k]()


def scatter(u, rng, n, exclude=()):
    cells = free_cells(u, exclude)
    idx = rng.permutation(len(cells))[:n]
    for i in idx:
        x, y = cells[int(i)]
        u.grid.set(x, y, random_object(rng))


def setup_empty_objects(u, rng):
    """Empty-8x8: a hand-built playground (agent at (1,1) facing east, goal (6,6))."""
    g = u.grid
    g.set(3, 1, Box("purple", contains=Key("yellow")))
    g.set(1, 3, Ball("blue"))
    g.set(4, 4, Door("yellow", is_locked=True))
    g.set(5, 1, Box("green"))
    g.set(3, 5, Lava())
    g.set(1, 6, Goal())
    g.set(2, 3, Door("red", is_open=True))
    g.set(5, 3, Door("blue"))
    g.set(4, 2, Box("grey", contains=Ball("green")))


def script_empty_objects(ep):
    u = ep.u
    if not pickup_at(ep, (3, 1)):  # carry the box that holds the key
        return
    if face(ep, (1, 3)):
        ep.steps([PICKUP, DROP])  # pickup while carrying, drop onto a ball: no-ops
    if not drop_somewhere(ep, keep=[(4, 4), (1, 6)]):
        return
    ep.steps([TOGGLE, PICKUP])  # box -> key, pick the key
    if face(ep, (4, 4)):
        ep.steps([TOGGLE, TOGGLE, TOGGLE, FORWARD, LEFT, LEFT, RIGHT])  # unlock/close/open, stand on it
    if face(ep, (5, 1)):
        ep.step(TOGGLE)  # empty box vanishes
    if face(ep, (4, 2)):
        ep.steps([TOGGLE, PICKUP])  # box -> ball; pickup while carrying the key: no-op
    if face(ep, (5, 3)):
        ep.steps([TOGGLE, FORWARD, FORWARD])  # open, walk through the door
    if face(ep, (2, 3)):
        ep.steps([TOGGLE, TOGGLE])
    go_onto(ep, (1, 6))


def setup_empty_wall(u, rng):
    """A wall with a closed door splits the room; objects behind it.  Empty has
    see_through_walls=True, so they are visible through the wall."""
    w, h = u.width, u.height
    mx = w // 2
    for y in range(1, h - 1):
        u.grid.set(mx, y, Wall())
    u.grid.set(mx, h // 2, Door("green"))
    u.grid.set(mx + 1, 1, Ball("red"))
    u.grid.set(mx + 1, h - 3, Box("blue", contains=Key("red")))
    u.grid.set(mx - 1, h - 2, Key("green"))


def setup_on_open_door(u, rng):
    """Agent standing on an open door in the middle of the room, random direction."""
    cells = free_cells(u)
    x, y = cells[int(rng.integers(0, len(cells)))]
    u.grid.set(x, y, Door(COLORS[int(rng.integers(0, 6))], is_open=True))
    u.agent_pos = (x, y)
    u.agent_dir = int(rng.integers(0, 4))
    scatter(u, rng, 6)


def setup_scatter(u, rng):
    n = max(4, (u.width - 2) * (u.height - 2) // 4)
    scatter(u, rng, n)


def setup_lava_line(u, rng):
    """A row of lava with one gap."""
    y = u.height // 2
    gap = int(rng.integers(1, u.width - 1))
    for x in range(1, u.width - 1):
        if x != gap and u.grid.get(x, y) is None and (x, y) != pos_of(u.agent_pos):
            u.grid.set(x, y, Lava())


def setup_doorkey_boxed_key(u, rng):
    """DoorKey: the key is hidden inside a box; a couple of balls around."""
    kx, ky = find(u, "key")[0]
    key = u.grid.get(kx, ky)
    u.grid.set(kx, ky, Box(COLORS[int(rng.integers(0, 6))], contains=Key(key.color)))
    door = find(u, "door")[0]
    right_side = [(x, y) for x in range(door[0], u.width) for y in range(u.height)]
    scatter(u, rng, 3, exclude=right_side)  # keep the path behind the door clear
    return {"box": (kx, ky), "door": door}


def setup_doorkey_unlocked(u, rng):
    """DoorKey: the door is closed but not locked; extra objects."""
    d = u.grid.get(*find(u, "door")[0])
    d.is_locked = False
    scatter(u, rng, 5)


def setup_doorkey_on_door(u, rng):
    """DoorKey: the door is open and the agent stands on it."""
    dx, dy = find(u, "door")[0]
    d = u.grid.get(dx, dy)
    d.is_locked, d.is_open = False, True
    u.agent_pos = (dx, dy)
    u.agent_dir = int(rng.integers(0, 4))


def setup_doorkey_lava(u, rng):
    """DoorKey: lava next to the goal and a box in the way."""
    gx, gy = find(u, "goal")[0]
    for x, y in [(gx - 1, gy), (gx, gy - 1)]:
        if u.grid.get(x, y) is None and (x, y) != pos_of(u.agent_pos):
            u.grid.set(x, y, Lava())
            break
    scatter(u, rng, 2)


def edge_episode(env_id, seed, variant, max_steps=None):
    """Build and play one edge-case scenario."""
    if variant == 0:
        ep = Episode(env_id, seed, setup=setup_empty_objects)
        script_empty_objects(ep)
        biased_policy(ep, limit=150)
    elif variant == 1:
        ep = Episode(env_id, seed, setup=setup_empty_objects)
        biased_policy(ep, limit=200)
    elif variant == 2:
        ep = Episode(env_id, seed, max_steps=120, setup=setup_scatter)
        biased_policy(ep)
    elif variant == 3:
        ep = Episode(env_id, seed, setup=setup_empty_wall)
        ball = find(ep.u, "ball")[0]
        face(ep, ball)  # through the door (opened on the way)
        ep.steps([PICKUP, LEFT, LEFT])
        goto_goal(ep)
        biased_policy(ep, limit=100)
    elif variant == 4:
        ep = Episode(env_id, seed, max_steps=100, setup=setup_on_open_door)
        ep.steps([LEFT, RIGHT, TOGGLE, PICKUP, DROP])  # toggling/dropping while on a door
        biased_policy(ep)
    elif variant == 5:
        ep = Episode(env_id, seed, setup=setup_lava_line)
        lava = find(ep.u, "lava")
        if seed % 2 and lava and face(ep, lava[0]):
            ep.step(FORWARD)  # death
        goto_goal(ep)
        biased_policy(ep, limit=100)
    elif variant == 10:
        ep = Episode(env_id, seed, setup=setup_doorkey_boxed_key)
        bpos, door = ep.info["box"], ep.info["door"]
        if seed % 2:
            # carry the box to the door, drop it and open it there
            if pickup_at(ep, bpos) and face(ep, door):
                ep.step(TOGGLE)  # a box is not a key: stays locked
                drop_somewhere(ep, keep=[door])
                ep.steps([TOGGLE, PICKUP])
        elif face(ep, bpos):
            ep.steps([TOGGLE, PICKUP])
        if face(ep, door):
            ep.step(TOGGLE)
        goto_goal(ep)
        biased_policy(ep, limit=150)
    elif variant == 11:
        ep = Episode(env_id, seed, max_steps=150, setup=setup_doorkey_unlocked)
        d = find(ep.u, "door")[0]
        if face(ep, d):
            ep.steps([TOGGLE, TOGGLE, TOGGLE, FORWARD])  # no key needed
        biased_policy(ep)
    elif variant == 12:
        ep = Episode(env_id, seed, max_steps=120, setup=setup_doorkey_on_door)
        ep.steps([TOGGLE, LEFT, TOGGLE, RIGHT, RIGHT])
        biased_policy(ep)
    elif variant == 13:
        ep = Episode(env_id, seed, setup=setup_doorkey_lava)
        script_doorkey(ep, 1)
        biased_policy(ep, limit=100)
    elif variant == 14:
        ep = Episode(env_id, seed, max_steps=120, setup=setup_scatter)
        biased_policy(ep)
    elif variant == 15:
        ep = Episode(env_id, seed, max_steps=100, setup=setup_on_open_door)
        biased_policy(ep)
    else:
        raise ValueError(variant)
    return ep


# ---------------------------------------------------------------------------------------


def record_env(env_id):
    plan = PLANS[env_id]
    trajs, total, i = [], 0, 0
    while total < MIN_STEPS or i < MIN_TRAJ:
        kind, arg = plan[i % len(plan)]
        seed = i
        if kind == R:
            ep = Episode(env_id, seed, max_steps=arg)
            random_policy(ep)
        elif kind == B:
            ep = Episode(env_id, seed, max_steps=arg)
            biased_policy(ep)
        elif kind == S:
            ep = Episode(env_id, seed)
            run_script(ep, arg)
        else:
            ep = edge_episode(env_id, seed, arg)
        rec = ep.close()
        if rec["steps"]:
            trajs.append(rec)
            total += len(rec["steps"])
        i += 1
    return trajs


def write_gz_jsonl(path, records):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            for r in records:
                f.write((json.dumps(r, separators=(",", ":")) + "\n").encode())


def read_gz_jsonl(path):
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def check(out_dir, env_ids=ENV_IDS):
    """Re-read every fixture, validate its shape and print a coverage table."""
    cols = ["traj", "steps", "rew>0", "term", "trunc", "goal", "lava", "pick", "pickbox",
            "drop", "doorTg", "unlock", "close", "boxTg", "onDoor"]
    print("\n" + " ".join(f"{c:>7}" for c in cols) + "  env_id")
    tot = dict.fromkeys(cols, 0)
    total_bytes = 0
    for env_id in env_ids:
        path = Path(out_dir) / f"{env_id}.jsonl.gz"
        total_bytes += path.stat().st_size
        recs = read_gz_jsonl(path)
        c = dict.fromkeys(cols, 0)
        c["traj"] = len(recs)
        for r in recs:
            W, H, V = r["width"], r["height"], r["agent_view_size"]
            assert r["minigrid_version"] == MINIGRID_VERSION and r["env_id"] == env_id
            assert len(r["grid"]) == W * H and all(len(cell) == 3 for cell in r["grid"])
            assert len(r["initial_obs"]["image"]) == V * V * 3
            steps = r["steps"]
            assert steps and len(steps) <= r["max_steps"]
            doors = {(i // H, i % H) for i, cell in enumerate(r["grid"]) if cell[0] == TYPE_IDX["door"]}
            fi = ((V // 2) * V + (V - 2)) * 3  # the cell in front of the agent, in the view
            prev_img, prev_carry = r["initial_obs"]["image"], None
            for k, s in enumerate(steps):
                assert len(s["image"]) == V * V * 3
                if k < len(steps) - 1:
                    assert not (s["terminated"] or s["truncated"]), "episode continues after end"
                assert s["truncated"] == (k + 1 >= r["max_steps"])
                a, img = s["action"], s["image"]
                ft, fs = prev_img[fi], prev_img[fi + 2]
                c["steps"] += 1
                c["rew>0"] += s["reward"] > 0
                c["term"] += s["terminated"]
                c["trunc"] += s["truncated"]
                c["goal"] += a == FORWARD and s["terminated"] and ft == TYPE_IDX["goal"]
                c["lava"] += a == FORWARD and s["terminated"] and ft == TYPE_IDX["lava"]
                if a == PICKUP and prev_carry is None and s["carrying"] is not None:
                    c["pick"] += 1
                    c["pickbox"] += s["carrying"][0] == TYPE_IDX["box"]
                c["drop"] += a == DROP and prev_carry is not None and s["carrying"] is None
                if a == TOGGLE and ft == TYPE_IDX["door"] and img[fi] == TYPE_IDX["door"] and img[fi + 2] != fs:
                    c["doorTg"] += 1
                    c["unlock"] += fs == 2
                    c["close"] += img[fi + 2] == 1
                c["boxTg"] += a == TOGGLE and ft == TYPE_IDX["box"] and img[fi] != TYPE_IDX["box"]
                c["onDoor"] += tuple(s["agent_pos"]) in doors
                prev_img, prev_carry = img, s["carrying"]
        for k in cols:
            tot[k] += c[k]
        print(" ".join(f"{int(c[k]):>7}" for k in cols) + f"  {env_id}")
    print(" ".join(f"{int(tot[k]):>7}" for k in cols) + "  TOTAL")
    print(f"total fixture size: {total_bytes} bytes ({total_bytes / 1e6:.2f} MB)")
    return tot


def replay_check(out_dir):
    """Rebuild every trajectory's start state from the fixture alone (grid, box contents,
    agent pose, mission) inside a fresh env, replay the actions and compare everything.
    Proves the fixture holds all the state the semantics depend on."""
    from minigrid.core.grid import Grid
    from minigrid.core.world_object import WorldObj

    n_traj = n_steps = 0
    for env_id in ENV_IDS:
        for r in read_gz_jsonl(Path(out_dir) / f"{env_id}.jsonl.gz"):
            W, H = r["width"], r["height"]
            env = gym.make(env_id, max_steps=r["max_steps"])
            with contextlib.redirect_stdout(io.StringIO()):
                env.reset(seed=r["seed"])
            u = env.unwrapped
            u.grid, _ = Grid.decode(np.array(r["grid"], dtype=np.uint8).reshape(W, H, 3))
            for k, v in r["box_contents"].items():
                x, y = map(int, k.split(","))
                u.grid.get(x, y).contains = WorldObj.decode(*v)
            u.agent_pos, u.agent_dir = tuple(r["agent_pos"]), r["agent_dir"]
            u.carrying, u.step_count = None, 0
            assert u.mission == r["mission"]
            if hasattr(u, "instrs"):  # BabyAI: re-resolve the mission's objects
                u.instrs.reset_verifier(u)
            elif hasattr(u, "obj"):  # KeyCorridor / (Blocked)UnlockPickup target
                m = re.match(r"pick up the (\w+) (\w+)", u.mission)
                u.obj = u.grid.get(*find(u, m.group(2), m.group(1))[0])
            assert ints(u.gen_obs()["image"]) == r["initial_obs"]["image"]
            for s in r["steps"]:
                obs, rew, term, trunc, _ = env.step(s["action"])
                got = {
                    "action": s["action"], "image": ints(obs["image"]),
                    "direction": int(obs["direction"]), "reward": float(rew),
                    "terminated": bool(term), "truncated": bool(trunc),
                    "carrying": enc(u.carrying), "agent_pos": list(pos_of(u.agent_pos)),
                    "agent_dir": int(u.agent_dir),
                }
                assert got == s, (env_id, r["seed"], n_steps)
                n_steps += 1
            n_traj += 1
    print(f"replay check: {n_traj} trajectories, {n_steps} steps reproduced from fixture state")


# ---------------------------------------------------------------------------------------
# Extra set (--extra): env ids outside duet's catalogue, replayed with success rules that
# duet derives from the env family and the mission.

EXTRA_ENV_IDS = [
    "MiniGrid-Unlock-v0",
    "MiniGrid-Fetch-5x5-N2-v0",
    "MiniGrid-GoToDoor-5x5-v0",
    "MiniGrid-GoToObject-6x6-N2-v0",
    "MiniGrid-RedBlueDoors-6x6-v0",
    "MiniGrid-PutNear-6x6-N2-v0",
    "MiniGrid-LavaGapS5-v0",
    "MiniGrid-SimpleCrossingS9N1-v0",
    "MiniGrid-DistShift1-v0",
    "MiniGrid-LockedRoom-v0",
    "MiniGrid-ObstructedMaze-1Dlhb-v0",
    "MiniGrid-KeyCorridorS4R3-v0",
    "MiniGrid-Empty-Random-6x6-v0",
    "MiniGrid-MultiRoom-N4-S5-v0",
    "BabyAI-GoToLocal-v0",
    "BabyAI-PickupDist-v0",
    "BabyAI-OpenRedDoor-v0",
    "BabyAI-GoToDoor-v0",
    "BabyAI-Pickup-v0",
    "BabyAI-OneRoomS8-v0",
    "BabyAI-OpenDoorLoc-v0",
    "BabyAI-UnlockLocal-v0",
]

# Short episodes (Fetch/GoTo*/PutNear end on the first pickup/toggle/done/drop) cycle
# through more scripted variants; long ones cap max_steps for the random/biased kinds.
_SHORT = [(R, None), (B, None), (S, 0), (B, None), (S, 1), (R, None), (S, 2), (B, None),
          (S, 3), (B, None), (S, 4), (S, 5)]
EXTRA_PLANS = {
    "MiniGrid-Unlock-v0": [(R, 80), (S, 0), (B, 60), (S, 1), (B, 60), (S, 2), (R, 40)],
    "MiniGrid-Fetch-5x5-N2-v0": _SHORT,
    "MiniGrid-GoToDoor-5x5-v0": _SHORT,
    "MiniGrid-GoToObject-6x6-N2-v0": _SHORT,
    "MiniGrid-RedBlueDoors-6x6-v0": [(R, 80), (S, 0), (B, 100), (S, 1), (B, 100), (S, 2),
                                     (B, 100), (S, 3), (R, 60), (B, 100)],
    "MiniGrid-PutNear-6x6-N2-v0": _SHORT,
    "MiniGrid-LavaGapS5-v0": [(R, None), (S, 0), (B, None), (S, 1), (R, None), (S, 2)],
    "MiniGrid-SimpleCrossingS9N1-v0": [(R, 80), (S, 0), (B, 100), (S, 1), (R, 40), (S, 2)],
    "MiniGrid-DistShift1-v0": [(R, None), (S, 0), (B, 100), (S, 1), (R, 60), (S, 2)],
    "MiniGrid-LockedRoom-v0": [(R, 60), (S, 0), (B, 80), (S, 1)],
    "MiniGrid-ObstructedMaze-1Dlhb-v0": [(R, 60), (S, 0), (B, 80), (S, 1)],
    "MiniGrid-KeyCorridorS4R3-v0": [(R, 80), (S, 0), (B, 100), (S, 1)],
    "MiniGrid-Empty-Random-6x6-v0": [(R, 60), (S, 0), (B, None), (S, 1), (R, 30), (S, 2)],
    "MiniGrid-MultiRoom-N4-S5-v0": [(R, 60), (S, 0), (B, 100), (S, 1)],
    "BabyAI-GoToLocal-v0": [(R, None), (S, 0), (B, None), (S, 1), (S, 2), (R, 20)],
    "BabyAI-PickupDist-v0": [(R, None), (S, 0), (B, None), (S, 1), (S, 2), (B, None)],
    "BabyAI-OpenRedDoor-v0": [(R, None), (S, 0), (B, None), (S, 1), (B, None)],
    "BabyAI-GoToDoor-v0": [(R, 80), (S, 0), (B, 100), (S, 1)],
    "BabyAI-Pickup-v0": [(R, 80), (S, 0), (B, 100), (S, 1), (S, 2)],
    "BabyAI-OneRoomS8-v0": [(R, None), (S, 0), (B, None), (S, 1), (S, 2)],
    "BabyAI-OpenDoorLoc-v0": [(R, 80), (S, 0), (B, 100), (S, 1)],
    "BabyAI-UnlockLocal-v0": [(R, 60), (S, 0), (B, 80), (S, 1)],
}
EXTRA_MIN_STEPS = 400
EXTRA_MIN_TRAJ = 10

# BabyAI instruction sequences; duet's BabyAI verifier handles single instructions only.
SEQUENCE_RE = re.compile(r"\b(then|and|after you)\b|,")
OBJ_TYPES = ("key", "ball", "box")


def is_sequence(env_id, mission):
    return env_id.startswith("BabyAI") and bool(SEQUENCE_RE.search(mission))


def usable_extra_ids(env_ids):
    """Drop (with a message) unregistered ids and BabyAI levels with sequence missions."""
    out = []
    for env_id in env_ids:
        if env_id not in gym.registry:
            print(f"skip {env_id}: not registered in minigrid {minigrid.__version__}")
            continue
        if env_id.startswith("BabyAI"):
            env = gym.make(env_id)
            seqs = []
            for seed in range(20):
                with contextlib.redirect_stdout(io.StringIO()):
                    env.reset(seed=seed)
                if is_sequence(env_id, env.unwrapped.mission):
                    seqs.append(env.unwrapped.mission)
            env.close()
            if seqs:
                print(f"skip {env_id}: sequence missions ({seqs[0]!r}) are not supported")
                continue
        out.append(env_id)
    return out


def neighbours(u):
    """Non-wall objects in the four cells next to the agent."""
    ax, ay = pos_of(u.agent_pos)
    cells = [u.grid.get(ax + dx, ay + dy) for dx, dy in DIRS]
    return [c for c in cells if c is not None and c.type not in ("wall", "lava", "goal")]


def extra_biased_action(ep):
    """biased_action plus per-family nudges: `done` next to objects (GoToDoor/GoToObject),
    drops while carrying (PutNear), fewer episode-ending toggles for GoTo*."""
    u, rng, eid = ep.u, ep.rng, ep.env_id
    w = biased_weights(ep)
    if "GoToDoor" in eid or "GoToObject" in eid:
        w[TOGGLE] *= 0.3
        if neighbours(u):
            w[DONE] += 0.5
    if "Fetch" in eid or "PutNear" in eid:
        w[PICKUP] *= 0.5
    if "PutNear" in eid and u.carrying is not None:
        w[DROP] += 0.3
    return int(rng.choice(7, p=w / w.sum()))


def extra_biased_policy(ep, limit=None):
    n = 0
    while not ep.done and (limit is None or n < limit):
        ep.step(extra_biased_action(ep))
        n += 1


def face_where(ep, goal, avoid=("lava", "goal"), blocked=frozenset(), cap=300):
    """Walk until goal(x, y, d) holds.  False if impossible/done."""
    for _ in range(cap):
        if ep.done:
            return False
        a = first_action(ep.u, goal, avoid, blocked=blocked)
        if a == "here":
            return True
        if a is None:
            return False
        ep.step(a)
    return False


def beside(p, q):
    return abs(p[0] - q[0]) + abs(p[1] - q[1]) == 1


def objects_of(u, types=OBJ_TYPES):
    return [p for t in types for p in find(u, t)]


def named_pos(u, text):
    """Position of the first object named '<color> <type>' at the end of text."""
    color, type_ = text.split()[-2:]
    found = find(u, type_, color)
    return found[0] if found else None


def script_unlock(ep, variant):
    u = ep.u
    door, key = find(u, "door")[0], find(u, "key")[0]
    if variant == 1 and face(ep, door):
        ep.steps([TOGGLE, FORWARD, DONE, DROP])  # locked, no key: nothing happens
    if not pickup_at(ep, key):
        return
    if variant == 2:
        if not drop_somewhere(ep, keep=[door]):
            return
        ep.steps([PICKUP])  # the key is in front again
    if face(ep, door):
        ep.step(TOGGLE)  # unlock + open: success


def script_fetch(ep, variant):
    u = ep.u
    color, type_ = u.mission.split()[-2:]
    targets = find(u, type_, color)
    others = [p for p in objects_of(u) if p not in targets]
    if variant in (1, 4) and others:
        pickup_at(ep, others[0])  # wrong object: ends the episode without reward
        return
    if variant in (2, 5):
        noop_tour(ep)
    if variant == 3:
        ep.steps([DROP, TOGGLE, DONE])
    for t in targets:
        if pickup_at(ep, t) or ep.done:
            return


def script_goto_done(ep, variant):
    """GoToDoor / GoToObject: `done` next to target_pos succeeds, anywhere else fails;
    toggle ends the episode."""
    u = ep.u
    target = named_pos(u, u.mission)
    avoid = ("lava", "goal", "door")
    others = [p for p in objects_of(u, ("door", *OBJ_TYPES)) if p != target]
    if variant == 1 and others:
        # done next to another object but not next to the target (if possible)
        o = others[0]
        if face_where(ep, lambda x, y, d: beside((x, y), o) and not beside((x, y), target), avoid):
            ep.step(DONE)
            return
    if variant == 2:
        if face(ep, target, avoid):
            ep.steps([LEFT, DONE])  # next to it, facing away: still a success
        return
    if variant == 3:
        if face(ep, target, avoid):
            ep.step(TOGGLE)  # toggling ends the episode without reward
        return
    if variant in (4, 5) and u.grid.get(*target).can_pickup():
        # move the target; success stays tied to its original position
        if pickup_at(ep, target) and drop_somewhere(ep):
            new = front(ep)  # where the target now lies
            if variant == 4:
                if face_where(ep, lambda x, y, d: beside((x, y), target), avoid):
                    ep.step(DONE)  # next to the (now empty) original cell: success
            elif face_where(ep, lambda x, y, d: beside((x, y), new) and not beside((x, y), target),
                            avoid):
                ep.step(DONE)  # next to the moved object only: failure
        return
    if variant == 5:
        noop_tour(ep)  # includes a `done`, normally not next to the target
        return
    if face(ep, target, avoid):
        ep.step(DONE)


def script_redblue(ep, variant):
    u = ep.u
    red, blue = find(u, "door", "red")[0], find(u, "door", "blue")[0]
    if variant == 1:
        if face_where(ep, facing(blue), blocked=frozenset([red])):
            ep.step(TOGGLE)  # blue first: failure
        return
    if not face_where(ep, facing(red), blocked=frozenset([blue])):
        return
    ep.step(TOGGLE)
    if variant == 2:
        ep.step(TOGGLE)  # close red again: opening blue now fails
    if variant == 3:
        ep.steps([FORWARD, FORWARD, LEFT, LEFT, FORWARD, LEFT])  # through the red door and back
    if face_where(ep, facing(blue), blocked=frozenset([red]) if variant != 3 else frozenset()):
        ep.step(TOGGLE)


def script_putnear(ep, variant):
    u = ep.u
    m = re.match(r"put the (\w+ \w+) near the (\w+ \w+)$", u.mission)
    move, target = named_pos(u, m.group(1)), named_pos(u, m.group(2))
    if variant == 2:
        wrong = [p for p in objects_of(u) if p != move]
        pickup_at(ep, wrong[0])  # wrong object: ends the episode
        return
    if not pickup_at(ep, move):
        return
    if variant == 5:
        ep.steps([PICKUP, TOGGLE])  # hands full; toggle does nothing
    near = lambda p: abs(p[0] - target[0]) <= 1 and abs(p[1] - target[1]) <= 1  # noqa: E731
    free = [(x, y) for x in range(1, u.width - 1) for y in range(1, u.height - 1)
            if u.grid.get(x, y) is None and (x, y) != pos_of(u.agent_pos)]
    if variant in (0, 5):
        spots = [p for p in free if near(p)]
    elif variant == 1:
        spots = [p for p in free if not near(p)]
    elif variant == 3:
        spots = [target]  # drop onto an object: fails but still ends the episode
    else:
        face_wall(ep)
        if not ep.done:
            ep.step(DROP)  # drop into a wall (or whatever is in front): fails, still ends it
        return
    for p in spots:
        if face(ep, p):
            ep.step(DROP)
            return


def script_lockedroom(ep, variant):
    u = ep.u
    door = [p for p in find(u, "door") if u.grid.get(*p).is_locked][0]
    key, goal = find(u, "key")[0], find(u, "goal")[0]
    if variant == 1 and face(ep, door):
        ep.steps([TOGGLE, FORWARD])  # locked without the key
    if not pickup_at(ep, key) or not face(ep, door):
        return
    ep.step(TOGGLE)
    if variant == 1:
        drop_somewhere(ep, keep=[goal])
    goto_goal(ep)


def script_obstructed(ep, variant):
    """ObstructedMaze-1Dlhb: move the ball blocking the door, open the box for the key,
    unlock, pick up the blue ball."""
    u = ep.u
    door = [p for p in find(u, "door") if u.grid.get(*p).is_locked][0]
    target = find(u, "ball", "blue")[0]
    blocker = [p for p in find(u, "ball") if beside(p, door) and p != target][0]
    box = find(u, "box")[0]
    if variant == 1:
        ep.steps([TOGGLE, PICKUP, DROP])
        if face(ep, box):
            ep.step(PICKUP)  # carry the box (key inside) around
            if not drop_somewhere(ep, keep=[blocker]):
                return
            box = front(ep)
    if not pickup_at(ep, blocker) or not drop_somewhere(ep, keep=[door, box]):
        return
    if not face(ep, box):
        return
    ep.steps([TOGGLE, PICKUP])  # box -> key
    if not face(ep, door):
        return
    ep.step(TOGGLE)
    if drop_somewhere(ep, keep=[target]):
        pickup_at(ep, target)


def script_babyai_extra(ep, variant):
    u = ep.u
    cands = babyai_candidates(u)
    if variant == 2:
        # carry a non-matching object first (pickup: no success; drop refreshes GoTo positions)
        wrong = [p for p in objects_of(u) if p not in cands]
        if wrong and pickup_at(ep, wrong[0]) and not ep.done:
            drop_somewhere(ep, keep=cands)
    if u.mission.startswith("open") and cands and not ep.done:
        door = u.grid.get(*cands[0])
        if door.is_locked:
            key = find(u, "key", door.color)
            if variant == 1 and face(ep, cands[0]):
                ep.steps([TOGGLE])  # locked: no success
            if not key or not pickup_at(ep, key[0]):
                return
            variant = 0  # variant 1's opening drop would put the key down again
    if not ep.done:
        script_babyai(ep, 1 if variant == 1 else 0)


def run_extra_script(ep, variant):
    eid = ep.env_id
    if "Unlock-" in eid and eid.startswith("MiniGrid"):
        script_unlock(ep, variant)
    elif "Fetch" in eid:
        script_fetch(ep, variant)
    elif "GoToDoor" in eid and eid.startswith("MiniGrid") or "GoToObject" in eid:
        script_goto_done(ep, variant)
    elif "RedBlueDoors" in eid:
        script_redblue(ep, variant)
    elif "PutNear" in eid:
        script_putnear(ep, variant)
    elif "LavaGap" in eid or "Crossing" in eid or "DistShift" in eid:
        script_lava(ep, variant)
    elif "LockedRoom" in eid:
        script_lockedroom(ep, variant)
    elif "ObstructedMaze" in eid:
        script_obstructed(ep, variant)
    elif "KeyCorridor" in eid:
        locked_pickup(ep, toggle_first=variant == 1)
    elif "Empty" in eid:
        script_empty(ep, variant)
    elif "MultiRoom" in eid:
        script_multiroom(ep, variant)
    elif eid.startswith("BabyAI"):
        script_babyai_extra(ep, variant)
    else:
        raise ValueError(eid)
    extra_biased_policy(ep, limit=100)


def record_extra_env(env_id):
    plan = EXTRA_PLANS[env_id]
    trajs, total, i = [], 0, 0
    while total < EXTRA_MIN_STEPS or len(trajs) < EXTRA_MIN_TRAJ:
        kind, arg = plan[i % len(plan)]
        seed = i
        i += 1
        if kind == R:
            ep = Episode(env_id, seed, max_steps=arg)
            random_policy(ep)
        elif kind == B:
            ep = Episode(env_id, seed, max_steps=arg)
            extra_biased_policy(ep)
        else:
            ep = Episode(env_id, seed)
            run_extra_script(ep, arg)
        rec = ep.close()
        if rec["steps"] and not is_sequence(env_id, rec["mission"]):
            trajs.append(rec)
            total += len(rec["steps"])
    return trajs


def check_extra(out_dir, env_ids):
    """Shape check + standard coverage (check) and a table of the family-specific rules:
    episodes ended by done / toggle / pickup / drop, with and without reward."""
    check(out_dir, env_ids)
    cols = ["traj", "rewTraj", "done", "doneRew", "togEnd", "togRew", "pickEnd", "pickRew",
            "dropEnd", "dropRew", "fwdEnd", "fwdRew"]
    print("\n" + " ".join(f"{c:>7}" for c in cols) + "  env_id (last action of terminated episodes)")
    for env_id in env_ids:
        c = dict.fromkeys(cols, 0)
        for r in read_gz_jsonl(Path(out_dir) / f"{env_id}.jsonl.gz"):
            c["traj"] += 1
            last = r["steps"][-1]
            rew = last["reward"] > 0
            c["rewTraj"] += rew
            if not last["terminated"]:
                continue
            name = {DONE: "done", TOGGLE: "tog", PICKUP: "pick", DROP: "drop", FORWARD: "fwd"}.get(
                last["action"])
            if name == "done":
                c["done"] += 1
                c["doneRew"] += rew
            elif name:
                c[name + "End"] += 1
                c[name + "Rew"] += rew
        print(" ".join(f"{int(c[k]):>7}" for k in cols) + f"  {env_id}")


def record_all(env_ids, record, out):
    """Record every env id with `record` into `out`, one gzipped JSONL file each."""
    out.mkdir(parents=True, exist_ok=True)
    grand = 0
    for env_id in env_ids:
        trajs = record(env_id)
        n = sum(len(t["steps"]) for t in trajs)
        grand += n
        write_gz_jsonl(out / f"{env_id}.jsonl.gz", trajs)
        print(f"{env_id:36s} trajectories={len(trajs):4d} steps={n:6d}", flush=True)
    print(f"total steps: {grand}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = Path(__file__).resolve().parent.parent
    ap.add_argument("--out", default=None,
                    help="output folder (default tests/fixtures/minigrid, or minigrid-extra)")
    ap.add_argument("--check-only", action="store_true", help="only re-read and summarise")
    ap.add_argument("--extra", action="store_true",
                    help="record EXTRA_ENV_IDS into tests/fixtures/minigrid-extra instead")
    ap.add_argument("--only", nargs="*", help="with --extra: a subset of EXTRA_ENV_IDS")
    args = ap.parse_args()
    assert minigrid.__version__ == MINIGRID_VERSION, minigrid.__version__
    if args.extra:
        out = Path(args.out or root / "tests" / "fixtures" / "minigrid-extra")
        ids = usable_extra_ids(args.only or EXTRA_ENV_IDS)
        if not args.check_only:
            record_all(ids, record_extra_env, out)
        check_extra(out, ids)
        return
    out = Path(args.out or root / "tests" / "fixtures" / "minigrid")
    if not args.check_only:
        record_all(ENV_IDS, record_env, out)
    check(out)
    replay_check(out)


if __name__ == "__main__":
    main()
