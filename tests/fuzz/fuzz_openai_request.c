/* tests/fuzz/fuzz_openai_request.c - the OpenAI request-body parser of
 * `kiln serve` (src/serve/openai.c serve_parse_request), the part of the
 * HTTP path that is our own code.
 * Input: byte 0 bit 0 chooses /v1/chat/completions (1) or /v1/completions
 * (0); the rest is the body. Promises checked: 0 or 400 with a reason;
 * on success the request is within its documented bounds (messages,
 * roles, stop strings non-empty C strings of any length, a prompt or
 * messages present) and frees cleanly. */
#include "src/serve/openai.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int is_chat = data[0] & 1;
    char *body = fuzz_cstr(data + 1, size - 1);
    if (!body)
        return 0;
    serve_request rq;
    char why[256] = "";
    int st = serve_parse_request(body, is_chat, &rq, why, sizeof why);
    FUZZ_ASSERT(st == 0 || (st == 400 && why[0]), "status %d, reason '%s'", st, why);
    if (st == 0) {
        FUZZ_ASSERT(rq.n_msgs >= 0 && rq.n_msgs <= SERVE_MAX_MESSAGES, "%d messages", rq.n_msgs);
        FUZZ_ASSERT(rq.n_stop >= 0 && rq.n_stop <= SERVE_MAX_STOP, "%d stop strings", rq.n_stop);
        FUZZ_ASSERT(is_chat ? rq.n_msgs > 0 || rq.prompt : rq.prompt != NULL, "no prompt and no messages");
        for (int i = 0; i < rq.n_msgs; i++) {
            FUZZ_ASSERT(memchr(rq.msgs[i].role, 0, sizeof rq.msgs[i].role), "role %d not terminated", i);
            FUZZ_ASSERT(rq.msgs[i].content, "message %d has no content", i);
            volatile size_t n = strlen(rq.msgs[i].content);
            (void)n;
        }
        for (int i = 0; i < rq.n_stop; i++)
            FUZZ_ASSERT(rq.stop[i] && rq.stop[i][0], "stop %d missing or empty", i);
        FUZZ_ASSERT(rq.max_tokens >= 1, "max_tokens %d", rq.max_tokens);
    }
    serve_request_free(&rq);
    free(body);
    return 0;
}
