#!/bin/sh
# berth's main job on a built-in default, on a fresh Debian 12 machine as root: install the
# dependencies, build, build the busybox test bundle and run a container from it.
set -eu
cd "$(dirname "$0")/.."
tools/deps.sh build
[ -d build ] || meson setup build --buildtype=release >/dev/null
ninja -C build >/dev/null
bundle=$(mktemp -d /tmp/berth-demo.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
rmdir "$bundle" && tests/fixtures/make-bundle.sh "$bundle" >/dev/null
python3 - "$bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
config = json.load(open(path))
config["process"]["args"] = ["/bin/sh", "-c",
    "echo \"hello from a berth container: hostname $(hostname), pid $$, $(id)\"; ls /"]
json.dump(config, open(path, "w"), indent=1)
PY
build/tools/berth-runtime --root /run/berth/demo run --bundle "$bundle" "demo-$$"
