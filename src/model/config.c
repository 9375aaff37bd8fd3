/* config.c — config.json to q35_config. Accepts the text config at the root
 * (Qwen3_5ForCausalLM) or nested under "text_config"
 * (Qwen3_5ForConditionalGeneration); the layer pattern from "layer_types" or
 * "full_attention_interval"; RoPE settings from "rope_parameters" or, in
 * older files, the root. Where two places give the same setting they must
 * agree: a contradictory config is an error, not a guess. The one exception
 * is the layer pattern: "layer_types" lists every layer while the interval
 * is transformers' default written beside it, so the list wins. */
#include "model/config.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "formats/json_doc.h"

/* Limits far above any Qwen3.5 model; they exist so that a hostile config
 * cannot make the loader allocate absurd amounts before tensors are checked. */
#define MAX_VOCAB (1 << 24)
#define MAX_DIM (1 << 17)
#define MAX_HEADS 4096
#define MAX_HEAD_DIM 8192
#define MAX_CONV 64

typedef struct parse_ctx {
    const char *where;
    const cJSON *text; /* text_config, or the root */
    const cJSON *root;
    q35_err *e;
} parse_ctx;

static const cJSON *field(const parse_ctx *p, const char *name) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(p->text, name);
    if (!j && p->text != p->root) j = cJSON_GetObjectItemCaseSensitive(p->root, name);
    return (j && !cJSON_IsNull(j)) ? j : NULL;
}

/* Reads an integer field in [lo, hi]. Absent: *out = dflt if dflt >= 0,
 * else an error. */
static int get_int(const parse_ctx *p, const char *name, long lo, long hi, long dflt, int *out) {
    const cJSON *j = field(p, name);
    if (!j) {
        if (dflt >= 0) {
            *out = (int)dflt;
            return Q35_OK;
        }
        return q35_err_set(p->e, Q35_EFORMAT, "%s: missing field \"%s\"", p->where, name);
    }
    double v = cJSON_IsNumber(j) ? j->valuedouble : NAN;
    if (!(v >= (double)lo && v <= (double)hi) || v != floor(v))
        return q35_err_set(p->e, Q35_EFORMAT, "%s: field \"%s\" must be an integer in [%ld, %ld]",
                           p->where, name, lo, hi);
    *out = (int)v;
    return Q35_OK;
}

static int get_number(const cJSON *j, const char *where, const char *name, double lo, double hi,
                      double *out, q35_err *e) {
    if (!cJSON_IsNumber(j) || !(j->valuedouble >= lo && j->valuedouble <= hi))
        return q35_err_set(e, Q35_EFORMAT, "%s: field \"%s\" must be a number in [%g, %g]", where,
                           name, lo, hi);
    *out = j->valuedouble;
    return Q35_OK;
}

/* A RoPE setting that may sit in rope_parameters or at the text root; if in
 * both, the two must agree. Returns 0 when absent (out untouched). */
static int rope_setting(const parse_ctx *p, const cJSON *rp, const char *name, double lo, double hi,
                        double *out, int *found) {
    const cJSON *a = rp ? cJSON_GetObjectItemCaseSensitive(rp, name) : NULL;
    const cJSON *b = field(p, name);
    double va = 0, vb = 0;
    int rc;
    *found = 0;
    if (a && (rc = get_number(a, p->where, name, lo, hi, &va, p->e))) return rc;
    if (b && (rc = get_number(b, p->where, name, lo, hi, &vb, p->e))) return rc;
    if (a && b && fabs(va - vb) > 1e-9 * fabs(va))
        return q35_err_set(p->e, Q35_EFORMAT,
                           "%s: contradictory config: rope_parameters.%s = %g but %s = %g",
                           p->where, name, va, name, vb);
    if (a || b) {
        *out = a ? va : vb;
        *found = 1;
    }
    return Q35_OK;
}

static int parse_layers(const parse_ctx *p, q35_config *c) {
    const cJSON *types = field(p, "layer_types");
    const cJSON *interval = field(p, "full_attention_interval");
    int every = 0;
    bool disagree = false;
    if (interval) {
        int rc = get_int(p, "full_attention_interval", 1, Q35_MAX_LAYERS, -1, &every);
        if (rc) return rc;
    }
    if (!types && !every)
        return q35_err_set(p->e, Q35_EFORMAT,
                           "%s: neither \"layer_types\" nor \"full_attention_interval\" is given",
                           p->where);
    if (types) {
        if (!cJSON_IsArray(types))
            return q35_err_set(p->e, Q35_EFORMAT, "%s: \"layer_types\" is not an array", p->where);
        if (cJSON_GetArraySize(types) != c->n_layers)
            return q35_err_set(p->e, Q35_EFORMAT,
                               "%s: contradictory config: \"layer_types\" has %d entries but "
                               "num_hidden_layers is %d",
                               p->where, cJSON_GetArraySize(types), c->n_layers);
        int i = 0;
        for (const cJSON *t = types->child; t; t = t->next, i++) {
            if (cJSON_IsString(t) && !strcmp(t->valuestring, "full_attention")) {
                c->layer_full[i] = true;
            } else if (cJSON_IsString(t) && !strcmp(t->valuestring, "linear_attention")) {
                c->layer_full[i] = false;
            } else {
                return q35_err_set(p->e, Q35_EFORMAT,
                                   "%s: layer_types[%d] is not \"linear_attention\" or "
                                   "\"full_attention\"",
                                   p->where, i);
            }
            /* The per-layer list is the truth: transformers writes its
             * default interval next to any list, regular or not. */
            if (every && c->layer_full[i] != ((i + 1) % every == 0)) disagree = true;
        }
        if (disagree)
            snprintf(c->layers_from, sizeof c->layers_from,
                     "config.json layer_types (full_attention_interval %d disagrees, ignored)",
                     every);
        else
            snprintf(c->layers_from, sizeof c->layers_from, "config.json layer_types");
    } else {
        for (int i = 0; i < c->n_layers; i++)
            c->layer_full[i] = (i + 1) % every == 0;
        snprintf(c->layers_from, sizeof c->layers_from, "config.json full_attention_interval %d",
                 every);
    }
    return Q35_OK;
}

static int parse_eos(const parse_ctx *p, q35_config *c) {
    const cJSON *j = field(p, "eos_token_id");
    c->n_eos = 0;
    if (!j) return Q35_OK;
    const cJSON *one = cJSON_IsArray(j) ? j->child : j;
    for (; one; one = cJSON_IsArray(j) ? one->next : NULL) {
        if (!cJSON_IsNumber(one) || one->valuedouble < 0 || one->valuedouble >= c->vocab_size ||
            one->valuedouble != floor(one->valuedouble))
            return q35_err_set(p->e, Q35_EFORMAT,
                               "%s: \"eos_token_id\" must be token ids below vocab_size %d",
                               p->where, c->vocab_size);
        if (c->n_eos < Q35_MAX_EOS) c->eos_ids[c->n_eos++] = (int)one->valuedouble;
    }
    return Q35_OK;
}

static int parse(const parse_ctx *p, q35_config *c) {
    int rc;
    memset(c, 0, sizeof *c);
    if ((rc = get_int(p, "vocab_size", 1, MAX_VOCAB, -1, &c->vocab_size)) ||
        (rc = get_int(p, "hidden_size", 1, MAX_DIM, -1, &c->hidden_size)) ||
        (rc = get_int(p, "intermediate_size", 1, 4 * MAX_DIM, -1, &c->intermediate_size)) ||
        (rc = get_int(p, "num_hidden_layers", 1, Q35_MAX_LAYERS, -1, &c->n_layers)) ||
        (rc = get_int(p, "num_attention_heads", 1, MAX_HEADS, -1, &c->n_heads)) ||
        (rc = get_int(p, "num_key_value_heads", 1, MAX_HEADS, c->n_heads, &c->n_kv_heads)) ||
        (rc = get_int(p, "head_dim", 1, MAX_HEAD_DIM, c->hidden_size / c->n_heads, &c->head_dim)) ||
        (rc = get_int(p, "max_position_embeddings", 0, 1 << 30, 0, &c->max_position)))
        return rc;
    if ((rc = parse_layers(p, c))) return rc;

    int any_linear = 0;
    for (int i = 0; i < c->n_layers; i++)
        any_linear |= !c->layer_full[i];
    long need = any_linear ? -1 : 1; /* DeltaNet fields are required only if used */
    if ((rc = get_int(p, "linear_num_key_heads", 1, MAX_HEADS, need, &c->lin_k_heads)) ||
        (rc = get_int(p, "linear_num_value_heads", 1, MAX_HEADS, need, &c->lin_v_heads)) ||
        (rc = get_int(p, "linear_key_head_dim", 1, MAX_HEAD_DIM, need, &c->lin_k_dim)) ||
        (rc = get_int(p, "linear_value_head_dim", 1, MAX_HEAD_DIM, need, &c->lin_v_dim)) ||
        (rc =
             get_int(p, "linear_conv_kernel_dim", 1, MAX_CONV, need < 0 ? -1 : 4, &c->conv_kernel)))
        return rc;

    const cJSON *eps = field(p, "rms_norm_eps");
    double v = 1e-6;
    if (eps && (rc = get_number(eps, p->where, "rms_norm_eps", 1e-30, 1.0, &v, p->e))) return rc;
    c->rms_eps = (float)v;

    const cJSON *rp = field(p, "rope_parameters");
    if (!rp) rp = field(p, "rope_scaling");
    if (rp && !cJSON_IsObject(rp))
        return q35_err_set(p->e, Q35_EFORMAT, "%s: \"rope_parameters\" is not an object", p->where);
    int found;
    double theta = 10000.0, factor = 1.0;
    if ((rc = rope_setting(p, rp, "rope_theta", 1.0, 1e12, &theta, &found))) return rc;
    if ((rc = rope_setting(p, rp, "partial_rotary_factor", 1e-6, 1.0, &factor, &found))) return rc;
    c->rope_theta = theta;
    c->rotary_dim = (int)(c->head_dim * factor);
    if (c->rotary_dim < 2 || c->rotary_dim % 2)
        return q35_err_set(
            p->e, Q35_EFORMAT,
            "%s: head_dim %d * partial_rotary_factor %g = %d rotary dims: must be even "
            "and at least 2",
            p->where, c->head_dim, factor, c->rotary_dim);
    const cJSON *sec = rp ? cJSON_GetObjectItemCaseSensitive(rp, "mrope_section") : NULL;
    if (sec) {
        /* For text all three position components are equal, so the sections
         * only have to cover the rotary half-dims exactly. */
        int sum = 0;
        if (!cJSON_IsArray(sec))
            return q35_err_set(p->e, Q35_EFORMAT, "%s: mrope_section is not an array", p->where);
        for (const cJSON *s = sec->child; s; s = s->next) {
            if (!cJSON_IsNumber(s) || s->valuedouble < 0 || s->valuedouble > MAX_HEAD_DIM)
                return q35_err_set(p->e, Q35_EFORMAT, "%s: mrope_section holds a bad value",
                                   p->where);
            sum += (int)s->valuedouble;
        }
        if (sum != c->rotary_dim / 2)
            return q35_err_set(p->e, Q35_EFORMAT,
                               "%s: contradictory config: mrope_section sums to %d but the rotary "
                               "dims are %d (expected %d pairs)",
                               p->where, sum, c->rotary_dim, c->rotary_dim / 2);
    }

    const cJSON *tie = cJSON_GetObjectItemCaseSensitive(p->text, "tie_word_embeddings");
    if (!tie) tie = cJSON_GetObjectItemCaseSensitive(p->root, "tie_word_embeddings");
    if (tie && !cJSON_IsBool(tie))
        return q35_err_set(p->e, Q35_EFORMAT, "%s: \"tie_word_embeddings\" is not a boolean",
                           p->where);
    c->tie_embeddings = tie && cJSON_IsTrue(tie);
    if ((rc = parse_eos(p, c))) return rc;
    return q35_config_validate(c, p->where, p->e);
}

int q35_config_validate(const q35_config *c, const char *where, q35_err *e) {
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return q35_err_set(e, Q35_EFORMAT,
                           "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                           where, c->n_heads, c->n_kv_heads);
    if (c->rotary_dim > c->head_dim)
        return q35_err_set(e, Q35_EFORMAT, "%s: rotary dims %d exceed head_dim %d", where,
                           c->rotary_dim, c->head_dim);
    int any_linear = 0;
    for (int i = 0; i < c->n_layers; i++)
        any_linear |= !c->layer_full[i];
    if (any_linear && (c->lin_v_heads < c->lin_k_heads || c->lin_v_heads % c->lin_k_heads))
        return q35_err_set(
            e, Q35_EFORMAT,
            "%s: linear_num_value_heads %d is not a multiple of linear_num_key_heads %d", where,
            c->lin_v_heads, c->lin_k_heads);
    if (any_linear && c->conv_kernel < 1)
        return q35_err_set(e, Q35_EFORMAT, "%s: linear_conv_kernel_dim must be positive", where);
    if (c->vocab_size < 1 || c->hidden_size < 1 || c->n_layers < 1)
        return q35_err_set(e, Q35_EFORMAT, "%s: empty model", where);
    return Q35_OK;
}

int q35_config_parse_json(const char *text, size_t len, const char *where, q35_config *out,
                          q35_err *e) {
    cJSON *root = q35_json_parse(text, len, where, NULL, e);
    if (!root) return Q35_EFORMAT;
    int rc;
    if (!cJSON_IsObject(root)) {
        rc = q35_err_set(e, Q35_EFORMAT, "%s: not a JSON object", where);
    } else {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
        if (tc && !cJSON_IsObject(tc)) {
            rc = q35_err_set(e, Q35_EFORMAT, "%s: \"text_config\" is not an object", where);
        } else {
            parse_ctx p = {where, tc ? tc : root, root, e};
            rc = parse(&p, out);
        }
    }
    cJSON_Delete(root);
    return rc;
}
