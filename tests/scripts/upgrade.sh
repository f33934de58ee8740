# `ensdistill upgrade RUN_DIR | FILE` (issue 20, point 10): a run made before the whole-file seal
# (format_version 1; the fixture tests/fixtures/format1-run.tar.gz was written by the real
# format-1 writer, see tests/fixtures/README.md) is refused as it is; upgrade verifies every
# dataset's Fletcher32 first and refuses a damaged file, leaving it byte for byte as it was;
# the upgraded files are sealed, hold the same data (h5py), and a second upgrade changes
# nothing; the run then inspects, evaluates, resumes (a deleted student is trained again, the
# members skipped) and serves as a teacher.
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
small=(--set ensemble.members=2 --set distill.students=[kd] --set model.hidden=4
       --set data.train_limit=64 --set data.test_limit=32 --set train.epochs=2 --set train.batch_size=16)
mkdir old && tar xzf "$ED_SOURCE_DIR/tests/fixtures/format1-run.tar.gz" -C old
set +e
"$ED_BIN" inspect old > o.txt 2> e.txt; rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "run.h5: it has no whole-file checksum: format_version 1, written before the seal (\`ensdistill upgrade RUN_DIR\` converts it)" o.txt \
    || fail "inspect of a format-1 run: exit $rc: $(cat o.txt e.txt)"

# a damaged format-1 file: refused by its Fletcher32 before anything is written, left as it was
cp -r old bad
"$ED_PYTHON" - bad/models/member-001.h5 <<'PY'
import sys, h5py
p = sys.argv[1]
with h5py.File(p, "r") as f:
    at = f["params/fc1.weight"].id.get_chunk_info(0).byte_offset + 100
b = bytearray(open(p, "rb").read()); b[at] ^= 0x10; open(p, "wb").write(b)
PY
cp bad/models/member-001.h5 damaged.h5
set +e
"$ED_BIN" upgrade bad > bad.txt 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || { cat bad.txt; fail "upgrade of a damaged file: exit $rc, expected 2"; }
grep -qF "bad/models/member-001.h5: NOT upgraded, left as it is: dataset /params/fc1.weight does not read back" bad.txt \
    || { cat bad.txt; fail "the damaged file is not named"; }
cmp -s damaged.h5 bad/models/member-001.h5 || fail "the damaged file was changed"
grep -qF "bad/models/member-000.h5: upgraded to format_version 2" bad.txt || { cat bad.txt; fail "member-000 not upgraded"; }
! ls bad/models/*.tmp bad/*.tmp* > /dev/null 2>&1 || fail "a temporary file was left"
echo "ok   a damaged format-1 file is refused by its Fletcher32, named and left byte for byte"

# the whole run
cp -r old run
"$ED_BIN" upgrade run > up.txt 2>&1 || { cat up.txt; fail "upgrade"; }
cat up.txt
[ "$(grep -c ': upgraded to format_version 2' up.txt)" -eq 4 ] || fail "not 4 files upgraded"
"$ED_PYTHON" - old run <<'PY' || fail "the upgraded files differ from the old ones (above)"
import sys, h5py, numpy as np
old, new = sys.argv[1], sys.argv[2]
for name in ("models/member-000.h5", "models/member-001.h5", "models/kd-000.h5", "run.h5"):
    assert open(f"{new}/{name}", "rb").read(16) == b"ensdistill-crc32", name
    with h5py.File(f"{old}/{name}", "r") as a, h5py.File(f"{new}/{name}", "r") as b:
        assert a.attrs["format_version"] == 1 and b.attrs["format_version"] == 2, name
        def equal(x, y):  # bitwise for numbers (NaN included), by value for strings
            x, y = np.asarray(x), np.asarray(y)
            return x.tobytes() == y.tobytes() if x.dtype.kind in "fiuV" else np.array_equal(x, y)
        for k in a.attrs:
            if k != "format_version":
                assert equal(a.attrs[k], b.attrs[k]), (name, k)
        def same(path, obj):
            if isinstance(obj, h5py.Dataset):
                assert equal(obj[()], b[path][()]), (name, path)
                assert obj.fletcher32 == b[path].fletcher32 and obj.chunks == b[path].chunks, (name, path)
        a.visititems(same)
print("ok   upgraded: sealed, format_version 2, every attribute and dataset as before")
PY
"$ED_BIN" upgrade run/models/kd-000.h5 > again.txt 2>&1 || { cat again.txt; fail "upgrade of a sealed file"; }
grep -qF "already sealed (format_version 2): unchanged" again.txt || fail "second upgrade: $(cat again.txt)"
"$ED_BIN" inspect run > insp.txt 2>&1 || { cat insp.txt; fail "inspect after upgrade"; }
"$ED_BIN" eval run/models/member-000.h5 > eval.txt 2>&1 || { cat eval.txt; fail "eval after upgrade"; }
rm run/models/kd-000.h5
"$ED_BIN" run "$cfg" --set checkpoint.dir=run "${small[@]}" > resume.log 2>&1 || { cat resume.log; fail "resume after upgrade"; }
[ "$(grep -c 'complete: skipped' resume.log)" -eq 2 ] && grep -qE "^kd-000 +epoch +2/2" resume.log \
    || { cat resume.log; fail "the resume did not skip the members and train kd-000"; }
"$ED_BIN" run "$cfg" --set checkpoint.dir=students "${small[@]}" --set distill.teacher=run \
    > teacher.log 2>&1 || { cat teacher.log; fail "the upgraded run as a teacher"; }
grep -q "bitwise the teacher" teacher.log || { cat teacher.log; fail "teacher not verified"; }
echo "ok   the upgraded run inspects, evaluates, resumes and serves as a teacher"
echo "upgrade: all passed"
