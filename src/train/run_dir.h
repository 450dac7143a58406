/* Run directories: log.jsonl, config.json and checkpoints/ of one run. A
 * directory that holds a run is never written over silently: a new run
 * there needs --overwrite, and --resume continues the run in its own
 * directory, its log keeping each step once. */
#ifndef LWS_TRAIN_RUN_DIR_H
#define LWS_TRAIN_RUN_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "lws/config.h"
#include "lws/status.h"

/* Whether dir holds a run (a log, a config or checkpoints). */
int lws_run_dir_in_use(const char *dir);
/* The run directory a checkpoint or run path belongs to, or "" when it is a
 * checkpoint outside any run (a copy). */
void lws_run_dir_of(const char *path, char *out, size_t n);
/* Removes a run's log, config, checkpoints and superseded branches (--overwrite). */
lws_status lws_run_dir_clear(const char *dir);
/* Keeps only the log lines of steps up to `step` (a resumed run replays the
 * steps after its checkpoint), atomically, and drops a torn last line (of a
 * run that was killed). moved_to: a directory to keep the dropped lines of
 * later steps in (its log.jsonl), or NULL. */
lws_status lws_run_dir_trim_log(const char *dir, uint64_t step, const char *moved_to);
/* The checkpoints of a run form a line: resuming from `step` when dir has
 * checkpoints of later steps is refused unless `branch`; with it, they move
 * to dir/superseded/after-step-NNNNNNNN[.k]/checkpoints/ (named in
 * *moved_to, "" when nothing moved), so the newest checkpoint and the
 * pruning of old ones follow the new line. */
lws_status lws_run_dir_branch(const char *dir, uint64_t step, int branch, char *moved_to, size_t n);
/* Writes the resolved config as dir/config.json when the run has none; when
 * it has another, writes dir/config.step-NNNNNNNN.json (the config the run
 * continued with after `step`) and names it in *written. */
lws_status lws_run_dir_write_config(const char *dir, const lws_config *cfg, uint64_t step,
                                    char *written, size_t n);

#endif
