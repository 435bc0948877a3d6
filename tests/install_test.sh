#!/usr/bin/env bash
# install_test.sh — install goro as a user would and build a program against
# it from outside the tree, twice: with pkg-config and as a Meson project
# using dependency('goro').
#
# The commands are not written here: they are read from README.md, from the
# fenced blocks that follow an `<!-- install-test: NAME -->` line (NAME "run":
# shell lines to run, in order; any other NAME: a file to write, e.g.
# hello.cpp). So the README's recipe is, line for line, what this test runs.
# The only difference from a real install is the environment: DESTDIR (read
# by `meson install`) puts the files under a temporary directory instead of
# the prefix, and pkg-config and the loader are pointed there.
#
# Usage (from tests/meson.build): install_test.sh SOURCE_ROOT BUILD_ROOT SANITIZE
set -euo pipefail
src=$1
build=$2
sanitize=${3:-none}

if [[ $sanitize != none ]]; then
  # libgoro.so built with -fsanitize links the sanitizer runtime, which must
  # then come first in the program's library list: an outside build would
  # need the same -fsanitize flags (or LD_PRELOAD), which is not what the
  # README tells a user to do. The normal and small builds run this test.
  echo "SKIP: b_sanitize=$sanitize: an outside program would need the sanitizer's link flags"
  exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/goro-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage" "$work/app"

# Where meson installs (prefix and libdir of this build directory).
read -r prefix libdir < <(meson introspect "$build" --buildoptions | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
libdir = o["libdir"]
print(o["prefix"], libdir if libdir.startswith("/") else o["prefix"] + "/" + libdir)')

# Extract the README's blocks.
python3 - "$src/README.md" "$work/app" <<'EOF'
import re, sys
readme, out = sys.argv[1], sys.argv[2]
text = open(readme).read().split("\n")
script, files, want, inside, block = [], {}, None, False, []
for line in text:
    m = re.match(r"<!-- install-test: (\S+) -->", line)
    if m and not inside:
        want = m.group(1)
        continue
    if line.startswith("```"):
        if inside:
            inside = False
            if want == "run":
                script += block
            else:
                files[want] = "\n".join(block) + "\n"
            want = None
        elif want is not None:
            inside, block = True, []
        continue
    if inside:
        block.append(line)
if not script or "hello.cpp" not in files or "meson.build" not in files:
    sys.exit("install_test: README.md lacks the install-test blocks (run, hello.cpp, meson.build)")
for name, body in files.items():
    open(f"{out}/{name}", "w").write(body)
open(f"{out}/recipe.sh", "w").write("set -ex\n" + "\n".join(script) + "\n")
EOF

# The recipe says `meson install -C build` from the directory holding the
# build: give it one named build that is this test's build directory.
ln -s "$build" "$work/app/build"

cd "$work/app"
export DESTDIR=$stage
export PKG_CONFIG_SYSROOT_DIR=$stage
# Searched before the system's directories, so the staged goro.pc wins over
# any installed one; the system's still serve its Requires.private (fmt,
# boost), which pkg-config checks even for a shared build.
export PKG_CONFIG_PATH=$stage$libdir/pkgconfig
export LD_LIBRARY_PATH=$stage$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
echo "install_test: prefix $prefix, libdir $libdir, DESTDIR $stage"
bash recipe.sh > recipe.out 2>&1 || {
  cat recipe.out
  echo "install_test: the README recipe failed" >&2
  exit 1
}
cat recipe.out

# What must have been installed: every public header, the library, goro.pc.
for h in "$src"/runtime/include/goro/*.hpp; do
  [[ -f $stage$prefix/include/goro/$(basename "$h") ]] || {
    echo "install_test: header goro/$(basename "$h") was not installed" >&2
    exit 1
  }
done
ls "$stage$libdir"/libgoro.so* >/dev/null
[[ -f $stage$libdir/pkgconfig/goro.pc ]]

# Both programs ran (the pkg-config one and the Meson one) and printed the
# README program's last line.
n=$(grep -c '^all done on [0-9]* Ps$' recipe.out || true)
if [[ $n -ne 2 ]]; then
  echo "install_test: expected both programs to print 'all done', got $n" >&2
  exit 1
fi
echo "install_test: ok"
