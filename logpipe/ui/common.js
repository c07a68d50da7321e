// What the pages of the web UI share: the API token, kept for the browser tab only (sessionStorage;
// `#token=...` in the address fills it once), and JSON requests to the same server with it.

export const $ = (id) => document.getElementById(id);

export function token() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const fromHash = hash.get("token");
  if (fromHash) {
    sessionStorage.setItem("glasshouse-token", fromHash);
    hash.delete("token");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
  }
  return sessionStorage.getItem("glasshouse-token");
}

/// GETs `path` (with `params` as its query) as JSON. A refused token shows the token form.
export async function getJSON(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") url.searchParams.set(k, v);
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token()}` } });
  if (response.status === 401) {
    $("token").hidden = false;
    throw new Error("the token was refused");
  }
  const body = await response.json();
  // The search API says `error`; the Kubernetes API answers a Status with `message`.
  if (!response.ok) throw new Error(body.error || body.message || response.statusText);
  return body;
}

/// Wires the token form: `then` runs once a token was pasted.
export function tokenForm(then) {
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("glasshouse-token", $("token-input").value.trim());
    $("token").hidden = true;
    then();
  });
}
