/* Subcommands of the ensdistill executable. Each takes the arguments after its name and
 * returns the process exit status (0 success, 2 bad input). MPI is initialised by main. */
#ifndef ENSDISTILL_CLI_H
#define ENSDISTILL_CLI_H

int cmd_run(int argc, char **argv);     /* run CONFIG [--set k=v ...]: the whole experiment */
int cmd_eval(int argc, char **argv);    /* eval FILE.h5 --config CONFIG */
int cmd_inspect(int argc, char **argv); /* inspect RUN_DIR | FILE.h5 */
int cmd_datagen(int argc, char **argv); /* datagen CONFIG OUT.h5 */
int cmd_upgrade(int argc, char **argv); /* upgrade RUN_DIR | FILE.h5: format_version 1 -> 2 */
int cmd_bench(int argc, char **argv);   /* bench MODEL --batch B --threads T */
int cmd_config(int argc, char **argv);  /* config docs | config check CONFIG [--set ...] */

#endif
