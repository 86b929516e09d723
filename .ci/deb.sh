#!/usr/bin/env bash
# CI: builds the Debian package with dpkg-buildpackage from a copy of the
# tree (its outputs land beside the copy, not beside the checkout) and
# checks that it holds the binary, the unit, the man page, the rule pack
# and the configuration (issue 21 part 3). Under two minutes on two cores.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=.ci/deps.sh
. "$root/.ci/deps.sh"
pv_install "${PV_BUILD_PACKAGES[@]}" "${PV_DEB_PACKAGES[@]}"

work=$(mktemp -d "${TMPDIR:-/tmp}/pvwatch-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/pvwatch"
# The tree without build directories, .git or node_modules.
(cd "$root" && tar --exclude='./build*' --exclude=./.git --exclude=./demo \
    --exclude=node_modules -cf - .) | tar -C "$work/pvwatch" -xf -
start=$SECONDS
if ! (cd "$work/pvwatch" && dpkg-buildpackage -us -uc -b -j"$(nproc)" \
        >"$work/build.log" 2>&1); then
    tail -40 "$work/build.log" >&2
    echo "dpkg-buildpackage failed" >&2
    exit 1
fi
deb=$(ls "$work"/pvwatch_*.deb)
echo "built $(basename "$deb") in $((SECONDS - start)) s"
dpkg -c "$deb" >"$work/contents"
fail=0
for f in ./usr/bin/pvwatch ./lib/systemd/system/pvwatch.service \
         ./usr/share/man/man1/pvwatch.1.gz ./usr/share/pvwatch/plugins/cytopenia.lua \
         ./usr/share/pvwatch/scripts/ctcae.lua ./etc/pvwatch/pvwatch.lua \
         ./usr/share/bash-completion/completions/pvwatch \
         ./usr/lib/sysusers.d/pvwatch.conf; do
    if grep -q " $f\$" "$work/contents"; then
        echo "deb: $f"
    else
        echo "deb: $f missing" >&2
        fail=1
    fi
done
# The unit runs the packaged binary; the config is a conffile.
dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles | grep -qx /etc/pvwatch/pvwatch.lua ||
    { echo "deb: /etc/pvwatch/pvwatch.lua is not a conffile" >&2; fail=1; }
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./lib/systemd/system/pvwatch.service |
    grep -q '^ExecStart=/usr/bin/pvwatch run -c /etc/pvwatch/pvwatch.lua$' ||
    { echo "deb: the unit does not run /usr/bin/pvwatch" >&2; fail=1; }
dpkg-deb -I "$deb" | sed -n 's/^ Depends: /deb: depends: /p'
# The packaged binary, unpacked anywhere, finds its packaged rule pack.
dpkg-deb -x "$deb" "$work/root"
if (cd "$work" && "$work/root/usr/bin/pvwatch" check >"$work/check.out" 2>&1) &&
    grep -q "$work/root/usr/share/pvwatch/plugins/cytopenia.lua" "$work/check.out"; then
    echo "deb: the unpacked binary loads $(grep -c '^  rule ' "$work/check.out") rules from its own pack"
else
    cat "$work/check.out" >&2
    echo "deb: the unpacked binary does not load its packaged rules" >&2
    fail=1
fi
[ "$fail" = 0 ] || exit 1
echo "deb: ok"
