// The official `openai` npm package against the server, used exactly as its documentation shows.
// Reads MODELSERVICE_BASE_URL, MODELSERVICE_API_KEY and MODELSERVICE_MODEL; prints one JSON object
// with what it saw, for tests/http.rs to check. Exits non-zero on any failure.
import OpenAI from 'openai';

const baseURL = process.env.MODELSERVICE_BASE_URL;
const model = process.env.MODELSERVICE_MODEL;
const openai = new OpenAI({ baseURL, apiKey: process.env.MODELSERVICE_API_KEY });
const messages = [
  { role: 'user', content: 'hello!' },
  { role: 'user', content: 'how are you?' },
];

const chatCompletion = await openai.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24 });

const pieces = [];
const stream = await openai.chat.completions.create({ model, messages, temperature: 0, max_tokens: 24, stream: true });
for await (const chunk of stream) {
  const text = chunk.choices[0]?.delta?.content;
  if (text) pieces.push(text);
}

// Legacy text completions: the default budget (16 tokens), a stream, legacy log probabilities.
const prompt = 'The capital of France is';
const text = await openai.completions.create({ model, prompt, temperature: 0, logprobs: 2 });
const textPieces = [];
for await (const chunk of await openai.completions.create({ model, prompt, temperature: 0, stream: true })) {
  for (const c of chunk.choices) if (c.text) textPieces.push(c.text);
}
const completions = {
  object: text.object,
  text: text.choices[0].text,
  pieces: textPieces,
  finish_reason: text.choices[0].finish_reason,
  completion_tokens: text.usage.completion_tokens,
  tokens: text.choices[0].logprobs.tokens,
};

const models = [];
for await (const m of openai.models.list()) models.push(m.id);
const retrieved = (await openai.models.retrieve(model)).id;

// The SDK's own error classes must come out of the server's error envelopes.
const errors = {};
try {
  await new OpenAI({ baseURL, apiKey: 'wrong-key', maxRetries: 0 }).models.list();
} catch (error) {
  if (error instanceof OpenAI.AuthenticationError) errors.auth = [error.status, error.type];
}
try {
  await openai.chat.completions.create({ model: 'no/such-model', messages });
} catch (error) {
  if (error instanceof OpenAI.NotFoundError) errors.not_found = [error.status, error.code];
}
try {
  await openai.chat.completions.create({ model, messages, temperature: 5 });
} catch (error) {
  if (error instanceof OpenAI.BadRequestError) errors.bad_request = [error.status, error.param];
}

// Tool calling: a required call the SDK parses, its result sent back, and the SDK's stream
// helper rebuilding the call from the deltas.
const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'Get the current weather in a city.',
    parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 30 } }, required: ['city'] },
  },
};
const ask = [{ role: 'user', content: 'What is the weather like in Paris today?' }];
const settings = { temperature: 0, max_tokens: 80, parallel_tool_calls: false };
const called = await openai.chat.completions.create({ model, messages: ask, tools: [weather], tool_choice: 'required', ...settings });
const call = called.choices[0].message.tool_calls[0];
const answer = await openai.chat.completions.create({
  model,
  messages: [...ask, called.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '{"temp_c": 18}' }],
  tools: [weather],
  tool_choice: 'none',
  ...settings,
});
const helper = openai.chat.completions.stream({ model, messages: ask, tools: [weather], tool_choice: 'required', ...settings });
const final = await helper.finalChatCompletion();
const streamedCall = final.choices[0].message.tool_calls[0];
const tools = {
  finish_reason: called.choices[0].finish_reason,
  content: called.choices[0].message.content,
  id: call.id,
  name: call.function.name,
  arguments: JSON.parse(call.function.arguments),
  answer: answer.choices[0].message.content,
  streamed: [streamedCall.function.name, JSON.parse(streamedCall.function.arguments)],
  streamed_finish_reason: final.choices[0].finish_reason,
};

console.log(JSON.stringify({
  content: chatCompletion.choices[0].message.content,
  finish_reason: chatCompletion.choices[0].finish_reason,
  usage: chatCompletion.usage,
  pieces,
  models,
  retrieved,
  errors,
  completions,
  tools,
}));
