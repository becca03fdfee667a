'use strict'
// Structured output on the real SmolLM2 model through `openai.chat.completions.create`, with
// `response_format` objects as the `openai` package sends them: `json_schema` answers (whole,
// and streamed with n = 3 and a seed) parse and satisfy their schema; JSON mode gives an object;
// a schema llama.cpp cannot enforce is a BadRequestError naming `response_format.json_schema.schema`.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { spec } = require('./helpers')

const MODEL = 'u-test/json'
let openai

before(async () => {
  openai = new OpenAI({ services: [spec(MODEL, { threads: 1 })] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(MODEL, 'json')
})

const schema = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 20 },
    age: { type: 'integer' },
    mood: { enum: ['happy', 'sad', 'calm'] },
    hobbies: { type: 'array', items: { type: 'string', maxLength: 16 }, maxItems: 3 },
    address: { type: 'object', properties: { city: { type: 'string', maxLength: 20 } }, required: ['city'] },
  },
  required: ['name', 'age', 'mood', 'hobbies', 'address'],
  additionalProperties: false,
}
const responseFormat = { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } }
const messages = [
  { role: 'system', content: 'Reply with one short JSON object.' },
  { role: 'user', content: 'Describe a person who likes the sea.' },
]

/** The checks of `schema`, written out: every key, type, enum and length bound. */
function assertPerson(content) {
  const p = JSON.parse(content)
  assert.deepEqual(Object.keys(p).sort(), ['address', 'age', 'hobbies', 'mood', 'name'], content)
  assert.ok(typeof p.name === 'string' && [...p.name].length <= 20, content)
  assert.ok(Number.isInteger(p.age), content)
  assert.ok(['happy', 'sad', 'calm'].includes(p.mood), content)
  assert.ok(Array.isArray(p.hobbies) && p.hobbies.length <= 3, content)
  assert.ok(p.hobbies.every((h) => typeof h === 'string' && [...h].length <= 16), content)
  assert.ok(typeof p.address.city === 'string' && [...p.address.city].length <= 20, content)
}

test('a json_schema answer parses and satisfies its schema', async () => {
  const r = await openai.chat.completions.create({ model: MODEL, messages, response_format: responseFormat, temperature: 0, max_tokens: 200 })
  assert.equal(r.choices[0].finish_reason, 'stop')
  assertPerson(r.choices[0].message.content)
})

test('streamed with n = 3 and a seed, every choice satisfies the schema', async () => {
  const stream = await openai.chat.completions.create({
    model: MODEL, messages, response_format: responseFormat, temperature: 0.8, seed: 7, n: 3, max_tokens: 200, stream: true,
  })
  const contents = ['', '', '']
  for await (const chunk of stream) for (const c of chunk.choices) contents[c.index] += c.delta.content ?? ''
  contents.forEach(assertPerson)
})

test('JSON mode gives a JSON object', async () => {
  const r = await openai.chat.completions.create({
    model: MODEL, messages: [{ role: 'user', content: 'Give me a JSON object about a cat.' }],
    response_format: { type: 'json_object' }, temperature: 0, max_tokens: 120,
  })
  const content = r.choices[0].message.content
  if (r.choices[0].finish_reason === 'stop') {
    const value = JSON.parse(content)
    assert.ok(value && typeof value === 'object' && !Array.isArray(value), content)
  } else {
    assert.match(content, /^\s*\{/)
  }
})

test('a schema llama.cpp cannot enforce is a BadRequestError naming it', async () => {
  const bad = { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } } } }
  const e = await openai.chat.completions.create({ model: MODEL, messages, response_format: bad }).catch((err) => err)
  assert.ok(e instanceof OpenAI.BadRequestError, String(e))
  assert.equal(e.status, 400)
  assert.equal(e.param, 'response_format.json_schema.schema')
})
