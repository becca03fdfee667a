/*
 * Deploys SmolLM2 as a model service, prints a chat completion, then streams a second one,
 * all through the one entry (`ms_call`, `ms_call_stream`), which serves every operation by name.
 *
 *   make -C bindings-c example            (builds bindings-c/build/chat)
 *   bindings-c/build/chat [model.gguf] ["prompt"]
 *
 * The model path comes from the first argument, else from $MODELSERVICE_MODEL
 * (`scripts/fetch-models smollm2` prints where the cached file is).
 *
 * Requests and results are OpenAI JSON strings. A real program would use a JSON library
 * (cJSON, jansson, ...); to stay dependency-free this one builds JSON with a small escaper and
 * reads the one field it prints, `content`, with a small scanner.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modelservice.h"

#define ACCESS_NAME "u-8105f7322477/test"

/* Appends `s` to `out` as a JSON string literal (with quotes); `out` must have room. */
static void json_quote(char *out, const char *s) {
    char *o = out + strlen(out);
    *o++ = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
        } else if (c < 0x20) {
            o += sprintf(o, "\\u%04x", c);
        } else {
            *o++ = (char)c;
        }
    }
    *o++ = '"';
    *o = '\0';
}

/* Writes the UTF-8 encoding of code point `cp` to `f`. */
static void put_utf8(FILE *f, unsigned long cp) {
    if (cp < 0x80) {
        fputc((int)cp, f);
    } else if (cp < 0x800) {
        fputc((int)(0xC0 | (cp >> 6)), f);
        fputc((int)(0x80 | (cp & 0x3F)), f);
    } else if (cp < 0x10000) {
        fputc((int)(0xE0 | (cp >> 12)), f);
        fputc((int)(0x80 | ((cp >> 6) & 0x3F)), f);
        fputc((int)(0x80 | (cp & 0x3F)), f);
    } else {
        fputc((int)(0xF0 | (cp >> 18)), f);
        fputc((int)(0x80 | ((cp >> 12) & 0x3F)), f);
        fputc((int)(0x80 | ((cp >> 6) & 0x3F)), f);
        fputc((int)(0x80 | (cp & 0x3F)), f);
    }
}

/* Prints the first `"content":"..."` string of a JSON text, unescaped. Returns the number of
 * bytes of JSON it read from the string's value (0 if there was none). */
static size_t print_content(FILE *f, const char *json) {
    const char *key = "\"content\":\"";
    const char *p = strstr(json, key);
    if (!p) return 0;
    const char *start = p += strlen(key);
    while (*p && *p != '"') {
        if (*p != '\\') {
            fputc(*p++, f);
            continue;
        }
        p++;
        switch (*p) {
        case 'n': fputc('\n', f); break;
        case 't': fputc('\t', f); break;
        case 'r': fputc('\r', f); break;
        case 'b': fputc('\b', f); break;
        case 'f': fputc('\f', f); break;
        case 'u': {
            unsigned long cp = strtoul((char[5]){p[1], p[2], p[3], p[4], 0}, NULL, 16);
            p += 4;
            /* A surrogate pair: the low half follows as another \uXXXX. */
            if (cp >= 0xD800 && cp < 0xDC00 && p[1] == '\\' && p[2] == 'u') {
                unsigned long lo = strtoul((char[5]){p[3], p[4], p[5], p[6], 0}, NULL, 16);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            put_utf8(f, cp);
            break;
        }
        default: fputc(*p, f); break; /* \" \\ \/ */
        }
        p++;
    }
    return (size_t)(p - start);
}

static int fail(const char *what, ms_status status) {
    const char *error = ms_last_error_json();
    fprintf(stderr, "%s failed: %s\n%s\n", what, ms_status_name(status), error ? error : "");
    return 1;
}

int main(int argc, char **argv) {
    const char *model = argc > 1 ? argv[1] : getenv("MODELSERVICE_MODEL");
    const char *prompt = argc > 2 ? argv[2] : "Say this is a test!";
    if (!model || !*model) {
        fprintf(stderr, "usage: %s MODEL.gguf [PROMPT]   (or set MODELSERVICE_MODEL)\n", argv[0]);
        return 2;
    }

    ms_registry *registry = NULL;
    ms_status status = ms_registry_new(&registry);
    if (status != MS_STATUS_OK) return fail("ms_registry_new", status);

    /* Deploy: a display name, a unique access name, and the GGUF file. */
    char *spec = calloc(1, strlen(model) * 6 + 256);
    strcat(spec, "{\"name\": \"test\", \"access_name\": \"" ACCESS_NAME "\", \"context_length\": 1024, "
                 "\"slots\": 2, \"model\": ");
    json_quote(spec, model);
    strcat(spec, "}");
    char *info = NULL;
    status = ms_call(registry, "services.deploy", spec, &info);
    free(spec);
    if (status != MS_STATUS_OK) {
        ms_registry_free(registry);
        return fail("services.deploy", status);
    }
    fprintf(stderr, "deployed: %s\n", info);
    ms_string_free(info);

    char *request = calloc(1, strlen(prompt) * 6 + 256);
    strcat(request, "{\"model\": \"" ACCESS_NAME "\", \"max_tokens\": 48, \"temperature\": 0, "
                    "\"messages\": [{\"role\": \"user\", \"content\": ");
    json_quote(request, prompt);
    strcat(request, "}]}");

    /* A whole completion: the `chat.completion` object as JSON. */
    char *response = NULL;
    status = ms_call(registry, "chat.completions.create", request, &response);
    if (status != MS_STATUS_OK) {
        free(request);
        ms_registry_free(registry);
        return fail("chat.completions.create", status);
    }
    fprintf(stderr, "response: %s\n", response);
    printf("answer: ");
    print_content(stdout, response);
    printf("\n");
    ms_string_free(response);

    /* A streamed completion: pull `chat.completion.chunk`s until the end. */
    ms_stream *stream = NULL;
    status = ms_call_stream(registry, "chat.completions.create", request, &stream);
    free(request);
    if (status != MS_STATUS_OK) {
        ms_registry_free(registry);
        return fail("chat.completions.create (stream)", status);
    }
    printf("streamed: ");
    char *chunk = NULL;
    while ((status = ms_stream_next(stream, &chunk)) == MS_STATUS_OK) {
        print_content(stdout, chunk);
        fflush(stdout);
        ms_string_free(chunk);
    }
    printf("\n");
    ms_stream_free(stream);
    if (status != MS_STATUS_END_OF_STREAM) {
        ms_registry_free(registry);
        return fail("ms_stream_next", status);
    }

    /* Delete asks for the display name as confirmation (a typed convenience over ms_call). */
    status = ms_services_delete(registry, ACCESS_NAME, "test", NULL);
    ms_registry_free(registry);
    if (status != MS_STATUS_OK) return fail("ms_services_delete", status);
    return 0;
}
