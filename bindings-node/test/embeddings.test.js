'use strict'
// Embeddings on the real all-MiniLM-L6-v2 model through `openai.embeddings.create`.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { minilm } = require('./helpers')

const EMBEDDER = 'e/minilm'
let openai

before(async () => {
  openai = new OpenAI({ services: [{ name: 'minilm', accessName: EMBEDDER, model: minilm(), threads: 1 }] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(EMBEDDER, 'minilm')
})

const dot = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0)

test('vectors are unit length and closer for closer sentences', async () => {
  const input = ['A man is eating food.', 'A man is eating a piece of bread.', 'A man is riding a horse.']
  const r = await openai.embeddings.create({ model: EMBEDDER, input })
  assert.equal(r.object, 'list')
  assert.equal(r.model, EMBEDDER)
  assert.deepEqual(r.data.map((e) => e.index), [0, 1, 2])
  const vectors = r.data.map((e) => e.embedding)
  for (const v of vectors) {
    assert.equal(v.length, 384)
    assert.ok(Math.abs(Math.sqrt(dot(v, v)) - 1) < 1e-4)
  }
  assert.ok(dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2]) + 0.2)
  assert.ok(r.usage.prompt_tokens === r.usage.total_tokens && r.usage.total_tokens > 6)
})

test('base64 vectors decode to the floats', async () => {
  const body = { model: EMBEDDER, input: 'The sea is calm.' }
  const floats = (await openai.embeddings.create(body)).data[0].embedding
  const b64 = (await openai.embeddings.create({ ...body, encoding_format: 'base64' })).data[0].embedding
  const bytes = Buffer.from(b64, 'base64')
  const decoded = Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(i * 4))
  assert.equal(decoded.length, floats.length)
  decoded.forEach((x, i) => assert.ok(Math.abs(x - floats[i]) < 1e-6))
})

test('an embedding model cannot chat, and other dimensions are refused', async () => {
  const error = await openai.chat.completions
    .create({ model: EMBEDDER, messages: [{ role: 'user', content: 'hi' }] })
    .catch((e) => e)
  assert.ok(error instanceof OpenAI.BadRequestError, String(error))
  assert.equal(error.param, 'model')
  const bad = await openai.embeddings.create({ model: EMBEDDER, input: 'hi', dimensions: 128 }).catch((e) => e)
  assert.ok(bad instanceof OpenAI.BadRequestError, String(bad))
  assert.equal(bad.param, 'dimensions')
})
