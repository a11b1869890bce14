#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets) for a bounded time, from a seed
# corpus made of the test fixtures. CI runs it with the default; for a long run:
#   FUZZ_SECONDS=3600 scripts/fuzz.sh            # every target, an hour each
#   FUZZ_SECONDS=0 scripts/fuzz.sh syncml_message # one target until it finds something
# A crash leaves its input under fuzz/artifacts/TARGET/; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz TARGET fuzz/artifacts/TARGET/crash-...
# and turn it into a regression test beside the parser's tests.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo fuzz passes -Z flags (sanitizers); the project's toolchain is stable Rust.
export RUSTC_BOOTSTRAP=1

fixtures=syncml/tests/fixtures
seeds() {
    case "$1" in
        syncml_message) ls "$fixtures"/syncml_*.xml ;;
        mde2_envelope) ls "$fixtures"/discover_*.xml "$fixtures"/get_policies_*.xml \
            "$fixtures"/rst_*.xml "$fixtures"/rstrc_*.xml "$fixtures"/fault_*.xml ;;
        provisioning) ls "$fixtures"/provisioning_doc.xml ;;
        msi_job) ls "$fixtures"/msi_install_job.xml ;;
        testbed_inputs) find scenarios -name '*.toml'; ls tests/fuzz-seeds/testbed_inputs/* ;;
        *) ;;
    esac
}

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
passed=0
failed=0
for target in "${targets[@]}"; do
    corpus=fuzz/corpus/$target
    mkdir -p "$corpus"
    for seed in $(seeds "$target"); do
        cp "$seed" "$corpus/"
    done
    echo "== fuzz $target (${seconds}s)"
    if cargo fuzz run --fuzz-dir fuzz "$target" "$corpus" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=262144 2>&1 | tail -n 4; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
