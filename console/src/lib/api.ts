// The typed client of the admin API. Types come from infra/openapi.json (npm run gen), so a
// change of the API that breaks the console fails `svelte-check` in `make lint`.
import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "../api/schema";
import { askToSignInAgain, session } from "./session.svelte";

// The console is served at <function root>/console/; the API is the function root.
export const apiBase = new URL("../", document.baseURI).href.replace(/\/$/, "");

const auth: Middleware = {
  onRequest({ request }) {
    if (session.token) request.headers.set("Authorization", `Bearer ${session.token}`);
    return request;
  },
  onResponse({ response }) {
    if (response.status === 401) {
      askToSignInAgain("The server no longer accepts your sign-in. Sign in again to continue.");
    }
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: apiBase });
api.use(auth);

export interface ErrorBody {
  error: string;
  reason: string;
}

// The error's reason in words, for the page (the API always answers {error, reason}).
export function reasonOf(error: unknown, fallback = "Something went wrong."): string {
  if (error && typeof error === "object" && "reason" in error) {
    return String((error as ErrorBody).reason);
  }
  return fallback;
}

// Raw calls the typed client does not model (CSV bodies and CSV downloads).
export async function rawFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (session.token) headers.set("Authorization", `Bearer ${session.token}`);
  const response = await fetch(`${apiBase}${path}`, { ...init, headers });
  if (response.status === 401) {
    askToSignInAgain("The server no longer accepts your sign-in. Sign in again to continue.");
  }
  return response;
}
