#!/bin/sh
# Installs the Debian packages Tally needs when pkg-config cannot find them.
# Run as root (or with sudo available); a no-op when everything is present.
set -eu
need=""
check() { # pkg-config-name debian-package
	pkg-config --exists "$1" 2>/dev/null || need="$need $2"
}
command -v pkg-config >/dev/null 2>&1 || need="$need pkg-config"
check libsodium libsodium-dev
check lmdb liblmdb-dev
check libuv libuv1-dev
check msgpack libmsgpack-dev
check jansson libjansson-dev
check libmicrohttpd libmicrohttpd-dev
check libcurl libcurl4-openssl-dev
check cmocka libcmocka-dev
command -v cc >/dev/null 2>&1 || need="$need gcc"
command -v make >/dev/null 2>&1 || need="$need make"
if [ -n "${TALLY_FUZZ_DEPS:-}" ]; then
	command -v clang >/dev/null 2>&1 || need="$need clang"
	[ -e /usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a ] ||
		need="$need libclang-rt-14-dev"
fi
[ -z "$need" ] && exit 0
echo "deps: installing:$need"
SUDO=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
		echo "deps: missing packages:$need — run 'make deps' as root" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $need
