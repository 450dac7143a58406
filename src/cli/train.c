/* lws train CONFIG: trains a model on a Vulkan device. The training itself
 * is lws_train (include/lws/train.h); this file owns the options, the
 * signal handlers and what is printed. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lws/config.h"
#include "lws/train.h"

static const char *usage =
    "lws train CONFIG [--device D] [--steps N] [--resume DIR [--branch]] [--out DIR] "
    "[--overwrite]\n"
    "                 [--data FILE] [--val FILE] [--profile] [--peak-tflops X] [--quiet]\n"
    "                 [--dry-run] [--parity-dump DIR] [--set PATH=VALUE]... [--print-config]";

static void help(void) {
    printf("usage: %s\n\n"
           "Trains the model CONFIG describes, on the first GPU (or --device). Under mpirun\n"
           "(mpirun -np N lws train CONFIG) each of the N ranks trains on its own GPU, the\n"
           "global batch being N x grad_accum micro-batches; rank 0 writes the run.\n"
           "SIGINT, SIGTERM, SIGHUP or SIGUSR1 save a checkpoint and stop.\n"
           "  --device D         device index or name substring (see `lws devices`); under\n"
           "                     mpirun \"D0,D1,...\" gives local rank i device Di (default:\n"
           "                     local rank i takes device i)\n"
           "  --steps N          train N steps instead of train.steps\n"
           "  --resume DIR       continue from a checkpoint, or from the newest checkpoint of\n"
           "                     a run directory (the run continues in its own directory)\n"
           "  --branch           resume from a checkpoint older than its run's newest: the\n"
           "                     later checkpoints and log lines move to RUN/superseded/\n"
           "  --out DIR          run directory (log.jsonl, config.json, checkpoints/) instead\n"
           "                     of train.out_dir\n"
           "  --overwrite        start afresh in a run directory that already holds a run\n"
           "                     (its log and checkpoints are deleted)\n"
           "  --data FILE        training token file instead of data.train\n"
           "  --val FILE         validation token file instead of data.val\n"
           "  --profile          print per-layer forward/backward times with each progress line\n"
           "  --peak-tflops X    MFU against X TFLOP/s instead of the measured matmul peak\n"
           "  --quiet            no progress lines (the JSONL log is still written)\n"
           "  --dry-run          print the schedule and the memory plan for the device, say\n"
           "                     whether it fits, allocate nothing; exit 0 if it fits, 1 if not\n"
           "  --parity-dump DIR  write the PyTorch parity files (random batch, weights,\n"
           "                     gradients, losses of --steps updates) into DIR and stop\n"
           "%s",
           usage, lws_cli_sets_help);
}

typedef struct train_args {
    const char *config, *device, *resume, *out, *parity_dump;
    double peak_tflops;
    int profile, quiet, overwrite, dry_run, branch;
    lws_cli_sets sets; /* --set, and --steps, --data, --val as overrides */
} train_args;

static int parse(int argc, char **argv, train_args *a) {
    memset(a, 0, sizeof *a);
    const lws_cli_option options[] = {
        {"--device", LWS_OPT_TEXT, &a->device},
        {"--resume", LWS_OPT_TEXT, &a->resume},
        {"--out", LWS_OPT_TEXT, &a->out},
        {"--parity-dump", LWS_OPT_TEXT, &a->parity_dump},
        {"--overwrite", LWS_OPT_FLAG, &a->overwrite},
        {"--branch", LWS_OPT_FLAG, &a->branch},
        {"--profile", LWS_OPT_FLAG, &a->profile},
        {"--quiet", LWS_OPT_FLAG, &a->quiet},
        {"--dry-run", LWS_OPT_FLAG, &a->dry_run},
        {"--peak-tflops", LWS_OPT_REAL, &a->peak_tflops, 0, INFINITY, LWS_LO_OPEN},
        {"--steps", LWS_OPT_SET, NULL, 1, 0x7FFFFFFF, .set = "train.steps"},
        {"--data", LWS_OPT_SET, NULL, .set = "data.train"},
        /* a file in place of a held-out split */
        {"--val", LWS_OPT_SET, NULL, .set = "data.val", .also = "data.val_tokens=null"},
    };
    lws_cli_command c = {usage,    help,       options, sizeof options / sizeof *options,
                         "CONFIG", &a->config, &a->sets};
    int rc = lws_cli_parse(&c, argc, argv);
    if (rc == 0 && a->branch && !a->resume)
        rc = lws_cli_usage(usage, "--branch is given without --resume: it says how to resume");
    return rc;
}

/* ---- progress lines ------------------------------------------------------ */

typedef struct printer {
    int quiet, profile;
    uint32_t log_every;
} printer;

static void format_duration(double s, char *out, size_t n) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(out, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, n, "%lds", t);
}

static void print_step(const lws_train_progress *p, const printer *pr) {
    if (p->step % (pr->log_every ? pr->log_every : 1) != 0 && p->step != p->steps) return;
    char eta[32], mfu[32];
    format_duration(p->eta_s, eta, sizeof eta);
    if (isfinite(p->mfu))
        snprintf(mfu, sizeof mfu, "%.1f%%", 100 * p->mfu);
    else
        snprintf(mfu, sizeof mfu, "n/a");
    printf("step %llu/%llu | loss %.4f | lr %.3e | grad norm %.3f | %.0f tok/s | MFU %s | ETA "
           "%s",
           (unsigned long long)p->step, (unsigned long long)p->steps, p->loss, p->lr, p->grad_norm,
           p->tokens_per_s, mfu, eta);
    if (p->loss_scaling)
        printf(" | loss scale %g%s", p->loss_scale,
               p->skipped ? " (gradients overflowed: update skipped, scale halved)" : "");
    printf("\n");
    if (pr->profile) {
        printf("  per-layer ms (fwd/bwd):");
        for (uint32_t i = 0; i < p->n_layers; i++)
            printf(" %u:%.2f/%.2f", i, p->layer_fwd_ms[i], p->layer_bwd_ms[i]);
        printf(" | head %.2f | optimizer %.2f\n", p->head_ms, p->optimizer_ms);
    }
}

static void on_progress(const lws_train_progress *p, void *user) {
    const printer *pr = user;
    switch (p->kind) {
    case LWS_PROGRESS_START:
        printf("run: %s\n", p->run_dir);
        printf("data: %llu training tokens", (unsigned long long)p->train_tokens);
        if (p->val_tokens)
            printf(", %llu validation tokens (%s)", (unsigned long long)p->val_tokens,
                   p->val_source ? p->val_source : "held out from the end of the training file");
        printf("\n");
        if (p->resumed_from)
            printf("resumed from %s at step %llu\n", p->resumed_from, (unsigned long long)p->step);
        if (p->resumed_from && p->resumed_ranks != p->ranks)
            printf("the checkpoint was written by %u rank%s, this run has %u: a step's global "
                   "batch is ranks x grad_accum x micro_batch sequences (scale grad_accum to "
                   "keep it)\n",
                   p->resumed_ranks, p->resumed_ranks == 1 ? "" : "s", p->ranks);
        if (p->superseded)
            printf("branched: the checkpoints and log lines after step %llu moved to %s\n",
                   (unsigned long long)p->step, p->superseded);
        break;
    case LWS_PROGRESS_STEP:
        if (!pr->quiet) print_step(p, pr);
        break;
    case LWS_PROGRESS_EVAL:
        if (pr->quiet) break;
        printf("validation at step %llu: loss %.4f | perplexity %.3f", (unsigned long long)p->step,
               p->val_loss, p->val_ppl);
        if (isfinite(p->val_bpb)) printf(" | %.4f bits per byte", p->val_bpb);
        printf(" (%llu tokens)\n", (unsigned long long)p->val_count);
        break;
    case LWS_PROGRESS_CHECKPOINT:
        if (!pr->quiet) printf("checkpoint: %s\n", p->checkpoint);
        break;
    }
    fflush(stdout);
}

/* ---- the command ------------------------------------------------------------ */

static lws_stop_flag stop_signal;

static void on_signal(int sig) {
    stop_signal = sig;
}

/* What the run is: the device, the model, the ranks and the memory plan
 * (a sharded optimizer's slice on rank 0). */
static void print_start(const lws_config *cfg, lws_context *ctx, int ranks) {
    const lws_train_config *tc = &cfg->train;
    uint32_t A = lws_train_accum(tc);
    const lws_device_caps *caps = lws_context_caps(ctx);
    printf("device: %s (%s, %s)\n", caps->name, caps->vendor, caps->driver_name);
    printf("model: %s, %llu parameters, %u layers, micro-batch %u x %u tokens, %u accumulation "
           "step%s\n",
           cfg->name, (unsigned long long)lws_config_params(cfg), cfg->model.n_layers,
           tc->micro_batch, tc->seq_len, A, A == 1 ? "" : "s");
    if (ranks > 1)
        printf("ranks: %d (%s), global batch %d x %u x %u = %llu sequences per step%s\n", ranks,
               lws_dist_library(), ranks, A, tc->micro_batch,
               (unsigned long long)ranks * A * tc->micro_batch,
               tc->shard_optimizer ? "; optimizer state sharded (ZeRO-1)" : "");
    lws_memory_plan plan;
    lws_model_shard shard = {0, (uint32_t)ranks};
    int sharded = ranks > 1 && tc->shard_optimizer;
    if (lws_model_plan_shard(ctx, cfg, tc->micro_batch, tc->seq_len, sharded ? &shard : NULL,
                             &plan) == LWS_OK)
        lws_memory_plan_print(&plan, stdout);
    fflush(stdout);
}

/* The MFU reference: the datasheet figure given, or lws's matmul peak
 * (cached per device and driver); 0 when unknown. */
static lws_status peak_tflops(const train_args *a, double *peak) {
    *peak = a->peak_tflops;
    if (*peak > 0) return LWS_OK;
    lws_status s = lws_cli_peak(a->device, peak);
    if (!(*peak > 0)) *peak = 0;
    return s;
}

static int train(const train_args *a, const lws_config *cfg, lws_dist *d) {
    lws_context *ctx = NULL;
    lws_context_options copt = {.device = a->device, .validation = -1, .pipeline_cache = -1};
    int ranks = lws_dist_size(d);
    if (a->parity_dump && ranks > 1) {
        fprintf(stderr, "lws: --parity-dump runs on one rank, not under mpirun -np %d\n", ranks);
        return 2;
    }
    if (a->parity_dump) {
        lws_status s = lws_context_create(&copt, &ctx);
        if (s == LWS_OK) s = lws_train_parity_dump(ctx, cfg, a->parity_dump, cfg->train.steps);
        lws_context_destroy(ctx);
        return s == LWS_OK ? 0 : lws_cli_error();
    }
    /* only rank 0 reports MFU: its peak, times the ranks (alike GPUs) */
    double peak = 0;
    if ((lws_dist_rank(d) == 0 && peak_tflops(a, &peak) != LWS_OK) ||
        lws_context_create(&copt, &ctx) != LWS_OK)
        return lws_cli_dist_fail(d, 1);
    print_start(cfg, ctx, ranks);

    stop_signal = 0;
    struct sigaction sa = {0}, old[4];
    sa.sa_handler = on_signal;
    /* SIGUSR1 too: mpirun passes it on to every rank (its SIGINT and SIGTERM
     * reach them as SIGTERM, then SIGKILL; see README) */
    const int signals[4] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
    for (int i = 0; i < 4; i++) sigaction(signals[i], &sa, &old[i]);
    printer pr = {a->quiet, a->profile, cfg->train.log_every};
    lws_train_options opt = {.resume = a->resume,
                             .run_dir = a->out,
                             .overwrite = a->overwrite,
                             .branch = a->branch,
                             .peak_tflops = peak * ranks,
                             .stop = &stop_signal,
                             .progress = on_progress,
                             .user = &pr,
                             .dist = d};
    lws_train_result r;
    lws_status s = lws_train(ctx, cfg, &opt, &r);
    for (int i = 0; i < 4; i++) sigaction(signals[i], &old[i], NULL);
    if (s != LWS_OK && ranks > 1 && !r.all_ranks) /* the others wait for this rank */
        lws_cli_dist_fail(d, s == LWS_ERR_INTERRUPTED ? 130 : 1);
    if (s == LWS_OK && !a->quiet)
        printf("done: %llu steps, %llu tokens, %.1f s; peak device memory %.1f MiB\n",
               (unsigned long long)r.step, (unsigned long long)r.tokens, r.elapsed_s,
               r.peak_memory / 1048576.0);
    lws_context_destroy(ctx);
    /* a failure every rank reached together: rank 0 says it */
    if (s == LWS_ERR_INTERRUPTED) {
        if (lws_dist_rank(d) == 0) fprintf(stderr, "lws: %s\n", lws_error_message());
        return 130;
    }
    if (s != LWS_OK && lws_dist_rank(d) != 0) return 1;
    return s == LWS_OK ? 0 : lws_cli_error();
}

int lws_cli_train(int argc, char **argv) {
    train_args a;
    int rc = parse(argc, argv, &a);
    if (rc) return LWS_CLI_PARSE_EXIT(rc);
    lws_config *cfg = lws_cli_config(a.config, &a.sets);
    if (!cfg) return 1;
    if (a.sets.print_config) {
        rc = lws_cli_print_config(cfg);
    } else if (a.dry_run) {
        rc = lws_cli_dry_run(cfg, a.device, cfg->train.micro_batch, cfg->train.seq_len);
    } else {
        lws_dist *d = lws_cli_dist_start();
        char device[256];
        if (!d) {
            rc = 1;
        } else if (lws_cli_rank_device(d, a.device, device, sizeof device) != LWS_OK) {
            rc = lws_cli_dist_fail(d, 1);
        } else {
            a.device = device[0] ? device : NULL;
            rc = train(&a, cfg, d);
        }
        lws_dist_finish(d);
    }
    free(cfg);
    return rc;
}
