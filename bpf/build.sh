#!/usr/bin/env bash
# Builds bpf/closes.bpf.o from bpf/closes.bpf.c, reproducibly: fixed flags, no absolute paths
# in the object (-ffile-prefix-map), BTF for CO-RE (-g). The object is committed so that the
# default `cargo build` needs no clang; CI runs `bpf/build.sh --check`, which rebuilds into a
# temporary file and fails when the committed object differs from its source.
#
#   bpf/build.sh            rebuild bpf/closes.bpf.o
#   bpf/build.sh --check    rebuild elsewhere and compare with the committed object
#   bpf/build.sh --vmlinux  dump this kernel's full BTF as C to bpf/vmlinux.full.h (not
#                           committed), to compare with the trimmed bpf/vmlinux.h
#
# Needs: clang (Debian's, with the bpf target), libbpf-dev (bpf_helpers.h), bpftool for --vmlinux.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
cd "$root"

CLANG="${CLANG:-clang}"
# -O2: the verifier wants it; -g: BTF and CO-RE relocations; -mcpu=v3: 32-bit jumps and ALU.
# No host include path: the program includes only vmlinux.h and libbpf's headers.
FLAGS=(-target bpf -mcpu=v3 -O2 -g -Wall -Werror
  -D__TARGET_ARCH_x86
  -ffile-prefix-map="$root"/=
  -fdebug-compilation-dir=.
  -I bpf)

build() { "$CLANG" "${FLAGS[@]}" -c bpf/closes.bpf.c -o "$1"; }

case "${1:-}" in
  "")
    build bpf/closes.bpf.o
    echo "built bpf/closes.bpf.o ($(stat -c %s bpf/closes.bpf.o) bytes, $("$CLANG" --version | head -n 1))"
    ;;
  --check)
    tmp="$(mktemp)"
    trap 'rm -f "$tmp"' EXIT
    build "$tmp"
    if ! cmp -s "$tmp" bpf/closes.bpf.o; then
      echo "bpf/closes.bpf.o is stale or was built differently: run bpf/build.sh and commit the object" >&2
      echo "(compiler here: $("$CLANG" --version | head -n 1))" >&2
      exit 1
    fi
    echo "bpf/closes.bpf.o matches its source"
    ;;
  --vmlinux)
    bpftool btf dump file /sys/kernel/btf/vmlinux format c >bpf/vmlinux.full.h
    echo "wrote bpf/vmlinux.full.h ($(wc -l <bpf/vmlinux.full.h) lines)"
    ;;
  *)
    echo "usage: bpf/build.sh [--check|--vmlinux]" >&2
    exit 2
    ;;
esac
