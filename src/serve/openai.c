/* src/serve/openai.c - see openai.h. */
#include "src/serve/openai.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void serve_request_free(serve_request *rq)
{
    for (int i = 0; i < rq->n_msgs; i++)
        free(rq->msgs[i].content);
    free(rq->prompt);
    for (int i = 0; i < rq->n_stop; i++)
        free(rq->stop[i]);
    free(rq->model);
    memset(rq, 0, sizeof *rq);
}

static int bad(char *why, size_t n, const char *msg)
{
    snprintf(why, n, "%s", msg);
    return 400;
}

static int get_number(cJSON *root, const char *key, double lo, double hi, double *out, char *why, size_t n)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < lo || v->valuedouble > hi) {
        snprintf(why, n, "'%s' must be a number in [%g, %g]", key, lo, hi);
        return 400;
    }
    *out = v->valuedouble;
    return 0;
}

int serve_parse_request(const char *json, int is_chat, serve_request *rq, char *why, size_t n)
{
    memset(rq, 0, sizeof *rq);
    rq->is_chat = is_chat;
    rq->max_tokens = 128;
    rq->temperature = 1.0f;
    rq->top_p = 1.0f;
    rq->repeat_penalty = 1.0f;
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return bad(why, n, "request body is not a JSON object");
    }
    int st = 0;
    if (is_chat) {
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
        if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0) {
            st = bad(why, n, "'messages' must be a non-empty array");
            goto out;
        }
        if (cJSON_GetArraySize(msgs) > SERVE_MAX_MESSAGES) {
            snprintf(why, n, "at most %d messages", SERVE_MAX_MESSAGES);
            st = 400;
            goto out;
        }
        cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (!cJSON_IsString(role) || !cJSON_IsString(content)) {
                st = bad(why, n, "each message needs string 'role' and 'content'");
                goto out;
            }
            if (strcmp(role->valuestring, "system") && strcmp(role->valuestring, "user") &&
                strcmp(role->valuestring, "assistant")) {
                snprintf(why, n, "unknown role '%.32s' (system, user, assistant)", role->valuestring);
                st = 400;
                goto out;
            }
            serve_message *sm = &rq->msgs[rq->n_msgs++];
            snprintf(sm->role, sizeof sm->role, "%s", role->valuestring);
            if (!(sm->content = strdup(content->valuestring))) {
                st = 500;
                goto out;
            }
        }
    } else {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        if (!cJSON_IsString(p)) {
            st = bad(why, n, "'prompt' must be a string");
            goto out;
        }
        if (!(rq->prompt = strdup(p->valuestring))) {
            st = 500;
            goto out;
        }
    }
    double v;
    v = rq->max_tokens;
    if ((st = get_number(root, "max_tokens", 1, 1 << 20, &v, why, n)))
        goto out;
    rq->max_tokens = (int)v;
    rq->has_max_tokens = cJSON_GetObjectItemCaseSensitive(root, "max_tokens") &&
                         !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(root, "max_tokens"));
    v = rq->temperature;
    if ((st = get_number(root, "temperature", 0, 10, &v, why, n)))
        goto out;
    rq->temperature = (float)v;
    v = rq->top_p;
    if ((st = get_number(root, "top_p", 0, 1, &v, why, n)))
        goto out;
    rq->top_p = (float)v;
    v = 0;
    if ((st = get_number(root, "top_k", 0, 1e9, &v, why, n)))
        goto out;
    rq->top_k = (int)v;
    v = 0;
    if ((st = get_number(root, "min_p", 0, 1, &v, why, n)))
        goto out;
    rq->min_p = (float)v;
    v = rq->repeat_penalty;
    if ((st = get_number(root, "repeat_penalty", 0, 10, &v, why, n)))
        goto out;
    rq->repeat_penalty = (float)v;
    v = -1;
    if ((st = get_number(root, "seed", 0, 1.8e19, &v, why, n)))
        goto out;
    if (v >= 0) {
        rq->seed = (uint64_t)v;
        rq->has_seed = 1;
    }
    cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream && !cJSON_IsNull(stream)) {
        if (!cJSON_IsBool(stream)) {
            st = bad(why, n, "'stream' must be a boolean");
            goto out;
        }
        rq->stream = cJSON_IsTrue(stream);
    }
    cJSON *ie = cJSON_GetObjectItemCaseSensitive(root, "ignore_eos");
    if (ie && !cJSON_IsNull(ie)) {
        if (!cJSON_IsBool(ie)) {
            st = bad(why, n, "'ignore_eos' must be a boolean");
            goto out;
        }
        rq->ignore_eos = cJSON_IsTrue(ie);
    }
    cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (model && !cJSON_IsNull(model)) {
        if (!cJSON_IsString(model)) {
            st = bad(why, n, "'model' must be a string");
            goto out;
        }
        if (!(rq->model = strdup(model->valuestring))) {
            st = 500;
            goto out;
        }
    }
    cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stop");
    if (cJSON_IsString(stop)) {
        if (stop->valuestring[0] && !(rq->stop[rq->n_stop++] = strdup(stop->valuestring)))
            st = 500;
    } else if (cJSON_IsArray(stop)) {
        cJSON *s;
        cJSON_ArrayForEach(s, stop)
        {
            if (!cJSON_IsString(s) || cJSON_GetArraySize(stop) > SERVE_MAX_STOP) {
                st = bad(why, n, "'stop' must be a string or up to 4 strings");
                goto out;
            }
            if (s->valuestring[0] && !(rq->stop[rq->n_stop++] = strdup(s->valuestring))) {
                st = 500;
                goto out;
            }
        }
    } else if (stop && !cJSON_IsNull(stop)) {
        st = bad(why, n, "'stop' must be a string or an array of strings");
    }
out:
    cJSON_Delete(root);
    if (st)
        serve_request_free(rq);
    return st;
}

/* ---- responses ---- */

static char *print_delete(cJSON *root)
{
    char *s = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return s;
}

static void add_usage(cJSON *root, const serve_usage *u)
{
    cJSON *usage = cJSON_AddObjectToObject(root, "usage");
    cJSON_AddNumberToObject(usage, "prompt_tokens", u->prompt_tokens);
    cJSON_AddNumberToObject(usage, "completion_tokens", u->completion_tokens);
    cJSON_AddNumberToObject(usage, "total_tokens", u->prompt_tokens + u->completion_tokens);
    cJSON *t = cJSON_AddObjectToObject(root, "timings"); /* Kiln extension, like llama.cpp's server */
    cJSON_AddNumberToObject(t, "prefill_tokens_per_second", u->prefill_tps);
    cJSON_AddNumberToObject(t, "decode_tokens_per_second", u->decode_tps);
    cJSON_AddNumberToObject(t, "time_to_first_token_ms", u->ttft_ms);
}

static cJSON *head(const char *id, const char *object, const char *model, long created)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "id", id);
    cJSON_AddStringToObject(root, "object", object);
    cJSON_AddNumberToObject(root, "created", (double)created);
    cJSON_AddStringToObject(root, "model", model);
    return root;
}

char *serve_chunk_json(const char *id, int is_chat, const char *model, long created, const char *piece,
                       const char *finish, const serve_usage *u)
{
    cJSON *root = head(id, is_chat ? "chat.completion.chunk" : "text_completion", model, created);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (is_chat) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (piece)
            cJSON_AddStringToObject(delta, "content", piece);
    } else {
        cJSON_AddStringToObject(ch, "text", piece ? piece : "");
    }
    if (finish)
        cJSON_AddStringToObject(ch, "finish_reason", finish);
    else
        cJSON_AddNullToObject(ch, "finish_reason");
    if (u)
        add_usage(root, u);
    return print_delete(root);
}

char *serve_completion_json(const char *id, int is_chat, const char *model, long created, const char *text,
                            const serve_usage *u)
{
    cJSON *root = head(id, is_chat ? "chat.completion" : "text_completion", model, created);
    cJSON *choices = cJSON_AddArrayToObject(root, "choices"), *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", 0);
    if (is_chat) {
        cJSON *msg = cJSON_AddObjectToObject(ch, "message");
        cJSON_AddStringToObject(msg, "role", "assistant");
        cJSON_AddStringToObject(msg, "content", text ? text : "");
    } else {
        cJSON_AddStringToObject(ch, "text", text ? text : "");
    }
    cJSON_AddStringToObject(ch, "finish_reason", u->finish_reason[0] ? u->finish_reason : "stop");
    add_usage(root, u);
    return print_delete(root);
}

char *serve_models_json(const char *model_id)
{
    cJSON *root = cJSON_CreateObject(), *m = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(root, "data");
    cJSON_AddStringToObject(m, "id", model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "kiln");
    cJSON_AddItemToArray(data, m);
    return print_delete(root);
}

char *serve_error_json(const char *type, const char *message, const char *param, const char *code)
{
    cJSON *root = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(root, "error");
    cJSON_AddStringToObject(err, "message", message);
    cJSON_AddStringToObject(err, "type", type);
    if (param)
        cJSON_AddStringToObject(err, "param", param);
    else
        cJSON_AddNullToObject(err, "param");
    if (code)
        cJSON_AddStringToObject(err, "code", code);
    else
        cJSON_AddNullToObject(err, "code");
    return print_delete(root);
}
