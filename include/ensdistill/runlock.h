/* The run directory's lock: one run at a time in a RUN_DIR. Rank 0 of `ensdistill run` takes it
 * before reading anything of RUN_DIR and holds it until the process ends.
 *   - RUN_DIR/run.lock, locked with flock(LOCK_EX | LOCK_NB) and never unlocked by hand: the
 *     kernel releases it when the process exits or dies (SIGKILL included), so no stale lock
 *     is ever left. The holder writes "host H pid P since T" into it; a second run refuses at
 *     once, naming them.
 *   - On NFS, Linux emulates flock with the server's byte-range locks (NLM for v3, the protocol
 *     itself for v4): one lock for every client, unless the mount says `nolock` or
 *     `local_lock=flock|all`, which makes it node-local. Lustre locks across nodes when mounted
 *     with `-o flock`, node-locally with `-o localflock`; with `noflock` the call fails. A
 *     node-local lock cannot be told apart from a real one; it still stops two runs on one node.
 *   - Where flock fails for want of support (ENOLCK, EOPNOTSUPP, ENOSYS, EINVAL), the lock is
 *     the file RUN_DIR/run.lock.excl created with O_EXCL (atomic on NFSv3+ and Lustre), holding
 *     the same line and removed at exit. A process killed with SIGKILL leaves it behind: one of
 *     this host whose PID is gone is taken over; one of another host is refused, saying to
 *     remove the file if that run is dead. */
#ifndef ENSDISTILL_RUNLOCK_H
#define ENSDISTILL_RUNLOCK_H

#include <stddef.h>

/* Takes the lock of run_dir (creating run_dir if needed). Returns 0 when held (for the rest of
 * the process; a second call returns 0), or -1 with the reason in err: another run holds it
 * (naming its host and PID and the lock file), or the file cannot be created. */
int runlock_acquire(const char *run_dir, char *err, size_t size);

#endif
