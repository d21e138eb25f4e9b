// The HTTP calls the console makes, all to its own origin. The admin key is sent once, to
// `POST /console/login`, which answers with an HttpOnly cookie; every later call carries the
// cookie (the browser attaches it, this code never sees it).

export class NotLoggedIn extends Error {}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function failure(response) {
  // OpenAI-style errors: {"error": {"message", "type", "code"}}.
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body?.error?.message) message = body.error.message;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, message);
}

async function call(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store", ...options });
  if (response.status === 401) throw new NotLoggedIn((await failure(response)).message);
  if (!response.ok) throw await failure(response);
  return response;
}

export async function listSessions() {
  return (await call("/admin/sessions", { headers: { accept: "application/json" } })).json();
}

export async function closeSession(id, code, reason) {
  const query = new URLSearchParams({ code: String(code), reason });
  await call(`/admin/sessions/${encodeURIComponent(id)}?${query}`, { method: "DELETE" });
}

export async function login(key) {
  const response = await fetch("/console/login", {
    method: "POST",
    credentials: "same-origin",
    cache: "no-store",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ key }),
  });
  if (!response.ok) throw await failure(response);
}

export async function logout() {
  // A gateway without a logout route still forgets nothing server-side: the cookie simply stays
  // until it expires, so a 404 here is not an error worth showing.
  const response = await fetch("/console/logout", { method: "POST", credentials: "same-origin", cache: "no-store" });
  if (!response.ok && response.status !== 404) throw await failure(response);
}

export async function metricsText() {
  const response = await fetch("/metrics", { credentials: "same-origin", cache: "no-store" });
  return response.ok ? response.text() : "";
}
