/*
 * A program that exits while the engine decodes: it deploys SmolLM2, starts long generations
 * (a streamed one and, on another thread, a whole one), reads a few chunks, and returns from
 * main without freeing anything. The exit must be clean (status 0), not a crash in llama.cpp's
 * static destructors racing the worker threads.
 *
 *   exit_mid_decode MODEL.gguf THREADS
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "modelservice.h"

#define LONG_REQUEST                                                                       \
    "{\"model\":\"u/exit\",\"messages\":[{\"role\":\"user\",\"content\":\"Write a long story.\"}]," \
    "\"max_tokens\":900,\"logit_bias\":{\"0\":-100,\"2\":-100}}"

static void *whole_answer(void *registry) {
    char *out = NULL;
    ms_call(registry, "chat.completions.create", LONG_REQUEST, &out);
    ms_string_free(out);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    ms_registry *registry = NULL;
    if (ms_registry_new(&registry) != MS_STATUS_OK) return 1;
    char spec[4096];
    snprintf(spec, sizeof spec,
             "{\"name\":\"exit\",\"access_name\":\"u/exit\",\"model\":\"%s\","
             "\"context_length\":1024,\"slots\":2,\"instances\":2,\"threads\":%s}",
             argv[1], argv[2]);
    char *info = NULL;
    if (ms_call(registry, "services.deploy", spec, &info) != MS_STATUS_OK) {
        fprintf(stderr, "deploy: %s\n", ms_last_error_json());
        return 1;
    }
    ms_string_free(info);
    pthread_t thread;
    pthread_create(&thread, NULL, whole_answer, registry);
    ms_stream *stream = NULL;
    if (ms_call_stream(registry, "chat.completions.create", LONG_REQUEST, &stream) != MS_STATUS_OK) {
        return 1;
    }
    for (int i = 0; i < 4; i++) {
        char *chunk = NULL;
        if (ms_stream_next(stream, &chunk) != MS_STATUS_OK) return 1;
        ms_string_free(chunk);
    }
    printf("exiting mid-decode\n");
    fflush(stdout);
    exit(0);
}
