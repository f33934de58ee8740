/* Clocks for timings (core): wall time from a monotonic clock and the CPU time of the whole
 * process, in seconds from an arbitrary origin (differences only). */
#ifndef ENSDISTILL_CLOCK_H
#define ENSDISTILL_CLOCK_H

/* CLOCK_MONOTONIC. */
double clock_now_seconds(void);
/* CLOCK_PROCESS_CPUTIME_ID: all threads of the process; on a busy machine it still measures
 * the work. */
double clock_cpu_seconds(void);

#endif
