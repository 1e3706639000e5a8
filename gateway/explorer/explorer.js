// The API explorer: reads the gateway's own OpenAPI document and lets an operator read every
// operation and try it with a token, from this origin only (no external assets).
"use strict";

const METHODS = ["get", "post", "put", "patch", "delete"];

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function resolve(doc, value) {
  let seen = 0;
  while (value && value.$ref && seen++ < 16) {
    value = value.$ref.replace(/^#\//, "").split("/")
      .map((part) => part.replace(/~1/g, "/").replace(/~0/g, "~"))
      .reduce((node, key) => (node ? node[key] : undefined), doc);
  }
  return value;
}

// A small example body built from a schema: the example when there is one, else the shape.
function example(doc, schema, depth) {
  schema = resolve(doc, schema);
  if (!schema || depth > 6) return null;
  if (schema.example !== undefined) return schema.example;
  if (schema.examples && schema.examples.length) return schema.examples[0];
  if (schema.enum) return schema.enum[0];
  if (schema.oneOf || schema.anyOf) return example(doc, (schema.oneOf || schema.anyOf)[0], depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
  switch (type) {
    case "object": {
      const out = {};
      const required = new Set(schema.required || []);
      for (const [name, property] of Object.entries(schema.properties || {})) {
        if (required.has(name) || depth === 0) out[name] = example(doc, property, depth + 1);
      }
      return out;
    }
    case "array": return [example(doc, schema.items, depth + 1)];
    case "integer": case "number": return 0;
    case "boolean": return false;
    case "string": return "";
    default: return null;
  }
}

function parameterRows(doc, parameters) {
  const table = element("table", {}, element("tr", {}, element("th", {}, "name"),
    element("th", {}, "in"), element("th", {}, "value"), element("th", {}, "description")));
  const inputs = [];
  for (const raw of parameters) {
    const parameter = resolve(doc, raw);
    const input = element("input", { "data-name": parameter.name, "data-in": parameter.in,
      placeholder: parameter.required ? "required" : "optional" });
    inputs.push(input);
    table.append(element("tr", {}, element("td", {}, parameter.name), element("td", {}, parameter.in),
      element("td", {}, input), element("td", {}, parameter.description || "")));
  }
  return { table, inputs };
}

async function tryIt(method, template, inputs, bodyArea, output) {
  let path = template;
  const query = new URLSearchParams();
  for (const input of inputs) {
    const value = input.value.trim();
    if (input.dataset.in === "path") {
      if (!value) { output.textContent = `path parameter ${input.dataset.name} is required`; return; }
      path = path.replace(`{${input.dataset.name}}`, encodeURIComponent(value));
    } else if (input.dataset.in === "query" && value) {
      query.append(input.dataset.name, value);
    }
  }
  const url = path + (query.toString() ? `?${query}` : "");
  const headers = {};
  const token = document.getElementById("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method: method.toUpperCase(), headers };
  if (bodyArea && bodyArea.value.trim()) {
    headers["Content-Type"] = "application/json";
    init.body = bodyArea.value;
  }
  output.textContent = `${init.method} ${url} …`;
  try {
    const response = await fetch(url, init);
    const text = await response.text();
    let shown = text;
    try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
    output.textContent = `${response.status} ${response.statusText}\n` +
      `x-request-id: ${response.headers.get("x-request-id") || "-"}\n\n${shown}`;
  } catch (error) {
    output.textContent = `request failed: ${error}`;
  }
}

function operationView(doc, template, method, operation) {
  const body = element("div", { class: "body" });
  if (operation.description) body.append(element("p", { class: "description" }, operation.description));
  const { table, inputs } = parameterRows(doc, operation.parameters || []);
  if (inputs.length) body.append(element("h4", {}, "Parameters"), table);
  let bodyArea = null;
  const requestBody = resolve(doc, operation.requestBody);
  if (requestBody && requestBody.content && requestBody.content["application/json"]) {
    const schema = requestBody.content["application/json"].schema;
    bodyArea = element("textarea", { "aria-label": "request body" });
    bodyArea.value = JSON.stringify(example(doc, schema, 0), null, 2);
    body.append(element("h4", {}, "Body"), bodyArea);
  }
  const responses = element("table", {}, element("tr", {}, element("th", {}, "status"), element("th", {}, "meaning")));
  for (const [status, raw] of Object.entries(operation.responses || {})) {
    const response = resolve(doc, raw);
    responses.append(element("tr", {}, element("td", {}, status), element("td", {}, response.description || "")));
  }
  body.append(element("h4", {}, "Answers"), responses);
  const output = element("pre", { class: "output" }, "");
  const button = element("button", { type: "button" }, "Try it");
  button.addEventListener("click", () => tryIt(method, template, inputs, bodyArea, output));
  body.append(button, output);
  return element("details", { class: "operation", id: operation.operationId || `${method} ${template}` },
    element("summary", {}, element("span", { class: `method ${method}` }, method.toUpperCase()),
      element("span", { class: "path" }, template), " ", operation.summary || ""),
    body);
}

function render(doc) {
  document.getElementById("title").textContent = doc.info.title;
  document.getElementById("version").textContent = `version ${doc.info.version} · OpenAPI ${doc.openapi}`;
  document.getElementById("intro").textContent = doc.info.description || "";
  const byTag = new Map((doc.tags || []).map((tag) => [tag.name, []]));
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = (operation.tags && operation.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(doc, template, method, operation));
    }
  }
  const operations = document.getElementById("operations");
  const nav = document.getElementById("tags");
  operations.replaceChildren();
  for (const [tag, views] of byTag) {
    if (!views.length) continue;
    nav.append(element("a", { href: `#tag-${tag}` }, tag));
    operations.append(element("h2", { id: `tag-${tag}` }, tag), ...views);
  }
  operations.dataset.operations = String(operations.querySelectorAll("details.operation").length);
}

async function start() {
  const token = document.getElementById("token");
  token.value = sessionStorage.getItem("voltgate-token") || "";
  token.addEventListener("change", () => sessionStorage.setItem("voltgate-token", token.value));
  try {
    const response = await fetch("/api/v1/openapi.json");
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (error) {
    document.getElementById("operations").replaceChildren(
      element("p", { class: "error" }, `The API description could not be loaded: ${error}`));
  }
}

document.addEventListener("DOMContentLoaded", start);
