'use strict'
// Parity with the engine: every operation it serves (`Registry.operations()`, from the native
// side) is a method of the `OpenAI` client at the same dotted path, and calling that method
// sends that operation.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const OpenAI = require('modelservice')

test('every engine operation is an OpenAI client method that sends it', async () => {
  const registry = new OpenAI.Registry()
  const sent = []
  // Record what reaches the native entry, then let the engine answer.
  for (const entry of ['call', 'stream']) {
    const native = registry[entry].bind(registry)
    registry[entry] = (op, ...rest) => {
      sent.push(op)
      return native(op, ...rest)
    }
  }
  const openai = new OpenAI({ registry })
  const operations = OpenAI.Registry.operations()
  assert.ok(operations.includes('chat.completions.create') && operations.length >= 8, operations.join(' '))
  for (const op of operations) {
    const parts = op.split('.')
    const owner = parts.slice(0, -1).reduce((node, key) => node && node[key], openai)
    const method = owner && owner[parts.at(-1)]
    assert.equal(typeof method, 'function', `openai.${op} is not a method`)
    sent.length = 0
    // Without arguments: the engine answers, or refuses the empty request; either way it ran.
    await method.call(owner).catch((e) => {
      assert.ok(e instanceof OpenAI.APIError, `openai.${op}(): ${e}`)
      assert.doesNotMatch(e.message, /Unknown operation/)
    })
    assert.deepEqual(sent, [op], `openai.${op}() sent ${sent.join(', ')}`)
  }
})
