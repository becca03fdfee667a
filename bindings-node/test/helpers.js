'use strict'
// Shared by the tests: the real SmolLM2 model (fetched and cached by scripts/fetch-models) and
// small service settings so the suite stays quick.
const { execFileSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..', '..')
const packageDir = path.resolve(__dirname, '..')

const cached = {}
/** Path of a test model fetched and cached by scripts/fetch-models. */
function fetchModel(name) {
  if (!cached[name]) {
    const line = execFileSync(path.join(root, 'scripts', 'fetch-models'), [name], { encoding: 'utf8' })
    cached[name] = line.trim().split('\t')[1]
  }
  return cached[name]
}

/** Path of the SmolLM2-135M-Instruct GGUF file. */
const smollm2 = () => fetchModel('smollm2')
/** Path of the all-MiniLM-L6-v2 embedding model (converted to GGUF). */
const minilm = () => fetchModel('minilm')

/** A small service spec on SmolLM2. */
function spec(accessName, extra = {}) {
  return { name: accessName.split('/').pop(), accessName, model: smollm2(), contextLength: 1024, slots: 4, ...extra }
}

const messages = [{ role: 'user', content: 'Name three colors of the rainbow.' }]

// SmolLM2's end-of-text and end-of-turn tokens: banning them makes a generation run to
// `max_tokens`, so only cancellation can end it early.
const NO_EOS = { 0: -100, 2: -100 }

module.exports = { root, packageDir, smollm2, minilm, spec, messages, NO_EOS }
