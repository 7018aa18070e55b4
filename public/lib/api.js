// The page's side of the Trainwatch API: the bearer token (asked once, kept in localStorage), JSON calls with the envelope
// unwrapped, downloads, and Server-Sent Events read with fetch() so the token travels as a header (EventSource cannot send one).

const TOKEN_KEY = "trainwatch.token";

export const getToken = () => localStorage.getItem(TOKEN_KEY);
export function setToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

let asking = null;

/** Shows the token dialog once, however many calls got 401 together. Resolves true when a token was saved. */
export function askToken(message = "") {
  asking ??= new Promise((resolve) => {
    const dialog = document.getElementById("token-dialog");
    const input = document.getElementById("token-input");
    dialog.querySelector(".hint").textContent = message;
    input.value = getToken() ?? "";
    // Only Save submits, so Enter in the field saves.
    dialog.querySelector("#token-clear").onclick = () => dialog.close("clear");
    dialog.querySelector("#token-cancel").onclick = () => dialog.close("cancel");
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      () => {
        const saved = dialog.returnValue === "ok" && input.value.trim() !== "";
        if (saved) setToken(input.value.trim());
        if (dialog.returnValue === "clear") setToken(null);
        asking = null;
        resolve(saved);
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
  return asking;
}

export class ApiError extends Error {
  /** `details`: the envelope's error details, e.g. a query's `{ field: "query.q", position: 17 }`. */
  constructor(status, code, message, details = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** The error of a reply's envelope as an ApiError; `fallback` is the message when the reply has none. */
const errorOf = (status, json, fallback) =>
  new ApiError(
    status,
    json?.error?.code ?? `HTTP_${status}`,
    json?.error?.message ?? fallback,
    json?.error?.details ?? null,
  );

function headers(extra = {}) {
  const h = { accept: "application/json", ...extra };
  const token = getToken();
  if (token) h.authorization = `Bearer ${token}`;
  return h;
}

/** fetch() of /api/v1 that asks for the token on 401 and retries once one is saved. */
async function authorizedFetch(path, init = {}) {
  for (;;) {
    const res = await fetch(`/api/v1${path}`, { ...init, headers: headers(init.headers) });
    if (res.status !== 401) return res;
    const why = getToken() ? "The saved token was refused." : "";
    if (!(await askToken(why)))
      throw new ApiError(401, "UNAUTHORIZED", "This server needs an API token (Token button, top right).");
  }
}

/** A JSON call to /api/v1; returns the envelope's `data` (and `raw`), or throws ApiError with the server's message. */
export async function api(method, path, body) {
  const res = await authorizedFetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => null);
  if (!res.ok || !json?.success) throw errorOf(res.status, json, `${method} ${path} failed (${res.status})`);
  return json.data;
}

/**
 * Lists operations with their total: `q` a query in the filter language (docs/api.md), `sort` a field and `order`
 * asc|desc (the server's defaults: created_at, desc), `limit` (default 100) and `offset`. A query that does not parse
 * throws an ApiError whose `details.position` is the offset in `q` the server names.
 */
export async function listOperations({ q = "", sort = "", order = "", limit = 100, offset = 0 } = {}) {
  const params = new URLSearchParams({ limit: String(limit) });
  if (offset) params.set("offset", String(offset));
  if (q.trim()) params.set("q", q);
  if (sort) params.set("sort", sort);
  if (order) params.set("order", order);
  const res = await authorizedFetch(`/operations?${params}`);
  const json = await res.json().catch(() => null);
  if (!res.ok || !json?.success) throw errorOf(res.status, json, `listing operations failed (${res.status})`);
  return { operations: json.data, total: json.total_count };
}

/** Saves `/api/v1${path}` as a file. A plain link cannot carry the bearer token, so the bytes go through a blob URL. */
export async function download(path, filename) {
  const res = await authorizedFetch(path);
  if (!res.ok) {
    // The server's error envelope says why (no such checkpoint, its host unreachable); the status alone when it has none.
    const json = await res.json().catch(() => null);
    throw errorOf(res.status, json, `download failed (${res.status})`);
  }
  const url = URL.createObjectURL(await res.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 30_000);
}

/**
 * Reads an SSE stream with fetch. `onEvent(type, data, id)` gets every event; `onState("live" | "reconnecting" | "ended")`
 * follows the connection. After a drop it reconnects with Last-Event-ID, so no epoch is missed or repeated; it stops after an
 * `end` event or close().
 */
export function openStream(path, { onEvent, onState = () => {} }) {
  let lastId = null;
  let retryMs = 2000;
  let closed = false;
  let controller = null;

  const dispatch = (block) => {
    let type = "message";
    let id = null;
    const data = [];
    for (const line of block.split("\n")) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
      else if (field === "id") id = value;
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (id !== null) lastId = id;
    if (data.length === 0) return null;
    onEvent(type, JSON.parse(data.join("\n")), id === null ? null : Number(id));
    return type;
  };

  (async () => {
    while (!closed) {
      controller = new AbortController();
      let ended = false;
      try {
        const h = { accept: "text/event-stream" };
        if (lastId !== null) h["last-event-id"] = lastId;
        const res = await authorizedFetch(path, { headers: h, signal: controller.signal, cache: "no-store" });
        if (!res.ok) {
          const json = await res.json().catch(() => null);
          throw errorOf(res.status, json, `stream failed (${res.status})`);
        }
        onState("live");
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replaceAll("\r\n", "\n");
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (dispatch(block) === "end") ended = true;
          }
        }
      } catch (err) {
        if (closed) return;
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) {
          onState("ended");
          onEvent("error", { message: err.message, code: err.code }, null);
          return;
        }
      }
      if (ended || closed) {
        onState("ended");
        return;
      }
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, retryMs));
    }
  })();

  return {
    close() {
      closed = true;
      controller?.abort();
    },
  };
}
