'use strict'
// The `modelservice` npm package: an `OpenAI` client shaped like the `openai` SDK's whose
// requests run on local GGUF models inside this process. The engine is the native addon
// (src/, napi-rs), reached by operation name with JSON in and out; this file maps the SDK's
// methods onto those names and shapes the answers into the SDK's objects, classes and errors.

const { platformSuffix } = require('./platform.js')

const addonFile = `./modelservice.${platformSuffix()}.node`
/** @type {typeof import('./native')} */
let native
try {
  native = require(addonFile)
} catch (e) {
  throw new Error(
    `modelservice: cannot load the native addon ${addonFile} (${e.message}). ` +
      'Build it from a source checkout with `npm run build` in bindings-node/.',
    { cause: e },
  )
}

// ---------------------------------------------------------------------------------------------
// Errors, named and shaped like the `openai` SDK's.

class OpenAIError extends Error {}

class APIError extends OpenAIError {
  /**
   * @param {number | undefined} status HTTP status an OpenAI server would answer with
   * @param {object | undefined} error the OpenAI error body: { message, type, param, code }
   * @param {string | undefined} message
   * @param {object | undefined} headers
   */
  constructor(status, error, message, headers) {
    super(APIError.makeMessage(status, error, message))
    this.status = status
    this.headers = headers
    this.request_id = undefined
    this.error = error
    this.code = error ? error.code : undefined
    this.param = error ? error.param : undefined
    this.type = error ? error.type : undefined
  }

  static makeMessage(status, error, message) {
    const msg = error && error.message ? String(error.message) : error ? JSON.stringify(error) : message
    if (status && msg) return `${status} ${msg}`
    if (status) return `${status} status code (no body)`
    return msg || '(no status code or body)'
  }

  /** The error class for an HTTP status and an OpenAI error envelope ({ error: {...} }). */
  static generate(status, errorResponse, message, headers) {
    const error = errorResponse ? errorResponse.error : undefined
    if (error && error.code === 'cancelled') return new APIUserAbortError({ message, status, error })
    const Class = {
      400: BadRequestError,
      401: AuthenticationError,
      403: PermissionDeniedError,
      404: NotFoundError,
      409: ConflictError,
      422: UnprocessableEntityError,
      429: RateLimitError,
    }[status]
    if (Class) return new Class(status, error, message, headers)
    if (status >= 500) return new InternalServerError(status, error, message, headers)
    return new APIError(status, error, message, headers)
  }
}

class APIUserAbortError extends APIError {
  /** @param {{ message?: string, status?: number, error?: object }} [options] */
  constructor({ message, status, error } = {}) {
    super(status, error, message || 'Request was aborted.', undefined)
  }
}
class BadRequestError extends APIError {}
class AuthenticationError extends APIError {}
class PermissionDeniedError extends APIError {}
class NotFoundError extends APIError {}
class ConflictError extends APIError {}
class UnprocessableEntityError extends APIError {}
class RateLimitError extends APIError {}
class InternalServerError extends APIError {}

for (const Class of [
  OpenAIError,
  APIError,
  APIUserAbortError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
]) {
  Object.defineProperty(Class.prototype, 'name', { value: Class.name })
}

/** A native error carrying an OpenAI error envelope becomes its APIError; others pass through. */
function fromNative(e) {
  if (e && typeof e.message === 'string' && e.message.startsWith(native.ERROR_PREFIX)) {
    const { status, error } = JSON.parse(e.message.slice(native.ERROR_PREFIX.length))
    return APIError.generate(status, { error }, undefined, {})
  }
  return e
}

// ---------------------------------------------------------------------------------------------
// The one way in: every method below is an operation name and a JSON body for the addon's
// `Registry.call` (the whole answer) or `Registry.stream` (its chunks). The engine parses and
// validates the body, so whatever was given is sent as its JSON and the engine refuses it.

/** The JSON of a request body as given (`undefined` means no parameters). */
function toJson(body) {
  return body === undefined ? '' : JSON.stringify(body)
}

/** Aborts `controller` when `signal` aborts; returns the function that stops listening. */
function follow(signal, controller) {
  if (!signal) return () => {}
  if (signal.aborted) {
    controller.abort(signal.reason)
    return () => {}
  }
  const onAbort = () => controller.abort(signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  return () => signal.removeEventListener('abort', onAbort)
}

/**
 * Serves operation `op` with `body` and parses its whole answer; `signal` aborting stops it.
 * @param {import('./native').Registry} registry
 * @param {string} op
 * @param {unknown} body
 * @param {AbortSignal | null | undefined} [signal]
 */
async function call(registry, op, body, signal) {
  // A signal of our own per call, so the native listener never outlives the call.
  const controller = new AbortController()
  const unfollow = follow(signal, controller)
  try {
    return JSON.parse(await registry.call(op, toJson(body), signal ? controller.signal : null))
  } catch (e) {
    throw fromNative(e)
  } finally {
    unfollow()
  }
}

/**
 * Starts streamed operation `op` with `body`; the returned Stream closes it (cancelling the
 * generation) when `signal` or its controller aborts.
 * @param {import('./native').Registry} registry
 * @param {string} op
 * @param {unknown} body
 * @param {AbortSignal | null | undefined} [signal]
 */
async function stream(registry, op, body, signal) {
  const controller = new AbortController()
  const unfollow = follow(signal, controller)
  let native
  try {
    native = await registry.stream(op, toJson(body))
  } catch (e) {
    unfollow()
    throw fromNative(e)
  }
  const close = () => native.close()
  if (controller.signal.aborted) close()
  else controller.signal.addEventListener('abort', close, { once: true })
  const release = () => {
    unfollow()
    controller.signal.removeEventListener('abort', close)
  }
  return new Stream({ stream: native, controller, release })
}

/** A streamed (chat or text) completion: `for await (const chunk of stream)`. Like the SDK's `Stream`. */
class Stream {
  /** @param {{ stream: import('./native').ResponseStream, controller: AbortController, release: () => void }} opened */
  constructor(opened) {
    this._opened = opened
    this._consumed = false
    /** Aborting it stops the generation, as in the SDK. */
    this.controller = opened.controller
  }

  async *[Symbol.asyncIterator]() {
    if (this._consumed) throw new OpenAIError('Cannot iterate over a consumed stream.')
    this._consumed = true
    const { stream, release } = this._opened
    try {
      for (;;) {
        let json
        try {
          json = await stream.next()
        } catch (e) {
          throw fromNative(e)
        }
        if (json === null) return
        yield JSON.parse(json)
      }
    } finally {
      // `break`, `return` or a throw in the loop body lands here: drop the generation.
      stream.close()
      release()
    }
  }
}

/** A list page: `.data`, and `for await (const item of page)`. */
function page(list) {
  list[Symbol.asyncIterator] = async function* () {
    yield* list.data
  }
  return list
}

/** A promise of a page that is itself async-iterable, like the SDK's PagePromise. */
function pagePromise(promise) {
  promise[Symbol.asyncIterator] = async function* () {
    yield* (await promise).data
  }
  return promise
}

/** A resource of the client (`chat.completions`, `models`, `services`): calls the engine. */
class Resource {
  /** @param {OpenAI} client */
  constructor(client) {
    this._client = client
  }

  /** Serves `op` once the constructor's services run. */
  async _call(op, body, signal) {
    await this._client._ready
    return call(this._client.registry, op, body, signal)
  }

  /** A list operation (`query`: its parameters, none so far): a promise of an async-iterable page. */
  _list(op, query) {
    return pagePromise(this._call(op, query).then(page))
  }
}

// ---------------------------------------------------------------------------------------------
// The client: SDK methods → operation names and bodies.

class Completions extends Resource {
  /**
   * `openai.chat.completions.create(body, { signal })`: a ChatCompletion, or a Stream of
   * ChatCompletionChunks when `body.stream` is true.
   */
  async create(body, options = {}) {
    const signal = options && options.signal
    if (body && body.stream === true) {
      await this._client._ready
      return stream(this._client.registry, 'chat.completions.create', body, signal)
    }
    return this._call('chat.completions.create', body, signal)
  }
}

class TextCompletions extends Resource {
  /**
   * `openai.completions.create(body, { signal })`: a legacy text Completion, or a Stream of
   * Completion chunks when `body.stream` is true.
   */
  async create(body, options = {}) {
    const signal = options && options.signal
    if (body && body.stream === true) {
      await this._client._ready
      return stream(this._client.registry, 'completions.create', body, signal)
    }
    return this._call('completions.create', body, signal)
  }
}

class Embeddings extends Resource {
  /** `openai.embeddings.create(body, { signal })`: a CreateEmbeddingResponse. */
  create(body, options = {}) {
    return this._call('embeddings.create', body, options && options.signal)
  }
}

class Chat {
  /** @param {OpenAI} client */
  constructor(client) {
    this.completions = new Completions(client)
  }
}

class Models extends Resource {
  /** The running services as OpenAI models. */
  list(query) {
    return this._list('models.list', query)
  }

  /** One model by its id (the service's access name). */
  retrieve(model) {
    return this._call('models.retrieve', { model })
  }
}

/** `accessName` → `access_name`: the spec may be written in JavaScript's or the wire's casing. */
function serviceSpec(spec) {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) return spec
  const wire = {}
  for (const [key, value] of Object.entries(spec)) {
    if (value !== undefined) wire[key.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase())] = value
  }
  return wire
}

/** `value`, or its `key` when given as an object (`{ instances: 2 }`, `{ confirm: 'name' }`). */
function field(value, key) {
  return typeof value === 'object' && value !== null ? value[key] : value
}

class Services extends Resource {
  /** Loads the model and starts the service; resolves to its ServiceInfo once it runs. */
  deploy(spec) {
    // Not behind `_ready`: the constructor's own deploys come through here.
    return call(this._client.registry, 'services.deploy', serviceSpec(spec))
  }

  /** Every deployed service: a list page, like `models.list()`. */
  list(query) {
    return this._list('services.list', query)
  }

  /** One service by access name. */
  retrieve(accessName) {
    return this._call('services.retrieve', { access_name: accessName })
  }

  /** Scales a service to `instances` instances (on the already-loaded weights). */
  scale(accessName, instances) {
    return this._call('services.scale', { access_name: accessName, instances: field(instances, 'instances') })
  }

  /** Deletes a service; `confirm` (a string or { confirm }) must repeat its display name. */
  delete(accessName, confirm) {
    return this._call('services.delete', { access_name: accessName, confirm: field(confirm, 'confirm') })
  }

  /**
   * Each service's requests by status, tokens, queue, and time-to-first-token and latency
   * histograms (what the HTTP server's `/metrics` shows); only `accessName`'s when given.
   */
  metrics(accessName) {
    return this._call('services.metrics', accessName === undefined ? {} : { access_name: accessName })
  }
}

class OpenAI {
  /**
   * @param {object} [options]
   * @param {object[]} [options.services] services to deploy (ServiceSpec: name, accessName, model ...)
   * @param {import('./native').Registry | OpenAI} [options.registry] share the services of another registry or client
   * @param {string} [options.apiKey] accepted for compatibility; requests run in-process
   * @param {string} [options.baseURL] accepted for compatibility; requests run in-process
   */
  constructor(options = {}) {
    const { services = [], registry, apiKey, baseURL, ...rest } = options || {}
    this.apiKey = apiKey === undefined ? null : apiKey
    this.baseURL = baseURL === undefined ? null : baseURL
    this._options = rest
    /** @type {import('./native').Registry} */
    this.registry = registry instanceof OpenAI ? registry.registry : registry || new Registry()
    if (!(this.registry instanceof Registry)) {
      throw new OpenAIError('`registry` must be a modelservice Registry or an OpenAI client.')
    }
    this.chat = new Chat(this)
    this.completions = new TextCompletions(this)
    this.embeddings = new Embeddings(this)
    this.models = new Models(this)
    this.services = new Services(this)
    // Models load in the background; every call waits for them, and a failed deploy is
    // thrown by the calls (and by `ready()`).
    this._ready = Promise.all(services.map((spec) => this.services.deploy(spec)))
    this._ready.catch(() => {})
  }

  /** Resolves once the services given to the constructor run (their ServiceInfo). */
  ready() {
    return this._ready
  }
}

const Registry = native.Registry

Object.assign(OpenAI, {
  OpenAI,
  default: OpenAI,
  Registry,
  Stream,
  OpenAIError,
  APIError,
  APIUserAbortError,
  BadRequestError,
  AuthenticationError,
  PermissionDeniedError,
  NotFoundError,
  ConflictError,
  UnprocessableEntityError,
  RateLimitError,
  InternalServerError,
  modelLoads: () => native.Registry.modelLoads(),
})

module.exports = OpenAI
