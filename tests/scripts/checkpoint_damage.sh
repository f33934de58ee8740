# No damaged byte of a checkpoint or of run.h5 is ever read as valid data: every file the
# program writes carries a whole-file CRC32 (a 512-byte user block that HDF5 and h5py skip),
# checked before HDF5 parses anything. A flipped bit in a v1 B-tree chunk index used to make
# /params/fc1.weight read back as zeros, accepted by eval, inspect and resume; a flipped string
# length in the global heap crashed the readers. Here: h5py still reads the files (through
# run.h5's external links too); the B-tree flip is refused by eval, inspect and resume naming
# the file; tests/tools/bitflip finds no single-bit flip that any reader accepts (a short
# random sweep: analysis in the README for the full one); run.h5's teacher is covered too, and
# so are run.h5 and the distill.teacher readers in the sweep. Every path checks the seal before
# HDF5 parses a byte; a file that is not HDF5 at all is named so, not "truncated".
source "$(dirname "$0")/lib.sh"
need_h5py
scratch
cd "$ED_TMP"
cfg=$ED_SOURCE_DIR/tests/configs/tiny.yaml
small=(--set ensemble.members=2 --set distill.students=[kd] --set model.hidden=4
       --set data.train_limit=64 --set data.test_limit=32 --set train.epochs=2 --set train.batch_size=16)
"$ED_BIN" run "$cfg" --set checkpoint.dir=run "${small[@]}" > run.log 2>&1 || { cat run.log; fail "run"; }
"$ED_PYTHON" - <<'PY' || fail "h5py does not read the sealed files"
import h5py, numpy as np
with h5py.File("run/run.h5", "r") as f:
    assert f.userblock_size == 512, f.userblock_size
    w = f["models/member-000/params/fc1.weight"][()]
    assert w.shape == (4, 784) and np.isfinite(w).all() and np.abs(w).sum() > 0
    assert f["teacher/train_logits"].shape == (64, 10)
print("ok   h5py reads the sealed checkpoint and run.h5 (user block 512)")
PY

# flip one bit of the first chunk index (v1 B-tree, 'TREE') of the file
cp run/models/member-000.h5 good.h5
"$ED_PYTHON" - run/models/member-000.h5 <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
at = b.index(b"TREE") + 24   # the first key / child address of the node
b[at] ^= 0x04
open(p, "wb").write(b)
PY
set +e
"$ED_BIN" eval run/models/member-000.h5 > out.txt 2> err.txt; rc_eval=$?
"$ED_BIN" inspect run > out2.txt 2> err2.txt; rc_inspect=$?
"$ED_BIN" run "$cfg" --set checkpoint.dir=run "${small[@]}" > out3.txt 2> err3.txt; rc_resume=$?
set -e
[ $rc_eval -eq 2 ] && grep -qF "whole-file CRC32 does not match" err.txt \
    || fail "eval of a flipped chunk index: exit $rc_eval: $(cat err.txt)"
[ $rc_inspect -eq 2 ] && grep -qE "member-000 .*FAILED: damaged: its whole-file CRC32" out2.txt \
    || fail "inspect of a flipped chunk index: exit $rc_inspect: $(cat out2.txt)"
[ $rc_resume -eq 2 ] && grep -qF "member-000.h5 is damaged: damaged: its whole-file CRC32" err3.txt \
    || fail "resume over a flipped chunk index: exit $rc_resume: $(cat err3.txt)"
cp good.h5 run/models/member-000.h5
echo "ok   a flipped chunk-index bit is refused by eval, inspect and resume, naming the file"

# run.h5's teacher: a flipped byte anywhere is refused
cp run/run.h5 good_run.h5
"$ED_PYTHON" -c "
b = bytearray(open('run/run.h5', 'rb').read()); b[len(b) // 2] ^= 0x10; open('run/run.h5', 'wb').write(b)"
set +e
"$ED_BIN" inspect run/run.h5 > out.txt 2> err.txt; rc=$?
set -e
[ $rc -eq 2 ] && grep -qF "run.h5: damaged: its whole-file CRC32 does not match" err.txt || fail "inspect of a damaged run.h5: exit $rc: $(cat err.txt)"
cp good_run.h5 run/run.h5
echo "ok   a damaged run.h5 is refused"

# the fall-back to NAME.prev.h5, both ways: the main file missing, or damaged
m=run/models/member-001
mv $m.h5 $m.prev.h5
"$ED_BIN" run "$cfg" --set checkpoint.dir=run "${small[@]}" > fb1.log 2>&1 || { cat fb1.log; fail "resume with only $m.prev.h5"; }
grep -q "resuming from the previous checkpoint .*which now takes its name" fb1.log || { cat fb1.log; fail "no fall-back warning"; }
[ -e $m.h5 ] && [ ! -e $m.prev.h5 ] || fail "after the fall-back $m.h5 is not the model of record"
cp $m.h5 $m.prev.h5
cp $m.h5 good1.h5
"$ED_PYTHON" -c "
b = bytearray(open('$m.h5', 'rb').read()); b[5000] ^= 1; open('$m.h5', 'wb').write(b)"
"$ED_BIN" run "$cfg" --set checkpoint.dir=run "${small[@]}" > fb2.log 2>&1 || { cat fb2.log; fail "resume with a damaged $m.h5"; }
cmp -s $m.h5 good1.h5 || fail "the damaged $m.h5 is still the model of record"
[ -e $m.h5.damaged ] || fail "the damaged file was not kept aside"
"$ED_BIN" inspect run > insp.txt 2>&1 || { cat insp.txt; fail "inspect after the fall-backs"; }
echo "ok   fall-back to NAME.prev.h5 with the main file missing or damaged: the good file takes its name"

# The seal before HDF5 on every path (issue 20, point 2): the length of the global-heap string
# of `format` flipped (it crashed `inspect FILE` and `inspect RUN_DIR` inside HDF5, SIGSEGV)
at=$("$ED_PYTHON" -c 'import sys; print(open(sys.argv[1], "rb").read().index(b"ensdistill-model"))' good.h5)
cp good.h5 heap.h5
flip_byte heap.h5 $((at - 6)) 0x40
cp -r run run_heap
at=$("$ED_PYTHON" -c 'import sys; print(open(sys.argv[1], "rb").read().index(b"ensdistill-run"))' run/run.h5)
flip_byte run_heap/run.h5 $((at - 6)) 0x40
set +e
"$ED_BIN" inspect heap.h5 > out.txt 2> err.txt; rc_file=$?
"$ED_BIN" inspect run_heap > out2.txt 2> err2.txt; rc_dir=$?
"$ED_BIN" eval heap.h5 > out3.txt 2> err3.txt; rc_eval=$?
set -e
[ $rc_file -eq 2 ] && grep -qF "heap.h5: damaged: its whole-file CRC32 does not match" err.txt \
    || fail "inspect FILE of a flipped heap length: exit $rc_file (139: SIGSEGV): $(cat err.txt)"
[ $rc_dir -eq 2 ] && grep -qF "run.h5: damaged: its whole-file CRC32 does not match" out2.txt \
    || fail "inspect RUN_DIR with a flipped heap length in run.h5: exit $rc_dir: $(cat out2.txt err2.txt)"
[ $rc_eval -eq 2 ] || fail "eval of a flipped heap length: exit $rc_eval"
echo "ok   a flipped heap length: inspect FILE, inspect RUN_DIR and eval refuse it, no crash"
# one rule in one place: only data files and upgrade open an HDF5 file without its seal
callers=$(grep -rln "h5u_open_read\|h5_verify_unsealed" "$ED_SOURCE_DIR/src" | sed "s#$ED_SOURCE_DIR/##" | sort | tr '\n' ' ')
[ "$callers" = "src/cli/commands/upgrade.c src/core/h5file.c src/data/h5data.c " ] \
    || fail "files that open HDF5 without the seal: $callers (only data files and upgrade may)"

# A file that is not HDF5 at all is not "truncated" (issue 20, point 11)
printf 'not an h5 file..' > text16.h5
head -c 300 good.h5 > cut.h5
set +e
"$ED_BIN" eval "$cfg" > /dev/null 2> e1.txt; rc1=$?
"$ED_BIN" inspect text16.h5 > /dev/null 2> e2.txt; rc2=$?
"$ED_BIN" inspect cut.h5 > /dev/null 2> e3.txt; rc3=$?
set -e
want="not an ensdistill checkpoint or run file (no HDF5 signature)"
[ $rc1 -eq 2 ] && grep -qF "tiny.yaml: $want" e1.txt || fail "eval of a YAML file: exit $rc1: $(cat e1.txt)"
[ $rc2 -eq 2 ] && grep -qF "text16.h5: $want" e2.txt || fail "inspect of a text file: exit $rc2: $(cat e2.txt)"
[ $rc3 -eq 2 ] && grep -qF "cut.h5: truncated (300 bytes)" e3.txt || fail "inspect of a cut file: exit $rc3: $(cat e3.txt)"
echo "ok   a YAML or text file is 'not an ensdistill checkpoint or run file (no HDF5 signature)';"
echo "     only an ensdistill file that lost bytes is 'truncated'"

"$ED_BUILD_DIR/tests/bitflip" run/models/member-000.h5 --random ${ED_BITFLIP_FLIPS:-150} --seed 3 \
    > sweep.txt || { cat sweep.txt; fail "a single-bit flip was read as valid data or crashed a reader"; }
cat sweep.txt
"$ED_BUILD_DIR/tests/bitflip" run/models/kd-000.h5 --random 50 --seed 4 > sweep2.txt \
    || { cat sweep2.txt; fail "kd-000: a flip was read as valid data"; }
# run.h5 and the teacher path (runfile_read_teacher_run; ckpt_read_other_run above)
"$ED_BUILD_DIR/tests/bitflip" run/run.h5 --random 60 --seed 5 > sweep3.txt \
    || { cat sweep3.txt; fail "run.h5: a flip was read as valid data or crashed a reader"; }
cat sweep3.txt
echo "checkpoint_damage: all passed"
