// Typings of the `modelservice` npm package: the `OpenAI` client of index.js. The shapes are
// the engine's serde types (core/src/api); test/typings.test.js checks them against live objects.


// CommonJS: `module.exports = OpenAI`; the types and error classes hang off it, as in the SDK.
export = OpenAI

/** The in-process client: `new OpenAI({ services: [...] })` in place of the `openai` SDK's. */
declare class OpenAI {
  constructor(options?: OpenAI.ClientOptions)
  readonly apiKey: string | null
  readonly baseURL: string | null
  /** The services this client serves from; pass it (or the client) to share them. */
  readonly registry: OpenAI.Registry
  readonly chat: OpenAI.Chat
  readonly models: OpenAI.Models
  readonly services: OpenAI.Services
  /** Resolves once the services given to the constructor run. */
  ready(): Promise<OpenAI.ServiceInfo[]>

  static readonly OpenAI: typeof OpenAI
  static readonly default: typeof OpenAI
  /** How many times this process has loaded a model file (scaling never adds to it). */
  static modelLoads(): number
}

declare namespace OpenAI {
  /** Who wrote a message. */
  export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool'

  /** One content part of a message given as an array; only `text` parts are served. */
  export interface ChatCompletionContentPartText {
    type: 'text'
    text: string
  }

  /** One message of the conversation. */
  export interface ChatCompletionMessageParam {
    role: Role
    content?: string | ChatCompletionContentPartText[] | null
    name?: string
    /** Accepted so tool-using conversations parse; handed to the chat template as-is. */
    tool_calls?: unknown
    tool_call_id?: string
  }

  /** The body of `chat.completions.create`. Fields the engine does not act on are ignored. */
  export interface ChatCompletionCreateParamsBase {
    /** The service's access name, e.g. `u-8105f7322477/test`. */
    model: string
    messages: ChatCompletionMessageParam[]
    /** 0 to 2; 0 is greedy (deterministic). */
    temperature?: number | null
    top_p?: number | null
    max_tokens?: number | null
    max_completion_tokens?: number | null
    /** Up to 4 sequences. */
    stop?: string | string[] | null
    seed?: number | null
    presence_penalty?: number | null
    frequency_penalty?: number | null
    /** Token id (as a string) to a bias from -100 to 100. */
    logit_bias?: Record<string, number> | null
    /** Choices to generate, 1 to 16. */
    n?: number | null
    user?: string
    stream?: boolean | null
    stream_options?: ChatCompletionStreamOptions | null
    /** llama.cpp extra: keep only the k most likely tokens (0 disables). */
    top_k?: number | null
    /** llama.cpp extra: drop tokens below `min_p` times the top probability. */
    min_p?: number | null
    /** llama.cpp extra: multiplicative penalty on repeated tokens (1 disables). */
    repeat_penalty?: number | null
    /** Anything else the `openai` SDK sends (tools, response_format ...) is accepted and ignored. */
    [extra: string]: unknown
  }

  export interface ChatCompletionStreamOptions {
    include_usage?: boolean | null
  }

  export interface ChatCompletionCreateParamsNonStreaming extends ChatCompletionCreateParamsBase {
    stream?: false | null
  }

  export interface ChatCompletionCreateParamsStreaming extends ChatCompletionCreateParamsBase {
    stream: true
  }

  export type ChatCompletionCreateParams =
    | ChatCompletionCreateParamsNonStreaming
    | ChatCompletionCreateParamsStreaming

  /** Per-request options, as the SDK's second argument. */
  export interface RequestOptions {
    /** Aborting it stops the generation; the call then throws `APIUserAbortError`. */
    signal?: AbortSignal | null
    /** Accepted for compatibility; not used in-process. */
    timeout?: number
    /** Accepted for compatibility; not used in-process. */
    maxRetries?: number
    [extra: string]: unknown
  }

  export type FinishReason = 'stop' | 'length'

  export interface CompletionUsage {
    prompt_tokens: number
    completion_tokens: number
    total_tokens: number
  }

  export interface ChatCompletionMessage {
    role: 'assistant'
    content: string | null
  }

  export interface ChatCompletionChoice {
    index: number
    message: ChatCompletionMessage
    finish_reason: FinishReason
    /** Always null: log probabilities are not computed. */
    logprobs: null
  }

  /** `chat.completion`: a whole answer. */
  export interface ChatCompletion {
    id: string
    object: 'chat.completion'
    created: number
    model: string
    choices: ChatCompletionChoice[]
    usage: CompletionUsage
  }

  export interface ChatCompletionChunkDelta {
    role?: 'assistant'
    content?: string
  }

  export interface ChatCompletionChunkChoice {
    index: number
    delta: ChatCompletionChunkDelta
    finish_reason: FinishReason | null
    logprobs: null
  }

  /** `chat.completion.chunk`: one event of a streamed answer. */
  export interface ChatCompletionChunk {
    id: string
    object: 'chat.completion.chunk'
    created: number
    model: string
    /** Empty in the final usage chunk (`stream_options.include_usage`). */
    choices: ChatCompletionChunkChoice[]
    usage?: CompletionUsage
  }

  /** A streamed chat completion: `for await (const chunk of stream)`. */
  export class Stream<Item> implements AsyncIterable<Item> {
    /** Aborting it stops the generation. */
    readonly controller: AbortController
    [Symbol.asyncIterator](): AsyncIterator<Item>
  }

  /** One entry of `models.list()`: a running service under its access name. */
  export interface Model {
    id: string
    object: 'model'
    created: number
    owned_by: string
  }

  /** A list page: `.data`, and async-iterable over its items. */
  export interface Page<Item> extends AsyncIterable<Item> {
    object: 'list'
    data: Item[]
  }

  /** A promise of a page that can also be iterated directly: `for await (const m of models.list())`. */
  export interface PagePromise<Item> extends Promise<Page<Item>>, AsyncIterable<Item> {}

  /**
   * What to deploy. Keys may be written in JavaScript's camelCase (`accessName`) or the wire's
   * snake_case (`access_name`).
   */
  export interface ServiceSpec {
    /** Display name; deleting the service asks for it as confirmation. */
    name: string
    /** Unique access name used as `model` in requests, e.g. `u-8105f7322477/test`. */
    accessName?: string
    access_name?: string
    /** Path of the GGUF file. */
    model: string
    /** Instances (llama contexts on the same loaded weights); default 1. */
    instances?: number
    /** Parallel requests per instance; default 4. */
    slots?: number
    /** Context length per slot, in tokens; default 4096, capped by the model's. */
    contextLength?: number
    context_length?: number
    /** CPU threads for the whole service; default all cores. */
    threads?: number
    gpuLayers?: number
    gpu_layers?: number
    /** A Jinja chat template replacing the one in the GGUF file. */
    chatTemplate?: string
    chat_template?: string
    /** Requests that may wait for a slot before new ones get RateLimitError; default 64. */
    queueSize?: number
    queue_size?: number
  }

  export type ServiceStatus = 'loading' | 'running' | 'scaling' | 'failed' | 'deleting'

  /** The base model, read from the GGUF metadata. */
  export interface BaseModel {
    name: string
    architecture: string
    size_label: string | null
    quantization: string
    trained_context_length: number
    parameters: number
    file_size: number
    path: string
    has_chat_template: boolean
  }

  export interface ServiceUsage {
    requests: number
    prompt_tokens: number
    completion_tokens: number
  }

  /** How well the engine batched and reused prompts for a service. */
  export interface EngineStats {
    decode_steps: number
    tokens_decoded: number
    peak_batch_sequences: number
    prompt_tokens_reused: number
  }

  /** A service as the product page lists it. */
  export interface ServiceInfo {
    /** Model Service ID, stable for the service's life. */
    id: string
    name: string
    access_name: string
    base_model: BaseModel
    instances: number
    status: ServiceStatus
    status_reason: string | null
    slots_per_instance: number
    context_length: number
    threads_per_instance: number
    queue_size: number
    created: number
    usage: ServiceUsage
    stats: EngineStats
  }

  /** The body of an OpenAI error response's `error`. */
  export interface ErrorObject {
    message: string
    type: string
    param: string | null
    code: string | null
  }

  /** A set of model services, shared between clients with `new OpenAI({ registry })`. */
  export class Registry {
    constructor()
  }

  export interface ClientOptions {
    /** Services to deploy; they load in the background and every call waits for them. */
    services?: ServiceSpec[]
    /** Use (share) the services of this registry, or of another client. */
    registry?: Registry | OpenAI
    /** Accepted so existing code keeps working; requests run in-process. */
    apiKey?: string | null
    /** Accepted so existing code keeps working; requests run in-process. */
    baseURL?: string | null
    [extra: string]: unknown
  }

  export interface Completions {
    create(body: ChatCompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<ChatCompletion>
    create(body: ChatCompletionCreateParamsStreaming, options?: RequestOptions): Promise<Stream<ChatCompletionChunk>>
    create(
      body: ChatCompletionCreateParamsBase,
      options?: RequestOptions,
    ): Promise<ChatCompletion | Stream<ChatCompletionChunk>>
  }

  export interface Chat {
    readonly completions: Completions
  }

  export interface Models {
    list(): PagePromise<Model>
    retrieve(model: string): Promise<Model>
  }

  export interface Services {
    /** Loads the model and starts the service; resolves once it runs. */
    deploy(spec: ServiceSpec): Promise<ServiceInfo>
    list(): Promise<ServiceInfo[]>
    retrieve(accessName: string): Promise<ServiceInfo>
    /** Sets the instance count; instances share the loaded weights. */
    scale(accessName: string, instances: number | { instances: number }): Promise<ServiceInfo>
    /** Deletes the service after its requests finish; `confirm` repeats its display name. */
    delete(accessName: string, confirm: string | { confirm: string }): Promise<ServiceInfo>
  }

  export class OpenAIError extends Error {}

  export class APIError extends OpenAIError {
    constructor(
      status: number | undefined,
      error: ErrorObject | undefined,
      message: string | undefined,
      headers: Record<string, string> | undefined,
    )
    /** The HTTP status an OpenAI server would answer with (404, 429 ...). */
    readonly status: number | undefined
    readonly headers: Record<string, string> | undefined
    readonly request_id: string | null | undefined
    /** The OpenAI error body. */
    readonly error: ErrorObject | undefined
    readonly code: string | null | undefined
    readonly param: string | null | undefined
    readonly type: string | undefined
    /** The class for a status and an error envelope (`{ error: {...} }`), as the SDK picks it. */
    static generate(
      status: number | undefined,
      errorResponse: { error?: ErrorObject } | undefined,
      message: string | undefined,
      headers: Record<string, string> | undefined,
    ): APIError
  }

  /** Thrown when a request's AbortSignal (or a stream's controller) aborts it. */
  export class APIUserAbortError extends APIError {
    constructor(options?: { message?: string; status?: number; error?: ErrorObject })
  }
  /** 400: an invalid parameter (see `param`), a prompt too long, a model file that fails to load. */
  export class BadRequestError extends APIError {}
  export class AuthenticationError extends APIError {}
  export class PermissionDeniedError extends APIError {}
  /** 404: no service under that access name. */
  export class NotFoundError extends APIError {}
  /** 409: a service with that access name exists. */
  export class ConflictError extends APIError {}
  export class UnprocessableEntityError extends APIError {}
  /** 429: the service's queue is full. */
  export class RateLimitError extends APIError {}
  /** 500 and up: an engine failure, or a service that is not running (503). */
  export class InternalServerError extends APIError {}
}
