#!/usr/bin/env python3
"""Compile check against LibTorch 2.x headers (no GPU, no LibTorch 2.x libraries needed).

Every translation unit of the library, the `cseg` program, the benchmarks and tools/ is parsed
(-fsyntax-only) with the LibTorch 2.x headers of ../shared/toolchains/ in place of Debian's 1.13,
with the flags of the normal build (build/compile_commands.json) and a precompiled header built
from cmake/pch.h against those headers. A change that compiles against 1.13 only fails here.

  python3 scripts/check_libtorch2.py [--headers TARBALL_OR_DIR] [--build build] [-j N]

Writes build-libtorch2/ (the unpacked headers, the precompiled headers, a build.ninja) and runs
ninja there: a rerun re-parses only what changed. Exit status non-zero when a unit fails.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def unpack(headers, out):
    """The folder holding torch/include: `headers` itself, or the tarball unpacked into `out`."""
    if os.path.isdir(headers):
        return os.path.abspath(headers)
    stamp = os.path.join(out, "unpacked.stamp")
    dest = os.path.join(out, "headers")
    mtime = str(os.path.getmtime(headers))
    if not (os.path.exists(stamp) and open(stamp).read() == mtime):
        print(f"[libtorch2] unpacking {headers}", flush=True)
        with tarfile.open(headers) as t:
            t.extractall(dest)
        open(stamp, "w").write(mtime)
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--headers", default=os.path.join(ROOT, "..", "shared", "toolchains",
                                                       "libtorch-2.11.0-cu130-headers.tar.xz"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "build-libtorch2"))
    ap.add_argument("-j", type=int, default=int(os.environ.get("CSEG_BUILD_JOBS", "2")))
    a = ap.parse_args()
    if not os.path.exists(a.headers):
        sys.exit(f"error: LibTorch 2.x headers '{a.headers}' do not exist (give --headers)")
    db = os.path.join(a.build, "compile_commands.json")
    if not os.path.exists(db):
        sys.exit(f"error: '{db}' does not exist: build cseg first (bash scripts/build.sh)")
    os.makedirs(a.out, exist_ok=True)
    torch = os.path.join(unpack(a.headers, a.out), "torch", "include")
    new_torch = ["-isystem", torch, "-isystem", os.path.join(torch, "torch", "csrc", "api", "include")]

    units = []  # (group, flags, source)
    for e in json.load(open(db)):
        src = e["file"]
        rel = os.path.relpath(src, ROOT)
        group = rel.split(os.sep)[0]
        if group not in ("src", "apps", "bench", "tools"):
            continue  # tests, and CMake's own precompiled-header units
        args = shlex.split(e["command"])[1:]
        flags, i = [], 0
        while i < len(args):
            x = args[i]
            if x in ("-o", "-include", "-MF", "-MT", "-MQ"):
                i += 2
                continue
            if x in ("-c", src, "-Winvalid-pch", "-MD", "-MMD") or x.startswith("-DFMT_SHARED"):
                i += 1
                continue
            if x == "-isystem" and "/torch/csrc/api/include" in args[i + 1]:
                i += 2  # Debian's LibTorch 1.13 API headers: replaced by 2.x's below
                continue
            flags.append(x)
            i += 1
        # LibTorch 2.x first (its CMake config makes them system folders searched before
        # /usr/include, where Debian's 1.13 headers are); its bundled fmt, header-only.
        flags = new_torch + flags + ["-DFMT_HEADER_ONLY=1"]
        units.append((group, flags, src))
    if not units:
        sys.exit(f"error: no translation units of src/, apps/, bench/ or tools/ in {db}")

    # One precompiled header per group (their flags agree within a group).
    ninja = ["rule pch", "  command = $cxx $flags -x c++-header $in -o $out -MD -MF $out.d",
             "  depfile = $out.d", "  description = PCH $out",
             "rule check", "  command = $cxx $flags -include $pch -fsyntax-only $in -MD -MF $out.d -MT $out && touch $out",
             "  depfile = $out.d", "  description = CHECK $in", ""]
    cxx = shlex.split(json.load(open(db))[0]["command"])[0]
    ninja.insert(0, f"cxx = {cxx}")
    pch_of = {}
    for group, flags, _ in units:
        if group in pch_of:
            continue
        pch = os.path.join(a.out, "pch", group, "pch.h")
        os.makedirs(os.path.dirname(pch), exist_ok=True)
        with open(pch, "w") as f:
            f.write(f'#include "{os.path.join(ROOT, "cmake", "pch.h")}"\n')
        pch_of[group] = pch
        ninja += [f"build {pch}.gch: pch {pch}", f"  flags = {' '.join(shlex.quote(x) for x in flags)}", ""]
    for group, flags, src in units:
        stamp = os.path.join(a.out, "checked", os.path.relpath(src, ROOT) + ".ok")
        pch = pch_of[group]
        ninja += [f"build {stamp}: check {src} | {pch}.gch", f"  flags = {' '.join(shlex.quote(x) for x in flags)}",
                  f"  pch = {pch}", ""]
    with open(os.path.join(a.out, "build.ninja"), "w") as f:
        f.write("\n".join(ninja) + "\n")
    print(f"[libtorch2] {len(units)} translation units against {torch}", flush=True)
    r = subprocess.run(["ninja", "-C", a.out, "-j", str(a.j), "-k", "0"])
    if r.returncode != 0:
        sys.exit("error: cseg does not compile against LibTorch 2.x (see above)")
    print("[libtorch2] every translation unit compiles against LibTorch 2.x")


if __name__ == "__main__":
    main()
