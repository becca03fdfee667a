'use strict'
// Legacy text completions (`openai.completions.create`) on the real SmolLM2 model: the SDK's
// shape, a batch of prompts, a stream that adds up to the whole answer, legacy log probabilities.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { spec } = require('./helpers')

const MODEL = 'u-test/text'
const PROMPT = 'The capital of France is'
let openai

before(async () => {
  openai = new OpenAI({ services: [spec(MODEL, { threads: 1 })] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(MODEL, 'text')
})

test('a text completion has the OpenAI shape and the default budget of 16 tokens', async () => {
  const r = await openai.completions.create({ model: MODEL, prompt: PROMPT, temperature: 0 })
  assert.equal(r.object, 'text_completion')
  assert.match(r.id, /^cmpl-/)
  assert.equal(r.choices.length, 1)
  assert.ok(r.choices[0].text.length > 0)
  assert.equal(r.choices[0].logprobs, null)
  assert.equal(r.choices[0].finish_reason, 'length')
  assert.equal(r.usage.completion_tokens, 16)
})

test('a batch of prompts gives prompt-major choices, and a stream adds up to the whole', async () => {
  const body = { model: MODEL, prompt: [PROMPT, 'One, two, three,'], n: 2, temperature: 0, max_tokens: 8, logprobs: 2 }
  const whole = await openai.completions.create(body)
  assert.deepEqual(whole.choices.map((c) => c.index), [0, 1, 2, 3])
  assert.equal(whole.choices[0].text, whole.choices[1].text)
  assert.notEqual(whole.choices[0].text, whole.choices[2].text)
  for (const c of whole.choices) {
    assert.equal(c.logprobs.tokens.join(''), c.text)
    assert.equal(c.logprobs.text_offset.length, c.logprobs.tokens.length)
    c.logprobs.tokens.forEach((tok, i) => assert.ok(tok in c.logprobs.top_logprobs[i]))
  }
  const stream = await openai.completions.create({ ...body, stream: true })
  assert.ok(stream instanceof OpenAI.Stream)
  const texts = ['', '', '', '']
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'text_completion')
    for (const c of chunk.choices) texts[c.index] += c.text
  }
  assert.deepEqual(texts, whole.choices.map((c) => c.text))
})

test('unserved parameters are a BadRequestError naming them', async () => {
  for (const [extra, param] of [[{ suffix: '!' }, 'suffix'], [{ best_of: 3 }, 'best_of'], [{ echo: true, logprobs: 1 }, 'echo']]) {
    const e = await openai.completions.create({ model: MODEL, prompt: 'hi', ...extra }).catch((err) => err)
    assert.ok(e instanceof OpenAI.BadRequestError, String(e))
    assert.equal(e.param, param)
  }
})
