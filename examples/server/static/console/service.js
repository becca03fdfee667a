// One service's page: basic information, base model and engine statistics (GET
// /v1/services/{access_name} every two seconds), authentication, API call examples filled in with
// this server's address, the online trial (a streamed POST /v1/chat/completions, optionally in JSON
// mode with a schema), scale and delete.
import {
  $, api, ApiError, apiKeyButNotAdmin, catchPageErrors, copyText, describe, formatBytes, formatInt, h, keys, openDeleteDialog,
  openScaleDialog, poll, request, say, serviceApi, setupKeys, statusBadge,
} from "./common.js";

catchPageErrors();

const POLL_MS = 2000;
const PREFIX = "/console/services/";
const accessName = decodeURIComponent(location.pathname.slice(PREFIX.length)).replace(/\/+$/, "");
let info = null;

function facts(id, pairs) {
  const list = $(id);
  const items = pairs.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]);
  list.replaceChildren(...items);
}

function showInfo(s) {
  info = s;
  document.title = `${s.name} · modelservice console`;
  $("service-title").textContent = s.name;
  $("crumb-name").textContent = s.name;
  statusBadge(s.status, $("title-status"));
  $("title-status").hidden = false;
  $("manage-actions").hidden = false;
  const settled = s.status === "running" || s.status === "failed";
  $("scale").disabled = !settled;
  $("delete").disabled = !settled;
  const b = s.base_model;
  facts("basic", [
    ["Model service name", s.name],
    ["Model access name", h("code", {}, s.access_name)],
    ["Model service ID", h("code", {}, s.id)],
    ["Base model", b.name],
    ["Instance count", String(s.instances)],
    ["Status", s.status_reason ? `${s.status}: ${s.status_reason}` : s.status],
    ["Slots per instance", String(s.slots_per_instance)],
    ["Context length", `${formatInt(s.context_length)} tokens per slot`],
    ["Threads per instance", String(s.threads_per_instance)],
    ["Queue size", String(s.queue_size)],
    ["Created", new Date(s.created * 1000).toLocaleString("en-GB")],
  ]);
  facts("base-model", [
    ["Architecture", b.architecture],
    ["Size", b.size_label || "—"],
    ["Parameters", formatInt(b.parameters)],
    ["Quantization", b.quantization],
    ["Trained context", `${formatInt(b.trained_context_length)} tokens`],
    ["File", h("code", { class: "path" }, b.path)],
    ["File size", formatBytes(b.file_size)],
    ["Chat template", b.has_chat_template ? "in the file" : "none in the file"],
  ]);
  facts("stats", [
    ["Requests", formatInt(s.usage.requests)],
    ["Prompt tokens", formatInt(s.usage.prompt_tokens)],
    ["Completion tokens", formatInt(s.usage.completion_tokens)],
    ["Decode steps", formatInt(s.stats.decode_steps)],
    ["Tokens decoded", formatInt(s.stats.tokens_decoded)],
    ["Most requests in one step", formatInt(s.stats.peak_batch_sequences)],
    ["Prompt tokens reused from cache", formatInt(s.stats.prompt_tokens_reused)],
    ["Steps redone on one thread (cores busy)", formatInt(s.stats.stopped_steps)],
  ]);
  renderExamples();
}

async function refresh() {
  if (!keys.manage()) {
    say("info-status", "Enter your key under “Authentication” to see this service's information.");
    return;
  }
  try {
    showInfo(await api("GET", serviceApi(accessName), { key: keys.manage() }));
    say("info-status", "");
  } catch (e) {
    if (e.status === 404) {
      info = null;
      $("manage-actions").hidden = true;
      $("title-status").hidden = true;
      $("service-title").textContent = accessName;
      say("info-status", `No service is deployed under the access name “${accessName}”: it may have been deleted. See the list of model services.`, "error");
    } else if (await apiKeyButNotAdmin(e)) {
      say("info-status", `${e.message} The service's details need an admin key on this server; the examples and the trial below work with your API key.`, "error");
    } else {
      say("info-status", "Cannot show this service: " + describe(e), "error");
    }
  }
}

// API call examples: this server's address and this service's access name; the key comes from
// the environment so it never lands in a clipboard, a shell history or a screenshot.
function examples() {
  const base = location.origin;
  const model = JSON.stringify(accessName);
  const name = JSON.stringify(info ? info.name : "test");
  const path = JSON.stringify(info ? info.base_model.path : "/path/to/model.gguf");
  return [
    {
      id: "curl", title: "curl", lang: "shell",
      code: `curl '${base}/v1/chat/completions' \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer $MODELSERVICE_API_KEY" \\
  -d '{
    "model": ${model},
    "messages": [{"role": "user", "content": "Say this is a test!"}],
    "temperature": 0.7
  }'`,
    },
    {
      id: "python", title: "Python (openai package)", lang: "python",
      code: `# pip install openai  (v1.0.0 and above)
import os

from openai import OpenAI

client = OpenAI(
    base_url="${base}/v1/",
    api_key=os.environ["MODELSERVICE_API_KEY"],
)

response = client.chat.completions.create(
    model=${model},
    messages=[{"role": "user", "content": "Say this is a test!"}],
    temperature=0.7,
)

print(response.choices[0].message.content)`,
    },
    {
      id: "python-inprocess", title: "Python, in your own process (modelservice)", lang: "python",
      code: `# The same model without a server: pip install ./bindings-python
from modelservice import OpenAI  # was: from openai import OpenAI

client = OpenAI(
    services=[{
        "name": ${name},
        "access_name": ${model},
        "model": ${path},  # a GGUF file on your machine
    }],
)

response = client.chat.completions.create(
    model=${model},
    messages=[{"role": "user", "content": "Say this is a test!"}],
    temperature=0.7,
)

print(response.choices[0].message.content)`,
    },
    {
      id: "node", title: "Node.js (openai package)", lang: "javascript",
      code: `// npm install openai
const OpenAI = require('openai');

const openai = new OpenAI({
  baseURL: '${base}/v1',
  apiKey: process.env.MODELSERVICE_API_KEY,
});

async function getData() {
  try {
    const chatCompletion = await openai.chat.completions.create({
      model: ${model},
      messages: [{ role: 'user', content: 'Say this is a test!' }],
      temperature: 0.7,
    });
    console.log(chatCompletion.choices[0].message.content);
  } catch (error) {
    if (error instanceof OpenAI.APIError) {
      console.error('API Error:', error.status, error.message);
    } else {
      console.error('Unexpected error:', error);
    }
  }
}

getData();`,
    },
  ];
}

function renderExamples() {
  for (const example of examples()) {
    let block = $("example-" + example.id);
    if (!block) {
      const status = h("span", { class: "copy-status", role: "status" });
      const copy = h("button", { type: "button", class: "secondary small copy", "aria-label": `Copy the ${example.title} example`,
        onclick: async () => {
          const ok = await copyText($("code-" + example.id).textContent);
          status.textContent = ok ? "Copied" : "Copy failed: select the text and copy it by hand";
          setTimeout(() => { status.textContent = ""; }, 3000);
        } }, "Copy");
      block = h("div", { class: "example", id: "example-" + example.id },
        h("div", { class: "example-head" }, h("h3", {}, example.title), status, copy),
        // Scrollable code must be reachable by keyboard.
        h("pre", { tabindex: "0", "aria-label": `${example.title} example` }, h("code", { id: "code-" + example.id, "data-lang": example.lang })));
      $("example-list").append(block);
    }
    const code = $("code-" + example.id);
    if (code.textContent !== example.code) code.textContent = example.code;
  }
}

// The online trial: the conversation is kept here and sent whole; the answer is read as
// Server-Sent Events and shown as it grows.
const history = [];
let controller = null;

function addMessage(role, text) {
  $("trial-empty")?.remove();
  const body = h("div", { class: "msg-text" }, text);
  const message = h("div", { class: "msg " + role }, h("div", { class: "msg-role" }, role === "user" ? "You" : "Model"), body);
  $("trial-log").append(message);
  return { message, body };
}

// JSON mode: the trial's `response_format`, from the schema box (empty: any JSON object).
function schemaError(message) {
  $("trial-schema-error").textContent = message;
  if (message) {
    $("trial-schema").setAttribute("aria-invalid", "true");
    $("trial-schema").focus();
  } else {
    $("trial-schema").removeAttribute("aria-invalid");
  }
}

/// The `response_format` to send (undefined without JSON mode), or null when the schema box
/// does not hold JSON (the error is then shown next to it).
function responseFormat() {
  if (!$("trial-json").checked) return undefined;
  const text = $("trial-schema").value.trim();
  if (!text) return { type: "json_object" };
  try {
    return { type: "json_schema", json_schema: { name: "trial", schema: JSON.parse(text) } };
  } catch (e) {
    schemaError(`The schema is not valid JSON: ${e.message}`);
    return null;
  }
}

function parsesAsJson(text) {
  try {
    JSON.parse(text);
    return true;
  } catch (_) {
    return false;
  }
}

// The trial's tools, when some are given: sent as `tools` with the chosen `tool_choice`.
function trialTools() {
  const text = $("trial-tools").value.trim();
  if (!text) return {};
  const tools = JSON.parse(text);
  return { tools, tool_choice: $("trial-tool-choice").value };
}

// Streamed tool-call deltas, gathered into whole calls: the first delta of a call opens it,
// later ones add argument text.
function addToolCallDeltas(calls, deltas) {
  for (const d of deltas) {
    if (d.id) calls[d.index] = { id: d.id, type: "function", function: { name: d.function.name, arguments: "" } };
    if (calls[d.index] && d.function && d.function.arguments) calls[d.index].function.arguments += d.function.arguments;
  }
}

function showToolCalls(message, calls) {
  let box = message.querySelector(".msg-calls");
  if (!box) {
    box = h("div", { class: "msg-calls" });
    message.append(box);
  }
  box.textContent = calls.map((c) => `→ ${c.function.name}(${c.function.arguments})`).join("\n");
}

async function send(event) {
  event.preventDefault();
  const text = $("trial-prompt").value.trim();
  if (!text) { say("trial-status", "Type a message first.", "error"); $("trial-prompt").focus(); return; }
  if (!keys.chat()) { say("trial-status", "Enter your API key under “Authentication” first.", "error"); $("api-key").focus(); return; }
  schemaError("");
  const format = responseFormat();
  if (format === null) { say("trial-status", "Fix the schema first.", "error"); return; }
  let tools;
  try {
    tools = trialTools();
  } catch (e) {
    say("trial-status", `The tools are not valid JSON: ${e.message}`, "error");
    $("trial-tools").focus();
    return;
  }
  $("trial-prompt").value = "";
  history.push({ role: "user", content: text });
  addMessage("user", text);
  const { message, body } = addMessage("assistant", "");
  message.dataset.state = "streaming";
  controller = new AbortController();
  $("trial-send").disabled = true;
  $("trial-stop").disabled = false;
  say("trial-status", "Generating…");
  let answer = "";
  const calls = [];
  try {
    const response = await request("POST", "/v1/chat/completions", {
      key: keys.chat(), signal: controller.signal,
      body: {
        model: accessName, messages: history, stream: true,
        temperature: Number($("trial-temperature").value), max_tokens: Number($("trial-max-tokens").value),
        response_format: format,
        ...tools,
      },
    });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let finish = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        for (const line of block.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") continue;
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(`${chunk.error.message} (${chunk.error.type})`);
          for (const choice of chunk.choices) {
            if (choice.delta && choice.delta.content) {
              answer += choice.delta.content;
              body.textContent = answer;
            }
            if (choice.delta && choice.delta.tool_calls) {
              addToolCallDeltas(calls, choice.delta.tool_calls);
              showToolCalls(message, calls);
            }
            if (choice.finish_reason) finish = choice.finish_reason;
          }
        }
      }
    }
    history.push(calls.length ? { role: "assistant", content: answer || null, tool_calls: calls } : { role: "assistant", content: answer });
    const endings = { length: "Done: stopped at the max tokens limit.", tool_calls: "Done: the model called a tool." };
    let done = endings[finish] || "Done.";
    if (format) {
      const valid = parsesAsJson(answer);
      message.dataset.json = valid ? "valid" : "incomplete";
      done += valid ? " The answer is valid JSON." : " The answer is not complete JSON: raise the max tokens.";
    }
    say("trial-status", done, "ok");
  } catch (e) {
    if (e.name === "AbortError") {
      history.push({ role: "assistant", content: answer });
      say("trial-status", "Stopped.");
    } else {
      message.classList.add("error");
      body.textContent = e instanceof ApiError ? describe(e) : `The answer broke off: ${e.message}`;
      // A schema the server refuses is shown next to the schema box.
      if (e instanceof ApiError && (e.param || "").startsWith("response_format")) schemaError(describe(e));
      say("trial-status", "The request failed.", "error");
      history.pop();
    }
  } finally {
    message.dataset.state = "done";
    controller = null;
    $("trial-send").disabled = false;
    $("trial-stop").disabled = true;
  }
}

function manageDone(text) {
  say("action-status", text, "ok");
  refreshNow();
}

$("endpoint").textContent = `${location.origin}/v1/chat/completions`;
for (const el of document.querySelectorAll(".access-name")) el.textContent = accessName;
$("service-title").textContent = accessName;
$("crumb-name").textContent = accessName;
renderExamples();
setupKeys(() => refreshNow());
$("trial-form").addEventListener("submit", send);
$("trial-stop").addEventListener("click", () => controller && controller.abort());
$("trial-json").addEventListener("change", () => {
  $("trial-schema-field").hidden = !$("trial-json").checked;
  schemaError("");
});
$("trial-clear").addEventListener("click", () => {
  history.length = 0;
  $("trial-log").replaceChildren(h("p", { class: "hint", id: "trial-empty" }, "Messages you send and the streamed answers appear here."));
  say("trial-status", "Conversation cleared.");
});
$("trial-prompt").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("trial-form").requestSubmit(); }
});
$("scale").addEventListener("click", () => info && openScaleDialog(info, (s) => manageDone(`${s.name} now runs ${s.instances} instance${s.instances === 1 ? "" : "s"}.`)));
// The service is gone: back to the list.
$("delete").addEventListener("click", () => info && openDeleteDialog(info, () => location.assign("/console")));
const refreshNow = poll(refresh, POLL_MS);
