# CMake refuses a oneDNN it cannot use at configure time, naming the version and what to
# install (it must not fail in the compiler): fake oneDNN 1.8 and 4.0 trees (dnnl_version.h, an
# empty dnnl.h and libdnnl.so) are configured against and must stop there.
source "$(dirname "$0")/lib.sh"
scratch
command -v cmake > /dev/null || { echo "SKIP: no cmake"; exit 77; }

for version in 1.8.1 4.0.0; do
    IFS=. read -r major minor patch <<< "$version"
    fake="$ED_TMP/dnnl-$version"
    mkdir -p "$fake/include/oneapi/dnnl" "$fake/lib"
    printf '#define DNNL_VERSION_MAJOR %s\n#define DNNL_VERSION_MINOR %s\n#define DNNL_VERSION_PATCH %s\n' \
        "$major" "$minor" "$patch" > "$fake/include/oneapi/dnnl/dnnl_version.h"
    : > "$fake/include/oneapi/dnnl/dnnl.h"
    : > "$fake/lib/libdnnl.so"
    set +e
    cmake -S "$ED_SOURCE_DIR" -B "$ED_TMP/build-$version" -DENSDISTILL_ONEDNN=AUTO \
        -DDNNL_INCLUDE_DIR="$fake/include" -DDNNL_LIBRARY="$fake/lib/libdnnl.so" \
        > "$ED_TMP/cmake-$version.log" 2>&1
    rc=$?
    set -e
    [ $rc -ne 0 ] || fail "oneDNN $version: cmake configured (expected a refusal)"
    log=$(tr -s ' \n' ' ' < "$ED_TMP/cmake-$version.log")
    grep -qF "oneDNN $version at $fake/include cannot be used" <<< "$log" \
        || fail "oneDNN $version: no refusal naming the version: $(cat "$ED_TMP/cmake-$version.log")"
    grep -qF "libdnnl-dev" <<< "$log" || fail "oneDNN $version: the refusal names nothing to install"
    echo "ok   oneDNN $version refused at configure time"
done
