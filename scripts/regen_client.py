"""Regenerate ``generated_client/`` from the OpenAPI document, or check that it is up to date.

``make client`` deletes the folder and runs the pinned openapi-python-client into it, so stale
modules never survive. ``make check-client`` generates into a temporary folder and compares the
trees byte for byte; any difference fails with the list of files and the fix.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "qiwi-bill-payments.yaml"
CONFIG = ROOT / "openapi" / "generator.yaml"
TARGET = ROOT / "generated_client"
# Files the generator (or its ruff post-hook) leaves behind that are not part of the output.
LEFTOVERS = (".ruff_cache",)


def generate(into: Path) -> None:
    """Run the pinned generator into ``into`` (which must not exist)."""
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [
        str(bindir / "openapi-python-client"),
        "generate",
        "--path",
        str(SPEC),
        "--config",
        str(CONFIG),
        "--meta",
        "uv",
        "--output-path",
        str(into),
        "--fail-on-warning",
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"openapi-python-client failed (exit {result.returncode})")
    for name in LEFTOVERS:
        shutil.rmtree(into / name, ignore_errors=True)


def diff_trees(left: Path, right: Path) -> list[str]:
    """Relative paths that differ between two trees (added, removed or changed)."""
    out: list[str] = []

    def walk(cmp: filecmp.dircmp[str], prefix: str) -> None:
        out.extend(f"{prefix}{n} (only in committed tree)" for n in cmp.left_only)
        out.extend(f"{prefix}{n} (missing from committed tree)" for n in cmp.right_only)
        _, mismatch, errors = filecmp.cmpfiles(cmp.left, cmp.right, cmp.common_files, shallow=False)
        out.extend(f"{prefix}{n} (differs)" for n in mismatch + errors)
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(filecmp.dircmp(left, right, ignore=[*LEFTOVERS, "__pycache__"]), "")
    return sorted(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of overwrite")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = Path(tmp) / "generated_client"
            generate(fresh)
            if not TARGET.is_dir():
                print("generated_client/ is missing: run `make client` and commit the result.")
                return 1
            changes = diff_trees(TARGET, fresh)
        if changes:
            print("generated_client/ is out of date with openapi/qiwi-bill-payments.yaml:")
            print("\n".join(f"  {c}" for c in changes))
            print("Run `make client` and commit the result (never edit generated_client/ by hand).")
            return 1
        print("generated_client/ matches the spec.")
        return 0
    shutil.rmtree(TARGET, ignore_errors=True)
    generate(TARGET)
    print(f"Regenerated {TARGET.relative_to(ROOT)}/ from {SPEC.relative_to(ROOT)}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
