// The signed-in person. The ID token lives in this module's memory only: never in
// localStorage, sessionStorage or a cookie, so a page reload signs out and no other tab or
// script on the origin can read it from storage.

export interface Person {
  email: string;
  role: "admin" | "member";
  user_id: string;
}

interface SessionState {
  token: string | null;
  expiresAt: number; // epoch ms, from the token's exp claim
  person: Person | null;
  // Set when a call answered 401 or the token expired: the page stays, a sign-in dialog opens.
  needSignIn: boolean;
  message: string;
}

export const session: SessionState = $state({
  token: null,
  expiresAt: 0,
  person: null,
  needSignIn: false,
  message: "",
});

// Renew a little before Google's hour is up, so a save does not fail half-way.
const EARLY_MS = 30_000;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

// The token's own claims, read only for its expiry and address (the server verifies it).
function claimsOf(token: string): { exp?: number; email?: string } {
  const part = token.split(".")[1] ?? "";
  return JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/"))) as {
    exp?: number;
    email?: string;
  };
}

export function setToken(token: string): void {
  const claims = claimsOf(token);
  // Signing in again as someone else is a new session: who they are is asked again (/me).
  if (session.person && claims.email !== session.person.email) session.person = null;
  session.token = token;
  session.expiresAt = typeof claims.exp === "number" ? claims.exp * 1000 : 0;
  session.needSignIn = false;
  session.message = "";
  clearTimeout(expiryTimer);
  const wait = Math.max(0, session.expiresAt - Date.now() - EARLY_MS);
  expiryTimer = setTimeout(() => askToSignInAgain("Your sign-in expired."), wait);
}

export function askToSignInAgain(message: string): void {
  session.needSignIn = true;
  session.message = message;
}

export function signOut(): void {
  clearTimeout(expiryTimer);
  session.token = null;
  session.person = null;
  session.expiresAt = 0;
  session.needSignIn = false;
  session.message = "";
}
