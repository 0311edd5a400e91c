#!/usr/bin/env bash
# Runs lingertop.service under a real systemd: pid 1 of a systemd-nspawn container booted
# from a minimal Debian bookworm root, with the .deb built from this tree installed in it.
# For the unit alone, with each drop-in (namespaces.conf, events.conf) one at a time, with
# both, and with the IPAddressDeny=/IPAddressAllow= drop-in its comment suggests, it starts
# the service, checks it is active, scrapes /metrics on the container's loopback, reads the
# service process's CapEff/CapPrm/CapAmb/CapBnd/NoNewPrivs and uid and compares them with
# what the unit files declare, checks each feature works (the owner of root's CLOSE_WAIT
# sockets; another network namespace's sockets; the kernel's close events) and that a
# feature not turned on stays off, then stops it; at the end it powers the container off.
# The unit alone is also started with enable --now and killed once (Restart=on-failure).
#
# Run as root. Exit status 0: PASS; 1: FAIL; 77: SKIP (systemd-nspawn cannot boot a
# container on this machine, said why).
#
# The host's pid 1 need not be systemd: the container is not registered with machined
# (--register=no --keep-unit) and is driven with nsenter into its pid 1's namespaces.
#
# LINGERTOP_BIN=path packages that binary (no release build). LINGERTOP_NSPAWN_ROOT is the
# cached root (default /var/tmp/lingertop-nspawn-root; debootstrap fills it once, about
# 100 s; a rerun reuses it); the container boots with --volatile=overlay, so nothing a run
# installs or writes reaches the cache. LINGERTOP_NSPAWN_CGROUPS=legacy boots with cgroup v1
# only (default: unified, cgroup v2, and legacy when that does not boot). DEBIAN_MIRROR
# overrides deb.debian.org.
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${LINGERTOP_NSPAWN_ROOT:-/var/tmp/lingertop-nspawn-root}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
machine="lingertop-check-$$"
port=9797 # serve.listen in config.example.toml, the package's /etc/lingertop/config.toml
t_start=$(date +%s)
work=$(mktemp -d)
boot_log="$work/boot.log"
nspawn_pid=""
pid1=""

log() { printf '[%3ss] %s\n' "$(($(date +%s) - t_start))" "$*"; }
skip() {
  log "SKIP: $*"
  exit 77
}
fail() {
  log "FAIL: $*"
  exit 1
}

if [ "$(id -u)" != 0 ]; then
  echo "systemd-nspawn-check.sh must run as root (it boots a container): sudo $0" >&2
  exit 1
fi
if ! grep -q '^listen = "127.0.0.1:9797"$' config.example.toml; then
  fail "config.example.toml's serve.listen is no longer 127.0.0.1:9797: update port= in $0"
fi

# --- cleanup, on every exit path -------------------------------------------------------
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    # A clean poweroff first; then nspawn's own shutdown (SIGTERM); then SIGKILL to pid 1,
    # which ends every process of the container's pid namespace.
    if [ -n "$pid1" ]; then timeout 5 nsenter -t "$pid1" -a systemctl poweroff >/dev/null 2>&1 || true; fi
    for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 1 25); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$nspawn_pid" 2>/dev/null; then
      log "the container did not stop within 25 s: killing it"
      if [ -n "$pid1" ]; then kill -KILL "$pid1" 2>/dev/null || true; fi
      kill -KILL "$nspawn_pid" 2>/dev/null || true
    fi
    wait "$nspawn_pid" 2>/dev/null || true
  fi
  # nspawn leaves its mount-propagation directory behind when /run is not a tmpfs.
  rm -rf "/run/systemd/nspawn/propagate/$machine" "$cache.partial"
  if [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ -s "$boot_log" ]; then
    echo "--- the container's console (last 30 lines) ---"
    tail -n 30 "$boot_log" | sed 's/\x1b\[[0-9;]*m//g'
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools ------------------------------------------------------------------------------
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v systemd-nspawn >/dev/null || need+=(systemd-container)
command -v nsenter >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- the package --------------------------------------------------------------------------
deb=$(bash packaging/build-deb.sh)
deb=$(realpath "$deb")
log "built $deb"

# --- the root, cached ---------------------------------------------------------------------
# Filled in $cache.partial and renamed when complete, so an interrupted debootstrap is never
# taken for a cached root.
# One run at a time per cache: two debootstraps into one directory would corrupt it.
exec 9>"$cache.lock"
flock -w 600 9 || fail "another run holds $cache.lock for 10 minutes"
if [ ! -x "$cache/usr/lib/systemd/systemd" ] || [ ! -x "$cache/usr/bin/curl" ]; then
  log "debootstrap bookworm into $cache (once; later runs reuse it)"
  t_debootstrap=$(date +%s)
  rm -rf "$cache" "$cache.partial"
  if ! timeout 600 debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,curl,libcap2-bin \
    bookworm "$cache.partial" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log"
    fail "debootstrap failed (log above); is $mirror reachable? DEBIAN_MIRROR=... picks another"
  fi
  # No getty on the console: nobody logs in, and its prompt would only clutter the log.
  rm -f "$cache.partial/etc/systemd/system/getty.target.wants/"*
  mv "$cache.partial" "$cache"
  root_from="debootstrapped in $(($(date +%s) - t_debootstrap))s"
  log "root ready ($(du -sh "$cache" | cut -f1))"
else
  root_from="from cache"
  log "root from cache $cache"
fi

# --- boot ---------------------------------------------------------------------------------
# The container gets CAP_BPF and CAP_PERFMON in its bounding set and the bpf(2) syscall
# (nspawn's own seccomp filter refuses it otherwise) so events.conf can be tried; the unit
# itself decides what lingertop gets of them.
boot() {
  : >"$boot_log"
  env "$@" systemd-nspawn --quiet --register=no --keep-unit --machine="$machine" \
    --directory="$cache" --volatile=overlay --private-network --boot --console=read-only \
    --capability=CAP_BPF,CAP_PERFMON --system-call-filter=bpf \
    --bind-ro="$(dirname "$deb"):/mnt/lingertop-deb" \
    </dev/null >>"$boot_log" 2>&1 &
  nspawn_pid=$!
  pid1=""
  local state=""
  for _ in $(seq 1 300); do # 60 s
    kill -0 "$nspawn_pid" 2>/dev/null || return 1
    if [ -z "$pid1" ]; then
      pid1=$(pgrep -P "$nspawn_pid" -x systemd | head -n 1 || true)
    else
      state=$(timeout 5 nsenter -t "$pid1" -a systemctl is-system-running 2>/dev/null || true)
      case "$state" in running | degraded) return 0 ;; esac
    fi
    sleep 0.2
  done
  log "the container's systemd did not finish booting within 60 s (state: ${state:-none})"
  return 1
}
stop_container() {
  timeout 5 nsenter -t "$pid1" -a systemctl poweroff >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
  # pid 1 is nspawn's child: while nspawn lives, its number is still the container's.
  if kill -0 "$nspawn_pid" 2>/dev/null; then
    if [ -n "$pid1" ]; then kill -KILL "$pid1" 2>/dev/null || true; fi
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  wait "$nspawn_pid" 2>/dev/null || true
  nspawn_pid=""
}

# The modern layout first (cgroup v2 alone); nspawn's legacy one where the host cannot give a
# container a cgroup v2 tree of its own.
hierarchy=${LINGERTOP_NSPAWN_CGROUPS:-unified}
[ "$hierarchy" = unified ] || [ "$hierarchy" = legacy ] || fail "LINGERTOP_NSPAWN_CGROUPS is unified or legacy, not $hierarchy"
if [ "$hierarchy" = legacy ] || ! boot SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1; then
  if [ "$hierarchy" = unified ]; then
    log "boot with the unified cgroup hierarchy failed: retrying with the legacy one"
    sed 's/\x1b\[[0-9;]*m//g' "$boot_log" | grep -iE 'fail|error|cgroup' | head -n 5 || true
    stop_container
  fi
  hierarchy="legacy"
  if ! boot SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=0; then
    sed 's/\x1b\[[0-9;]*m//g' "$boot_log" | tail -n 10
    skip "systemd-nspawn cannot boot a container on this machine (console above)"
  fi
fi
t_boot=$(($(date +%s) - t_start))

# Runs a command in the container, as its root, bounded in time.
c() { timeout 30 nsenter -t "$pid1" -a "$@"; }

# Which cgroup layout the container's systemd runs on.
cgroups() {
  if [ "$(c stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    echo "cgroup v2"
  elif c test -d /sys/fs/cgroup/unified; then
    echo "cgroup v1 with v2 at /sys/fs/cgroup/unified"
  else
    echo "cgroup v1"
  fi
}
layout=$(cgroups)
systemd_version=$(c systemctl --version | awk 'NR == 1 {print $2}')
log "booted ($hierarchy: $layout): container pid 1 is host pid $pid1, systemd $systemd_version"

c dpkg -i /mnt/lingertop-deb/"$(basename "$deb")" >"$work/dpkg.log" 2>&1 || {
  cat "$work/dpkg.log"
  fail "dpkg -i of the package failed in the container"
}
enabled=$(c systemctl is-enabled lingertop.service 2>/dev/null || true)
active=$(c systemctl is-active lingertop.service 2>/dev/null || true)
log "installed $(basename "$deb"): lingertop.service is $enabled and $active"
if [ "$enabled" != disabled ] || [ "$active" != inactive ]; then fail "the install enabled or started the unit"; fi

# Root's CLOSE_WAIT sockets for the owners check, one set in the container's network
# namespace and one in a namespace of its own (PrivateNetwork= brings its loopback up).
c systemd-run --quiet --unit=lt-check-leak lingertop lab --scenario close-wait-leak -n 3 --hold 10m
c systemd-run --quiet --unit=lt-check-leak-ns -p PrivateNetwork=yes lingertop lab --scenario close-wait-leak -n 2 --hold 10m
leak_pid=$(c systemctl show -P MainPID lt-check-leak)

# The drop-in the unit's comment suggests for a Prometheus on another host, here with the
# container's own loopback as "Prometheus": 127.0.0.1 may scrape, 127.0.0.2 may not.
printf '[Service]\nIPAddressDeny=any\nIPAddressAllow=127.0.0.1\n' >"$work/ip-allow.conf"

# --- helpers of one variant ---------------------------------------------------------------

# The capabilities the unit files declare for a key: lower-case names, sorted.
declared() {
  local key=$1
  shift
  sed -n "s/^$key=//p" "$@" | tr ' ' '\n' | sed '/^$/d' | tr '[:upper:]' '[:lower:]' | sort -u | paste -sd, -
}
# The capabilities in a hex mask of /proc/PID/status, as lower-case names, sorted.
decoded() { { if [ -n "$1" ]; then c capsh --decode="$1" || true; fi; } | sed 's/^0x[0-9a-f]*=//' | tr ',' '\n' | sed '/^$/d' | sort -u | paste -sd, -; }
status_field() { sed -n "s/^$1:[[:space:]]*//p" "$work/status"; }
scrape() { c curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" >"$work/metrics" 2>/dev/null; }
metric() { awk -v m="$1" 'index($0, m) == 1 { print $2; exit }' "$work/metrics"; }
healthy_within() { # $1 tenths of a second
  for _ in $(seq 1 "$1"); do
    c curl -fsS --max-time 2 "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# Installs the drop-ins of a variant (none: the unit alone), as an operator does: the
# shipped ones from /usr/share/lingertop/systemd, then daemon-reload.
install_dropins() {
  local d
  c rm -rf /etc/systemd/system/lingertop.service.d
  c mkdir -p /etc/systemd/system/lingertop.service.d
  for d in "$@"; do
    if [ -e "packaging/systemd/$(basename "$d")" ]; then
      c cp "/usr/share/lingertop/systemd/$(basename "$d")" /etc/systemd/system/lingertop.service.d/
    else
      c sh -c "cat >/etc/systemd/system/lingertop.service.d/$(basename "$d")" <"$d"
    fi
  done
  c systemctl daemon-reload
}

# Reads the figures of the running service: owner of root's CLOSE_WAIT, the namespaces
# read, where closes come from; waits (20 s at most) until what the variant turns on shows.
read_figures() {
  local want_netns=$1 want_events=$2
  for _ in $(seq 1 40); do
    scrape || true
    owner=$(metric "lingertop_close_wait_connections{pid=\"$leak_pid\",process=\"lingertop\"}")
    netns=$(awk '/^lingertop_netns_connections\{/ && /state="CLOSE_WAIT"/ && !/netns="host"/ { n += $2 } END { print n + 0 }' "$work/metrics")
    names=$(awk '/^lingertop_netns_connections\{/ && $2 > 0 { sub(/.*netns="/, ""); sub(/".*/, ""); print }' "$work/metrics" | sort -u | paste -sd, -)
    source=$(awk '/^lingertop_closes_source\{/ && $2 == 1 { sub(/.*source="/, ""); sub(/".*/, ""); print; exit }' "$work/metrics")
    partial=$(metric lingertop_process_info_partial)
    lines=$(wc -l <"$work/metrics")
    if [ "$owner" = 3 ] && { [ "$want_netns" = 0 ] || [ "$netns" = 2 ]; } &&
      { [ "$want_events" = 0 ] || [ "$source" = kernel ]; }; then
      return 0
    fi
    sleep 0.5
  done
}

# What the service process holds against what the unit files declare.
check_privileges() {
  local main amb bnd
  main=$(c systemctl show -P MainPID lingertop.service || true)
  c cat "/proc/$main/status" >"$work/status" 2>/dev/null || : >"$work/status"
  amb=$(declared AmbientCapabilities "$@")
  bnd=$(declared CapabilityBoundingSet "$@")
  eff=$(decoded "$(status_field CapEff)")
  cbnd=$(decoded "$(status_field CapBnd)")
  nnp=$(status_field NoNewPrivs)
  uid=$(status_field Uid | awk '{print $1}')
  [ "$eff" = "$amb" ] || problems+=("CapEff $eff, the unit declares AmbientCapabilities $amb")
  [ "$(decoded "$(status_field CapPrm)")" = "$amb" ] || problems+=("CapPrm is not the declared $amb")
  [ "$(decoded "$(status_field CapAmb)")" = "$amb" ] || problems+=("CapAmb is not the declared $amb")
  [ "$cbnd" = "$bnd" ] || problems+=("CapBnd $cbnd, the unit declares CapabilityBoundingSet $bnd")
  if grep -q '^NoNewPrivileges=yes' "$@"; then
    [ "$nnp" = 1 ] || problems+=("NoNewPrivs $nnp under NoNewPrivileges=yes")
  fi
  if grep -q '^DynamicUser=yes' "$@"; then
    [ -n "$uid" ] && [ "$uid" != 0 ] || problems+=("uid ${uid:-unknown} under DynamicUser=yes")
  fi
}

# Restart=on-failure: a crash (SIGKILL) brings it back after RestartSec.
check_restart() {
  local t0 restarts=0
  t0=$(now_ms)
  c systemctl kill --signal=SIGKILL --kill-whom=main lingertop.service || true
  for _ in $(seq 1 150); do # 15 s
    restarts=$(c systemctl show -P NRestarts lingertop.service || true)
    [ "$restarts" = 1 ] && healthy_within 1 && break
    sleep 0.1
  done
  extra+="; after SIGKILL: $restarts restart, healthy again in $(($(now_ms) - t0)) ms"
  [ "$restarts" = 1 ] && healthy_within 50 || problems+=("not restarted and healthy within 15 s of a SIGKILL")
}

# The IP filter: 127.0.0.1 scrapes, a client bound to 127.0.0.2 is refused.
check_ip_filter() {
  local own other
  own=$(c curl -sS -o /dev/null -w '%{http_code}' --max-time 3 "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
  other=$(c curl -sS -o /dev/null -w '%{http_code}' --max-time 3 --interface 127.0.0.2 "http://127.0.0.1:$port/healthz" 2>/dev/null || true)
  extra+="; /healthz from 127.0.0.1: HTTP $own, from 127.0.0.2: ${other/000/no answer}"
  [ "$own" = 200 ] || problems+=("the allowed 127.0.0.1 got HTTP $own")
  [ "$other" = 000 ] && return 0
  # systemd's IP filter is a BPF program on the unit's cgroup v2 group: with no cgroup v2
  # tree at all (not even the hybrid one) it is not applied, and systemd 252 says nothing.
  # The unit's comment says so; elsewhere a scrape through it is a failure.
  if [ "$layout" = "cgroup v1" ]; then
    extra+=" (expected: not enforced without cgroup v2, and systemd says nothing)"
  else
    problems+=("127.0.0.2 got HTTP $other through IPAddressDeny=any")
  fi
}

# Each feature on exactly when its drop-in is there; the owners and full process info always.
check_features() {
  local want_netns=$1 want_events=$2
  [ "$lines" -gt 50 ] || problems+=("the scrape has $lines lines")
  [ "$partial" = 0 ] || problems+=("lingertop_process_info_partial is ${partial:-missing}: some sockets show no process")
  [ "$owner" = 3 ] || problems+=("root's 3 CLOSE_WAIT not named as lingertop[$leak_pid] (saw: ${owner:-none})")
  if [ "$want_netns" = 1 ]; then
    [ "$netns" = 2 ] || problems+=("the other namespace's 2 CLOSE_WAIT not seen (saw $netns)")
  else
    [ "$netns" = 0 ] || problems+=("another namespace's sockets read without namespaces.conf")
  fi
  if [ "$want_events" = 1 ]; then
    [ "$source" = kernel ] || problems+=("closes from ${source:-nothing}, not the kernel's events")
  else
    [ "$source" = counters ] || problems+=("closes from ${source:-nothing} without events.conf")
  fi
}

# Starts the unit as an operator would: the first variant with enable --now (the package's
# notes; WantedBy=multi-user.target), disabled again so the others start it by hand.
start_unit() {
  if [ "$1" = unit ]; then
    c systemctl enable --now --quiet lingertop.service || problems+=("systemctl enable --now failed")
    extra+="; enable --now: $(c systemctl is-enabled lingertop.service || true)"
    c systemctl disable --quiet lingertop.service || true
  else
    c systemctl start lingertop.service || problems+=("systemctl start failed")
  fi
}

summary=()
failures=0
# One variant: the unit with the given drop-ins (host paths), started, checked, stopped.
variant() {
  local name=$1
  shift
  local files=(packaging/systemd/lingertop.service "$@") want_netns=0 want_events=0
  case " $* " in *namespaces.conf*) want_netns=1 ;; esac
  case " $* " in *events.conf*) want_events=1 ;; esac
  problems=() extra=""
  owner="" netns="" names="" source="" partial="" lines=0 eff="" cbnd="" nnp="" uid=""
  install_dropins "$@"
  # The journal of this variant: everything after the last entry so far.
  local cursor state restarts after t0 stop_ms
  cursor=$(c journalctl -q -n 1 -o export | sed -n 's/^__CURSOR=//p')
  start_unit "$name"
  if healthy_within 200; then
    read_figures "$want_netns" "$want_events"
    check_privileges "${files[@]}"
    check_features "$want_netns" "$want_events"
    case "$name" in
      unit) check_restart ;;
      ip-allow) check_ip_filter ;;
    esac
  else
    problems+=("/healthz did not answer within 20 s (the journal below says why)")
  fi
  state=$(c systemctl is-active lingertop.service || true)
  restarts=$(c systemctl show -P NRestarts lingertop.service || true)
  [ "$state" = active ] || problems+=("the unit is $state")
  [ "$name" = unit ] || [ "$restarts" = 0 ] || problems+=("restarted $restarts times")

  t0=$(now_ms)
  c systemctl stop lingertop.service || problems+=("systemctl stop failed")
  stop_ms=$(($(now_ms) - t0))
  after=$(c systemctl is-active lingertop.service || true)
  [ "$after" = inactive ] || problems+=("after systemctl stop the unit is $after (result: $(c systemctl show -P Result lingertop.service))")
  echo "--- journalctl -u lingertop ($name) ---"
  c journalctl --no-pager -o short-monotonic -u lingertop.service --after-cursor="$cursor" 2>/dev/null |
    grep -v '^-- ' | tail -n 15 | sed 's/^/  /' || true

  local verdict=PASS
  if [ ${#problems[@]} -gt 0 ]; then
    verdict=FAIL
    failures=$((failures + 1))
  fi
  summary+=("$(printf '%s %-18s %s; stop: %s in %s ms; uid %s, NoNewPrivs %s; CapEff=CapPrm=CapAmb %s; CapBnd %s' \
    "$verdict" "$name" "$state" "$after" "$stop_ms" "${uid:-?}" "${nnp:-?}" "${eff:-none}" "${cbnd:-none}")")
  summary+=("$(printf '     scrape %s lines, process info partial %s; owner lingertop[%s] x%s; namespaces %s (other CLOSE_WAIT %s); closes from %s%s' \
    "$lines" "${partial:-?}" "$leak_pid" "${owner:-0}" "${names:-none}" "${netns:-?}" "${source:-?}" "$extra")")
  for p in "${problems[@]}"; do summary+=("     problem: $p"); done
}

# Type=notify: with the port taken, `systemctl start` fails and the journal says why (a
# Type=simple unit reported success there, then restarted every RestartSec).
check_port_taken() {
  local rc=0 state why t0 ms
  install_dropins
  c systemd-run --quiet --unit=lt-check-port lingertop serve --listen "127.0.0.1:$port" --netns host --events off
  healthy_within 100 || true
  t0=$(now_ms)
  c systemctl start lingertop.service 2>/dev/null || rc=$?
  ms=$(($(now_ms) - t0))
  state=$(c systemctl is-active lingertop.service || true)
  why=$(c journalctl --no-pager -o cat -u lingertop.service _COMM=lingertop | grep -m 1 -i 'address\|listen\|bind' || true)
  c systemctl stop lingertop.service lt-check-port || true
  c systemctl reset-failed lingertop.service 2>/dev/null || true
  local verdict=PASS
  if [ "$rc" = 0 ] || [ -z "$why" ]; then
    verdict=FAIL
    failures=$((failures + 1))
  fi
  summary+=("$(printf '%s %-18s systemctl start exit %s after %s ms, then %s; journal: %s' "$verdict" port-taken "$rc" "$ms" "$state" "${why:-nothing}")")
}

variant unit
variant namespaces packaging/systemd/namespaces.conf
variant events packaging/systemd/events.conf
variant namespaces+events packaging/systemd/namespaces.conf packaging/systemd/events.conf
variant ip-allow "$work/ip-allow.conf"

# systemd's own complaints about the unit (unknown keys, options this systemd ignores).
# The two lines of the SIGKILL check_restart sends are expected; any other is a finding.
warnings=$(c journalctl --no-pager -o cat -p warning _PID=1 | grep -F lingertop |
  grep -vxF -e 'lingertop.service: Main process exited, code=killed, status=9/KILL' \
    -e "lingertop.service: Failed with result 'signal'." || true)
# After the warnings: its start failing is what this check expects.
check_port_taken
# The shipped unit alone again for systemd's own verdicts on it.
install_dropins
# systemd-analyze verify, by the systemd that runs the unit; not its man pages: a minbase
# root has no man (packaging/ci-deb.sh checks them on the host).
verify=$(c systemd-analyze verify --man=no lingertop.service 2>&1 || true)
# systemd's exposure score of the unit, as this systemd loads it.
exposure=$(c systemd-analyze security --no-pager lingertop.service 2>/dev/null | sed -n 's/^→ Overall exposure level for lingertop.service: //p')

c systemctl stop lt-check-leak lt-check-leak-ns
stop_container
t_total=$(($(date +%s) - t_start))

echo "=== lingertop.service under systemd $systemd_version as pid 1 of systemd-nspawn ($layout) ==="
printf '%s\n' "${summary[@]}"
if [ -n "$warnings" ]; then
  echo "systemd's warnings about the unit:"
  echo "$warnings" | sed 's/^/  /'
fi
echo "systemd-analyze verify lingertop.service: ${verify:-no complaint}"
echo "systemd-analyze security lingertop.service: ${exposure:-not reported}"
echo "timings: booted at ${t_boot}s (root ${root_from}), total ${t_total}s"
if [ "$failures" -gt 0 ] || [ -n "$warnings" ] || [ -n "$verify" ]; then
  echo "FAIL: $failures variant(s) failed${warnings:+; systemd warned about the unit}${verify:+; systemd-analyze verify complained}"
  exit 1
fi
echo "PASS: lingertop.service, alone and with its drop-ins, works under a real systemd"
