// Hash routing: "#/<view>/<arg>?<params>" picks a view, the previous one is destroyed first (its streams and timers end
// with it). A view is `(root, arg, params) => { name, destroy(), charts?, state? }`; `params` (URLSearchParams) is what a
// view keeps in the address so it can be shared: the list's search and sort, the comparison's axis.

/**
 * "#/op/abc" → { view: "op", arg: "abc", params }; an empty hash is the list. Each segment is decoded on its own, after
 * the split, so an argument may hold "/" or "?" (a group named "team/sweep-7" is "#/groups/team%2Fsweep-7").
 */
export function parseHash(hash) {
  const text = hash.replace(/^#/, "");
  const cut = text.indexOf("?");
  const path = (cut < 0 ? text : text.slice(0, cut)) || "/";
  const params = new URLSearchParams(cut < 0 ? "" : text.slice(cut + 1));
  const [, view = "", arg = ""] = path.split("/").map(decodeSegment);
  return { view, arg, params };
}

function decodeSegment(s) {
  try {
    return decodeURIComponent(s);
  } catch {
    return s; // a stray "%" in a hand-typed address
  }
}

/**
 * The address of a view: `hashOf("groups", "sweep 7", { sort: "best_val_loss" })` → "#/groups/sweep%207?sort=best_val_loss".
 * Empty params are left out.
 */
export function hashOf(view, arg = "", params = {}) {
  const query = new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== ""),
  );
  const path = arg ? `#/${view}/${encodeURIComponent(arg)}` : `#/${view}`;
  const q = query.toString();
  return q ? `${path}?${q}` : path;
}

/**
 * Starts routing into `root`. `views` maps a hash's first segment to a view; `fallback` handles any other.
 * Returns `current()` (the live view) and `reload()` (rebuilds it, e.g. after a new token).
 */
export function startRouter(root, views, fallback, { onRoute = () => {} } = {}) {
  let current = null;
  const route = () => {
    current?.destroy();
    const { view, arg, params } = parseHash(location.hash);
    root.replaceChildren();
    current = (views[view] ?? fallback)(root, arg, params);
    onRoute(view, arg, current);
  };
  window.addEventListener("hashchange", route);
  route();
  return { current: () => current, reload: route };
}

/** Goes to `hash`, or rebuilds the view when the address is already that one (a search submitted twice runs again). */
export function navigate(hash) {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}
