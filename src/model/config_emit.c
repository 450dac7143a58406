/* The resolved config as JSON: explicit per-layer lists and every default
 * filled in, so a run records exactly the shapes it trained. */
#include <stdlib.h>
#include <string.h>

#include "model/config_internal.h"

static cJSON *layer_list(const lws_config *cfg, int which) {
    cJSON *a = cJSON_CreateArray();
    for (uint32_t i = 0; a && i < cfg->model.n_layers; i++) {
        const lws_layer_shape *l = &cfg->layers[i];
        double v = which == 0 ? l->ffn_dim : which == 1 ? l->q_heads : l->kv_heads;
        cJSON_AddItemToArray(a, cJSON_CreateNumber(v));
    }
    return a;
}

char *lws_config_to_json(const lws_config *cfg) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "name", cfg->name);
    if (cfg->description[0]) cJSON_AddStringToObject(root, "description", cfg->description);

    const lws_model_config *m = &cfg->model;
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    cJSON_AddNumberToObject(model, "d_model", m->d_model);
    cJSON_AddNumberToObject(model, "n_layers", m->n_layers);
    cJSON_AddNumberToObject(model, "head_dim", m->head_dim);
    cJSON_AddNumberToObject(model, "vocab_size", m->vocab_size);
    cJSON_AddStringToObject(model, "block", cfg_enum_name("model.block", m->block));
    cJSON_AddBoolToObject(model, "tied_embeddings", m->tied_embeddings);
    cJSON_AddNumberToObject(model, "rope_theta", m->rope_theta);
    cJSON_AddNumberToObject(model, "norm_eps", m->norm_eps);
    cJSON_AddBoolToObject(model, "qk_norm", m->qk_norm);
    cJSON_AddNumberToObject(model, "init_std", m->init_std);

    cJSON *lws = cJSON_AddObjectToObject(root, "lws");
    cJSON_AddItemToObject(lws, "ffn_dims", layer_list(cfg, 0));
    cJSON_AddItemToObject(lws, "q_heads", layer_list(cfg, 1));
    cJSON_AddItemToObject(lws, "kv_heads", layer_list(cfg, 2));
    cJSON_AddNumberToObject(lws, "ffn_divisor", cfg->lws.ffn_divisor);
    cJSON *gqa = cJSON_AddObjectToObject(lws, "gqa");
    cJSON_AddNumberToObject(gqa, cfg->lws.gqa == LWS_GQA_GROUP_SIZE ? "group_size" : "kv_heads",
                            cfg->lws.gqa_value);

    if (cfg->has_train) {
        const lws_train_config *t = &cfg->train;
        cJSON *train = cJSON_AddObjectToObject(root, "train");
        cJSON_AddNumberToObject(train, "seq_len", t->seq_len);
        cJSON_AddNumberToObject(train, "micro_batch", t->micro_batch);
        cJSON_AddNumberToObject(train, "grad_accum", t->grad_accum);
        cJSON_AddNumberToObject(train, "steps", t->steps);
        cJSON_AddNumberToObject(train, "lr", t->lr);
        cJSON_AddNumberToObject(train, "min_lr_ratio", t->min_lr_ratio);
        cJSON_AddStringToObject(train, "schedule", cfg_enum_name("train.schedule", t->schedule));
        cJSON_AddNumberToObject(train, "warmup_steps", t->warmup_steps);
        if (t->schedule == LWS_LR_WSD)
            cJSON_AddNumberToObject(train, "decay_fraction", t->decay_fraction);
        cJSON_AddNumberToObject(train, "beta1", t->beta1);
        cJSON_AddNumberToObject(train, "beta2", t->beta2);
        cJSON_AddNumberToObject(train, "eps", t->eps);
        cJSON_AddNumberToObject(train, "weight_decay", t->weight_decay);
        cJSON_AddBoolToObject(train, "decay_embeddings", t->decay_embeddings);
        cJSON_AddBoolToObject(train, "decay_norms", t->decay_norms);
        cJSON_AddNumberToObject(train, "grad_clip", t->grad_clip);
        cJSON_AddNumberToObject(train, "z_loss", t->z_loss);
        cJSON_AddNumberToObject(train, "seed", (double)t->seed);
        cJSON_AddNumberToObject(train, "log_every", t->log_every);
        cJSON_AddNumberToObject(train, "checkpoint_every", t->checkpoint_every);
        cJSON_AddNumberToObject(train, "keep_checkpoints", t->keep_checkpoints);
        cJSON_AddStringToObject(train, "out_dir", t->out_dir);
        cJSON_AddStringToObject(train, "precision", t->precision);
        cJSON_AddBoolToObject(train, "shard_optimizer", t->shard_optimizer);
        cJSON_AddNumberToObject(train, "bucket_mb", t->bucket_mb);
        if (strcmp(t->precision, "fp16") == 0)
            cJSON_AddNumberToObject(train, "loss_scale", t->loss_scale);
    }
    if (cfg->has_data) {
        const lws_data_config *d = &cfg->data;
        cJSON *data = cJSON_AddObjectToObject(root, "data");
        cJSON_AddStringToObject(data, "train", d->train);
        if (d->val[0]) cJSON_AddStringToObject(data, "val", d->val);
        cJSON_AddNumberToObject(data, "val_tokens", (double)d->val_tokens);
        cJSON_AddStringToObject(data, "tokenizer", d->tokenizer);
    }
    cJSON *eval = cJSON_AddObjectToObject(root, "eval");
    cJSON_AddNumberToObject(eval, "every", cfg->eval.every);
    cJSON_AddNumberToObject(eval, "tokens", (double)cfg->eval.tokens);

    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}
