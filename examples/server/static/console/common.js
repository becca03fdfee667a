// What both console pages share: the keys (sessionStorage only), calls to the /v1 API with errors
// turned into words, the scale and delete dialogs, copying, and number formatting.

export const $ = (id) => document.getElementById(id);

// The trial page at / reads the same entry, so a key entered in either place serves both.
const API_KEY = "modelservice-key";
const ADMIN_KEY = "modelservice-admin-key";

export const keys = {
  api: () => sessionStorage.getItem(API_KEY) || "",
  admin: () => sessionStorage.getItem(ADMIN_KEY) || "",
  // A server without admin keys lets any valid key manage services.
  manage: () => keys.admin() || keys.api(),
  chat: () => keys.api() || keys.admin(),
  save(api, admin) {
    for (const [name, value] of [[API_KEY, api], [ADMIN_KEY, admin]]) {
      if (value.trim()) sessionStorage.setItem(name, value.trim());
      else sessionStorage.removeItem(name);
    }
  },
  forget() {
    sessionStorage.removeItem(API_KEY);
    sessionStorage.removeItem(ADMIN_KEY);
  },
};

/// A failed API call: the server's OpenAI error envelope, or a network failure, in words.
export class ApiError extends Error {
  constructor(status, type, message, param) {
    super(message);
    this.status = status;
    this.type = type;
    this.param = param ?? null;
  }
}

export async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    // Not JSON: described by the status line below.
  }
  const e = body && body.error;
  if (e && e.message) return new ApiError(response.status, e.type, e.message, e.param);
  return new ApiError(response.status, "http_error", `The server answered ${response.status} ${response.statusText}.`);
}

export function headers(key) {
  const h = { "Content-Type": "application/json" };
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

/// `fetch` that throws an ApiError for a network failure or any non-2xx answer.
export async function request(method, path, { key, body, signal } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(key),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, "network_error", `Cannot reach the server at ${location.origin} (${e.message}). Is it still running?`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response;
}

export async function api(method, path, options) {
  return (await request(method, path, options)).json();
}

/// An error as a sentence for the page, with what to do about it where we know.
export function describe(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in the page: ${error && error.message ? error.message : error}`;
  if (error.status === 401) return `${error.message} Enter a valid key in the keys form and save it.`;
  if (error.status === 0) return error.message;
  return `${error.message} (${error.status} ${error.type})`;
}

/// Whether a management call's 401 came from a valid API key that is not an admin key (the server
/// has admin keys), as opposed to a wrong key: the two need different advice.
export async function apiKeyButNotAdmin(error) {
  if (error.status !== 401 || keys.admin() || !keys.api()) return false;
  try {
    await request("GET", "/v1/models", { key: keys.api() });
    return true;
  } catch (_) {
    return false;
  }
}

export function say(id, text, kind) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle("error", kind === "error");
  el.classList.toggle("ok", kind === "ok");
}

/// Never a blank page: anything thrown and not caught is shown in words at the top.
export function catchPageErrors() {
  const show = (message) => {
    const banner = $("page-error");
    banner.textContent = `Something went wrong in the page: ${message}. Reload to try again.`;
    banner.hidden = false;
  };
  window.addEventListener("error", (e) => show(e.message));
  window.addEventListener("unhandledrejection", (e) => show(e.reason && e.reason.message ? e.reason.message : String(e.reason)));
}

/// Builds an element: `h("a", { href: "/x", class: "link" }, "text", child)`. Text is never parsed as HTML.
export function h(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  el.append(...children.filter((c) => c !== null && c !== undefined));
  return el;
}

/// The console page of a service; access names contain `/`, which stays a path separator.
export function servicePage(accessName) {
  return "/console/services/" + accessName.split("/").map(encodeURIComponent).join("/");
}

export function serviceApi(accessName) {
  return "/v1/services/" + accessName.split("/").map(encodeURIComponent).join("/");
}

export const formatInt = (n) => (typeof n === "number" ? n.toLocaleString("en-US") : "—");

export function formatBytes(n) {
  if (typeof n !== "number") return "—";
  if (n >= 1 << 30) return (n / (1 << 30)).toFixed(2) + " GiB";
  if (n >= 1 << 20) return (n / (1 << 20)).toFixed(1) + " MiB";
  return formatInt(n) + " bytes";
}

export function statusBadge(status, el = h("span")) {
  el.className = "status-badge status-" + status;
  el.textContent = status;
  return el;
}

/// Show/Hide buttons next to masked fields: `aria-controls` names the input.
export function setupReveal(root = document) {
  for (const button of root.querySelectorAll("button.reveal")) {
    const input = $(button.getAttribute("aria-controls"));
    const labels = { show: button.dataset.show || "Show", hide: button.dataset.hide || "Hide" };
    button.addEventListener("click", () => {
      const reveal = input.type === "password";
      input.type = reveal ? "text" : "password";
      button.setAttribute("aria-pressed", String(reveal));
      button.textContent = reveal ? labels.hide : labels.show;
    });
  }
}

/// The keys form: filled from sessionStorage, saved on submit; `changed` runs after each change.
export function setupKeys(changed) {
  $("api-key").value = keys.api();
  $("admin-key").value = keys.admin();
  setupReveal();
  $("keys-form").addEventListener("submit", (e) => {
    e.preventDefault();
    keys.save($("api-key").value, $("admin-key").value);
    say("keys-status", keys.api() || keys.admin() ? "Keys saved for this tab." : "No key saved.", "ok");
    changed();
  });
  $("forget-keys").addEventListener("click", () => {
    keys.forget();
    $("api-key").value = "";
    $("admin-key").value = "";
    say("keys-status", "Keys forgotten.", "ok");
    changed();
  });
  if (!keys.api() && !keys.admin()) say("keys-status", "Enter your API key (and an admin key to manage services), then save.");
}

/// Copies text, with a fallback where the Clipboard API is unavailable (plain http off localhost).
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const area = h("textarea", { class: "visually-hidden", "aria-hidden": "true" });
    area.value = text;
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}

/// A modal dialog with a title, a body, an error line and Cancel / confirm buttons. `submit`
/// resolves to close it or throws an ApiError, which is shown in the dialog (next to its field).
function dialog({ title, body, confirm, danger, submit, focus }) {
  const titleId = "dialog-title-" + Math.random().toString(36).slice(2);
  const error = h("p", { class: "field-error", role: "alert", id: titleId + "-error" });
  const working = h("p", { class: "status", role: "status" });
  const confirmButton = h("button", { type: "submit", class: danger ? "danger" : null }, confirm);
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const form = h("form", { method: "dialog" }, h("h2", { id: titleId }, title), ...body, error, working,
    h("div", { class: "actions" }, cancel, confirmButton));
  const el = h("dialog", { "aria-labelledby": titleId }, form);
  const opener = document.activeElement;
  const close = () => {
    el.close();
    el.remove();
    // Focus goes back where it was; if that is gone (a deleted row), to the section around it.
    if (opener && opener.isConnected) opener.focus();
    else (document.querySelector("[data-focus-fallback]") || $("main")).focus();
  };
  cancel.addEventListener("click", close);
  el.addEventListener("cancel", (e) => {
    e.preventDefault();
    if (!confirmButton.dataset.busy) close();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    error.textContent = "";
    confirmButton.disabled = true;
    confirmButton.dataset.busy = "1";
    working.textContent = "Working…";
    activity.busy += 1;
    try {
      await submit();
      close();
    } catch (err) {
      error.textContent = describe(err);
      working.textContent = "";
      if (focus) focus.setAttribute("aria-invalid", "true");
      (focus || confirmButton).focus();
    } finally {
      activity.busy -= 1;
      confirmButton.disabled = false;
      delete confirmButton.dataset.busy;
    }
  });
  if (focus) focus.setAttribute("aria-describedby", error.id);
  document.body.append(el);
  el.showModal();
  (focus || confirmButton).focus();
  return { el, confirmButton };
}

/// Scale: asks for the instance count, then `PATCH /v1/services/{access_name}`.
export function openScaleDialog(info, done) {
  const input = h("input", { id: "scale-instances", type: "number", min: "1", step: "1", inputmode: "numeric", value: String(info.instances) });
  dialog({
    title: `Scale ${info.name}`,
    body: [
      h("p", {}, `${info.access_name} runs ${info.instances} instance${info.instances === 1 ? "" : "s"} now. Each instance holds its own copy of the model's context and serves ${info.slots_per_instance} requests at once.`),
      h("div", { class: "field" }, h("label", { for: "scale-instances" }, "Instances"), input),
    ],
    confirm: "Confirm",
    focus: input,
    async submit() {
      const instances = input.value.trim() === "" ? input.value : Number(input.value);
      const scaled = await api("PATCH", serviceApi(info.access_name), { key: keys.manage(), body: { instances } });
      done(scaled);
    },
  });
}

/// Delete: the service's display name must be typed, as `DELETE ...?confirm=<name>` asks.
export function openDeleteDialog(info, done) {
  const input = h("input", { id: "delete-confirm", type: "text", autocomplete: "off", spellcheck: "false" });
  const { confirmButton } = dialog({
    title: `Delete ${info.name}?`,
    body: [
      h("p", {}, "This stops ", h("code", {}, info.access_name),
        ". Requests in flight finish first; new ones are refused at once. Type the service name ",
        h("strong", {}, info.name), " to confirm."),
      h("div", { class: "field" }, h("label", { for: "delete-confirm" }, "Service name"), input),
    ],
    confirm: "Delete",
    danger: true,
    focus: input,
    async submit() {
      const path = serviceApi(info.access_name) + "?confirm=" + encodeURIComponent(input.value);
      const deleted = await api("DELETE", path, { key: keys.manage() });
      done(deleted);
    },
  });
  confirmButton.disabled = true;
  input.addEventListener("input", () => {
    confirmButton.disabled = input.value !== info.name;
  });
}

/// Deploys, scales and deletes in flight: while any runs, the pages refresh faster, so the
/// statuses they pass through (`loading`, `scaling`) show.
export const activity = { busy: 0 };
const BUSY_POLL_MS = 300;

/// Repeats `task` every `ms` milliseconds, one run at a time; returns a function that runs it now.
export function poll(task, ms) {
  let timer = null;
  let running = false;
  const run = async () => {
    clearTimeout(timer);
    if (running) return;
    running = true;
    try {
      await task();
    } finally {
      running = false;
      timer = setTimeout(run, activity.busy ? BUSY_POLL_MS : ms);
    }
  };
  run();
  return run;
}
