// The console: log in once, then poll the session list every second and follow the event stream.

import { closeSession, listSessions, login, logout, metricsText, NotLoggedIn } from "./api.js";
import { $ } from "./dom.js";
import { breakerStates, ConsoleState } from "./state.js";
import { EventStream } from "./stream.js";
import { renderBreakers, renderClosed, renderFeed, renderRate, renderSessions, renderStatus, renderUsage, showBanner } from "./view.js";

const POLL_MS = 1000;
const THEMES = ["auto", "dark", "light"];

let state = new ConsoleState();
let streamStatus = { state: "stopped", detail: null };
const poll = { at: null, error: null, generation: 0, timer: null };
let filter = "";
let drawScheduled = false;

// -- drawing: at most ten times a second however fast events come, and once a second for ages --

function draw() {
  drawScheduled = false;
  const now = Date.now();
  renderSessions(state, now, filter, openCloseDialog, setFilter);
  renderClosed(state);
  renderFeed(state, $("#feed-allow").checked, setFilter);
  renderUsage(state);
  renderBreakers(state, now);
  renderRate(state, now);
  renderStatus(streamStatus, poll);
}

function scheduleDraw() {
  if (drawScheduled) return;
  drawScheduled = true;
  setTimeout(draw, 100);
}

function setFilter(value) {
  filter = value;
  $("#filter").value = value;
  scheduleDraw();
}

// -- the session list ------------------------------------------------------------------------

async function pollSessions(generation) {
  if (generation !== poll.generation) return;
  try {
    const body = await listSessions();
    if (generation !== poll.generation) return; // a newer poll has started: it decides
    state.applySessionList(body);
    poll.at = Date.now();
    poll.error = null;
  } catch (error) {
    if (error instanceof NotLoggedIn) {
      showLogin(error.message);
      return;
    }
    poll.error = error.message;
  }
  scheduleDraw();
  if (generation === poll.generation) poll.timer = setTimeout(() => pollSessions(generation), POLL_MS);
}

// -- the event stream ------------------------------------------------------------------------

const stream = new EventStream({
  onMessage(message) {
    state.applyMessage(message);
    if (message.type === "lagged") {
      showBanner(`The event stream fell behind and dropped ${state.missedTotal} event(s) so far; usage totals may be low.`);
      refreshNow();
    }
    scheduleDraw();
  },
  onStatus(status, detail) {
    streamStatus = { state: status, detail };
    scheduleDraw();
  },
  onGap(from, to) {
    state.gap(from, to);
    refreshNow();
  },
});

function refreshNow() {
  clearTimeout(poll.timer);
  poll.generation += 1;
  pollSessions(poll.generation);
}

// -- login and logout ------------------------------------------------------------------------

function showLogin(message) {
  poll.generation += 1;
  clearTimeout(poll.timer);
  stream.stop();
  for (const id of ["#app", "#logout", "#stats", "#stream-status"]) $(id).hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message && !/required|missing/i.test(message) ? message : "";
  $("#login-key").focus();
}

async function showApp() {
  $("#login").hidden = true;
  for (const id of ["#app", "#logout", "#stats", "#stream-status"]) $(id).hidden = false;
  state = new ConsoleState();
  showBanner(null);
  refreshNow();
  stream.start();
  try {
    state.seedBreakers(breakerStates(await metricsText()));
  } catch {
    // /metrics unreachable: breakers appear as their transitions arrive
  }
  scheduleDraw();
}

$("#login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = $("#login-key");
  const button = $("#login-submit");
  button.disabled = true;
  try {
    await login(input.value.trim());
    input.value = ""; // the key now lives only in the HttpOnly cookie
    $("#login-error").textContent = "";
    await showApp();
  } catch (error) {
    $("#login-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
});

$("#logout").addEventListener("click", async () => {
  try {
    await logout();
  } finally {
    showLogin(null);
  }
});

// -- closing a session -----------------------------------------------------------------------

const dialog = $("#close-dialog");

function openCloseDialog(id) {
  const s = state.sessions.get(id);
  $("#close-id").textContent = id;
  $("#close-who").textContent = s ? [s.model ?? s.target, s.key && `key ${s.key}`, s.team && `team ${s.team}`, s.clientIp].filter(Boolean).join(" · ") : "";
  $("#close-error").textContent = "";
  dialog.dataset.session = id;
  customCodeShown();
  dialog.showModal();
  $("#close-code").focus();
}

function customCodeShown() {
  const custom = $("#close-code").value === "custom";
  $("#close-custom-label").hidden = !custom;
  $("#close-custom").required = custom;
}

function chosenCode() {
  const value = $("#close-code").value;
  return value === "custom" ? Number($("#close-custom").value) : Number(value);
}

$("#close-code").addEventListener("change", customCodeShown);
$("#close-cancel").addEventListener("click", () => dialog.close());

$("#close-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = dialog.dataset.session;
  const code = chosenCode();
  if (!Number.isInteger(code) || (code !== 1000 && code !== 1001 && code !== 1008 && code !== 1011 && code !== 1013 && (code < 3000 || code > 4999))) {
    $("#close-error").textContent = "Choose a listed code or one from 3000 to 4999.";
    return;
  }
  const confirm = $("#close-confirm");
  confirm.disabled = true;
  try {
    await closeSession(id, code, $("#close-reason").value.trim());
    state.closing.set(id, code);
    dialog.close();
    scheduleDraw();
  } catch (error) {
    if (error instanceof NotLoggedIn) {
      dialog.close();
      showLogin(error.message);
    } else {
      $("#close-error").textContent = error.message;
    }
  } finally {
    confirm.disabled = false;
  }
});

// -- the rest of the chrome ------------------------------------------------------------------

$("#filter").addEventListener("input", (event) => {
  filter = event.target.value.trim();
  scheduleDraw();
});
$("#feed-allow").addEventListener("change", scheduleDraw);
$("#banner").addEventListener("click", () => showBanner(null));

function applyTheme(theme) {
  if (theme === "auto") delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  $("#theme").textContent = `Theme: ${theme}`;
}

let theme = localStorage.getItem("kt-console-theme");
if (!THEMES.includes(theme)) theme = "auto";
applyTheme(theme);
$("#theme").addEventListener("click", () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  localStorage.setItem("kt-console-theme", theme);
  applyTheme(theme);
  scheduleDraw();
});

setInterval(draw, 1000); // ages tick and the rate line moves even when nothing arrives

// Logged in already (the cookie is still good)? The session list says.
listSessions()
  .then(() => showApp())
  .catch((error) => (error instanceof NotLoggedIn ? showLogin(null) : showLogin(error.message)));
