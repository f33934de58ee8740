# Shared by tests/run.sh and jobs/local.sh: install missing Debian packages, configure, build.
# Source it; it defines functions and sets no shell options of its own.
ED_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ED_PACKAGES=(openmpi-bin libopenmpi-dev libopenblas-dev libdnnl-dev libhdf5-dev zlib1g-dev libyaml-dev
             pkg-config cmake make gcc dataset-fashion-mnist python3-h5py python3-numpy
             python3-matplotlib)

# tests/run.sh also installs these: load_torch, model_names and reference_fixture compare with
# PyTorch (load_torch.py reads the config with python3-yaml). Not every Debian architecture has
# python3-torch; where these cannot be installed the other tests still run and those three
# skip, saying why (ED_TORCH_UNAVAILABLE).
ED_TEST_PACKAGES=(python3-torch python3-yaml)

# Installs the named packages that are missing; returns apt-get's status.
ed_install_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "installing: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    [ -n "${ED_APT_UPDATED:-}" ] || { $sudo apt-get update -qq && ED_APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ed_install_deps() {
    ed_install_packages "${ED_PACKAGES[@]}"
}

# Tries ED_TEST_PACKAGES; on failure exports ED_TORCH_UNAVAILABLE (the reason, which the
# PyTorch tests print when they skip) and carries on.
ed_install_test_deps() {
    unset ED_TORCH_UNAVAILABLE
    ed_install_packages "${ED_TEST_PACKAGES[@]}" && return 0
    local candidate
    candidate=$(apt-cache policy python3-torch 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        ED_TORCH_UNAVAILABLE="Debian has no python3-torch for $(dpkg --print-architecture) here"
    else
        ED_TORCH_UNAVAILABLE="apt-get install ${ED_TEST_PACKAGES[*]} failed"
    fi
    export ED_TORCH_UNAVAILABLE
    echo "warning: $ED_TORCH_UNAVAILABLE: load_torch, model_names and reference_fixture will skip" >&2
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
