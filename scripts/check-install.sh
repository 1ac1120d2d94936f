#!/usr/bin/env bash
# Installs a built rill into a temp prefix and proves an application can use
# it: builds examples/embed with find_package(rill) and again with pkg-config,
# runs both, builds examples/plugin and runs it in the installed rill, and
# checks the binary, man pages and completions are in place.
#   scripts/check-install.sh [BUILD_DIR]    (default: build, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
if [ ! -f "$build/CMakeCache.txt" ]; then
  build=$(scripts/build.sh | tail -n 1)
else
  cmake --build "$build" -j"$(nproc)" --target rill >/dev/null
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"

cmake --install "$build" --prefix "$prefix" >/dev/null
for f in bin/rill share/man/man1/rill.1 share/bash-completion/completions/rill share/zsh/site-functions/_rill \
         include/rill/store/event_store.h; do
  [ -e "$prefix/$f" ] || { echo "check-install: $f was not installed" >&2; exit 1; }
done
"$prefix/bin/rill" --help >/dev/null

# 1. CMake package.
cmake -S examples/embed -B "$tmp/embed-cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$tmp/embed-cmake" >/dev/null
"$tmp/embed-cmake/embed" "$tmp/store-cmake"

# 2. pkg-config.
pcdir=$(dirname "$(find "$prefix" -name rill.pc | head -n 1)")
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs rill)
# shellcheck disable=SC2086  # flags are words on purpose
c++ -std=c++20 -o "$tmp/embed-pc" examples/embed/main.cpp $flags
"$tmp/embed-pc" "$tmp/store-pc" >/dev/null

# 3. The installed headers are the public contract: exactly the committed
#    list (testdata/installed_headers.txt; a new public header is added there
#    on purpose), no internal/ or util/ header, and each compiles on its own
#    with only the package's flags (so none includes a header left out).
(cd "$prefix/include/rill" && find . -name '*.h' | sed 's#^\./##' | LC_ALL=C sort) >"$tmp/headers.txt"
if ! diff -u testdata/installed_headers.txt "$tmp/headers.txt" >&2; then
  echo "check-install: the installed headers differ from testdata/installed_headers.txt" >&2
  exit 1
fi
if grep -E '(^|/)(internal|util)/' "$tmp/headers.txt" >&2; then
  echo "check-install: an internal header was installed" >&2
  exit 1
fi
cflags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags rill)
export cflags
# shellcheck disable=SC2016  # expanded by the inner shell
if ! xargs -P "$(nproc)" -I{} sh -c 'printf "#include \"%s\"\n" "$1" | c++ -std=c++20 -fsyntax-only -Wall -Werror $cflags -x c++ - ||
      { echo "check-install: installed header $1 does not compile on its own" >&2; exit 255; }' _ {} <"$tmp/headers.txt"; then
  exit 1
fi

# 4. A domain plugin against the installed package, run by the installed rill
#    (and the sample bank plugin in place of the built-in bank).
cmake -S examples/plugin -B "$tmp/plugin" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$tmp/plugin" >/dev/null
"$prefix/bin/rill" --db "$tmp/store-plugin" init >/dev/null
"$prefix/bin/rill" --db "$tmp/store-plugin" --plugin "$tmp/plugin/libcounter.so" submit Add --to counter-1 n=5 >/dev/null
"$prefix/bin/rill" --db "$tmp/store-plugin" config set plugins "$tmp/plugin/libcounter.so" >/dev/null
state=$("$prefix/bin/rill" --db "$tmp/store-plugin" --json state counter-1)
[[ $state == *'"value":5'* ]] || { echo "check-install: plugin state: $state" >&2; exit 1; }
"$prefix/bin/rill" --db "$tmp/store-plugin" --no-builtin-domains \
  --plugin "$(find "$prefix" -name librill_bank.so | head -n 1)" submit OpenAccount --to account-1 owner=ann >/dev/null

echo "check-install: ok (installed to a temp prefix; $(wc -l <"$tmp/headers.txt") public headers, each compiling alone; examples/embed built with find_package and with pkg-config; examples/plugin loaded by the installed rill)"
