// The worker's HTTP API (docs/api.md), as the Audience page calls it.
// Paths are relative ("api/..."), so the page also works behind a proxy under a sub-path.

const TOKEN_KEY = "segstream.apiToken";

/** The API token kept for this browser tab (sessionStorage), or "". */
export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage may be disabled: the token then lasts until the page is reloaded.
  }
  memoryToken = token;
}

let memoryToken = "";

/** An answer that is not 2xx: `code`, `message` and, for 422, `errors` [{path, message}]. */
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `the worker answered HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || "http_error";
    this.errors = (body && Array.isArray(body.errors) && body.errors) || [];
  }
}

/** The Authorization header of the kept token (none without one). */
export function authHeaders() {
  const token = getToken() || memoryToken;
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function request(method, path, body) {
  const headers = { Accept: "application/json", ...authHeaders() };
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: "network", message: "the worker does not answer" });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { code: "invalid_response", message: text.slice(0, 200) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

const segment = (id) => `api/segments/${encodeURIComponent(id)}`;

const destination = (id) => `api/destinations/${encodeURIComponent(id)}`;

export const destinationsApi = {
  list: () => request("GET", "api/destinations"),
  put: (id, body) => request("PUT", destination(id), body),
  remove: (id) => request("DELETE", destination(id)),
};

export const api = {
  list: () => request("GET", "api/segments"),
  get: (id) => request("GET", segment(id)),
  create: (definition) => request("POST", "api/segments", definition),
  replace: (id, definition) => request("PUT", segment(id), definition),
  remove: (id) => request("DELETE", segment(id)),
  preview: (definition, sample = 10) =>
    request("POST", `api/segments/preview?sample=${sample}`, definition),
  members: (id, cursor, limit) => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor) query.set("cursor", cursor);
    return request("GET", `${segment(id)}/members?${query}`);
  },
};

const profile = (id) => `api/profiles/${encodeURIComponent(id)}`;

// Insight (docs/api.md): why and until when, the timeline, size history and overlap.
export const insightApi = {
  profile: (id, activity = 20) => request("GET", `${profile(id)}?activity=${activity}`),
  explainAll: (id) => request("GET", `${profile(id)}/explain`),
  explain: (id, segmentId) =>
    request("GET", `${profile(id)}/explain?segment=${encodeURIComponent(segmentId)}`),
  timeline: (id) => request("GET", `${profile(id)}/timeline`),
  history: (id, resolution) => request("GET", `${segment(id)}/history?resolution=${resolution}`),
  overlap: (segments) => request("POST", "api/segments/overlap", { segments }),
};
