// The services list (GET /v1/services every two seconds, rows updated in place so focus stays
// put), the deploy form (POST /v1/services), and the scale and delete dialogs.
import {
  $, activity, api, apiKeyButNotAdmin, catchPageErrors, describe, formatInt, h, keys, openDeleteDialog, openScaleDialog, poll, say,
  servicePage, setupKeys, statusBadge,
} from "./common.js";

catchPageErrors();

const POLL_MS = 2000;
const rows = new Map();
let services = new Map();

function cell(label, ...children) {
  return h("td", { "data-label": label }, ...children);
}

function newRow(info) {
  const name = h("a", { href: servicePage(info.access_name), class: "service-link" });
  const scale = h("button", { type: "button", class: "secondary small", onclick: () => manage("scale", info.access_name) }, "Scale");
  const del = h("button", { type: "button", class: "danger small", onclick: () => manage("delete", info.access_name) }, "Delete");
  const row = h("tr", { "data-access-name": info.access_name },
    h("th", { scope: "row", "data-label": "Name" }, name),
    h("td", { "data-label": "Access name", class: "access-name" }, h("code")),
    cell("Service ID", h("code")),
    cell("Base model"),
    cell("Instances"),
    cell("Status", statusBadge(info.status)),
    cell("Requests"),
    cell("Tokens in / out"),
    h("td", { class: "row-actions" }, scale, del));
  return row;
}

function fill(row, info) {
  const [name, access, id, base, instances, status, requests, tokens, actions] = row.children;
  const set = (el, text) => { if (el.textContent !== text) el.textContent = text; };
  set(name.firstChild, info.name);
  set(access.firstChild, info.access_name);
  set(id.firstChild, info.id);
  set(base, `${info.base_model.name} (${[info.base_model.size_label, info.base_model.quantization].filter(Boolean).join(", ")})`);
  set(instances, String(info.instances));
  statusBadge(info.status, status.firstChild);
  status.title = info.status_reason || "";
  set(requests, formatInt(info.usage.requests));
  set(tokens, `${formatInt(info.usage.prompt_tokens)} / ${formatInt(info.usage.completion_tokens)}`);
  const [scale, del] = actions.children;
  scale.setAttribute("aria-label", `Scale ${info.name}`);
  del.setAttribute("aria-label", `Delete ${info.name}`);
  // A service that is loading or going away cannot be scaled or deleted yet.
  const settled = info.status === "running" || info.status === "failed";
  scale.disabled = !settled;
  del.disabled = !settled;
}

function render(list) {
  services = new Map(list.map((s) => [s.access_name, s]));
  const body = $("services").tBodies[0];
  for (const [accessName, row] of rows) {
    if (services.has(accessName)) continue;
    // Keep keyboard focus on the page when the focused row goes away.
    if (row.contains(document.activeElement)) $("services-title").focus();
    row.remove();
    rows.delete(accessName);
  }
  for (const info of list) {
    let row = rows.get(info.access_name);
    if (!row) {
      row = newRow(info);
      rows.set(info.access_name, row);
    }
    fill(row, info);
    body.append(row); // Appending an attached row moves it: the order follows the list.
  }
}

async function refresh() {
  if (!keys.manage()) {
    render([]);
    say("list-status", "Enter a key under “Keys” to see the services.");
    return;
  }
  try {
    const list = await api("GET", "/v1/services", { key: keys.manage() });
    render(list.data);
    say("list-status", list.data.length ? "" : "No services are deployed. Deploy one below.");
    $("updated").textContent = "Updated " + new Date().toLocaleTimeString("en-GB");
  } catch (e) {
    if (await apiKeyButNotAdmin(e)) {
      say("list-status", `${e.message} This server keeps the list and management to admin keys: enter one under “Keys”. Your API key still works for the API and the trial on each service's page.`, "error");
    } else {
      say("list-status", "Cannot show the services: " + describe(e), "error");
    }
  }
}

function manage(action, accessName) {
  const info = services.get(accessName);
  if (!info) return;
  if (action === "scale") {
    openScaleDialog(info, (scaled) => {
      say("action-status", `${scaled.name} now runs ${scaled.instances} instance${scaled.instances === 1 ? "" : "s"}.`, "ok");
      refreshNow();
    });
  } else {
    openDeleteDialog(info, (deleted) => {
      say("action-status", `${deleted.name} (${deleted.access_name}) was deleted.`, "ok");
      refreshNow();
    });
  }
}

// Deploy: the form's fields are the ServiceSpec's; empty optional fields are left out.
const FIELDS = ["name", "access_name", "model", "instances", "slots", "context_length", "threads", "gpu_layers", "chat_template", "queue_size"];
const NUMBERS = new Set(["instances", "slots", "context_length", "threads", "gpu_layers", "queue_size"]);

function clearDeployErrors() {
  for (const field of FIELDS) {
    $("e-" + field).textContent = "";
    $("f-" + field).removeAttribute("aria-invalid");
  }
  $("deploy-error").textContent = "";
}

function spec() {
  const body = {};
  for (const field of FIELDS) {
    const raw = $("f-" + field).value;
    if (field !== "chat_template" && raw.trim() === "") continue;
    if (field === "chat_template" && raw === "") continue;
    // A number field holding something else is sent as typed, and the server names the field.
    body[field] = NUMBERS.has(field) && raw.trim() !== "" && !Number.isNaN(Number(raw)) ? Number(raw) : raw.trim();
  }
  return body;
}

async function deploy(event) {
  event.preventDefault();
  clearDeployErrors();
  const body = spec();
  const button = $("deploy");
  button.disabled = true;
  say("deploy-status", `Deploying ${body.access_name || "the service"}: loading the model…`);
  activity.busy += 1;
  refreshNow();
  try {
    const info = await api("POST", "/v1/services", { key: keys.manage(), body });
    say("deploy-status", `${info.name} is running as ${info.access_name}.`, "ok");
    $("deploy-form").reset();
  } catch (e) {
    say("deploy-status", "");
    // `param` names the field (`instances`, or a path such as `model` for a file that cannot load).
    const field = e.param && FIELDS.find((f) => e.param === f || e.param.startsWith(f + ".") || e.param.startsWith(f + "["));
    if (field) {
      $("e-" + field).textContent = describe(e);
      $("f-" + field).setAttribute("aria-invalid", "true");
      $("f-" + field).focus();
    } else {
      $("deploy-error").textContent = "Not deployed: " + describe(e);
    }
  } finally {
    activity.busy -= 1;
    button.disabled = false;
    refreshNow();
  }
}

setupKeys(() => refreshNow());
$("deploy-form").addEventListener("submit", deploy);
const refreshNow = poll(refresh, POLL_MS);
