# Shared by tests/run.sh and jobs/local.sh: install missing Debian packages, configure, build.
# Source it; it defines functions and sets no shell options of its own.
ED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ED_PACKAGES=(openmpi-bin libopenmpi-dev libopenblas-dev libhdf5-dev zlib1g-dev libyaml-dev
             pkg-config cmake make gcc dataset-fashion-mnist python3-h5py python3-numpy
             python3-matplotlib)

ed_install_deps() {
    local missing=()
    for p in "${ED_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ed_build() {
    ED_BUILD_DIR=${BUILD_DIR:-$ED_ROOT/build}
    local extra=()
    [ "${SANITIZE:-0}" = 1 ] && extra+=(-DENSDISTILL_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
    cmake -S "$ED_ROOT" -B "$ED_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "${extra[@]}" >/dev/null
    cmake --build "$ED_BUILD_DIR" -j "$(nproc)"
    ED_BIN=$ED_BUILD_DIR/ensdistill
}

# mpirun as root needs --allow-run-as-root; more ranks than cores need --oversubscribe.
ed_mpirun() {
    local flags=(--oversubscribe)
    [ "$(id -u)" -eq 0 ] && flags+=(--allow-run-as-root)
    mpirun "${flags[@]}" "$@"
}
