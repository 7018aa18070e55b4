// Hash routing: "#/<view>/<arg>" picks a view, the previous one is destroyed first (its streams and timers end with it).
// A view is `(root, arg) => { name, destroy(), charts?, state? }`.

/** "#/op/abc" → { view: "op", arg: "abc" }; an empty hash is the list. */
export function parseHash(hash) {
  const path = decodeURIComponent(hash.replace(/^#/, "")) || "/";
  const [, view = "", arg = ""] = path.split("/");
  return { view, arg };
}

/**
 * Starts routing into `root`. `views` maps a hash's first segment to a view; `fallback` handles any other.
 * Returns `current()` (the live view) and `reload()` (rebuilds it, e.g. after a new token).
 */
export function startRouter(root, views, fallback, { onRoute = () => {} } = {}) {
  let current = null;
  const route = () => {
    current?.destroy();
    const { view, arg } = parseHash(location.hash);
    root.replaceChildren();
    current = (views[view] ?? fallback)(root, arg);
    onRoute(view, arg, current);
  };
  window.addEventListener("hashchange", route);
  route();
  return { current: () => current, reload: route };
}
