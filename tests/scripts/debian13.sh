#!/usr/bin/env bash
# The whole suite on Debian 13 (trixie: GCC 14, Open MPI 5, HDF5 1.14, oneDNN 3, Slurm 24.11,
# torch 2.6) in a root made by `debootstrap --variant=minbase trixie`, from this machine:
#   tests/scripts/debian13.sh [extra ctest args]       e.g. ... -R 'mpi_|slurm'
# It installs debootstrap on this machine when missing, makes the root (or takes the cached one),
# copies this machine's resolv.conf and hosts into it, bind-mounts /proc, /sys, /dev, /dev/pts,
# /dev/shm and this source tree (read-only, at /src), and runs tests/run.sh there: run.sh
# installs the same packages it installs here (jobs/common.sh's lists), builds in /build of the
# root and runs ctest. Everything it mounted is unmounted when it ends, also on failure or ^C.
# Run as root (debootstrap and chroot need it). Not a ctest test (tests/CMakeLists.txt leaves it
# out): .ci/run calls it after the Debian 12 suites.
# Exit status: run.sh's; 77 with the reason only where debootstrap or chroot cannot run here.
#
# The root is kept between runs, with its packages and its build, in ED_DEB13_DIR (default
# /var/tmp/ensdistill-debian13/root): a second run installs nothing and rebuilds what changed.
# A root whose debootstrap did not finish is made again. ED_DEB13_FRESH=1 removes it first.
# ED_DEB13_BASE=DIR starts a new root from a copy (cp -a) of a finished minbase root instead of
# debootstrap; ED_DEB13_MIRROR is debootstrap's mirror (default http://deb.debian.org/debian).
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$src/jobs/common.sh"
skip() { echo "SKIP: debian13: $*"; exit 77; }
say() { echo "debian13: $*"; }

root=${ED_DEB13_DIR:-/var/tmp/ensdistill-debian13/root}
mirror=${ED_DEB13_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" -eq 0 ] || skip "debootstrap and chroot need root (uid $(id -u))"
command -v chroot > /dev/null || skip "chroot not found (coreutils)"
mkdir -p "$(dirname "$root")"
# One run per root at a time: a second one waits here.
exec 9> "$root.lock"
flock 9

# ---- mounts: each one recorded when made, all undone on exit in reverse order ----
mounted=()
cleanup() {
    local status=$? i m pid
    set +e
    # Whatever still runs inside the root (a daemon a killed test left) holds the mounts: stop
    # it by PID. Only processes whose root directory is this root are touched.
    for pid in $(ls /proc | grep -E '^[0-9]+$'); do
        [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$root" ] && kill -9 "$pid" 2>/dev/null
    done
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        m=${mounted[i]}
        umount "$m" 2>/dev/null || umount -l "$m" || echo "debian13: could not unmount $m" >&2
    done
    # And what a test made inside the root: `ip netns add` (the cluster test's probe) mounts the
    # root's /run/netns on itself.
    for m in $(awk -v r="$root/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
        umount "$m" 2>/dev/null || umount -l "$m" || echo "debian13: could not unmount $m" >&2
    done
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bind() { # bind SOURCE TARGET-INSIDE-ROOT [ro]
    mkdir -p "$root$2"
    mount --bind "$1" "$root$2" || skip "mount --bind $1 $root$2 failed: chroot cannot run here"
    mounted+=("$root$2")
    if [ "${3:-}" = ro ]; then
        mount -o remount,bind,ro "$root$2" || skip "cannot remount $root$2 read-only"
    fi
}

# ---- the root ----
# A run killed with SIGKILL leaves its mounts: undo them before anything is removed (rm would
# go down into /dev, /proc or the checkout otherwise; it also stays on the root's file system).
stale=$(awk -v r="$root/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r)
for m in $stale; do umount "$m" 2>/dev/null || umount -l "$m"; done
[ -z "$(awk -v r="$root/" 'index($5, r) == 1' /proc/self/mountinfo)" ] \
    || { echo "debian13: FAIL: cannot unmount what an earlier run left mounted under $root" >&2; exit 1; }
remove_root() { rm -rf --one-file-system "$root"; }
[ "${ED_DEB13_FRESH:-0}" = 1 ] && { say "removing $root (ED_DEB13_FRESH=1)"; remove_root; }
if [ ! -e "$root/.ed-minbase-done" ]; then
    remove_root
    if [ -n "${ED_DEB13_BASE:-}" ]; then
        say "copying $ED_DEB13_BASE to $root"
        cp -a "$ED_DEB13_BASE" "$root"
    else
        ed_install_packages debootstrap || skip "debootstrap is not installed and apt-get could not install it"
        [ -e /usr/share/debootstrap/scripts/trixie ] || skip "this debootstrap does not know trixie"
        say "debootstrap --variant=minbase trixie $root $mirror"
        start=$SECONDS
        if ! debootstrap --variant=minbase trixie "$root" "$mirror" > "$root.debootstrap.log" 2>&1; then
            tail -n 20 "$root.debootstrap.log"
            grep -qiE 'mknod|mount|chroot: cannot|Operation not permitted' "$root.debootstrap.log" \
                && skip "debootstrap cannot run here (log above)"
            echo "debian13: FAIL: debootstrap failed (log above, $root.debootstrap.log)" >&2
            exit 1
        fi
        say "debootstrap took $((SECONDS - start)) s"
    fi
    touch "$root/.ed-minbase-done"
fi
chroot "$root" /bin/true || skip "chroot $root /bin/true fails: chroot cannot run here"
# apt needs a resolver and the scheduler tests the name localhost: this machine's files.
cp /etc/resolv.conf "$root/etc/resolv.conf"
cp /etc/hosts "$root/etc/hosts"
# No package may start its service (munge, slurmctld, slurmd) in the root: the tests start
# their own daemons, by hand, and stop them by PID.
printf '#!/bin/sh\nexit 101\n' > "$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

bind /proc /proc
bind /sys /sys
bind /dev /dev
bind /dev/pts /dev/pts
bind /dev/shm /dev/shm
bind "$src" /src ro
mkdir -p "$root/build"

# ED_DEB13_CMAKE_ARGS: cmake arguments for the build there (tests/run.sh's CMAKE_ARGS); the
# default names the default, so that a cached build dir forgets an earlier run's choice.
cmake_args=${ED_DEB13_CMAKE_ARGS:--DENSDISTILL_ONEDNN=AUTO}
say "Debian $(cat "$root/etc/debian_version"): tests/run.sh $* (CMAKE_ARGS=$cmake_args)"
# A clean environment: only what run.sh and the tests need (no ED_APT_UPDATED from this side).
# In the background, so that a signal reaches the trap at once (bash runs traps between commands).
chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 TERM="${TERM:-dumb}" BUILD_DIR=/build CMAKE_ARGS="$cmake_args" \
    bash /src/tests/run.sh "$@" &
wait $!
