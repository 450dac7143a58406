// lws-test: plain
/* Config parsing: defaults, extends merging, strictness, and every error the
 * issue lists, each checked for the file, the JSON path, the value and what is
 * allowed. Fixtures are in tests/configs/ (the test runs from the repo root). */
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "lws/config.h"

/* JSON written with single quotes (readable in C), turned into real JSON. */
static const char *js(const char *text) {
    static char buf[4][8192];
    static int next;
    char *out = buf[next++ % 4];
    snprintf(out, sizeof buf[0], "%s", text);
    for (char *p = out; *p; p++)
        if (*p == '\'') *p = '"';
    return out;
}

static lws_config cfg; /* big: keep it off the stack */

/* A small config with one section replaced: prefix keys go first in the
 * object, so a test adds or overrides fields without repeating the rest. */
#define MODEL "'model': {'d_model': 64, 'n_layers': 6, 'head_dim': 16, 'vocab_size': 256"
#define LWS   "'lws': {'ffn_divisor': 16, 'gqa': {'group_size': 2}"

/* Expects parse failure LWS_ERR_CONFIG whose message holds every needle. */
static void expect_error(const char *what, lws_status s, ...) {
    const char *msg = lws_error_message();
    CHECK(s == LWS_ERR_CONFIG || s == LWS_ERR_IO, "%s: expected an error, got %s", what,
          lws_status_name(s));
    va_list ap;
    va_start(ap, s);
    for (const char *needle; (needle = va_arg(ap, const char *));)
        CHECK(strstr(msg, needle) != NULL, "%s: message lacks '%s':\n  %s", what, needle, msg);
    va_end(ap);
}

#define PARSE_ERROR(what, text, ...)                                                               \
    expect_error(what, lws_config_parse(js(text), "tests/inline.json", &cfg), __VA_ARGS__, NULL)
#define LOAD_ERROR(what, path, ...)                                                                \
    expect_error(what, lws_config_load(path, &cfg), __VA_ARGS__, NULL)

static void defaults(void) {
    CHECK_OK(lws_config_parse(js("{" MODEL "}, " LWS ", 'variant': 'isotropic'}}"),
                              "some/dir/tiny-test.json", &cfg));
    CHECK(strcmp(cfg.name, "tiny-test") == 0, "name from the file: %s", cfg.name);
    CHECK(cfg.model.block == LWS_BLOCK_POST_NORM && !cfg.model.tied_embeddings,
          "default block post_norm, untied");
    CHECK(cfg.model.rope_theta == 500000 && cfg.model.norm_eps == 1e-6 && cfg.model.qk_norm &&
              cfg.model.init_std == 0.02,
          "model defaults");
    CHECK(cfg.lws.ffn_divisor == 16 && cfg.lws.gqa == LWS_GQA_GROUP_SIZE && cfg.lws.gqa_value == 2,
          "lws fields");
    CHECK(!cfg.has_train && !cfg.has_data && cfg.eval.every == 0 && cfg.eval.tokens == 0,
          "absent sections");
    CHECK(strcmp(cfg.train.out_dir, "runs/tiny-test") == 0, "out_dir default: %s",
          cfg.train.out_dir);

    CHECK_OK(lws_config_parse(js("{'name': 'named', " MODEL "}, " LWS ", 'variant': 'crown'}, "
                                 "'train': {'seq_len': 64, 'micro_batch': 4, 'steps': 100, "
                                 "'lr': 0.001}, 'data': {'train': 'x.tok'}}"),
                              "tests/inline.json", &cfg));
    const lws_train_config *t = &cfg.train;
    CHECK(strcmp(cfg.name, "named") == 0, "name given: %s", cfg.name);
    CHECK(cfg.has_train && t->seq_len == 64 && t->micro_batch == 4 && t->steps == 100 &&
              t->lr == 0.001,
          "train required fields");
    CHECK(t->grad_accum == 1 && t->min_lr_ratio == 0.1 && t->schedule == LWS_LR_COSINE &&
              t->warmup_steps == 0 && t->decay_fraction == 0.2 && t->beta1 == 0.9 &&
              t->beta2 == 0.95 && t->eps == 1e-8 && t->weight_decay == 0.01 &&
              !t->decay_embeddings && !t->decay_norms && t->grad_clip == 1.0 && t->z_loss == 0 &&
              t->seed == 42 && t->log_every == 1 && t->checkpoint_every == 0 &&
              t->keep_checkpoints == 3,
          "train defaults");
    CHECK(strcmp(t->out_dir, "runs/named") == 0 && strcmp(t->precision, "fp32") == 0,
          "out_dir %s precision %s", t->out_dir, t->precision);
    CHECK(cfg.has_data && strcmp(cfg.data.train, "x.tok") == 0 && cfg.data.val[0] == 0 &&
              strcmp(cfg.data.tokenizer, "bytes") == 0 && cfg.data.val_tokens == 0,
          "data defaults");
}

static void extends_and_merge(void) {
    /* Lists replace the base's variant (null removes it), gqa merges key by key. */
    CHECK_OK(lws_config_load("tests/configs/lists_child.json", &cfg));
    CHECK(strcmp(cfg.name, "explicit-lists") == 0, "name: %s", cfg.name);
    CHECK(cfg.lws.variant[0] == 0 && cfg.lws.n_ffn_points == 0 && cfg.lws.n_qkv_points == 0,
          "variant removed by null");
    CHECK(cfg.lws.gqa == LWS_GQA_KV_HEADS && cfg.lws.gqa_value == 2, "gqa replaced");
    const uint32_t ffn[] = {64, 128, 192, 256, 128, 64}, q[] = {2, 4, 4, 4, 4, 2};
    for (uint32_t i = 0; i < 6; i++)
        CHECK(cfg.layers[i].ffn_dim == ffn[i] && cfg.layers[i].q_heads == q[i] &&
                  cfg.layers[i].kv_heads == 2,
              "layer %u: %u %u %u", i, cfg.layers[i].ffn_dim, cfg.layers[i].q_heads,
              cfg.layers[i].kv_heads);
    CHECK(cfg.train.seq_len == 32 && cfg.train.schedule == LWS_LR_WSD &&
              cfg.train.decay_fraction == 0.3,
          "train merged from base and child");
    CHECK(strcmp(cfg.description, "A small valid base for the config tests.") == 0,
          "description inherited");

    /* The name is never inherited: small_base has none, the child gets its own. */
    CHECK_OK(lws_config_load("tests/configs/small_base.json", &cfg));
    CHECK(strcmp(cfg.name, "small_base") == 0, "name %s", cfg.name);

    /* A bad value in a base is reported against the base, not the child. */
    LOAD_ERROR("error in a base", "tests/configs/bad_child.json",
               "tests/configs/bad_base.json: ", "model.d_model", "\"64\"", "is a string",
               "integer");
    /* A missing key is reported against the file loaded. */
    LOAD_ERROR("missing after null", "tests/configs/missing_key.json",
               "tests/configs/missing_key.json", "model.head_dim", "required");
    LOAD_ERROR("missing base", "tests/configs/extends_missing.json",
               "tests/configs/extends_missing.json", "extends", "no_such_base.json", "cannot open");
    LOAD_ERROR("missing file", "tests/configs/does_not_exist.json",
               "tests/configs/does_not_exist.json", "cannot open");
    LOAD_ERROR("a directory", "tests/configs", "tests/configs: is a directory",
               "not a regular file");
    LOAD_ERROR("a device", "/dev/zero", "/dev/zero: is a character device");
}

static void malformed_json(void) {
    LOAD_ERROR("malformed file", "tests/configs/malformed.json", "tests/configs/malformed.json",
               "line 5, column 5", "malformed JSON", "d_model");
    PARSE_ERROR("malformed text", "{\n  'model': {'d_model': 64,,}\n}", "tests/inline.json",
                "line 2, column ");
    /* Columns are where cJSON stopped: at or just after the offending character. */
    PARSE_ERROR("trailing comma", "{'model': {'d_model': 64},\n}", "line 2, column ");
    PARSE_ERROR("comment", "{\n\n   // a comment\n}", "line 3, column ", "a comment");
    PARSE_ERROR("empty", "", "empty");
    PARSE_ERROR("not an object", "[1, 2]", "top level is an array");
    PARSE_ERROR("duplicate key", "{" MODEL ", 'd_model': 128}, " LWS ", 'variant': 'crown'}}",
                "model.d_model", "twice");
}

static void unknown_keys(void) {
    LOAD_ERROR("typo file", "tests/configs/typo.json", "tests/configs/typo.json", "lws.ffn_point",
               "unknown key", "did you mean \"ffn_points\"",
               "allowed keys in lws: variant, ffn_points");
    PARSE_ERROR("top level", "{'modle': {}}", "modle", "did you mean \"model\"", "the top level");
    PARSE_ERROR("model", "{" MODEL ", 'tied': true}, " LWS ", 'variant': 'crown'}}", "model.tied",
                "unknown key", "tied_embeddings");
    PARSE_ERROR("gqa", "{" MODEL "}, 'lws': {'variant': 'crown', 'gqa': {'group': 2}}}",
                "lws.gqa.group", "group_size");
    PARSE_ERROR("train", "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'train': {'warmup': 10}}",
                "train.warmup", "warmup_steps");
    PARSE_ERROR("eval", "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'eval': {'evry': 10}}",
                "eval.evry", "every");
    PARSE_ERROR("variant name", "{" MODEL "}, " LWS ", 'variant': 'crwn'}}", "lws.variant",
                "\"crwn\"", "\"crown\"", "\"isotropic\"");
}

static void wrong_types(void) {
    PARSE_ERROR("string for int", "{'model': {'d_model': '64'}}", "tests/inline.json",
                "model.d_model", "\"64\"", "is a string", "an integer from 1 to");
    PARSE_ERROR("fraction", "{'model': {'d_model': 64.5}}", "model.d_model", "64.5",
                "whole number");
    PARSE_ERROR("section type", "{'model': [64]}", "model", "[64]", "an array", "object");
    PARSE_ERROR("bool", "{" MODEL ", 'qk_norm': 1}, " LWS ", 'variant': 'crown'}}", "model.qk_norm",
                "1", "true or false");
    PARSE_ERROR("points type", "{" MODEL "}, " LWS ", 'ffn_points': 'crown'}}", "lws.ffn_points",
                "a string", "2 or 3 numbers");
    PARSE_ERROR("point type", "{" MODEL "}, " LWS ", 'ffn_points': [1, 'x']}}", "lws.ffn_points[1]",
                "\"x\"", "a string", "> 0");
    PARSE_ERROR("list type", "{" MODEL "}, " LWS ", 'variant': 'crown', 'ffn_dims': 64}}",
                "lws.ffn_dims", "64", "a number", "one positive integer per layer");
    PARSE_ERROR("block", "{" MODEL ", 'block': 'prenorm'}, " LWS ", 'variant': 'crown'}}",
                "model.block", "\"prenorm\"", "\"post_norm\", \"pre_norm\"");
    PARSE_ERROR("string", "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'data': {'train': 3}}",
                "data.train", "a number", "a string");
    PARSE_ERROR("gqa type", "{" MODEL "}, 'lws': {'variant': 'crown', 'gqa': 2}}", "lws.gqa",
                "a number", "object");
}

static void non_positive_sizes(void) {
    PARSE_ERROR("d_model 0", "{'model': {'d_model': 0}}", "model.d_model", "value 0",
                "an integer from 1 to");
    PARSE_ERROR("n_layers 0", "{'model': {'d_model': 64, 'n_layers': 0}}", "model.n_layers",
                "value 0", "from 1 to 256");
    PARSE_ERROR("n_layers 300", "{'model': {'d_model': 64, 'n_layers': 300}}", "model.n_layers",
                "300", "from 1 to 256");
    PARSE_ERROR("head_dim -16", "{'model': {'d_model': 64, 'n_layers': 6, 'head_dim': -16}}",
                "model.head_dim", "-16");
    PARSE_ERROR("vocab 0",
                "{'model': {'d_model': 64, 'n_layers': 6, 'head_dim': 16, "
                "'vocab_size': 0}}",
                "model.vocab_size", "value 0");
    PARSE_ERROR("ffn_dims 0",
                "{" MODEL "}, " LWS ", 'qkv_points': [1, 1], 'ffn_dims': [64, 64, 0, 64, 64, 64]}}",
                "lws.ffn_dims[2]", "value 0", "an integer from 1 to");
    PARSE_ERROR("q_heads 0",
                "{" MODEL "}, " LWS ", 'ffn_points': [4, 4], 'q_heads': [2, 2, 2, 2, 2, -2]}}",
                "lws.q_heads[5]", "-2");
    PARSE_ERROR("point 0", "{" MODEL "}, " LWS ", 'ffn_points': [0, 4], 'qkv_points': [1, 1]}}",
                "lws.ffn_points[0]", "value 0", "> 0");
    PARSE_ERROR("ffn_divisor 0",
                "{" MODEL "}, 'lws': {'variant': 'crown', 'ffn_divisor': 0, "
                "'gqa': {'group_size': 2}}}",
                "lws.ffn_divisor", "value 0");
    PARSE_ERROR("group 0", "{" MODEL "}, 'lws': {'variant': 'crown', 'gqa': {'group_size': 0}}}",
                "lws.gqa.group_size", "value 0");
    PARSE_ERROR("lr 0",
                "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'train': {'seq_len': 8, "
                "'micro_batch': 1, 'steps': 1, 'lr': 0}}",
                "train.lr", "value 0", "> 0");
    PARSE_ERROR("seq_len 0", "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'train': {'seq_len': 0}}",
                "train.seq_len", "value 0");
    PARSE_ERROR("rope_theta", "{" MODEL ", 'rope_theta': -1}, " LWS ", 'variant': 'crown'}}",
                "model.rope_theta", "-1", "> 1");
}

static void model_checks(void) {
    PARSE_ERROR("d_model multiple",
                "{'model': {'d_model': 72, 'n_layers': 6, 'head_dim': 16, 'vocab_size': 256}}",
                "tests/inline.json", "model.d_model", "72", "not a multiple of model.head_dim 16",
                "80");
    PARSE_ERROR("odd head_dim",
                "{'model': {'d_model': 60, 'n_layers': 6, 'head_dim': 15, 'vocab_size': 256}}",
                "model.head_dim", "15", "even");
    PARSE_ERROR("bytes vocab",
                "{'model': {'d_model': 64, 'n_layers': 6, 'head_dim': 16, "
                "'vocab_size': 100}, " LWS ", 'variant': 'crown'}, 'data': {'train': 'x'}}",
                "model.vocab_size", "100", "256", "bytes");
    PARSE_ERROR("missing model", "{" LWS ", 'variant': 'crown'}}", "model", "required");
    PARSE_ERROR("missing vocab", "{'model': {'d_model': 64, 'n_layers': 6, 'head_dim': 16}}",
                "model.vocab_size", "required");
}

static void profile_checks(void) {
    /* GQA: a group size that does not divide the query heads. */
    PARSE_ERROR("group divides",
                "{" MODEL "}, " LWS ", 'ffn_points': [4, 4], 'q_heads': [4, 3, 4, 4, 4, 4]}}",
                "lws.q_heads[1]", "value 3", "not a multiple of lws.gqa.group_size 2");
    PARSE_ERROR("kv_heads policy divides",
                "{" MODEL "}, 'lws': {'ffn_points': [4, 4], 'q_heads': [4, 4, 6, 4, 4, 4], "
                "'gqa': {'kv_heads': 4}}}",
                "lws.q_heads[2]", "value 6", "lws.gqa.kv_heads 4");
    PARSE_ERROR("kv list",
                "{" MODEL "}, " LWS ", 'ffn_points': [4, 4], "
                "'q_heads': [4, 4, 4, 4, 4, 4], 'kv_heads': [2, 2, 2, 1, 2, 2]}}",
                "lws.kv_heads[3]", "value 1", "gives 2 KV heads");
    PARSE_ERROR("kv without q",
                "{" MODEL "}, " LWS ", 'variant': 'crown', "
                "'kv_heads': [2, 2, 2, 2, 2, 2]}}",
                "lws.kv_heads", "lws.q_heads");
    PARSE_ERROR("gqa missing", "{" MODEL "}, 'lws': {'variant': 'crown'}}", "lws.gqa", "required",
                "group_size", "kv_heads");
    PARSE_ERROR("gqa both",
                "{" MODEL "}, 'lws': {'variant': 'crown', 'gqa': {'group_size': 2, "
                "'kv_heads': 2}}}",
                "lws.gqa", "exactly one", "both");

    /* Rounding a layer to zero: units are 2 heads x 16 = 32 query dims and
     * 16 FFN units, so alpha < 16/64 and beta < 8/64 round to nothing. */
    PARSE_ERROR("zero heads",
                "{" MODEL "}, " LWS ", 'ffn_points': [4, 4], "
                "'qkv_points': [0.1, 1]}}",
                "tests/inline.json", "lws.qkv_points", "layer 0", "alpha 0.1", "rounds to 0 heads",
                "at least 0.25");
    PARSE_ERROR("zero width",
                "{" MODEL "}, " LWS ", 'ffn_points': [4, 0.05], "
                "'qkv_points': [1, 1]}}",
                "lws.ffn_points", "layer 5", "beta 0.05", "rounds to width 0", "at least 0.125");
    PARSE_ERROR("zero frame", "{" MODEL "}, " LWS ", 'variant': 'framed', 'frame_ffn': 0.1}}",
                "lws.frame_ffn", "layer 0", "width 0");

    /* Control points: 2 or 3. */
    PARSE_ERROR("1 point", "{" MODEL "}, " LWS ", 'ffn_points': [4], 'qkv_points': [1, 1]}}",
                "lws.ffn_points", "1 control point given", "[4]", "use 2", "or 3");
    PARSE_ERROR("4 points",
                "{" MODEL "}, " LWS ", 'ffn_points': [4, 4], "
                "'qkv_points': [0.5, 1, 1, 0.5]}}",
                "lws.qkv_points", "4 control points", "use 2", "or 3");
    PARSE_ERROR("3 points, 2 layers",
                "{'model': {'d_model': 64, 'n_layers': 2, 'head_dim': 16, "
                "'vocab_size': 256}, " LWS ", 'variant': 'crown'}}",
                "lws.variant", "n_layers >= 3", "not 2");
    PARSE_ERROR("3 points, 1 layer",
                "{'model': {'d_model': 64, 'n_layers': 1, 'head_dim': 16, "
                "'vocab_size': 256}, " LWS ", 'ffn_points': [1, 2], 'qkv_points': [1, 2, 1]}}",
                "lws.qkv_points", "n_layers >= 3", "not 1");

    /* Per-layer lists of the wrong length. */
    PARSE_ERROR("list length",
                "{" MODEL "}, " LWS ", 'qkv_points': [1, 1], "
                "'ffn_dims': [64, 64, 64, 64, 64]}}",
                "lws.ffn_dims", "5 values given", "n_layers is 6");
    PARSE_ERROR("list length long",
                "{" MODEL "}, " LWS ", 'ffn_points': [1, 1], "
                "'q_heads': [2, 2, 2, 2, 2, 2, 2]}}",
                "lws.q_heads", "7 values given");

    /* One way per side, and frame rules. */
    PARSE_ERROR("points and list",
                "{" MODEL "}, " LWS ", 'ffn_points': [1, 4], "
                "'qkv_points': [1, 1], 'ffn_dims': [64, 64, 64, 64, 64, 64]}}",
                "lws.ffn_dims", "lws.ffn_points");
    PARSE_ERROR("no profile", "{" MODEL "}, " LWS "}}", "lws.ffn_points", "required",
                "lws.variant");
    PARSE_ERROR("frame on lists",
                "{" MODEL "}, " LWS ", 'frame': true, "
                "'ffn_dims': [64, 64, 64, 64, 64, 64], 'q_heads': [2, 2, 2, 2, 2, 2]}}",
                "lws.frame", "false");
    PARSE_ERROR("frame value unframed",
                "{" MODEL "}, " LWS ", 'variant': 'vanilla', "
                "'frame_ffn': 3}}",
                "lws.frame_ffn", "not framed");
}

static void match_checks(void) {
    PARSE_ERROR("match both",
                "{" MODEL "}, " LWS ", 'variant': 'crown', 'match_params': 300000, "
                "'match_config': 'x.json'}}",
                "lws.match_config", "lws.match_params");
    PARSE_ERROR("match lists",
                "{" MODEL "}, " LWS ", 'qkv_points': [1, 1], "
                "'ffn_dims': [64, 64, 64, 64, 64, 64], 'match_params': 300000}}",
                "lws.match_params", "ffn_dims");
    LOAD_ERROR("unreachable low", "tests/configs/unreachable.json",
               "tests/configs/unreachable.json", "lws.match_params", "1000", "unreachable",
               "narrowest");
    PARSE_ERROR("unreachable high",
                "{" MODEL "}, " LWS ", 'variant': 'crown', "
                "'match_params': 1000000000000}}",
                "lws.match_params", "1000000000000", "unreachable", "at most");
    /* Two layers with 1024-wide FFN steps: totals 64 + 3*64*1024 apart, so a
     * target in the middle of a step is out of reach within 0.5%. */
    PARSE_ERROR("unreachable gap",
                "{'model': {'d_model': 64, 'n_layers': 1, 'head_dim': 16, "
                "'vocab_size': 256}, 'lws': {'ffn_points': [4, 4], 'qkv_points': [1, 1], "
                "'ffn_divisor': 1024, 'gqa': {'group_size': 2}, 'match_params': 300000}}",
                "lws.match_params", "300000", "within 0.5%", "ffn_divisor");
    PARSE_ERROR("isotropic steps",
                "{'model': {'d_model': 768, 'n_layers': 18, 'head_dim': 64, "
                "'vocab_size': 50304}, 'lws': {'variant': 'isotropic', 'gqa': {'group_size': 3}, "
                "'match_params': 150000000}}",
                "lws.match_params", "within 0.5%", "148092672", "-1.27%");
    LOAD_ERROR("match cycle", "tests/configs/match_cycle_a.json", "lws.match_config", "cycle");
    PARSE_ERROR("match missing file",
                "{" MODEL "}, " LWS ", 'variant': 'crown', "
                "'match_config': 'no_such.json'}}",
                "lws.match_config", "tests/no_such.json", "cannot open");
}

static void extends_cycles(void) {
    LOAD_ERROR("cycle", "tests/configs/cycle_a.json", "tests/configs/cycle_b.json", "extends",
               "cycle", "cycle_a.json -> tests/configs/cycle_b.json -> tests/configs/cycle_a.json");
    LOAD_ERROR("self cycle", "tests/configs/cycle_self.json", "extends", "cycle");
    PARSE_ERROR("extends type", "{'extends': 3}", "extends", "a number", "path");
}

static void train_data_checks(void) {
    const char *head = "{" MODEL "}, " LWS ", 'variant': 'crown'}, ";
    char text[2048];
#define TRAIN(extra)                                                                               \
    (snprintf(text, sizeof text,                                                                   \
              "%s'train': {'seq_len': 8, 'micro_batch': 1, "                                       \
              "'steps': 100, 'lr': 0.001%s}}",                                                     \
              head, extra),                                                                        \
     text)
    PARSE_ERROR("precision", TRAIN(", 'precision': 'fp8'"), "train.precision", "\"fp8\"",
                "allowed: \"fp32\", \"bf16\", \"fp16\"");
    CHECK_OK(lws_config_parse(js(TRAIN(", 'precision': 'fp16'")), "tests/inline.json", &cfg));
    CHECK(strcmp(cfg.train.precision, "fp16") == 0 && cfg.train.loss_scale == 65536,
          "train.precision fp16 read as %s, loss scale %g", cfg.train.precision,
          cfg.train.loss_scale);
    PARSE_ERROR("loss scale not a power of two", TRAIN(", 'precision': 'fp16', 'loss_scale': 1000"),
                "train.loss_scale", "1000", "power of two");
    PARSE_ERROR("loss scale past 2^24", TRAIN(", 'precision': 'fp16', 'loss_scale': 33554432"),
                "train.loss_scale", "33554432");
    PARSE_ERROR("loss scale without fp16", TRAIN(", 'precision': 'bf16', 'loss_scale': 1024"),
                "train.loss_scale", "\"bf16\"");
    PARSE_ERROR("schedule", TRAIN(", 'schedule': 'linear'"), "train.schedule",
                "\"constant\", \"cosine\", \"wsd\"");
    PARSE_ERROR("warmup", TRAIN(", 'warmup_steps': 100"), "train.warmup_steps", "100",
                "train.steps 100");
    PARSE_ERROR("decay not wsd", TRAIN(", 'decay_fraction': 0.1"), "train.decay_fraction", "wsd",
                "cosine");
    PARSE_ERROR("wsd too long", TRAIN(", 'schedule': 'wsd', 'warmup_steps': 90"),
                "train.decay_fraction", "90 warmup steps");
    PARSE_ERROR("beta2", TRAIN(", 'beta2': 1"), "train.beta2", "value 1", "< 1");
    PARSE_ERROR("missing lr",
                "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'train': {'seq_len': 8, "
                "'micro_batch': 1, 'steps': 1}}",
                "train.lr", "required");
    PARSE_ERROR("missing data.train", "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'data': {}}",
                "data.train", "required");
    PARSE_ERROR("val and val_tokens",
                "{" MODEL "}, " LWS ", 'variant': 'crown'}, 'data': "
                "{'train': 'a', 'val': 'b', 'val_tokens': 10}}",
                "data.val_tokens", "data.val");
    PARSE_ERROR("name slash", "{'name': 'a/b', " MODEL "}, " LWS ", 'variant': 'crown'}}", "name",
                "'/'");
#undef TRAIN
}

/* The resolved JSON reads back to the same config. */
static void round_trip(void) {
    const char *files[] = {"configs/paper/isotropic-12l.json", "configs/paper/isotropic-18l.json",
                           "configs/paper/vanilla-18l.json",   "configs/paper/framed-18l.json",
                           "configs/paper/reverse-18l.json",   "configs/paper/crown-18l.json",
                           "configs/tiny/isotropic.json",      "configs/tiny/vanilla.json",
                           "configs/tiny/framed.json",         "configs/tiny/reverse.json",
                           "configs/tiny/crown.json",          "tests/configs/lists_child.json"};
    static lws_config back;
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        CHECK_OK(lws_config_load(files[k], &cfg));
        char *text = lws_config_to_json(&cfg);
        CHECK(text != NULL, "%s: to_json", files[k]);
        if (!text) continue;
        lws_status s = lws_config_parse(text, "resolved.json", &back);
        CHECK(s == LWS_OK, "%s: re-parse: %s", files[k], lws_error_message());
        free(text);
        if (s != LWS_OK) continue;
        CHECK(strcmp(back.name, cfg.name) == 0, "%s: name %s", files[k], back.name);
        CHECK(lws_config_params(&back) == lws_config_params(&cfg), "%s: params", files[k]);
        CHECK(back.lws.gqa == cfg.lws.gqa && back.lws.gqa_value == cfg.lws.gqa_value, "%s: gqa",
              files[k]);
        for (uint32_t i = 0; i < cfg.model.n_layers; i++)
            CHECK(back.layers[i].ffn_dim == cfg.layers[i].ffn_dim &&
                      back.layers[i].q_heads == cfg.layers[i].q_heads &&
                      back.layers[i].kv_heads == cfg.layers[i].kv_heads,
                  "%s: layer %u", files[k], i);
        CHECK(memcmp(&back.model, &cfg.model, sizeof cfg.model) == 0, "%s: model", files[k]);
        CHECK(memcmp(&back.train, &cfg.train, sizeof cfg.train) == 0, "%s: train", files[k]);
        CHECK(memcmp(&back.data, &cfg.data, sizeof cfg.data) == 0, "%s: data", files[k]);
        CHECK(memcmp(&back.eval, &cfg.eval, sizeof cfg.eval) == 0, "%s: eval", files[k]);
        CHECK(back.has_train == cfg.has_train && back.has_data == cfg.has_data, "%s: sections",
              files[k]);
    }
}

/* ---- --set overrides ---- */

#define SETS(...)   ((const char *const[]){__VA_ARGS__})
#define N_SETS(...) ((uint32_t)(sizeof SETS(__VA_ARGS__) / sizeof(const char *)))
#define LOAD_SET(path, out, ...)                                                                   \
    lws_config_load_with(path, SETS(__VA_ARGS__), N_SETS(__VA_ARGS__), out)
#define SET_ERROR(what, path, set, ...)                                                            \
    expect_error(what, lws_config_load_with(path, SETS(set), 1, &cfg), __VA_ARGS__, NULL)

static lws_config want; /* the same config written in a file */

/* Equal shapes; with multipliers also equal alpha and beta (a resolved
 * config's explicit lists keep the widths, not the multipliers). */
static void same_layers(const char *what, const lws_config *a, const lws_config *b,
                        int multipliers) {
    CHECK(a->model.n_layers == b->model.n_layers, "%s: %u vs %u layers", what, a->model.n_layers,
          b->model.n_layers);
    for (uint32_t i = 0; i < a->model.n_layers && i < b->model.n_layers; i++) {
        const lws_layer_shape *x = &a->layers[i], *y = &b->layers[i];
        CHECK(x->q_heads == y->q_heads && x->kv_heads == y->kv_heads && x->ffn_dim == y->ffn_dim &&
                  (!multipliers || (x->alpha == y->alpha && x->beta == y->beta)),
              "%s: layer %u: %u/%u/%u vs %u/%u/%u", what, i, x->q_heads, x->kv_heads, x->ffn_dim,
              y->q_heads, y->kv_heads, y->ffn_dim);
    }
}

static void same_profile(const char *what, const lws_profile *a, const lws_profile *b) {
    CHECK(strcmp(a->variant, b->variant) == 0 && a->n_ffn_points == b->n_ffn_points &&
              a->n_qkv_points == b->n_qkv_points && a->frame == b->frame &&
              a->frame_ffn == b->frame_ffn && a->frame_qkv == b->frame_qkv &&
              a->ffn_divisor == b->ffn_divisor && a->gqa == b->gqa &&
              a->gqa_value == b->gqa_value && a->match_target == b->match_target,
          "%s: profiles differ (variant %s vs %s)", what, a->variant, b->variant);
    for (uint32_t k = 0; k < a->n_ffn_points && k < LWS_MAX_POINTS; k++)
        CHECK(a->ffn_points[k] == b->ffn_points[k], "%s: ffn_points[%u]", what, k);
    for (uint32_t k = 0; k < a->n_qkv_points && k < LWS_MAX_POINTS; k++)
        CHECK(a->qkv_points[k] == b->qkv_points[k], "%s: qkv_points[%u]", what, k);
}

/* Each kind of value, checked against the same value written in a file. */
static void overrides_take_effect(void) {
    const char *small = "tests/configs/small_base.json";
    CHECK_OK(LOAD_SET(small, &cfg, "model.n_layers=8"));
    CHECK_OK(lws_config_parse(js("{" MODEL "}, " LWS ", 'variant': 'crown'}}"), "six.json", &want));
    CHECK(want.model.n_layers == 6 && cfg.model.n_layers == 8, "n_layers 8 over 6");
    CHECK_OK(lws_config_parse(js("{'model': {'d_model': 64, 'n_layers': 8, 'head_dim': 16, "
                                 "'vocab_size': 256}, " LWS ", 'variant': 'crown'}}"),
                              "eight.json", &want));
    same_layers("n_layers=8", &cfg, &want, 1);
    /* Crown is framed: the first and last layer are 4 d_model wide with every head. */
    CHECK(cfg.layers[0].ffn_dim == 256 && cfg.layers[7].ffn_dim == 256 &&
              cfg.layers[0].q_heads == 4 && cfg.layers[7].q_heads == 4 &&
              cfg.layers[3].ffn_dim == cfg.layers[4].ffn_dim && cfg.layers[1].ffn_dim < 256,
          "n_layers=8: framed ends, held peak");

    CHECK_OK(LOAD_SET(small, &cfg, "lws.variant=vanilla"));
    CHECK_OK(lws_config_parse(js("{" MODEL "}, " LWS ", 'variant': 'vanilla'}}"), "v.json", &want));
    CHECK(strcmp(cfg.lws.variant, "vanilla") == 0 && cfg.lws.n_ffn_points == 2 &&
              cfg.lws.ffn_points[0] == 1.0 && cfg.lws.ffn_points[1] == 4.0 && !cfg.lws.frame,
          "variant=vanilla: the preset");
    same_layers("variant=vanilla", &cfg, &want, 1);

    CHECK_OK(LOAD_SET(small, &cfg, "train.seed=7", "train.lr=3e-4", "model.tied_embeddings=true"));
    CHECK(cfg.train.seed == 7 && cfg.train.lr == 3e-4 && cfg.model.tied_embeddings,
          "seed %llu lr %g tied %d", (unsigned long long)cfg.train.seed, cfg.train.lr,
          cfg.model.tied_embeddings);
    CHECK(cfg.train.seq_len == 32 && cfg.train.steps == 10, "the rest of train kept");

    /* Strings are taken literally (or as one quoted JSON string); a new section is made. */
    CHECK_OK(LOAD_SET(small, &cfg, "data.train=runs/x.tok", "name=abc", "train.schedule=\"wsd\""));
    CHECK(cfg.has_data && strcmp(cfg.data.train, "runs/x.tok") == 0, "data.train %s",
          cfg.data.train);
    CHECK(strcmp(cfg.name, "abc") == 0 && strcmp(cfg.train.out_dir, "runs/abc") == 0,
          "name %s out_dir %s", cfg.name, cfg.train.out_dir);
    CHECK(cfg.train.schedule == LWS_LR_WSD, "quoted string");

    /* Lists, an object that replaces the base's, a key inside an object, null. */
    CHECK_OK(LOAD_SET(small, &cfg, "lws.ffn_points=[1, 2, 1]", "lws.q_heads=[2,4,4,4,4,2]"));
    CHECK_OK(lws_config_parse(js("{" MODEL "}, " LWS ", 'variant': 'crown', 'ffn_points': [1, 2, "
                                 "1], 'q_heads': [2, 4, 4, 4, 4, 2]}}"),
                              "lists.json", &want));
    CHECK(cfg.lws.n_ffn_points == 3 && cfg.lws.ffn_points[1] == 2 && cfg.lws.has_q_heads &&
              cfg.layers[1].q_heads == 4 && cfg.layers[0].q_heads == 2,
          "lists set");
    same_layers("lists", &cfg, &want, 1);
    CHECK_OK(LOAD_SET(small, &cfg, "lws.gqa={\"kv_heads\": 1}"));
    CHECK(cfg.lws.gqa == LWS_GQA_KV_HEADS && cfg.lws.gqa_value == 1,
          "an object value replaces the object");
    for (uint32_t i = 0; i < cfg.model.n_layers; i++)
        CHECK(cfg.layers[i].kv_heads == 1, "kv_heads policy: layer %u has %u", i,
              cfg.layers[i].kv_heads);
    CHECK_OK(LOAD_SET(small, &cfg, "lws.gqa.group_size=1"));
    CHECK(cfg.lws.gqa == LWS_GQA_GROUP_SIZE && cfg.lws.gqa_value == 1 &&
              cfg.layers[2].kv_heads == cfg.layers[2].q_heads,
          "nested key");
    CHECK_OK(LOAD_SET(small, &cfg, "train=null", "eval.every=null"));
    CHECK(!cfg.has_train && cfg.eval.every == 0, "null removes a section; removing an absent "
                                                 "key changes nothing");

    /* A budget target named on the command line is relative to the working directory. */
    CHECK_OK(
        LOAD_SET("configs/tiny/crown.json", &cfg, "lws.match_config=configs/tiny/vanilla.json"));
    CHECK_OK(lws_config_load("configs/tiny/vanilla.json", &want));
    CHECK(cfg.lws.match_target == lws_config_params(&want), "match_config from --set");
}

/* lws.variant over explicit points behaves as a child file that sets it. */
static void override_profile(void) {
    const char *iso = "configs/paper/isotropic-18l.json";
    CHECK_OK(LOAD_SET(iso, &cfg, "lws.variant=crown"));
    CHECK_OK(lws_config_load("tests/configs/variant_child.json", &want));
    same_profile("variant over points", &cfg.lws, &want.lws);
    same_layers("variant over points", &cfg, &want, 1);
    CHECK(cfg.lws.ffn_points[0] == 2.5 && !cfg.lws.frame, "the explicit points stay");

    /* Without the points the variant is the paper's crown. */
    CHECK_OK(LOAD_SET(iso, &cfg, "lws.variant=crown", "lws.ffn_points=null", "lws.qkv_points=null",
                      "lws.frame=null"));
    CHECK_OK(lws_config_load("configs/paper/crown-18l.json", &want));
    same_profile("crown by --set", &cfg.lws, &want.lws);
    same_layers("crown by --set", &cfg, &want, 1);
    CHECK(lws_config_params(&cfg) == 181906688, "crown by --set: %llu params",
          (unsigned long long)lws_config_params(&cfg));
}

static void override_errors(void) {
    const char *small = "tests/configs/small_base.json";
    SET_ERROR("unknown key", small, "train.lrr=1", "--set train.lrr: unknown key",
              "did you mean \"train.lr\"?", "allowed keys in train: seq_len");
    SET_ERROR("unknown section", small, "trian.lr=1", "--set trian.lr", "\"train.lr\"",
              "the top level: name, description, model");
    SET_ERROR("bare key", small, "n_layers=8", "--set n_layers", "\"model.n_layers\"");
    SET_ERROR("not an integer", small, "train.steps=ten",
              "--set train.steps=ten: expected an integer");
    SET_ERROR("not a number", small, "train.lr=fast", "--set train.lr=fast: expected a number");
    SET_ERROR("not a bool", small, "model.qk_norm=1",
              "--set model.qk_norm=1: expected true or false");
    SET_ERROR("not an array", small, "lws.ffn_points=[1, 2", "--set lws.ffn_points=[1, 2",
              "expected a JSON array");
    SET_ERROR("not an object", small, "lws.gqa=2", "--set lws.gqa=2: expected a JSON object");
    SET_ERROR("quoted for a number", small, "train.lr=\"1\"", "expected a number");
    /* Values of the right type go through the file's checks, named as --set. */
    SET_ERROR("out of range", small, "train.lr=-1",
              "--set: train.lr: value -1 is not allowed; expected a number > 0");
    SET_ERROR("too many layers", small, "model.n_layers=300", "--set: model.n_layers", "value 300",
              "from 1 to 256");
    SET_ERROR("not whole", small, "train.steps=1.5", "--set: train.steps", "not a whole number");
    SET_ERROR("variant name", small, "lws.variant=crwn", "--set: lws.variant", "\"crwn\"",
              "\"crown\"");
    SET_ERROR("element", small, "lws.ffn_points=[1, \"x\"]", "--set: lws.ffn_points[1]", "\"x\"");
    SET_ERROR("inside an object", small, "lws.gqa={\"grup_size\": 2}", "--set: lws.gqa.grup_size",
              "did you mean \"group_size\"");
    SET_ERROR("name", small, "name=a/b", "--set: name", "'/'");
    /* Usage. */
    SET_ERROR("no =", small, "train.lr", "--set train.lr: no '='", "PATH=VALUE");
    SET_ERROR("empty path", small, "=3", "--set =3: the path is empty", "PATH=VALUE");
    SET_ERROR("empty value", small, "train.lr=", "--set train.lr=: the value is empty", "null");
    CHECK(lws_config_load_with(small, NULL, 1, &cfg) == LWS_ERR_INVALID, "sets NULL, n 1");
    /* A file's problem is still the file's. */
    SET_ERROR("file error", "tests/configs/typo.json", "train.lr=1", "tests/configs/typo.json",
              "lws.ffn_point");
}

static void override_order_and_round_trip(void) {
    const char *small = "tests/configs/small_base.json";
    CHECK_OK(LOAD_SET(small, &cfg, "train.lr=1e-3", "train.lr=2e-3"));
    CHECK(cfg.train.lr == 2e-3, "later set wins: %g", cfg.train.lr);
    CHECK_OK(LOAD_SET(small, &cfg, "lws.gqa={\"kv_heads\": 2}", "lws.gqa.kv_heads=1"));
    CHECK(cfg.lws.gqa == LWS_GQA_KV_HEADS && cfg.lws.gqa_value == 1, "set inside a set object");
    CHECK_OK(LOAD_SET(small, &cfg, "lws.variant=null", "lws.variant=framed"));
    CHECK(strcmp(cfg.lws.variant, "framed") == 0, "removed, then set");

    /* The resolved JSON holds the overrides and reads back to the same config. */
    static lws_config back;
    CHECK_OK(LOAD_SET("configs/tiny/crown.json", &cfg, "lws.variant=vanilla", "model.n_layers=5",
                      "train.seed=9", "train.lr=2e-4"));
    char *text = lws_config_to_json(&cfg);
    CHECK(text != NULL, "to_json");
    if (!text) return;
    CHECK_OK(lws_config_parse(text, "resolved.json", &back));
    free(text);
    CHECK(back.model.n_layers == 5 && back.train.seed == 9 && back.train.lr == 2e-4,
          "round trip: %u layers, seed %llu, lr %g", back.model.n_layers,
          (unsigned long long)back.train.seed, back.train.lr);
    same_layers("round trip", &back, &cfg, 0);
    CHECK(lws_config_params(&back) == lws_config_params(&cfg), "round trip params");
    CHECK_OK(lws_config_load("configs/tiny/crown.json", &want));
    CHECK(want.model.n_layers == 6 && lws_config_params(&want) != lws_config_params(&back),
          "the overrides changed the model");
}

/* The tiny configs exercise every path the trainer must handle. */
static void tiny_configs(void) {
    const char *variants[] = {"isotropic", "vanilla", "framed", "reverse", "crown"};
    int kv_policy = 0, pre_norm_tied = 0;
    for (size_t k = 0; k < 5; k++) {
        char path[128];
        snprintf(path, sizeof path, "configs/tiny/%s.json", variants[k]);
        CHECK_OK(lws_config_load(path, &cfg));
        uint64_t p = lws_config_params(&cfg);
        CHECK(p >= 200000 && p <= 1000000, "%s: %llu params", path, (unsigned long long)p);
        CHECK(cfg.model.vocab_size == 256 && cfg.model.d_model >= 64 && cfg.model.d_model <= 128 &&
                  cfg.model.n_layers >= 4 && cfg.model.n_layers <= 6 &&
                  (cfg.model.head_dim == 16 || cfg.model.head_dim == 32),
              "%s: tiny sizes", path);
        CHECK(cfg.train.seq_len == 128 && cfg.has_data &&
                  strcmp(cfg.data.train, "data/bible/train.tok") == 0 &&
                  strcmp(cfg.data.val, "data/bible/val.tok") == 0 &&
                  strcmp(cfg.data.tokenizer, "bytes") == 0,
              "%s: data and seq_len", path);
        CHECK(strcmp(cfg.lws.variant, variants[k]) == 0, "%s: variant %s", path, cfg.lws.variant);
        kv_policy |= cfg.lws.gqa == LWS_GQA_KV_HEADS;
        pre_norm_tied |= cfg.model.block == LWS_BLOCK_PRE_NORM && cfg.model.tied_embeddings;
        if (strcmp(variants[k], "crown") == 0)
            CHECK(cfg.model.block == LWS_BLOCK_POST_NORM && !cfg.model.tied_embeddings,
                  "crown: the paper's block");
    }
    CHECK(kv_policy, "a tiny config uses the kv_heads GQA policy");
    CHECK(pre_norm_tied, "a tiny config is pre_norm and tied");
}

/* ---- hostile files and values ---- */

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, n, f) == n, "write %s", path);
    if (f) fclose(f);
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define SMALL "{" MODEL "}, " LWS ", 'variant': 'crown'}"

/* Text the JSON parser would cut short or ignore, and strings other
 * readers refuse. */
static void hostile_text(void) {
    test_dir("config-hostile");
    char text[512];
    int n = snprintf(text, sizeof text, "%s}", js(SMALL));
    memcpy(text + n, "\0{'model': 1}", 13);
    write_bytes(test_path("nul.json"), text, (size_t)n + 13);
    LOAD_ERROR("a NUL byte after the object", test_path("nul.json"), "nul.json", "line 1",
               "NUL byte");
    PARSE_ERROR("\\u0000 in a string", SMALL ", 'name': 'ab\\u0000cd'}", "tests/inline.json",
                "\\u0000", "line 1");
    CHECK_OK(lws_config_parse(js(SMALL ", 'name': 'a\\\\u0000'}"), "tests/inline.json", &cfg));
    CHECK(strcmp(cfg.name, "a\\u0000") == 0, "an escaped backslash before u0000: %s", cfg.name);
    PARSE_ERROR("non-UTF-8 description", SMALL ", 'description': 'a\xff\xfe b'}", "description",
                "not UTF-8", "0xff");
    PARSE_ERROR("non-UTF-8 key", SMALL ", 'k\xc3': 1}", "not UTF-8");
    CHECK_OK(lws_config_parse(js(SMALL ", 'description': 'caf\xc3\xa9 \xe2\x9c\x93'}"),
                              "tests/inline.json", &cfg));
    PARSE_ERROR("name ..", SMALL ", 'name': '..'}", "name", "\"..\"", "directory");
    PARSE_ERROR("name .", SMALL ", 'name': '.'}", "name", "\".\"");
    PARSE_ERROR("name with a newline", SMALL ", 'name': 'a\\nb'}", "name", "control character");
}

/* Values accepted by JSON that mean nothing on the device. */
static void hostile_values(void) {
    PARSE_ERROR("norm_eps 1e300", "{" MODEL ", 'norm_eps': 1e300}, " LWS ", 'variant': 'crown'}}",
                "model.norm_eps", "1e+300", "<= 1");
    PARSE_ERROR("norm_eps 10", "{" MODEL ", 'norm_eps': 10}, " LWS ", 'variant': 'crown'}}",
                "model.norm_eps", "<= 1");
    PARSE_ERROR("norm_eps 1e-300", "{" MODEL ", 'norm_eps': 1e-300}, " LWS ", 'variant': 'crown'}}",
                "model.norm_eps", "fp32");
    PARSE_ERROR("rope_theta 1e-300",
                "{" MODEL ", 'rope_theta': 1e-300}, " LWS ", 'variant': 'crown'}}",
                "tests/inline.json", "model.rope_theta", "> 1");
    PARSE_ERROR("rope_theta rounding to 1",
                "{" MODEL ", 'rope_theta': 1.00000001}, " LWS ", 'variant': 'crown'}}",
                "model.rope_theta", "rounds to 1 in fp32");
    PARSE_ERROR("init_std 1e39", "{" MODEL ", 'init_std': 1e39}, " LWS ", 'variant': 'crown'}}",
                "model.init_std", "fp32");
    const char *head = SMALL ", 'train': {'seq_len': 8, 'micro_batch': 1, 'steps': 10, ";
    char text[1024];
    snprintf(text, sizeof text, "%s'lr': 1e40}}", head);
    PARSE_ERROR("lr 1e40", text, "train.lr", "1e+40", "fp32");
    snprintf(text, sizeof text, "%s'lr': 1e309}}", head);
    PARSE_ERROR("lr 1e309", text, "train.lr", "inf (a number beyond a double's range)");
    snprintf(text, sizeof text, "%s'lr': 1e-3, 'eps': 1e-50}}", head);
    PARSE_ERROR("eps 1e-50", text, "train.eps", "fp32");
    snprintf(text, sizeof text, "%s'lr': 1e-3, 'seed': 1e309}}", head);
    PARSE_ERROR("seed 1e309", text, "train.seed", "inf");
    /* 65536 query heads of head_dim 65536: a width of 2^32 would wrap in 32 bits. */
    PARSE_ERROR("width overflow",
                "{'model': {'d_model': 65536, 'n_layers': 1, 'head_dim': 65536, 'vocab_size': "
                "256}, 'lws': {'ffn_divisor': 8, 'gqa': {'kv_heads': 1}, 'ffn_dims': [8], "
                "'q_heads': [65536]}}",
                "tests/inline.json", "lws.q_heads[0]", "2^32");
}

/* Files a config must not make lws read: bases that are not regular files
 * or are not configs (their text is never echoed), and any other file from
 * a resolved config (as a checkpoint stores it). */
static void hostile_files(void) {
    const char *secret = test_path("secret.txt");
    const char *words = "SECRET-LINE root:x:0:0 hunter2\n";
    write_bytes(secret, words, strlen(words));
    char text[1024];
    snprintf(text, sizeof text, "{\"extends\": \"%s\"}", secret);
    write_bytes(test_path("leak.json"), text, strlen(text));
    LOAD_ERROR("a base that is not JSON", test_path("leak.json"), "secret.txt", "malformed JSON");
    CHECK(!strstr(lws_error_message(), "SECRET") && !strstr(lws_error_message(), "hunter2"),
          "the base's text is not echoed: %s", lws_error_message());
    /* The file named on the command line is quoted: it is the user's own. */
    LOAD_ERROR("the file itself", "tests/configs/malformed.json", "near");

    const char *fifo = test_path("fifo.json");
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo %s", fifo);
    snprintf(text, sizeof text, "{\"extends\": \"%s\"}", fifo);
    write_bytes(test_path("fifo_child.json"), text, strlen(text));
    LOAD_ERROR("a FIFO base (no hang)", test_path("fifo_child.json"), "FIFO", "not a regular file");
    LOAD_ERROR("a FIFO config", fifo, "FIFO");
    write_bytes(test_path("zero_child.json"), "{\"extends\": \"/dev/zero\"}", 24);
    LOAD_ERROR("/dev/zero as a base", test_path("zero_child.json"), "/dev/zero",
               "character device");

    /* Resolved text names no file: extends and match_config are refused
     * before anything is opened (the FIFO would hang an open without
     * O_NONBLOCK, the secret would be read). */
    const char *stored[] = {"{\"extends\": \"/etc/shadow\"}", "{\"extends\": \"/dev/zero\"}", text};
    for (size_t k = 0; k < 3; k++) {
        lws_status s = lws_config_parse_resolved(stored[k], "ckpt/model.safetensors", &cfg);
        expect_error("extends in a resolved config", s, "ckpt/model.safetensors", "extends",
                     "resolved", "altered", NULL);
        CHECK(!strstr(lws_error_message(), "cannot open") && !strstr(lws_error_message(), "FIFO"),
              "nothing was opened: %s", lws_error_message());
    }
    snprintf(text, sizeof text, "%s",
             js("{" MODEL "}, " LWS ", 'variant': 'crown', 'match_config': '/etc/shadow'}}"));
    expect_error("match_config in a resolved config",
                 lws_config_parse_resolved(text, "ckpt/model.safetensors", &cfg),
                 "lws.match_config", "resolved", NULL);
    /* What lws_config_to_json writes reads back through the resolved path. */
    CHECK_OK(lws_config_load("configs/tiny/crown.json", &cfg));
    char *json = lws_config_to_json(&cfg);
    static lws_config back;
    CHECK_OK(lws_config_parse_resolved(json, "ckpt/model.safetensors", &back));
    free(json);
    CHECK(lws_config_params(&back) == lws_config_params(&cfg), "resolved round trip");
}

/* Big objects: refused in time linear in their size. */
static void hostile_sizes(void) {
    enum { KEYS = 90000 };
    size_t cap = (size_t)KEYS * 16 + 64, n = 0;
    char *text = test_malloc(cap);
    n += (size_t)snprintf(text + n, cap - n, "{");
    for (int i = 0; i < KEYS; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"k%d\":0", i ? "," : "", i);
    snprintf(text + n, cap - n, "}");
    double t0 = seconds();
    lws_status s = lws_config_parse(text, "tests/keys.json", &cfg);
    double took = seconds() - t0;
    expect_error("90000 keys", s, "tests/keys.json", "90000 keys", "at most 1024", NULL);
    /* Refused at the key count: pairwise duplicate checks took 20 s here. */
    CHECK(took < 5.0, "90000 keys refused in %.2f s", took);
    /* 1024 keys, the last a duplicate of the first: found by sorting. */
    n = 0;
    n += (size_t)snprintf(text + n, cap - n, "{\"model\": {");
    for (int i = 0; i < 1023; i++) n += (size_t)snprintf(text + n, cap - n, "\"k%d\":0,", i);
    snprintf(text + n, cap - n, "\"k0\":1}}");
    expect_error("a duplicate among 1024 keys", lws_config_parse(text, "tests/keys.json", &cfg),
                 "model.k0", "twice", NULL);
    free(text);
}

int main(void) {
    defaults();
    extends_and_merge();
    malformed_json();
    unknown_keys();
    wrong_types();
    non_positive_sizes();
    model_checks();
    profile_checks();
    match_checks();
    extends_cycles();
    train_data_checks();
    round_trip();
    tiny_configs();
    overrides_take_effect();
    override_profile();
    override_errors();
    override_order_and_round_trip();
    hostile_text();
    hostile_values();
    hostile_files();
    hostile_sizes();
    return test_finish(NULL);
}
