#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: set-up, formatting, lints, tests.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test
