// Hash routes (#/communications?q=...): every page and every opened email has its URL, the
// back button works, and the server needs no fallback route under any URL layout.

export interface Route {
  path: string[]; // "#/investors/abc" -> ["investors", "abc"]
  query: URLSearchParams;
}

function parse(): Route {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path = "", query = ""] = hash.split("?", 2);
  return {
    path: path.split("/").filter(Boolean).map(decodeURIComponent),
    query: new URLSearchParams(query),
  };
}

export const route: { current: Route } = $state({ current: parse() });

window.addEventListener("hashchange", () => {
  route.current = parse();
});

export function href(path: string, query?: Record<string, string | undefined>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query ?? {})) {
    if (value) params.set(key, value);
  }
  const qs = params.toString();
  return `#/${path}${qs ? `?${qs}` : ""}`;
}

export function go(path: string, query?: Record<string, string | undefined>): void {
  location.hash = href(path, query);
}

// Replace the query without a new history entry (typing in a search box).
// A late call (a debounced search firing just after a link was followed) must not pull the
// location back to the page that was left.
export function replaceQuery(query: Record<string, string | undefined>): void {
  const here = parse();
  if (here.path.join("/") !== route.current.path.join("/")) return;
  const path = route.current.path.map(encodeURIComponent).join("/");
  history.replaceState(null, "", href(path, query));
  route.current = parse();
}
