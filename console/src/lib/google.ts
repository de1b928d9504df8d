// Google Identity Services, loaded only in real mode and on the cloud (the CSP admits its
// origin there and nowhere else). Only what the console calls is declared.
interface CredentialResponse {
  credential: string;
}
interface GoogleAccountsId {
  initialize(options: {
    client_id: string;
    callback: (response: CredentialResponse) => void;
    auto_select?: boolean;
    cancel_on_tap_outside?: boolean;
  }): void;
  renderButton(parent: HTMLElement, options: Record<string, string>): void;
  disableAutoSelect(): void;
}
declare global {
  interface Window {
    google?: { accounts: { id: GoogleAccountsId } };
  }
}

const SCRIPT = "https://accounts.google.com/gsi/client";
let loading: Promise<GoogleAccountsId> | undefined;

export function googleId(): Promise<GoogleAccountsId> {
  loading ??= new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = SCRIPT;
    script.async = true;
    script.onload = () =>
      window.google ? resolve(window.google.accounts.id) : reject(new Error("no google"));
    script.onerror = () => reject(new Error("Google's sign-in script did not load."));
    document.head.append(script);
  });
  return loading;
}

export function forgetGoogleAccount(): void {
  window.google?.accounts.id.disableAutoSelect();
}
