// Small DOM and formatting helpers. Everything the page shows from the gateway goes through
// textContent (never innerHTML): model names, key names and reasons are data, not markup.

export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else if (name === "data") Object.assign(el.dataset, value);
    else if (name === "on") for (const [type, fn] of Object.entries(value)) el.addEventListener(type, fn);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

// Sets textContent only when it changed: the sessions table is refreshed every second and
// rewriting identical text would restart selections and CSS transitions for nothing.
export function setText(el, text) {
  const value = text === null || text === undefined ? "" : String(text);
  if (el.textContent !== value) el.textContent = value;
}

export function replaceChildren(el, children) {
  el.replaceChildren(...children);
}

const pad = (n) => String(n).padStart(2, "0");

export function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 3600) return `${Math.floor(s / 60)}:${pad(s % 60)}`;
  const hours = Math.floor(s / 3600);
  if (hours < 48) return `${hours}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

export function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function count(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  if (n < 10000) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e5 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 2 : 1)}M`;
}

export function usd(x) {
  if (x === null || x === undefined) return "–";
  if (x === 0) return "$0";
  if (x < 0.01) return `$${x.toFixed(4)}`;
  return `$${x.toFixed(x < 100 ? 2 : 0)}`;
}

export function rate(x) {
  if (x < 10) return x.toFixed(1);
  return count(x);
}

export function shortId(id) {
  if (!id) return "–";
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
