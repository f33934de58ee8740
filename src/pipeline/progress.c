/* What the user sees: only world rank 0 prints. Group leaders send each finished epoch to
 * rank 0 as a small message; rank 0 polls between its own steps, prints one line per
 * model-epoch and appends it to RUN_DIR/metrics.jsonl. A progress bar is drawn only when
 * stdout is a terminal. mpirun gives its ranks a pseudo-terminal even when its own output goes
 * to a file, so under a launcher the bar is off unless ENSDISTILL_PROGRESS=1 asks for it
 * (ENSDISTILL_PROGRESS=0 turns it off everywhere). */
#include "ensdistill/error.h"
#include "ensdistill/job.h"
#include "ensdistill/progress.h"
#include "ensdistill/runfile.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_EPOCH = 101, TAG_PHASE_END = 102 };

static int bar_shown = 0;

static void clear_bar(void) {
    if (bar_shown) {
        printf("\r%*s\r", 79, "");
        bar_shown = 0;
    }
}

void progress_say(const RunContext *ctx, const char *fmt, ...) {
    if (ctx->lo->world_rank != 0) return;
    clear_bar();
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void format_duration(char *buf, size_t size, double s) {
    if (s < 0) s = 0;
    if (s < 60)
        snprintf(buf, size, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

static void print_report(const RunContext *ctx, const EpochReport *r) {
    char left[32], test[32], sum[32] = "";
    if (r->epoch == 0) {
        progress_say(ctx, "%-11s %s\n", r->name, r->note);
        return;
    }
    format_duration(left, sizeof(left), r->eta_seconds);
    if (r->test_acc == r->test_acc)
        snprintf(test, sizeof(test), "%6.2f%%", 100 * r->test_acc);
    else
        snprintf(test, sizeof(test), "%7s", "-");
    if (r->grad_sum_share > 0) /* the time a rank spent in the gradient sum, waits included */
        snprintf(sum, sizeof(sum), "  sum %.0f%%", 100 * r->grad_sum_share);
    progress_say(
        ctx,
        "%-11s epoch %4d/%-4d loss %.4f  acc %6.2f%%  test %s  lr %.4g  %7.0f img/s  left %s%s\n",
        r->name, r->epoch, r->epochs, r->loss, 100 * r->acc, test, r->lr, r->images_per_s, left,
        sum);
    EpochRecord rec = {.epoch = r->epoch, .lr = r->lr, .train_loss = r->loss,
                       .train_acc = r->acc, .test_acc = r->test_acc, .seconds = r->seconds};
    runfile_append_metrics(ctx->run_dir, r->role, r->index, &rec);
}

void progress_report(const RunContext *ctx, const EpochReport *r) {
    if (ctx->lo->world_rank == 0)
        print_report(ctx, r);
    else
        MPI_CHECK(MPI_Send(r, (int)sizeof(*r), MPI_BYTE, 0, TAG_EPOCH, MPI_COMM_WORLD));
}

void progress_poll(const RunContext *ctx) {
    if (ctx->lo->world_rank != 0 || ctx->lo->world_size == 1) return;
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, TAG_EPOCH, MPI_COMM_WORLD, &flag, &st));
        if (!flag) return;
        EpochReport r;
        MPI_CHECK(MPI_Recv(&r, (int)sizeof(r), MPI_BYTE, st.MPI_SOURCE, TAG_EPOCH, MPI_COMM_WORLD,
                           MPI_STATUS_IGNORE));
        print_report(ctx, &r);
    }
}

void progress_phase_end(const RunContext *ctx) {
    const Layout *lo = ctx->lo;
    if (!lo->is_leader) return;
    if (lo->world_rank != 0) {
        MPI_CHECK(MPI_Send(NULL, 0, MPI_BYTE, 0, TAG_PHASE_END, MPI_COMM_WORLD));
        return;
    }
    /* A leader's epoch messages arrive before its phase-end message (MPI keeps the order of
     * messages between two ranks), so once every leader has ended, nothing is left. */
    int ended = 1;
    while (ended < lo->n_groups) {
        int flag = 0;
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, TAG_PHASE_END, MPI_COMM_WORLD, &flag, &st));
        progress_poll(ctx); /* epoch messages sent before that phase end */
        if (flag) {
            MPI_CHECK(MPI_Recv(NULL, 0, MPI_BYTE, st.MPI_SOURCE, TAG_PHASE_END, MPI_COMM_WORLD,
                               MPI_STATUS_IGNORE));
            ended++;
        } else {
            nanosleep(&(struct timespec){.tv_nsec = 2000000}, NULL);
        }
    }
}

void progress_step(const RunContext *ctx, const char *name, int epoch, int epochs, int step,
                   int steps) {
    static int tty = -1;
    if (ctx->lo->world_rank != 0) return;
    if (tty < 0) {
        const char *force = getenv("ENSDISTILL_PROGRESS");
        int launched = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("SLURM_PROCID");
        tty = force ? atoi(force) != 0 : isatty(STDOUT_FILENO) && !launched;
    }
    if (!tty || steps < 2) return;
    if (step % 8 != 0 && step != steps - 1) return;
    int width = 30, filled = (int)((double)(step + 1) / steps * width);
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    printf("\r%-11s epoch %d/%d [%s] %3d%%", name, epoch, epochs, bar,
           (int)(100.0 * (step + 1) / steps));
    fflush(stdout);
    bar_shown = 1;
}
