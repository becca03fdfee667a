// A TypeScript user of the package: tsc checks it against index.d.ts (`make typecheck`), and
// test/typings.test.js runs the compiled file on the real model.
import OpenAI from 'modelservice'
import { APIError, NotFoundError } from 'modelservice'

async function main(modelPath: string): Promise<void> {
  const openai = new OpenAI({
    services: [{ name: 'ts', accessName: 'u-ts/usage', model: modelPath, contextLength: 1024, slots: 2 }],
    apiKey: 'unused',
  })
  const infos: OpenAI.ServiceInfo[] = await openai.ready()
  const status: OpenAI.ServiceStatus = infos[0].status

  const params: OpenAI.ChatCompletionCreateParamsNonStreaming = {
    model: 'u-ts/usage',
    messages: [{ role: 'user', content: 'Say this is a test!' }],
    temperature: 0,
    max_tokens: 8,
  }
  const completion: OpenAI.ChatCompletion = await openai.chat.completions.create(params)
  // `content` is optional in the wire schema (derived for deserializing); the engine always sends it.
  const content: string | null = completion.choices[0].message.content ?? null
  const total: number = completion.usage.total_tokens
  // Tool calling types, as the SDK names them.
  const tool: OpenAI.ChatCompletionTool = {
    type: 'function',
    function: { name: 'get_time', parameters: { type: 'object', properties: {} } },
  }
  const toolChoice: OpenAI.ChatCompletionToolChoiceOption = { type: 'function', function: { name: 'get_time' } }
  const toolParams: OpenAI.ChatCompletionCreateParamsNonStreaming = { ...params, tools: [tool], tool_choice: toolChoice }
  const calls: OpenAI.ChatCompletionMessageToolCall[] = completion.choices[0].message.tool_calls ?? []
  const callNames: string[] = calls.map((c) => c.function.name)
  void toolParams
  void callNames

  const controller = new AbortController()
  const stream = await openai.chat.completions.create(
    { ...params, stream: true, stream_options: { include_usage: true } },
    { signal: controller.signal },
  )
  let streamed = ''
  for await (const chunk of stream) {
    const c: OpenAI.ChatCompletionChunk = chunk
    streamed += c.choices[0]?.delta.content ?? ''
  }

  // @ts-expect-error a non-streamed completion has no deltas
  completion.choices[0].delta

  // Legacy text completions: whole and streamed, typed by the `stream` flag.
  const text: OpenAI.Completion = await openai.completions.create({ model: 'u-ts/usage', prompt: 'Once', max_tokens: 4 })
  const textStream = await openai.completions.create({ model: 'u-ts/usage', prompt: ['a', 'b'], max_tokens: 2, stream: true })
  for await (const chunk of textStream) void (chunk.choices[0]?.text satisfies string | undefined)
  void text.choices[0].text

  const models: OpenAI.Model[] = (await openai.models.list()).data
  for await (const model of openai.models.list()) {
    const id: string = model.id
    void id
  }
  const services: OpenAI.ServiceInfo[] = (await openai.services.list()).data
  for await (const service of openai.services.list()) void service.access_name
  const raw: OpenAI.ServiceList = JSON.parse(await openai.registry.call('services.list', '{}'))
  const metrics: OpenAI.ServiceMetrics[] = (await openai.services.metrics('u-ts/usage')).data
  const firstTokens: number = metrics[0].time_to_first_token.count
  void firstTokens
  const scaled = await openai.services.scale('u-ts/usage', 2)
  const shared = new OpenAI({ registry: openai })

  let caught: APIError | undefined
  try {
    await shared.chat.completions.create({ model: 'no/such-model', messages: [{ role: 'user', content: 'x' }] })
  } catch (error) {
    if (error instanceof OpenAI.APIError) caught = error
    if (error instanceof NotFoundError) console.error(error.status, error.error?.code, error.param)
  }
  const deleted = await openai.services.delete('u-ts/usage', { confirm: 'ts' })

  console.log(
    JSON.stringify({
      status,
      content,
      total,
      streamed,
      models: models.map((m) => m.id),
      services: services.length + raw.data.length,
      instances: scaled.instances,
      caught: caught?.status,
      deleted: deleted.access_name,
    }),
  )
}

main(process.argv[2]).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
