// An ESM TypeScript user: the default and named imports type-check against index.d.ts.
import OpenAI, { APIError, NotFoundError } from 'modelservice'

const openai = new OpenAI({ services: [{ name: 'esm', accessName: 'u/esm', model: '/m.gguf' }] })
const completion: OpenAI.ChatCompletion = await openai.chat.completions.create({
  model: 'u/esm',
  messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  stop: ['\n'],
  n: 2,
})
const error: APIError = new NotFoundError(404, undefined, 'gone', undefined)
// @ts-expect-error `model` is required
await openai.chat.completions.create({ messages: [] })

// @ts-expect-error a misspelt spec field is refused, as the engine refuses it
new OpenAI({ services: [{ name: 'esm', accessName: 'u/esm', model: '/m.gguf', slotz: 2 }] })
const embedded: OpenAI.CreateEmbeddingResponse = await openai.embeddings.create({ model: 'u/esm', input: ['a', 'b'] })
const vector: number[] | string = embedded.data[0].embedding
export { completion, error, vector }
