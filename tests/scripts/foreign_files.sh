# Files of another run are trusted only through their seal and never changed (issue 20, points
# 1 and 3). A distill.teacher whose run.h5 has one flipped byte is refused naming the file: the
# length of the global-heap string of its `format` attribute crashed the students run inside
# HDF5 (SIGSEGV), a byte of its config text let it be used with exit 0. A teacher member that is
# damaged, with an older member-000.prev.h5 beside it, is refused naming the file, and the
# teacher's directory is left byte for byte as it was (the students run used to rename the
# damaged file to .damaged and promote the .prev inside the finished teacher run). Then a few
# random flips of the teacher's run.h5 and of a member, each read by a whole students run: every
# one refused (exit 2), none accepted, none crashed (tests/tools/bitflip sweeps the readers).
source "$(dirname "$0")/lib.sh"
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
small=(--set ensemble.members=2 --set distill.students=[kd] --set model.hidden=4
       --set data.train_limit=64 --set data.test_limit=32 --set train.epochs=2 --set train.batch_size=16)
"$ED_BIN" run "$cfg" --set checkpoint.dir=T "${small[@]}" > T.log 2>&1 || { cat T.log; fail "teacher run"; }

# students NAME TEACHER_DIR WANT: a students run from TEACHER_DIR exits 2 with WANT on stderr
students() {
    local name=$1 teacher=$2 want=$3 rc
    set +e
    "$ED_BIN" run "$cfg" --set checkpoint.dir="$name" "${small[@]}" --set distill.teacher="$teacher" \
        > "$name.log" 2>&1
    rc=$?
    set -e
    [ $rc -eq 2 ] || { tail -5 "$name.log"; fail "$name: exit $rc, expected 2 (139: SIGSEGV)"; }
    grep -qF -- "$want" "$name.log" || { tail -3 "$name.log"; fail "$name: expected '$want'"; }
}
# offset_of FILE STRING: the byte offset of STRING's first occurrence in FILE
offset_of() {
    "$ED_PYTHON" -c 'import sys; print(open(sys.argv[1], "rb").read().index(sys.argv[2].encode()))' "$@"
}

# 1. the teacher's run.h5: the heap length of `format`, then a byte of the config text
cp -r T T1
at=$(offset_of T1/run.h5 ensdistill-run)
flip_byte T1/run.h5 $((at - 6)) 0x40   # the string's length field + 4 MiB
students s1 T1 "distill.teacher: $ED_TMP/T1/run.h5: damaged: its whole-file CRC32 does not match"
cp T/run.h5 T1/run.h5
flip_byte T1/run.h5 "$(offset_of T1/run.h5 train_limit)" 0x01
students s2 T1 "distill.teacher: $ED_TMP/T1/run.h5: damaged: its whole-file CRC32 does not match"
echo "ok   a teacher run.h5 with a flipped heap length or config byte is refused naming it"

# 2. a damaged teacher member with a .prev beside it: refused, the teacher directory untouched
cp -r T T3
cp T3/models/member-000.h5 T3/models/member-000.prev.h5
flip_byte T3/models/member-000.h5 5000 0x01
snapshot() { (cd "$1" && find . -type f -o -type l | sort | xargs sha256sum); }
snapshot T3 > before.txt
students s3 T3 "checkpoint $ED_TMP/T3/models/member-000.h5 of another run is damaged: damaged: its whole-file CRC32"
snapshot T3 > after.txt
diff before.txt after.txt > /dev/null || { diff before.txt after.txt; fail "the students run changed the teacher's directory"; }
echo "ok   a damaged teacher member is refused naming it; its .prev is not used, nothing in the"
echo "     teacher's directory is renamed or written"

# 3. random flips, each read by a whole students run
for i in 1 2 3; do
    for file in run.h5 models/member-001.h5; do
        rm -rf Tf && cp -r T Tf
        size=$(stat -c %s "Tf/$file")
        flip_byte "Tf/$file" $(( (i * 7919 + ${#file} * 104729) % size )) $((1 << (i % 8)))
        set +e
        "$ED_BIN" run "$cfg" --set checkpoint.dir=sf "${small[@]}" --set distill.teacher=Tf > sf.log 2>&1
        rc=$?
        set -e
        rm -rf sf
        [ $rc -eq 2 ] || { tail -3 sf.log; fail "a flip in the teacher's $file: exit $rc, expected 2"; }
    done
done
echo "ok   6 random flips of the teacher's run.h5 and a member: every students run refused"
echo "foreign_files: all passed"
