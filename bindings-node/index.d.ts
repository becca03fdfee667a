// Typings of the `modelservice` npm package: the `OpenAI` client of index.js. The wire shapes
// (request bodies, answers, chunks, service objects) come from wire.d.ts, generated from the
// core's JSON Schema; this file gives them the `openai` SDK's names and types the client.

import type * as Wire from './wire'

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
  /** Legacy text completions (`/v1/completions`): the prompt as given, no chat template. */
  readonly completions: OpenAI.TextCompletions
  readonly embeddings: OpenAI.Embeddings
  readonly models: OpenAI.Models
  readonly services: OpenAI.Services
  /** Resolves once the services given to the constructor run. */
  ready(): Promise<OpenAI.ServiceInfo[]>

  static readonly OpenAI: typeof OpenAI
  static readonly default: typeof OpenAI
  /** How many times this process has loaded a model file (scaling never adds to it). */
  static modelLoads(): number
}

/** `context_length` → `contextLength`. */
type CamelCase<S extends string> = S extends `${infer Head}_${infer Tail}` ? `${Head}${Capitalize<CamelCase<Tail>>}` : S
type CamelCaseKeys<T> = { [K in keyof T as CamelCase<K & string>]: T[K] }

declare namespace OpenAI {
  /** Every operation of the engine by name, with its request, answer and chunk types. */
  export type Operations = Wire.Operations
  /** The request body of operation `Op`. */
  export type RequestOf<Op extends keyof Operations> = Operations[Op]['request']
  /** The answer of operation `Op`. */
  export type ResponseOf<Op extends keyof Operations> = Operations[Op]['response']

  /** Who wrote a message. */
  export type Role = Wire.Role
  /** One content part of a message given as an array; only `text` parts are served. */
  export type ChatCompletionContentPartText = Wire.ContentPart
  /** One message of the conversation. */
  export type ChatCompletionMessageParam = Wire.ChatMessage
  /** The body of `chat.completions.create`; unknown fields are refused, as OpenAI refuses them. */
  export type ChatCompletionCreateParamsBase = RequestOf<'chat.completions.create'>
  export type ChatCompletionStreamOptions = Wire.StreamOptions
  /** A function the model may call (`tools[i]`). */
  export type ChatCompletionTool = Wire.Tool
  export type FunctionDefinition = Wire.FunctionDefinition
  /** `none`, `auto`, `required`, or `{type: 'function', function: {name}}`. */
  export type ChatCompletionToolChoiceOption = Wire.ToolChoice
  export type ChatCompletionNamedToolChoice = Wire.NamedToolChoice
  /** A call the assistant made; `function.arguments` is a JSON text. */
  export type ChatCompletionMessageToolCall = Wire.ToolCall
  /** A streamed piece of a tool call. */
  export type ChatCompletionChunkToolCall = Wire.ToolCallDelta

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

  export type FinishReason = Wire.FinishReason
  export type CompletionUsage = Wire.Usage
  export type ChatCompletionMessage = Wire.AssistantMessage
  export type ChatCompletionChoice = Wire.Choice
  /** `chat.completion`: a whole answer. */
  export type ChatCompletion = ResponseOf<'chat.completions.create'>
  export type ChatCompletionChunkDelta = Wire.Delta
  export type ChatCompletionChunkChoice = Wire.ChunkChoice
  /** `chat.completion.chunk`: one event of a streamed answer. */
  export type ChatCompletionChunk = Operations['chat.completions.create']['chunk']

  /** The body of `completions.create` (legacy text completions). */
  export type CompletionCreateParamsBase = RequestOf<'completions.create'>

  export interface CompletionCreateParamsNonStreaming extends CompletionCreateParamsBase {
    stream?: false | null
  }

  export interface CompletionCreateParamsStreaming extends CompletionCreateParamsBase {
    stream: true
  }

  export type CompletionCreateParams = CompletionCreateParamsNonStreaming | CompletionCreateParamsStreaming
  /** `text_completion`: a whole answer, and each chunk of a streamed one. */
  export type Completion = ResponseOf<'completions.create'>
  export type CompletionChoice = Wire.CompletionChoice

  /** The body of `embeddings.create`. */
  export type EmbeddingCreateParams = RequestOf<'embeddings.create'>
  /** The answer of `embeddings.create`: `{ object: 'list', data: [Embedding ...], model, usage }`. */
  export type CreateEmbeddingResponse = ResponseOf<'embeddings.create'>
  export type Embedding = Wire.Embedding

  /** A streamed chat completion: `for await (const chunk of stream)`. */
  export class Stream<Item> implements AsyncIterable<Item> {
    /** Aborting it stops the generation. */
    readonly controller: AbortController
    [Symbol.asyncIterator](): AsyncIterator<Item>
  }

  /** One entry of `models.list()`: a running service under its access name. */
  export type Model = ResponseOf<'models.retrieve'>

  /** A list page: `.data`, and async-iterable over its items. */
  export interface Page<Item> extends AsyncIterable<Item> {
    object: 'list'
    data: Item[]
  }

  /** A promise of a page that can also be iterated directly: `for await (const m of models.list())`. */
  export interface PagePromise<Item> extends Promise<Page<Item>>, AsyncIterable<Item> {}

  /**
   * What to deploy. Keys may be written in the wire's snake_case (`access_name`) or in
   * JavaScript's camelCase (`accessName`).
   */
  export type ServiceSpec = RequestOf<'services.deploy'> | CamelCaseKeys<RequestOf<'services.deploy'>>
  export type ServiceStatus = Wire.ServiceStatus
  /** The base model, read from the GGUF metadata. */
  export type BaseModel = Wire.BaseModel
  export type ServiceUsage = Wire.ServiceUsage
  /** How well the engine batched and reused prompts for a service. */
  export type EngineStats = Wire.EngineStats
  /** A service as the product page lists it. */
  export type ServiceInfo = ResponseOf<'services.retrieve'>
  /** The `services.list()` answer: `{ object: 'list', data: [...] }`. */
  export type ServiceList = ResponseOf<'services.list'>
  /** One service's request metrics: requests by status, tokens, queue, TTFT and latency histograms. */
  export type ServiceMetrics = Wire.ServiceMetrics
  export type HistogramSnapshot = Wire.HistogramSnapshot
  /** The `services.metrics()` answer: `{ object: 'list', data: [...] }`. */
  export type ServiceMetricsList = ResponseOf<'services.metrics'>
  /** The body of an OpenAI error response's `error`. */
  export type ErrorObject = Wire.ErrorBody

  /**
   * A set of model services, shared between clients with `new OpenAI({ registry })`. Its
   * native methods (`call`, `stream`) are the engine's one entry, used by the client.
   */
  export class Registry {
    constructor()
    /** Serves operation `op` with the JSON `body`; resolves to the whole answer's JSON. */
    call(op: keyof Operations, body: string, signal?: AbortSignal | null): Promise<string>
    /** Starts streamed operation `op` with the JSON `body`; resolves to its chunks' JSON. */
    stream(op: keyof Operations, body: string): Promise<ResponseStream>
    /** The names of every operation the engine serves (`chat.completions.create` ...). */
    static operations(): string[]
    /** How many times this process has loaded a model file. */
    static modelLoads(): number
  }
  /** The chunks of a streamed operation, as JSON texts; `null` after the last one. */
  export interface ResponseStream {
    readonly id: string
    next(): Promise<string | null>
    /** Stops the generation. */
    close(): void
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

  export interface TextCompletions {
    create(body: CompletionCreateParamsNonStreaming, options?: RequestOptions): Promise<Completion>
    create(body: CompletionCreateParamsStreaming, options?: RequestOptions): Promise<Stream<Completion>>
    create(body: CompletionCreateParamsBase, options?: RequestOptions): Promise<Completion | Stream<Completion>>
  }

  export interface Embeddings {
    create(body: EmbeddingCreateParams, options?: RequestOptions): Promise<CreateEmbeddingResponse>
  }

  export interface Chat {
    readonly completions: Completions
  }

  export interface Models {
    /** `query`: the operation's parameters (none yet; any given is refused, naming it). */
    list(query?: RequestOf<'models.list'>): PagePromise<Model>
    retrieve(model: string): Promise<Model>
  }

  export interface Services {
    /** Loads the model and starts the service; resolves once it runs. */
    deploy(spec: ServiceSpec): Promise<ServiceInfo>
    /** Every deployed service: a list page, like `models.list()`. */
    list(query?: RequestOf<'services.list'>): PagePromise<ServiceInfo>
    retrieve(accessName: string): Promise<ServiceInfo>
    /** Sets the instance count; instances share the loaded weights. */
    scale(accessName: string, instances: number | { instances: number }): Promise<ServiceInfo>
    /** Deletes the service after its requests finish; `confirm` repeats its display name. */
    delete(accessName: string, confirm: string | { confirm: string }): Promise<ServiceInfo>
    /** Each service's request metrics, or only `accessName`'s (a NotFoundError if none). */
    metrics(accessName?: string): Promise<ServiceMetricsList>
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
