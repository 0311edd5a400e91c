#!/usr/bin/env bash
# CI for the Debian package (run by .ci/run, as root or with sudo): build it, install it
# with dpkg -i, run what it installed, verify the unit, purge it.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

deb=$(bash packaging/build-deb.sh)
echo "built $deb ($(du -h "$deb" | cut -f1))"
if dpkg -s lingertop >/dev/null 2>&1; then
  echo "a lingertop package is already installed here; not replacing it" >&2
  exit 1
fi
as_root dpkg -i "$deb"
trap 'as_root dpkg --purge lingertop >/dev/null' EXIT

# The installed binary, from its installed path, with the installed config.
/usr/bin/lingertop --config /etc/lingertop/config.toml snapshot --format json >"${TMPDIR:-/tmp}/lingertop-deb.json"
grep -q '"total_connections"' "${TMPDIR:-/tmp}/lingertop-deb.json"
/usr/bin/lingertop snapshot --format table --state listen | head -n 3
rm -f "${TMPDIR:-/tmp}/lingertop-deb.json"

# The unit is valid (its binary and man pages exist), and the install did not enable it.
systemd-analyze verify /usr/lib/systemd/system/lingertop.service
if [ -e /etc/systemd/system/multi-user.target.wants/lingertop.service ]; then
  echo "the package enabled lingertop.service; it must not" >&2
  exit 1
fi
if [ -d /run/systemd/system ] && systemctl is-active --quiet lingertop.service; then
  echo "the package started lingertop.service; it must not" >&2
  exit 1
fi

# man finds the page; each shell finds its completions where the package put them.
MANPAGER=cat MANWIDTH=100 man lingertop | grep -q '^EXIT STATUS'
# The guide is where the page's SEE ALSO says, each chapter beside the table of contents.
MANPAGER=cat MANWIDTH=100 man lingertop | grep -q '/usr/share/doc/lingertop/docs/README.md'
for chapter in README install dashboard troubleshooting; do
  [ -f "/usr/share/doc/lingertop/docs/$chapter.md" ] || { echo "the package lacks docs/$chapter.md" >&2; exit 1; }
done
bash -c 'source /usr/share/bash-completion/completions/lingertop; complete -p lingertop' | grep -q _lingertop
# Each shell's default search path, with no user start-up file (an empty HOME).
home=$(mktemp -d)
[ "$(HOME=$home zsh -fc 'autoload -Uz compinit; compinit -u -D; print -r -- $_comps[lingertop]')" = _lingertop ]
HOME=$home XDG_CONFIG_HOME=$home fish -c 'complete -C "lingertop sn"' | grep -q '^snapshot'
rm -rf "$home"
echo "package: installed, snapshot ran from /usr/bin, unit verified and not enabled, man page, guide and completions found"
