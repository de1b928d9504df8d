// What the server says before sign-in (functions/console.py, client_config): no data.
export interface ClientConfig {
  mode: "cloud" | "sandbox" | "real";
  google_client_id: string;
  time_zone: string;
  sandbox_sign_in: string;
}

export async function loadConfig(): Promise<ClientConfig> {
  const response = await fetch("./config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`config.json answered ${response.status}`);
  return (await response.json()) as ClientConfig;
}
