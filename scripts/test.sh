#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, formatting, lints, then every
# unit, component and end-to-end test (the e2e tests drive the built binaries).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --bins --locked
BERTH_REQUIRE_VM=1 cargo nextest run --workspace --locked --no-fail-fast
