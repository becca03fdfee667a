/*
 * Tests of the C ABI against the real SmolLM2 model: the one entry (`ms_call`, `ms_call_stream`,
 * `ms_operations`) with the corpus of bad requests and every operation, then the typed
 * functions: null arguments, invalid UTF-8, malformed JSON, an unknown model, early-freed
 * streams, service management and a normal completion.
 * Built against include/modelservice.h and the static library; run natively and under valgrind.
 *
 *   abi MODEL.gguf CORPUS.tsv [--quick]
 *
 * CORPUS.tsv is tests/corpus/bad_requests.json as lines (tests/corpus_tsv.py writes it).
 *
 * Generations are kept tiny (max_tokens 4, context 256) so the valgrind run stays short.
 */
/* clock_gettime and pthreads are POSIX, outside strict C11. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "modelservice.h"

#define ACCESS_NAME "u-c-abi/smollm2"
/* A short system message replaces the template's long default one: fewer prompt tokens to
 * decode under valgrind, and a prefix the requests share. */
#define MESSAGES(user)                                                                   \
    "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"                    \
    "{\"role\":\"user\",\"content\":\"" user "\"}]"
#define SERVICE_NAME "c-abi"

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        checks++;                                                                         \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

/* Runs `call`, checks it returned `expected`, and keeps the status in `last_status`. */
static ms_status last_status;
#define CHECK_STATUS(call, expected)                                                      \
    do {                                                                                  \
        checks++;                                                                         \
        last_status = (call);                                                             \
        if (last_status != (expected)) {                                                  \
            const char *e_ = ms_last_error_json();                                        \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s; last error: %s\n",       \
                    __FILE__, __LINE__, #call, ms_status_name(last_status),               \
                    ms_status_name(expected), e_ ? e_ : "(none)");                        \
            failures++;                                                                   \
        }                                                                                 \
    } while (0)

static int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* Appends the raw (still escaped) value of the first `"content":"..."` in `json` to `buf`. */
static void append_content(char *buf, size_t cap, const char *json) {
    const char *key = "\"content\":\"";
    const char *p = json ? strstr(json, key) : NULL;
    if (!p) return;
    p += strlen(key);
    size_t n = strlen(buf);
    for (; *p && *p != '"' && n + 2 < cap; p++) {
        if (*p == '\\') buf[n++] = *p++;
        buf[n++] = *p;
    }
    buf[n] = '\0';
}

/* The content of the whole completion of REQUEST, which the streams below must repeat. */
static char completion_text[1024];

/* The last error names this `code` and `param` (param NULL: not checked). */
static void check_error(const char *code, const char *param) {
    char want[128];
    const char *json = ms_last_error_json();
    CHECK(json != NULL);
    CHECK(ms_last_error_message() != NULL);
    snprintf(want, sizeof want, "\"code\":\"%s\"", code);
    CHECK(contains(json, want));
    if (param) {
        snprintf(want, sizeof want, "\"param\":\"%s\"", param);
        CHECK(contains(json, want));
    }
    CHECK(contains(json, "{\"error\":{\"message\":"));
    if (!contains(json, code)) fprintf(stderr, "  error was: %s\n", json ? json : "(none)");
}

/* A non-NULL pointer that is never dereferenced: output slots start with it, so a test can see
 * that a failed call cleared them. */
static char sentinel_byte;
#define SENTINEL ((void *)&sentinel_byte)

static const char *REQUEST =
    "{\"model\":\"" ACCESS_NAME "\"," MESSAGES("Say hi.") ","
    "\"max_tokens\":4,\"temperature\":0}";

static void test_static_strings(void) {
    CHECK(contains(ms_version(), "."));
    CHECK(strcmp(ms_status_name(MS_STATUS_NOT_FOUND), "MS_STATUS_NOT_FOUND") == 0);
    CHECK(strcmp(ms_status_name(MS_STATUS_OK), "MS_STATUS_OK") == 0);
    CHECK(strcmp(ms_status_name(12345), "MS_STATUS_UNKNOWN") == 0);
    CHECK(ms_status_http_status(MS_STATUS_NOT_FOUND) == 404);
    CHECK(ms_status_http_status(MS_STATUS_OVERLOADED) == 429);
    CHECK(ms_status_http_status(MS_STATUS_OK) == 200);
    CHECK(ms_status_http_status(7) == 0);
}

static void test_null_arguments(ms_registry *registry) {
    char *out = SENTINEL;
    ms_stream *stream = SENTINEL;

    CHECK_STATUS(ms_registry_new(NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "registry_out");

    CHECK_STATUS(ms_services_list(NULL, &out), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "registry");
    CHECK(out == NULL);
    CHECK_STATUS(ms_services_list(registry, NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "list_json_out");

    out = SENTINEL;
    CHECK_STATUS(ms_chat_completions_create(registry, NULL, &out), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "request_json");
    CHECK(out == NULL);
    CHECK_STATUS(ms_chat_completions_create(NULL, REQUEST, &out), MS_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(ms_chat_completions_create(registry, REQUEST, NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "response_json_out");

    CHECK_STATUS(ms_chat_completions_create_stream(registry, NULL, &stream), MS_STATUS_NULL_ARGUMENT);
    CHECK(stream == NULL);
    CHECK_STATUS(ms_chat_completions_create_stream(registry, REQUEST, NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "stream_out");

    CHECK_STATUS(ms_services_deploy(registry, NULL, NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "spec_json");
    CHECK_STATUS(ms_services_retrieve(registry, NULL, &out), MS_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(ms_services_scale(registry, NULL, 1, NULL), MS_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(ms_services_delete(registry, ACCESS_NAME, NULL, NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "confirm");
    CHECK_STATUS(ms_models_list(NULL, &out), MS_STATUS_NULL_ARGUMENT);
    CHECK_STATUS(ms_models_retrieve(registry, NULL, &out), MS_STATUS_NULL_ARGUMENT);

    out = SENTINEL;
    CHECK_STATUS(ms_stream_next(NULL, &out), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "stream");
    CHECK(out == NULL);
    CHECK_STATUS(ms_stream_next_timeout(NULL, 0, &out), MS_STATUS_NULL_ARGUMENT);

    /* Free functions accept NULL. */
    ms_registry_free(NULL);
    ms_stream_free(NULL);
    ms_string_free(NULL);

    /* A successful call clears the thread's last error. */
    CHECK_STATUS(ms_services_list(registry, &out), MS_STATUS_OK);
    CHECK(ms_last_error_json() == NULL);
    CHECK(contains(out, "{\"object\":\"list\",\"data\":[]}"));
    ms_string_free(out);
}

static void test_invalid_utf8(ms_registry *registry) {
    char *out = SENTINEL;
    ms_stream *stream = SENTINEL;
    CHECK_STATUS(ms_chat_completions_create(registry, "{\"model\":\"\xff\xfe\"}", &out),
                 MS_STATUS_INVALID_UTF8);
    check_error("invalid_utf8", "request_json");
    CHECK(out == NULL);
    CHECK_STATUS(ms_chat_completions_create_stream(registry, "\xc3\x28", &stream),
                 MS_STATUS_INVALID_UTF8);
    CHECK(stream == NULL);
    CHECK_STATUS(ms_services_retrieve(registry, "u/\xe2\x82", &out), MS_STATUS_INVALID_UTF8);
    check_error("invalid_utf8", "access_name");
    CHECK_STATUS(ms_services_deploy(registry, "{\"name\":\"\x80\"}", NULL), MS_STATUS_INVALID_UTF8);
    check_error("invalid_utf8", "spec_json");
}

static void test_malformed_json(ms_registry *registry) {
    char *out = SENTINEL;
    ms_stream *stream = SENTINEL;

    CHECK_STATUS(ms_chat_completions_create(registry, "{not json", &out), MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", NULL);
    CHECK(contains(ms_last_error_json(), "\"type\":\"invalid_request_error\""));
    CHECK(ms_status_http_status(last_status) == 400);
    CHECK(out == NULL);
    CHECK_STATUS(ms_chat_completions_create(registry, "", &out), MS_STATUS_INVALID_REQUEST);
    CHECK_STATUS(ms_chat_completions_create_stream(registry, "[1, 2", &stream),
                 MS_STATUS_INVALID_REQUEST);
    CHECK(stream == NULL);

    /* A field of the wrong type is named by its path. */
    CHECK_STATUS(ms_chat_completions_create(registry, "{\"model\":\"m\",\"messages\":\"hi\"}", &out),
                 MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "messages");
    CHECK_STATUS(ms_chat_completions_create(
                     registry,
                     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"temperature\":\"hot\"}",
                     &out),
                 MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "temperature");
    /* A well-formed request with a value out of range. */
    CHECK_STATUS(ms_chat_completions_create(
                     registry,
                     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                     "\"temperature\":7}",
                     &out),
                 MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "temperature");

    /* Service specs. */
    CHECK_STATUS(ms_services_deploy(registry, "{\"name\":", NULL), MS_STATUS_INVALID_REQUEST);
    CHECK_STATUS(ms_services_deploy(registry, "{\"name\":\"x\",\"access_name\":\"u/x\"}", NULL),
                 MS_STATUS_INVALID_REQUEST);
    CHECK(contains(ms_last_error_message(), "model"));
    CHECK_STATUS(ms_services_deploy(
                     registry,
                     "{\"name\":\"x\",\"access_name\":\"u/x\",\"model\":\"/m.gguf\",\"instances\":\"two\"}",
                     NULL),
                 MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "instances");
    CHECK_STATUS(ms_services_deploy(registry,
                                    "{\"name\":\"x\",\"access_name\":\"bad name\",\"model\":\"/m.gguf\"}",
                                    NULL),
                 MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "access_name");
}

static void test_unknown_model(ms_registry *registry) {
    const char *request =
        "{\"model\":\"nobody/none\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    char *out = SENTINEL;
    ms_stream *stream = SENTINEL;
    CHECK_STATUS(ms_chat_completions_create(registry, request, &out), MS_STATUS_NOT_FOUND);
    check_error("model_not_found", "model");
    CHECK(contains(ms_last_error_message(), "nobody/none"));
    CHECK(ms_status_http_status(last_status) == 404);
    CHECK(out == NULL);
    CHECK_STATUS(ms_chat_completions_create_stream(registry, request, &stream), MS_STATUS_NOT_FOUND);
    CHECK(stream == NULL);
    CHECK_STATUS(ms_services_retrieve(registry, "nobody/none", &out), MS_STATUS_NOT_FOUND);
    CHECK_STATUS(ms_services_scale(registry, "nobody/none", 2, NULL), MS_STATUS_NOT_FOUND);
    CHECK_STATUS(ms_services_delete(registry, "nobody/none", "none", NULL), MS_STATUS_NOT_FOUND);
    CHECK_STATUS(ms_models_retrieve(registry, "nobody/none", &out), MS_STATUS_NOT_FOUND);
    CHECK_STATUS(ms_services_deploy(registry,
                                    "{\"name\":\"x\",\"access_name\":\"u/x\",\"model\":\"/no/such/file.gguf\"}",
                                    NULL),
                 MS_STATUS_MODEL_LOAD_FAILED);
    check_error("model_load_failed", "model");
}

/* The last error is per thread: a failure on another thread does not touch this one's. */
static void *fail_on_another_thread(void *registry) {
    char *out = NULL;
    ms_status status = ms_services_retrieve(registry, "nobody/else", &out);
    int ok = status == MS_STATUS_NOT_FOUND && contains(ms_last_error_message(), "nobody/else");
    return ok ? registry : NULL;
}

static void test_last_error_is_per_thread(ms_registry *registry) {
    char *out = NULL;
    CHECK_STATUS(ms_services_retrieve(registry, "nobody/here", &out), MS_STATUS_NOT_FOUND);
    pthread_t thread;
    void *result = NULL;
    CHECK(pthread_create(&thread, NULL, fail_on_another_thread, registry) == 0);
    CHECK(pthread_join(thread, &result) == 0);
    CHECK(result == registry);
    CHECK(contains(ms_last_error_message(), "nobody/here"));
    CHECK(!contains(ms_last_error_message(), "nobody/else"));
}

static void deploy(ms_registry *registry, const char *model, int threads) {
    char spec[4096];
    char *info = SENTINEL;
    snprintf(spec, sizeof spec,
             "{\"name\":\"" SERVICE_NAME "\",\"access_name\":\"" ACCESS_NAME "\",\"model\":\"%s\","
             "\"context_length\":256,\"slots\":2,\"threads\":%d}",
             model, threads);
    CHECK_STATUS(ms_services_deploy(registry, spec, &info), MS_STATUS_OK);
    CHECK(contains(info, "\"access_name\":\"" ACCESS_NAME "\""));
    CHECK(contains(info, "\"status\":\"running\""));
    CHECK(contains(info, "\"architecture\":\"llama\""));
    ms_string_free(info);

    info = SENTINEL;
    CHECK_STATUS(ms_services_deploy(registry, spec, &info), MS_STATUS_SERVICE_EXISTS);
    check_error("service_exists", "access_name");
    CHECK(info == NULL);
}

static void test_completion(ms_registry *registry) {
    char *response = NULL;
    CHECK_STATUS(ms_chat_completions_create(registry, REQUEST, &response), MS_STATUS_OK);
    CHECK(ms_last_error_json() == NULL);
    CHECK(contains(response, "\"object\":\"chat.completion\""));
    CHECK(contains(response, "\"role\":\"assistant\""));
    CHECK(contains(response, "\"model\":\"" ACCESS_NAME "\""));
    CHECK(contains(response, "\"completion_tokens\":"));
    CHECK(contains(response, "\"finish_reason\":\"length\"") ||
          contains(response, "\"finish_reason\":\"stop\""));
    /* Some text came out of the model. */
    CHECK(response != NULL && !contains(response, "\"content\":\"\""));
    printf("completion: %s\n", response ? response : "(none)");
    append_content(completion_text, sizeof completion_text, response);
    ms_string_free(response);

    /* The prompt and max_tokens must fit the 256-token context. */
    const char *too_long =
        "{\"model\":\"" ACCESS_NAME "\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"max_tokens\":1000}";
    CHECK_STATUS(ms_chat_completions_create(registry, too_long, &response),
                 MS_STATUS_CONTEXT_LENGTH_EXCEEDED);
    check_error("context_length_exceeded", "max_tokens");
    CHECK(response == NULL);
}

/* Structured output through the C entry: a `json_schema` answer is exactly one of the objects
 * its schema allows (whitespace aside), and a schema llama.cpp cannot enforce is refused. */
static void test_structured(ms_registry *registry) {
    const char *request =
        "{\"model\":\"" ACCESS_NAME "\"," MESSAGES("Pick a colour.") ",\"max_tokens\":32,\"temperature\":0,"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"pick\",\"schema\":"
        "{\"type\":\"object\",\"properties\":{\"colour\":{\"enum\":[\"red\",\"green\",\"blue\"]}},"
        "\"required\":[\"colour\"],\"additionalProperties\":false}}}}";
    char *response = NULL;
    char escaped[256] = "";
    char compact[256];
    size_t n = 0;
    CHECK_STATUS(ms_chat_completions_create(registry, request, &response), MS_STATUS_OK);
    append_content(escaped, sizeof escaped, response);
    /* Unescape the JSON string and drop whitespace (and the escapes of newlines and tabs). */
    for (const char *p = escaped; *p && n + 1 < sizeof compact; p++) {
        if (*p == '\\' && (p[1] == 'n' || p[1] == 't' || p[1] == 'r')) { p++; continue; }
        if (*p == '\\') p++;
        if (*p != ' ' && *p != '\n') compact[n++] = *p;
    }
    compact[n] = '\0';
    printf("structured: %s\n", compact);
    CHECK(strcmp(compact, "{\"colour\":\"red\"}") == 0 || strcmp(compact, "{\"colour\":\"green\"}") == 0 ||
          strcmp(compact, "{\"colour\":\"blue\"}") == 0);
    CHECK(contains(response, "\"finish_reason\":\"stop\""));
    ms_string_free(response);

    const char *bad =
        "{\"model\":\"" ACCESS_NAME "\"," MESSAGES("Pick a colour.") ","
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"pick\",\"schema\":"
        "{\"type\":\"object\",\"properties\":{\"a\":{\"$ref\":\"#/$defs/missing\"}}}}}}";
    response = SENTINEL;
    CHECK_STATUS(ms_call(registry, "chat.completions.create", bad, &response), MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "response_format.json_schema.schema");
    CHECK(response == NULL);
}

/* A tool call through ms_call (a named tool_choice: one call, finish "stop"), then its result
 * sent back in a `tool` message, answered in text. */
#define TIME_TOOL                                                                         \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_time\","                 \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"zone\":{\"type\":\"string\","          \
    "\"maxLength\":8}},\"required\":[\"zone\"]}}}]"
static void test_tool_round_trip(ms_registry *registry) {
    const char *request =
        "{\"model\":\"" ACCESS_NAME "\"," MESSAGES("What time is it in Paris?") "," TIME_TOOL ","
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},"
        "\"max_tokens\":40,\"temperature\":0}";
    char *out = NULL;
    CHECK_STATUS(ms_call(registry, "chat.completions.create", request, &out), MS_STATUS_OK);
    printf("tool call: %s\n", out ? out : "(none)");
    CHECK(contains(out, "\"content\":null,\"tool_calls\":[{\"id\":\"call_"));
    CHECK(contains(out, "\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"zone\\\":"));
    CHECK(contains(out, "\"finish_reason\":\"stop\""));
    char id[64] = "";
    const char *at = out ? strstr(out, "\"id\":\"call_") : NULL;
    if (at) {
        at += strlen("\"id\":\"");
        size_t n = strcspn(at, "\"");
        if (n < sizeof id) {
            memcpy(id, at, n);
            id[n] = '\0';
        }
    }
    CHECK(strlen(id) == 29);
    ms_string_free(out);

    char answer_request[2048];
    snprintf(answer_request, sizeof answer_request,
             "{\"model\":\"" ACCESS_NAME "\",\"messages\":["
             "{\"role\":\"user\",\"content\":\"What time is it in Paris?\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
             "\"function\":{\"name\":\"get_time\",\"arguments\":\"{\\\"zone\\\":\\\"CET\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"14:05\"}],"
             TIME_TOOL ",\"tool_choice\":\"none\",\"max_tokens\":16,\"temperature\":0}",
             id, id);
    out = NULL;
    CHECK_STATUS(ms_call(registry, "chat.completions.create", answer_request, &out), MS_STATUS_OK);
    printf("tool result answered: %s\n", out ? out : "(none)");
    CHECK(contains(out, "\"content\":\"") && !contains(out, "\"tool_calls\""));
    ms_string_free(out);
}

/* Reads a whole stream, with ms_stream_next or by polling ms_stream_next_timeout; returns how
 * many times the poll timed out. */
static int read_stream(ms_registry *registry, int poll, char *text, size_t cap) {
    const char *request =
        "{\"model\":\"" ACCESS_NAME "\"," MESSAGES("Say hi.") ","
        "\"max_tokens\":4,\"temperature\":0,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
    ms_stream *stream = NULL;
    CHECK_STATUS(ms_chat_completions_create_stream(registry, request, &stream), MS_STATUS_OK);
    if (!stream) return 0;
    char *chunk = NULL;
    int count = 0, timeouts = 0, timeout_left_chunk = 0, saw_role = 0, saw_finish = 0, saw_usage = 0;
    ms_status status;
    for (;;) {
        status = poll ? ms_stream_next_timeout(stream, 1, &chunk) : ms_stream_next(stream, &chunk);
        if (status == MS_STATUS_TIMEOUT) {
            timeout_left_chunk |= chunk != NULL;
            timeouts++;
            continue;
        }
        if (status != MS_STATUS_OK) break;
        CHECK(contains(chunk, "\"object\":\"chat.completion.chunk\""));
        if (count == 0) saw_role = contains(chunk, "\"role\":\"assistant\"");
        saw_finish |= contains(chunk, "\"finish_reason\":\"length\"") ||
                      contains(chunk, "\"finish_reason\":\"stop\"");
        saw_usage |= contains(chunk, "\"usage\":{\"prompt_tokens\":");
        append_content(text, cap, chunk);
        count++;
        ms_string_free(chunk);
    }
    CHECK(status == MS_STATUS_END_OF_STREAM);
    CHECK(chunk == NULL);
    CHECK(!timeout_left_chunk);
    CHECK(count >= 3); /* role, at least one piece of text, finish (and usage) */
    CHECK(saw_role);
    CHECK(saw_finish);
    CHECK(saw_usage);
    /* The end is sticky. */
    chunk = SENTINEL;
    CHECK_STATUS(ms_stream_next(stream, &chunk), MS_STATUS_END_OF_STREAM);
    CHECK(chunk == NULL);
    CHECK_STATUS(ms_stream_next_timeout(stream, 0, &chunk), MS_STATUS_END_OF_STREAM);
    ms_stream_free(stream);
    return timeouts;
}

static void test_stream_to_the_end(ms_registry *registry) {
    char blocking[1024] = "", polled[1024] = "";
    read_stream(registry, 0, blocking, sizeof blocking);
    int timeouts = read_stream(registry, 1, polled, sizeof polled);
    printf("streamed: \"%s\"; polled: \"%s\" (%d timeouts)\n", blocking, polled, timeouts);
    /* Greedy decoding: the streams repeat the whole completion's text. */
    CHECK(blocking[0] != '\0');
    CHECK(strcmp(blocking, completion_text) == 0);
    CHECK(strcmp(polled, completion_text) == 0);
}

/* Reads the number after `"completion_tokens":` inside the `"usage":{` object of a service info. */
static long service_completion_tokens(const char *info) {
    const char *usage = info ? strstr(info, "\"usage\":{") : NULL;
    const char *tokens = usage ? strstr(usage, "\"completion_tokens\":") : NULL;
    return tokens ? strtol(tokens + strlen("\"completion_tokens\":"), NULL, 10) : -1;
}

/* Freeing a stream early cancels its generation. Each of these requests would generate 64
 * tokens if left alone (end-of-text tokens are banned by logit_bias, so the model cannot stop
 * early), so the service's completion-token count shows whether they were cut short. They
 * repeat the completion's messages, so the slot's cached prompt is reused (less to decode). */
static long test_early_free(ms_registry *registry) {
    const char *request =
        "{\"model\":\"" ACCESS_NAME "\"," MESSAGES("Say hi.") ","
        "\"max_tokens\":64,\"temperature\":0,\"logit_bias\":{\"0\":-100,\"2\":-100}}";
    char *before = NULL;
    CHECK_STATUS(ms_services_retrieve(registry, ACCESS_NAME, &before), MS_STATUS_OK);
    long tokens_before = service_completion_tokens(before);
    ms_string_free(before);
    CHECK(tokens_before >= 0);

    /* Freed right away, before any chunk was read. */
    ms_stream *stream = NULL;
    CHECK_STATUS(ms_chat_completions_create_stream(registry, request, &stream), MS_STATUS_OK);
    ms_stream_free(stream);

    /* Freed after the role chunk and the first piece of text. */
    stream = NULL;
    CHECK_STATUS(ms_chat_completions_create_stream(registry, request, &stream), MS_STATUS_OK);
    char *chunk = NULL;
    CHECK_STATUS(ms_stream_next(stream, &chunk), MS_STATUS_OK);
    CHECK(contains(chunk, "\"role\":\"assistant\""));
    ms_string_free(chunk);
    chunk = NULL;
    CHECK_STATUS(ms_stream_next(stream, &chunk), MS_STATUS_OK);
    CHECK(contains(chunk, "\"content\":\""));
    ms_string_free(chunk);
    ms_stream_free(stream);
    return tokens_before;
}

/* The number after `key` in `json`, searched from the first `anchor` on; -1 if absent. */
static long number_after(const char *json, const char *anchor, const char *key) {
    const char *from = json ? strstr(json, anchor) : NULL;
    const char *at = from ? strstr(from, key) : NULL;
    return at ? strtol(at + strlen(key), NULL, 10) : -1;
}

/* `services.metrics` (typed and by name) after the completions so far: test_completion's
 * answered request and its refused too-long one, then two more answered here. */
static void test_metrics(ms_registry *registry) {
    char *out = NULL;
    for (int i = 0; i < 2; i++) {
        CHECK_STATUS(ms_call(registry, "chat.completions.create", REQUEST, &out), MS_STATUS_OK);
        ms_string_free(out);
        out = NULL;
    }
    char *metrics = NULL;
    CHECK_STATUS(ms_services_metrics(registry, ACCESS_NAME, &metrics), MS_STATUS_OK);
    printf("metrics: %.160s...\n", metrics ? metrics : "(none)");
    CHECK(contains(metrics, "\"object\":\"list\""));
    CHECK(contains(metrics, "\"access_name\":\"" ACCESS_NAME "\""));
    CHECK(contains(metrics, "\"requests\":{\"200\":3,\"400\":1}"));
    CHECK(number_after(metrics, "\"time_to_first_token\":{", "\"count\":") == 3);
    CHECK(number_after(metrics, "\"latency\":{", "\"count\":") == 3);
    /* The same counters as the service's usage. */
    CHECK_STATUS(ms_services_retrieve(registry, ACCESS_NAME, &out), MS_STATUS_OK);
    long tokens = service_completion_tokens(out);
    CHECK(tokens > 0);
    CHECK(number_after(metrics, "{", "\"completion_tokens\":") == tokens);
    ms_string_free(out);
    out = NULL;
    /* NULL means every service; by name through the one entry, the same answer. */
    CHECK_STATUS(ms_services_metrics(registry, NULL, &out), MS_STATUS_OK);
    CHECK(out != NULL && metrics != NULL && strcmp(out, metrics) == 0);
    ms_string_free(out);
    out = NULL;
    CHECK_STATUS(ms_call(registry, "services.metrics", "{\"access_name\":\"" ACCESS_NAME "\"}", &out),
                 MS_STATUS_OK);
    CHECK(out != NULL && metrics != NULL && strcmp(out, metrics) == 0);
    ms_string_free(out);
    ms_string_free(metrics);
    out = SENTINEL;
    CHECK_STATUS(ms_services_metrics(registry, "nobody/none", &out), MS_STATUS_NOT_FOUND);
    CHECK(out == NULL);
    CHECK_STATUS(ms_services_metrics(registry, ACCESS_NAME, NULL), MS_STATUS_NULL_ARGUMENT);
}

static void test_management(ms_registry *registry, int quick) {
    char *out = NULL;
    CHECK_STATUS(ms_services_list(registry, &out), MS_STATUS_OK);
    CHECK(contains(out, "\"access_name\":\"" ACCESS_NAME "\""));
    ms_string_free(out);
    CHECK_STATUS(ms_models_list(registry, &out), MS_STATUS_OK);
    CHECK(contains(out, "{\"id\":\"" ACCESS_NAME "\",\"object\":\"model\""));
    ms_string_free(out);
    CHECK_STATUS(ms_models_retrieve(registry, ACCESS_NAME, &out), MS_STATUS_OK);
    CHECK(contains(out, "\"owned_by\":\"modelservice\""));
    ms_string_free(out);

    CHECK_STATUS(ms_services_scale(registry, ACCESS_NAME, 0, NULL), MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "instances");
    if (quick) return;
    CHECK_STATUS(ms_services_scale(registry, ACCESS_NAME, 2, &out), MS_STATUS_OK);
    CHECK(contains(out, "\"instances\":2"));
    ms_string_free(out);
    CHECK_STATUS(ms_services_scale(registry, ACCESS_NAME, 1, NULL), MS_STATUS_OK);
    CHECK_STATUS(ms_services_retrieve(registry, ACCESS_NAME, &out), MS_STATUS_OK);
    CHECK(contains(out, "\"instances\":1"));
    ms_string_free(out);
}

static void test_delete(ms_registry *registry, long tokens_before_early_free) {
    char *info = SENTINEL;
    CHECK_STATUS(ms_services_delete(registry, ACCESS_NAME, "not-the-name", &info),
                 MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "confirm");
    CHECK(info == NULL);

    /* Delete drains the service, so its counters are final here. */
    CHECK_STATUS(ms_services_delete(registry, ACCESS_NAME, SERVICE_NAME, &info), MS_STATUS_OK);
    long tokens = service_completion_tokens(info);
    long early = tokens - tokens_before_early_free;
    printf("completion tokens of the two early-freed 64-token streams: %ld\n", early);
    CHECK(early >= 1);  /* the second one produced text before it was freed */
    CHECK(early < 32);  /* both were cut short, far below 2 x 64 */
    ms_string_free(info);

    char *out = NULL;
    CHECK_STATUS(ms_services_retrieve(registry, ACCESS_NAME, &out), MS_STATUS_NOT_FOUND);
    CHECK_STATUS(ms_chat_completions_create(registry, REQUEST, &out), MS_STATUS_NOT_FOUND);
    CHECK_STATUS(ms_services_list(registry, &out), MS_STATUS_OK);
    CHECK(contains(out, "\"data\":[]"));
    ms_string_free(out);
}

/* ---- The one entry: ms_call, ms_call_stream, ms_operations ---- */

static void test_call_boundary(ms_registry *registry) {
    char *out = SENTINEL;
    ms_stream *stream = SENTINEL;

    CHECK_STATUS(ms_operations(NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "names_json_out");
    CHECK_STATUS(ms_call(NULL, "models.list", NULL, &out), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "registry");
    CHECK(out == NULL);
    CHECK_STATUS(ms_call(registry, NULL, "{}", &out), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "op");
    CHECK_STATUS(ms_call(registry, "models.list", "{}", NULL), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "result_json_out");
    CHECK_STATUS(ms_call_stream(registry, NULL, "{}", &stream), MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "op");
    CHECK(stream == NULL);
    CHECK_STATUS(ms_call_stream(registry, "chat.completions.create", "{}", NULL),
                 MS_STATUS_NULL_ARGUMENT);
    check_error("null_argument", "stream_out");

    CHECK_STATUS(ms_call(registry, "models.\xff", "{}", &out), MS_STATUS_INVALID_UTF8);
    check_error("invalid_utf8", "op");
    CHECK_STATUS(ms_call(registry, "models.list", "{\"a\":\"\xc3\x28\"}", &out), MS_STATUS_INVALID_UTF8);
    check_error("invalid_utf8", "body_json");
    CHECK_STATUS(ms_call_stream(registry, "chat.completions.create", "\x80", &stream),
                 MS_STATUS_INVALID_UTF8);
    check_error("invalid_utf8", "body_json");

    /* An unknown operation is a 400 that lists the known ones. */
    CHECK_STATUS(ms_call(registry, "chat.complete", "{}", &out), MS_STATUS_INVALID_REQUEST);
    CHECK(contains(ms_last_error_message(), "chat.completions.create"));
    CHECK(out == NULL);
    CHECK_STATUS(ms_call_stream(registry, "chat.complete", "{}", &stream), MS_STATUS_INVALID_REQUEST);
    CHECK(stream == NULL);
    /* An operation that does not stream is refused by the streaming entry, naming `stream`. */
    CHECK_STATUS(ms_call_stream(registry, "services.list", NULL, &stream), MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "stream");
    CHECK(stream == NULL);

    /* NULL and "" are "no parameters"; an unknown parameter is refused by name. */
    CHECK_STATUS(ms_call(registry, "services.list", NULL, &out), MS_STATUS_OK);
    CHECK(ms_last_error_json() == NULL);
    CHECK(contains(out, "{\"object\":\"list\",\"data\":[]}"));
    ms_string_free(out);
    CHECK_STATUS(ms_call(registry, "models.list", "", &out), MS_STATUS_OK);
    CHECK(contains(out, "{\"object\":\"list\",\"data\":[]}"));
    ms_string_free(out);
    CHECK_STATUS(ms_call(registry, "services.list", "{\"limit\":3}", &out), MS_STATUS_INVALID_REQUEST);
    check_error("invalid_value", "limit");
}

/* One tab-separated field of `line`, cut off in place; `*rest` moves past it. */
static const char *next_field(char **rest) {
    char *start = *rest;
    if (!start) return "";
    char *tab = strchr(start, '\t');
    if (tab) {
        *tab = '\0';
        *rest = tab + 1;
    } else {
        start[strcspn(start, "\n")] = '\0';
        *rest = NULL;
    }
    return start;
}

/* Each bad request of the corpus through ms_call: the status's HTTP status and the envelope's
 * type, code and param are the ones the corpus names. Returns the number of cases. */
static int run_corpus(ms_registry *registry, FILE *corpus) {
    char *line = NULL;
    size_t cap = 0;
    int cases = 0;
    while (getline(&line, &cap, corpus) > 0) {
        char *rest = line;
        const char *name = next_field(&rest), *op = next_field(&rest), *body = next_field(&rest);
        int http = atoi(next_field(&rest));
        const char *type = next_field(&rest), *code = next_field(&rest);
        const char *param = next_field(&rest);
        char *out = SENTINEL, want[256];
        int before = failures;

        ms_status status = ms_call(registry, op, body, &out);
        CHECK(status != MS_STATUS_OK);
        CHECK(out == NULL);
        CHECK(ms_status_http_status(status) == http);
        const char *json = ms_last_error_json();
        snprintf(want, sizeof want, "\"type\":\"%s\"", type);
        CHECK(contains(json, want));
        snprintf(want, sizeof want, "\"code\":\"%s\"", code);
        CHECK(contains(json, want));
        if (strcmp(param, "-") == 0) snprintf(want, sizeof want, "\"param\":null");
        else snprintf(want, sizeof want, "\"param\":\"%s\"", param);
        CHECK(contains(json, want));
        if (failures != before)
            fprintf(stderr, "  corpus case \"%s\" (%s): want %d %s %s %s; got %s: %s\n", name, op,
                    http, type, code, param, ms_status_name(status), json ? json : "(none)");
        cases++;
    }
    free(line);
    return cases;
}

/* The body each operation is called with in the parity check, on the corpus's service;
 * `answer` is a piece of the JSON it must answer with. Deploy comes first (with the corpus's
 * spec, body NULL here), delete last. */
#define CORPUS_CHAT                                                                       \
    "{\"model\":\"corpus/smol\"," MESSAGES("Say hi.") ",\"max_tokens\":2,\"temperature\":0}"
static const struct {
    const char *op;
    int phase; /* 0: first, 1: then, 2: last */
    const char *body;
    const char *answer;
} OPERATION_BODIES[] = {
    {"services.deploy", 0, NULL, "\"access_name\":\"corpus/smol\""},
    {"chat.completions.create", 1, CORPUS_CHAT, "\"object\":\"chat.completion\""},
    {"models.list", 1, NULL, "\"id\":\"corpus/smol\",\"object\":\"model\""},
    {"models.retrieve", 1, "{\"model\":\"corpus/smol\"}", "\"object\":\"model\""},
    {"services.list", 1, "", "\"access_name\":\"corpus/smol\""},
    {"completions.create", 1, "{\"model\":\"corpus/smol\",\"prompt\":[\"Say\",\"hi\"],\"max_tokens\":2}",
     "\"object\":\"text_completion\""},
    {"embeddings.create", 1, "{\"model\":\"corpus/minilm\",\"input\":\"hi\"}", "\"object\":\"embedding\""},
    {"services.retrieve", 1, "{\"access_name\":\"corpus/smol\"}", "\"status\":\"running\""},
    {"services.scale", 1, "{\"access_name\":\"corpus/smol\",\"instances\":1}", "\"instances\":1"},
    /* After the chat and text completions of this phase (operations run in ms_operations' order). */
    {"services.metrics", 1, "{\"access_name\":\"corpus/smol\"}", "\"requests\":{\"200\":"},
    {"services.delete", 2, "{\"access_name\":\"corpus/smol\",\"confirm\":\"corpus\"}",
     "\"access_name\":\"corpus/smol\""},
};
#define OPERATION_COUNT (sizeof OPERATION_BODIES / sizeof OPERATION_BODIES[0])

/* Reads the operation names of `ms_operations` (a JSON array of plain strings) into `names`. */
static size_t operation_names(char names[][64], size_t max) {
    char *json = NULL;
    size_t count = 0;
    CHECK_STATUS(ms_operations(&json), MS_STATUS_OK);
    CHECK(json != NULL && json[0] == '[');
    for (const char *p = json ? strchr(json, '"') : NULL; p && count < max; p = strchr(p, '"')) {
        const char *end = strchr(p + 1, '"');
        if (!end) break;
        snprintf(names[count++], 64, "%.*s", (int)(end - p - 1), p + 1);
        p = end + 1;
    }
    ms_string_free(json);
    return count;
}

/* Streams a chat completion through ms_call_stream and reads it to the end. */
static void test_call_stream(ms_registry *registry) {
    ms_stream *stream = NULL;
    char *chunk = NULL;
    int count = 0;
    ms_status status;
    CHECK_STATUS(ms_call_stream(registry, "chat.completions.create", CORPUS_CHAT, &stream),
                 MS_STATUS_OK);
    if (!stream) return;
    while ((status = ms_stream_next(stream, &chunk)) == MS_STATUS_OK) {
        CHECK(contains(chunk, "\"object\":\"chat.completion.chunk\""));
        count++;
        ms_string_free(chunk);
    }
    CHECK(status == MS_STATUS_END_OF_STREAM);
    CHECK(count >= 2); /* the role, then text or the finish */
    ms_stream_free(stream);

    /* A legacy text completion of two prompts streams `text_completion` chunks of both choices. */
    int seen[2] = {0, 0};
    stream = NULL;
    CHECK_STATUS(ms_call_stream(registry, "completions.create",
                                "{\"model\":\"corpus/smol\",\"prompt\":[\"One,\",\"Two,\"],"
                                "\"max_tokens\":3,\"temperature\":0}",
                                &stream),
                 MS_STATUS_OK);
    if (!stream) return;
    while ((status = ms_stream_next(stream, &chunk)) == MS_STATUS_OK) {
        CHECK(contains(chunk, "\"object\":\"text_completion\""));
        seen[0] |= contains(chunk, "\"index\":0");
        seen[1] |= contains(chunk, "\"index\":1");
        ms_string_free(chunk);
    }
    CHECK(status == MS_STATUS_END_OF_STREAM);
    CHECK(seen[0] && seen[1]);
    ms_stream_free(stream);
}

/* Parity: every operation ms_operations names is served by ms_call and answers JSON; in
 * between, the corpus of bad requests runs against the service the deploy made, and
 * ms_call_stream streams a completion. */
static void test_operations(ms_registry *registry, const char *corpus_path, int quick) {
    char names[32][64];
    size_t count = operation_names(names, 32);
    CHECK(count >= OPERATION_COUNT);
    int called[32] = {0};

    FILE *corpus = fopen(corpus_path, "r");
    CHECK(corpus != NULL);
    if (!corpus) return;
    char *spec = NULL;
    size_t cap = 0;
    CHECK(getline(&spec, &cap, corpus) > 0 && strncmp(spec, "service\t", 8) == 0);
    char *rest = spec;
    next_field(&rest);
    const char *spec_json = next_field(&rest);

    /* embeddings.create needs an embedding service: the real MiniLM, from the environment. */
    const char *embedder = getenv("MS_TEST_EMBEDDER_MODEL");
    CHECK(embedder != NULL);
    if (embedder) {
        char spec_minilm[1024];
        snprintf(spec_minilm, sizeof spec_minilm,
                 "{\"name\":\"minilm\",\"access_name\":\"corpus/minilm\",\"model\":\"%s\",\"threads\":1}",
                 embedder);
        char *info = NULL;
        CHECK_STATUS(ms_call(registry, "services.deploy", spec_minilm, &info), MS_STATUS_OK);
        ms_string_free(info);
    }

    for (int phase = 0; phase < 3; phase++) {
        for (size_t i = 0; i < count; i++) {
            for (size_t k = 0; k < OPERATION_COUNT; k++) {
                if (strcmp(OPERATION_BODIES[k].op, names[i]) != 0 || OPERATION_BODIES[k].phase != phase)
                    continue;
                const char *body = phase == 0 ? spec_json : OPERATION_BODIES[k].body;
                char *answer = SENTINEL;
                CHECK_STATUS(ms_call(registry, names[i], body, &answer), MS_STATUS_OK);
                CHECK(answer != NULL && answer[0] == '{');
                CHECK(contains(answer, OPERATION_BODIES[k].answer));
                if (!contains(answer, OPERATION_BODIES[k].answer))
                    fprintf(stderr, "  %s answered %s\n", names[i], answer ? answer : "(none)");
                ms_string_free(answer);
                called[i]++;
            }
        }
        if (phase == 0) {
            int cases = run_corpus(registry, corpus);
            printf("corpus: %d bad requests through ms_call\n", cases);
            CHECK(cases >= 30);
        }
        /* --quick leaves it out: the typed stream function, which the early-freed streams
         * test, goes through the same streaming entry. */
        if (phase == 1 && !quick) test_call_stream(registry);
    }
    if (embedder) {
        char *info = NULL;
        CHECK_STATUS(ms_call(registry, "services.delete",
                             "{\"access_name\":\"corpus/minilm\",\"confirm\":\"minilm\"}", &info),
                     MS_STATUS_OK);
        ms_string_free(info);
    }
    for (size_t i = 0; i < count; i++) {
        CHECK(called[i] == 1);
        if (called[i] != 1) fprintf(stderr, "  no parity body for operation %s: add one\n", names[i]);
    }
    printf("parity: %zu operations served through ms_call\n", count);
    free(spec);
    fclose(corpus);
}

/* Prints the seconds since the start before each part, to see where a slow run spends time. */
static void part(const char *name) {
    static struct timespec start;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (start.tv_sec == 0 && start.tv_nsec == 0) start = now;
    double t = (double)(now.tv_sec - start.tv_sec) + (double)(now.tv_nsec - start.tv_nsec) / 1e9;
    printf("[%7.2fs] %s (%d checks so far)\n", t, name, checks);
    fflush(stdout);
}

int main(int argc, char **argv) {
    /* --quick (for valgrind) keeps one short completion and the early-freed streams, and
     * leaves out the full stream and the scaling, which add decode work but no new ABI paths;
     * it also decodes on one thread. */
    int quick = argc > 3 && strcmp(argv[3], "--quick") == 0;
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf CORPUS.tsv [--quick]\n", argv[0]);
        return 2;
    }
    ms_registry *registry = NULL;
    CHECK_STATUS(ms_registry_new(&registry), MS_STATUS_OK);
    if (!registry) return 1;

    part("the one entry: boundary, every operation, the corpus of bad requests");
    test_call_boundary(registry);
    test_operations(registry, argv[2], quick);
    part("static strings, null arguments, invalid UTF-8, malformed JSON, unknown model");
    test_static_strings();
    test_null_arguments(registry);
    test_invalid_utf8(registry);
    test_malformed_json(registry);
    test_unknown_model(registry);
    test_last_error_is_per_thread(registry);
    part("deploy");
    /* Under valgrind, which runs one thread at a time, worker threads waiting at a barrier
     * only burn time: decode with one thread there. */
    deploy(registry, argv[1], quick ? 1 : 2);
    part("completion");
    test_completion(registry);
    part("metrics");
    test_metrics(registry);
    if (!quick) {
        part("stream to the end");
        test_stream_to_the_end(registry);
        part("structured output");
        test_structured(registry);
        part("tool round trip");
        test_tool_round_trip(registry);
    }
    part("early-freed streams");
    long tokens_before = test_early_free(registry);
    part("management");
    test_management(registry, quick);
    part("delete");
    test_delete(registry, tokens_before);
    part("free");
    ms_registry_free(registry);
    printf("%d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}
