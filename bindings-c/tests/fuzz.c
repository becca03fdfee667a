/*
 * Fuzzing through the C ABI: mutated requests (tests/fuzz_cases.py writes them, one per line:
 * operation, TAB, the body in hex) through ms_call and ms_call_stream on a deployed SmolLM2
 * service, natively and under valgrind. Every case must end in a success or a 4xx status with
 * an error envelope, never a 5xx, a crash, an invalid memory access or a leak.
 *
 *   fuzz --operations                 print ms_operations' list (what the generator mutates)
 *   fuzz MODEL.gguf CASES.tsv         run the cases
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelservice.h"

static int failures = 0;

static int contains(const char *haystack, const char *needle) {
    return haystack != NULL && strstr(haystack, needle) != NULL;
}

/* The body from its hex text; NULL for an empty field (no body at all). */
static char *unhex(const char *hex) {
    size_t n = strlen(hex) / 2;
    if (n == 0) return NULL;
    char *out = malloc(n + 1);
    if (!out) abort();
    for (size_t i = 0; i < n; i++) {
        unsigned int byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) byte = '?';
        out[i] = (char)byte;
    }
    out[n] = '\0';
    return out;
}

/* A failed call must be a 4xx with the OpenAI envelope. */
static void check_refusal(long line, const char *entry, const char *op, ms_status status) {
    unsigned http = ms_status_http_status(status);
    const char *error = ms_last_error_json();
    if (http < 400 || http >= 500 || !contains(error, "\"error\":") ||
        !contains(error, "\"type\":")) {
        fprintf(stderr, "case %ld: %s(%s) -> %s (HTTP %u): %s\n", line, entry, op,
                ms_status_name(status), http, error ? error : "(no error)");
        failures++;
    }
}

static void run_case(ms_registry *registry, long line, const char *op, const char *body) {
    char *out = NULL;
    ms_status status = ms_call(registry, op, body, &out);
    if (status == MS_STATUS_OK) {
        if (out == NULL || out[0] != '{') {
            fprintf(stderr, "case %ld: ms_call(%s) -> OK without a JSON object\n", line, op);
            failures++;
        }
        ms_string_free(out);
    } else {
        check_refusal(line, "ms_call", op, status);
    }

    ms_stream *stream = NULL;
    status = ms_call_stream(registry, op, body, &stream);
    if (status != MS_STATUS_OK) {
        check_refusal(line, "ms_call_stream", op, status);
        return;
    }
    /* A few chunks, then free: the early-free (cancel) path on every streamed case. */
    for (int i = 0; i < 3; i++) {
        char *chunk = NULL;
        status = ms_stream_next(stream, &chunk);
        if (status == MS_STATUS_END_OF_STREAM) break;
        if (status != MS_STATUS_OK) {
            check_refusal(line, "ms_stream_next", op, status);
            break;
        }
        if (!contains(chunk, "\"object\":\"chat.completion.chunk\"")) {
            fprintf(stderr, "case %ld: a chunk that is not one: %s\n", line, chunk);
            failures++;
        }
        ms_string_free(chunk);
    }
    ms_stream_free(stream);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--operations") == 0) {
        char *names = NULL;
        if (ms_operations(&names) != MS_STATUS_OK) return 1;
        printf("%s\n", names);
        ms_string_free(names);
        return 0;
    }
    if (argc != 3) {
        fprintf(stderr, "usage: %s MODEL.gguf CASES.tsv | --operations\n", argv[0]);
        return 2;
    }
    FILE *cases = fopen(argv[2], "r");
    if (!cases) {
        perror(argv[2]);
        return 2;
    }
    ms_registry *registry = NULL;
    if (ms_registry_new(&registry) != MS_STATUS_OK) return 1;
    /* The corpus's service, with a context short enough that no answer is long. */
    char spec[4096];
    snprintf(spec, sizeof spec,
             "{\"name\":\"corpus\",\"access_name\":\"corpus/smol\",\"model\":\"%s\","
             "\"context_length\":64,\"slots\":2,\"threads\":1}",
             argv[1]);
    char *info = NULL;
    if (ms_call(registry, "services.deploy", spec, &info) != MS_STATUS_OK) {
        fprintf(stderr, "deploy failed: %s\n", ms_last_error_json());
        return 1;
    }
    ms_string_free(info);

    char *line = NULL;
    size_t cap = 0;
    long count = 0;
    while (getline(&line, &cap, cases) > 0) {
        line[strcspn(line, "\r\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        *tab = '\0';
        char *body = unhex(tab + 1);
        run_case(registry, ++count, line, body);
        free(body);
    }
    free(line);
    fclose(cases);

    /* Still serving after every case. */
    const char *request =
        "{\"model\":\"corpus/smol\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}],"
        "\"max_tokens\":2}";
    char *answer = NULL;
    if (ms_call(registry, "chat.completions.create", request, &answer) != MS_STATUS_OK) {
        fprintf(stderr, "the service stopped serving: %s\n", ms_last_error_json());
        failures++;
    }
    ms_string_free(answer);
    ms_registry_free(registry);
    printf("fuzz: %ld cases through ms_call and ms_call_stream, %d failures\n", count, failures);
    return failures == 0 ? 0 : 1;
}
