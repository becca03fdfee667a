'use strict'
// Every engine error reaches JavaScript as the `openai` SDK's error class for its status, with
// status, message, error (the OpenAI error body), code and param.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { spec, messages, smollm2, NO_EOS } = require('./helpers')

const MODEL = 'u-test/errors'
let openai

before(async () => {
  openai = new OpenAI({ services: [spec(MODEL)] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(MODEL, 'errors')
})

/** Asserts `promise` rejects with `Class` carrying this status, code and param; returns the error. */
async function rejectsWith(promise, Class, status, code, param) {
  let error
  await assert.rejects(promise, (e) => {
    error = e
    return true
  })
  assert.ok(error instanceof Class, `${error && error.constructor.name}: ${error && error.message}`)
  assert.ok(error instanceof OpenAI.APIError)
  assert.ok(error instanceof Error)
  assert.equal(error.name, Class.name)
  assert.equal(error.status, status)
  assert.equal(error.code, code)
  assert.equal(error.param, param)
  assert.equal(error.error.code, code)
  assert.equal(error.error.param, param)
  assert.equal(typeof error.error.type, 'string')
  assert.equal(error.message, `${status} ${error.error.message}`)
  return error
}

const create = (body) => openai.chat.completions.create({ model: MODEL, messages, max_tokens: 4, ...body })

test('BadRequestError names the parameter at fault', async () => {
  // Parsed by the core (ChatCompletionRequest::from_json): the failing field's path.
  const e = await rejectsWith(create({ temperature: 'hot' }), OpenAI.BadRequestError, 400, 'invalid_value', 'temperature')
  assert.equal(e.type, 'invalid_request_error')
  await rejectsWith(
    create({ messages: [{ role: 'wizard', content: 'x' }] }),
    OpenAI.BadRequestError,
    400,
    'invalid_value',
    'messages[0].role',
  )
  // Validated by the core.
  await rejectsWith(create({ temperature: 3 }), OpenAI.BadRequestError, 400, 'invalid_value', 'temperature')
  await rejectsWith(create({ messages: [] }), OpenAI.BadRequestError, 400, 'invalid_value', 'messages')
  await rejectsWith(create({ n: 0 }), OpenAI.BadRequestError, 400, 'invalid_value', 'n')
  // A prompt and completion that do not fit the 1024-token context.
  await rejectsWith(create({ max_tokens: 5000 }), OpenAI.BadRequestError, 400, 'context_length_exceeded', 'max_tokens')
  // Not an object at all.
  await rejectsWith(openai.chat.completions.create('hi'), OpenAI.BadRequestError, 400, 'invalid_value', null)
  // Bad service specs.
  await rejectsWith(
    openai.services.deploy({ name: 'x', accessName: 'u-test/x', model: smollm2(), instances: 'many' }),
    OpenAI.BadRequestError,
    400,
    'invalid_value',
    'instances',
  )
  await rejectsWith(
    openai.services.deploy({ name: 'x', accessName: 'bad name', model: smollm2() }),
    OpenAI.BadRequestError,
    400,
    'invalid_value',
    'access_name',
  )
  await rejectsWith(
    openai.services.deploy({ name: 'x', accessName: 'u-test/x', model: '/no/such/file.gguf' }),
    OpenAI.BadRequestError,
    400,
    'model_load_failed',
    'model',
  )
})

test('NotFoundError for an unknown model or service', async () => {
  await rejectsWith(create({ model: 'u-test/nothing' }), OpenAI.NotFoundError, 404, 'model_not_found', 'model')
  await rejectsWith(openai.models.retrieve('u-test/nothing'), OpenAI.NotFoundError, 404, 'model_not_found', 'model')
  await rejectsWith(openai.services.retrieve('u-test/nothing'), OpenAI.NotFoundError, 404, 'model_not_found', 'model')
  await rejectsWith(openai.services.scale('u-test/nothing', 2), OpenAI.NotFoundError, 404, 'model_not_found', 'model')
})

test('ConflictError for a second service under the same access name', async () => {
  await rejectsWith(openai.services.deploy(spec(MODEL)), OpenAI.ConflictError, 409, 'service_exists', 'access_name')
})

test('RateLimitError when the queue is full', async () => {
  const name = 'u-test/tiny-queue'
  await openai.services.deploy(spec(name, { slots: 1, queueSize: 1 }))
  const streams = []
  let limited
  try {
    // One request in the slot, one in the queue: some third one is refused.
    for (let i = 0; i < 4 && !limited; i++) {
      try {
        streams.push(
          await openai.chat.completions.create({ model: name, messages, max_tokens: 400, logit_bias: NO_EOS, stream: true }),
        )
      } catch (e) {
        limited = e
      }
    }
    assert.ok(limited, 'no request was refused')
    assert.ok(streams.length >= 1)
    await rejectsWith(Promise.reject(limited), OpenAI.RateLimitError, 429, 'queue_full', 'model')
    assert.equal(limited.type, 'rate_limit_error')
  } finally {
    for (const s of streams) s.controller.abort()
    await openai.services.delete(name, 'tiny-queue')
  }
})

test('InternalServerError (503) for a service that is still loading', async () => {
  const name = 'u-test/loading'
  const deploying = openai.services.deploy(spec(name))
  let error
  try {
    // Until the deploy has registered the name, it is unknown (404); then loading (503).
    for (;;) {
      try {
        await create({ model: name })
        break
      } catch (e) {
        if (e instanceof OpenAI.NotFoundError) {
          await new Promise((r) => setImmediate(r))
          continue
        }
        error = e
        break
      }
    }
    assert.ok(error, 'the request ran before the model had loaded')
    await rejectsWith(Promise.reject(error), OpenAI.InternalServerError, 503, 'service_not_running', 'model')
  } finally {
    await deploying
    await openai.services.delete(name, 'loading')
  }
})

test('APIUserAbortError, and the rest of the SDK classes by status', () => {
  // The engine has no in-process case for 401/403/422; the mapping is the SDK's.
  const body = (code) => ({ error: { message: 'm', type: 't', param: null, code } })
  const cases = [
    [400, OpenAI.BadRequestError],
    [401, OpenAI.AuthenticationError],
    [403, OpenAI.PermissionDeniedError],
    [404, OpenAI.NotFoundError],
    [409, OpenAI.ConflictError],
    [413, OpenAI.APIError],
    [422, OpenAI.UnprocessableEntityError],
    [429, OpenAI.RateLimitError],
    [500, OpenAI.InternalServerError],
    [503, OpenAI.InternalServerError],
  ]
  for (const [status, Class] of cases) {
    const e = OpenAI.APIError.generate(status, body('c'), undefined, {})
    assert.equal(e.constructor, Class, `status ${status}`)
    assert.equal(e.message, `${status} m`)
  }
  assert.ok(OpenAI.APIError.generate(499, body('cancelled'), undefined, {}) instanceof OpenAI.APIUserAbortError)
  assert.equal(new OpenAI.APIUserAbortError().message, 'Request was aborted.')
})

test('a failed deploy from the constructor is thrown by the calls', async () => {
  const broken = new OpenAI({ services: [{ name: 'b', accessName: 'u-test/broken', model: '/no/such/file.gguf' }] })
  await rejectsWith(broken.ready(), OpenAI.BadRequestError, 400, 'model_load_failed', 'model')
  await rejectsWith(
    broken.chat.completions.create({ model: 'u-test/broken', messages }),
    OpenAI.BadRequestError,
    400,
    'model_load_failed',
    'model',
  )
})
