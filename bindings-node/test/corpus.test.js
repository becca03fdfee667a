'use strict'
// The one corpus of bad requests (tests/corpus/bad_requests.json), sent through the SDK-shaped
// methods: the engine proves the rules; this proves the mapping of each method onto its
// operation and of each error onto the `openai` SDK's class, status, code, param and type.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const OpenAI = require('modelservice')
const { root, smollm2 } = require('./helpers')

const corpus = JSON.parse(fs.readFileSync(path.join(root, 'tests', 'corpus', 'bad_requests.json'), 'utf8'))

/** Each operation as a user calls its SDK method, from the wire body of a corpus case. */
const viaSdk = {
  'chat.completions.create': (openai, body) => openai.chat.completions.create(body),
  'completions.create': (openai, body) => openai.completions.create(body),
  'embeddings.create': (openai, body) => openai.embeddings.create(body),
  'models.list': (openai, body) => openai.models.list(body),
  'models.retrieve': (openai, body) => openai.models.retrieve(body.model),
  'services.deploy': (openai, body) => openai.services.deploy(body),
  'services.list': (openai, body) => openai.services.list(body),
  'services.retrieve': (openai, body) => openai.services.retrieve(body.access_name),
  'services.scale': (openai, body) => openai.services.scale(body.access_name, body.instances),
  'services.delete': (openai, body) => openai.services.delete(body.access_name, body.confirm),
}

/** The SDK's error class for an HTTP status. */
function classOf(status) {
  const classes = { 400: OpenAI.BadRequestError, 404: OpenAI.NotFoundError, 409: OpenAI.ConflictError, 429: OpenAI.RateLimitError }
  return classes[status] ?? (status >= 500 ? OpenAI.InternalServerError : OpenAI.APIError)
}

const service = { ...corpus.service, model: smollm2() }
let openai

before(async () => {
  openai = new OpenAI({ services: [service] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(service.access_name, service.name)
})

test('every operation of the corpus has an SDK method', () => {
  for (const c of corpus.cases) assert.ok(viaSdk[c.op], `${c.name}: no SDK method for ${c.op}`)
})

test('every bad request of the corpus fails with its error class, status, code, param and type', async () => {
  // A JavaScript object always serializes to valid JSON: malformed text cannot be sent through
  // the SDK methods, so those cases go to the native entry the methods use.
  let sent = 0
  for (const c of corpus.cases) {
    const error =
      c.body_text === undefined
        ? await viaSdk[c.op](openai, c.body === '$service' ? service : c.body).then(
            (answer) => assert.fail(`${c.name}: answered ${JSON.stringify(answer)}`),
            (e) => e,
          )
        : await openai.registry.call(c.op, c.body_text).then(
            () => assert.fail(`${c.name}: answered`),
            (e) => OpenAI.APIError.generate(...nativeError(e)),
          )
    assert.ok(error instanceof classOf(c.status), `${c.name}: ${error && error.constructor.name}: ${error && error.message}`)
    assert.equal(error.status, c.status, c.name)
    assert.equal(error.code, c.code, c.name)
    assert.equal(error.param, c.param, c.name)
    assert.equal(error.type, c.type, c.name)
    sent++
  }
  assert.equal(sent, corpus.cases.length)
  assert.ok(sent >= 30, `${sent} cases`)
})

/** The arguments of `APIError.generate` for a native error (the envelope after ERROR_PREFIX). */
function nativeError(e) {
  const json = e.message.slice(e.message.indexOf('{'))
  const { status, error } = JSON.parse(json)
  return [status, { error }, undefined, {}]
}
