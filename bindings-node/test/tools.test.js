'use strict'
// Tool calling on the real SmolLM2 model (the generic fallback: its template ignores tools):
// a required call, its result sent back in a `tool` message, and streamed deltas that rebuild
// the call.
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')
const { spec } = require('./helpers')

const MODEL = 'u-test/tools'
const WEATHER = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city.',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 30 } }, required: ['city'] },
  },
}
const ASK = [{ role: 'user', content: 'What is the weather like in Paris today?' }]
const SETTINGS = { temperature: 0, max_tokens: 80, parallel_tool_calls: false }
let openai

before(async () => {
  openai = new OpenAI({ services: [spec(MODEL)] })
  await openai.ready()
})

after(async () => {
  await openai.services.delete(MODEL, 'tools')
})

test('a required tool call and its result round trip', async () => {
  const r = await openai.chat.completions.create({ model: MODEL, messages: ASK, tools: [WEATHER], tool_choice: 'required', ...SETTINGS })
  const choice = r.choices[0]
  assert.equal(choice.finish_reason, 'tool_calls')
  assert.equal(choice.message.content, null)
  const call = choice.message.tool_calls[0]
  assert.match(call.id, /^call_[0-9a-f]{24}$/)
  assert.equal(call.type, 'function')
  assert.equal(call.function.name, 'get_weather')
  assert.equal(typeof JSON.parse(call.function.arguments).city, 'string')

  const messages = [...ASK, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 18}' }]
  const answer = await openai.chat.completions.create({ model: MODEL, messages, tools: [WEATHER], tool_choice: 'none', ...SETTINGS })
  assert.equal(answer.choices[0].message.tool_calls, undefined)
  assert.ok(answer.choices[0].message.content.length > 0)
  // The call and its result are in the prompt: longer than the question alone.
  const plain = await openai.chat.completions.create({ model: MODEL, messages: ASK, tools: [WEATHER], tool_choice: 'none', max_tokens: 1 })
  assert.ok(answer.usage.prompt_tokens > plain.usage.prompt_tokens + 20)
})

test('streamed tool-call deltas rebuild the call', async () => {
  const body = { model: MODEL, messages: ASK, tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'get_weather' } }, ...SETTINGS }
  const whole = await openai.chat.completions.create(body)
  assert.equal(whole.choices[0].finish_reason, 'stop')
  const calls = []
  for await (const chunk of await openai.chat.completions.create({ ...body, stream: true })) {
    for (const delta of chunk.choices[0]?.delta.tool_calls ?? []) {
      if (delta.id) {
        assert.equal(delta.function.arguments, '')
        calls[delta.index] = { name: delta.function.name, arguments: '' }
      } else {
        calls[delta.index].arguments += delta.function.arguments
      }
    }
  }
  assert.deepEqual(calls, whole.choices[0].message.tool_calls.map((c) => c.function))
})

test('a named tool_choice outside tools is a BadRequestError naming it', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: MODEL, messages: ASK, tools: [WEATHER], tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tool_choice',
  )
})
