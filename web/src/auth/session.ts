/**
 * The signed-in user's session: OpenID Connect authorization code + PKCE (S256) against the
 * built-in provider, with the public SMART client "vesalius-web".
 *
 * - Tokens live in sessionStorage (per tab, gone when the tab closes), never in cookies.
 * - Access tokens are renewed with the refresh token (offline_access) before they expire.
 * - After 15 minutes without interaction the session ends: tokens are revoked and the next
 *   sign-in asks for the password again (prompt=login), even if the provider's own session
 *   cookie is still alive.
 *
 * Contract with the viewer: getAccessToken() and authFetch() (same-origin APIs only).
 */
import { UserManager, WebStorageStateStore, type User } from "oidc-client-ts";

export const CLIENT_ID = "vesalius-web";
export const SCOPE = "openid fhirUser offline_access user/*.cruds";
export const IDLE_LIMIT_MS = 15 * 60 * 1000;

const origin = window.location.origin;

export const userManager = new UserManager({
  authority: `${origin}/auth`,
  metadataUrl: `${origin}/.well-known/openid-configuration`,
  client_id: CLIENT_ID,
  redirect_uri: `${origin}/callback`,
  post_logout_redirect_uri: `${origin}/`,
  response_type: "code",
  scope: SCOPE,
  // SMART App Launch: the FHIR server the token is for (https://hl7.org/fhir/smart-app-launch/app-launch.html#request-4)
  extraQueryParams: { aud: `${origin}/fhir` },
  automaticSilentRenew: true,
  accessTokenExpiringNotificationTimeInSeconds: 60,
  loadUserInfo: true,
  monitorSession: false,
  revokeTokenTypes: ["access_token", "refresh_token"],
  userStore: new WebStorageStateStore({ store: window.sessionStorage }),
  stateStore: new WebStorageStateStore({ store: window.sessionStorage }),
});

/** Where to go back to after the sign-in round trip. */
interface ReturnState {
  returnTo: string;
}

let renewing: Promise<User | null> | null = null;

/** Renew with the refresh token; null when that is not possible any more. */
function renew(): Promise<User | null> {
  renewing ??= userManager
    .signinSilent()
    .catch(() => null)
    .finally(() => {
      renewing = null;
    });
  return renewing;
}

/** Start the sign-in round trip; the page navigates away, so this never resolves. */
export function signIn(options: { forcePassword?: boolean } = {}): Promise<never> {
  const state: ReturnState = { returnTo: currentLocation() };
  void userManager.signinRedirect({
    state,
    prompt: options.forcePassword ? "login" : undefined,
  });
  return new Promise<never>(() => undefined);
}

function currentLocation(): string {
  const { pathname, search, hash } = window.location;
  return pathname === "/callback" ? "/" : `${pathname}${search}${hash}`;
}

/** Finish the sign-in round trip on /callback; returns the path to go back to. */
export async function completeSignIn(): Promise<string> {
  const user = await userManager.signinRedirectCallback();
  const state = user.state as Partial<ReturnState> | undefined;
  const target = typeof state?.returnTo === "string" ? state.returnTo : "/";
  // Only ever go back to a path of this app (never an absolute URL from the state).
  return target.startsWith("/") && !target.startsWith("//") ? target : "/";
}

/** The current user when signed in with a usable (or renewable) token, else null. */
export async function currentUser(): Promise<User | null> {
  const user = await userManager.getUser();
  if (user === null) return null;
  if (!user.expired) return user;
  return user.refresh_token ? renew() : null;
}

/** A valid access token for this server's APIs; signs in first when needed. */
export async function getAccessToken(): Promise<string> {
  const user = await currentUser();
  if (user?.access_token) return user.access_token;
  return signIn();
}

/**
 * fetch() with the user's bearer token. A 401 (token revoked or expired on the server's
 * clock) is retried once with a renewed token; when that fails too, sign in again.
 */
export async function authFetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
  const send = (token: string): Promise<Response> => {
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${token}`);
    return fetch(input, { ...init, headers });
  };
  const response = await send(await getAccessToken());
  if (response.status !== 401) return response;
  const renewed = await renew();
  if (renewed?.access_token) {
    const again = await send(renewed.access_token);
    if (again.status !== 401) return again;
  }
  await userManager.removeUser();
  return signIn();
}

/** End the session: revoke the tokens, forget them, and end the provider's session too. */
export async function signOut(): Promise<void> {
  await userManager.revokeTokens().catch(() => undefined);
  await userManager.removeUser();
  window.location.assign(`${origin}/auth/logout`);
}

/**
 * Log off after IDLE_LIMIT_MS without pointer, key, wheel or touch input. Activity is shared
 * between tabs through localStorage (a timestamp only), so working in one tab keeps the others.
 */
export function startIdleLogoff(onIdle: () => void = () => void idleLogoff()): () => void {
  const key = "vesalius.lastActivity";
  let last = 0;
  const touch = (): void => {
    const now = Date.now();
    if (now - last < 5000) return;
    last = now;
    try {
      window.localStorage.setItem(key, String(now));
    } catch {
      /* storage unavailable (private mode): this tab's own clock still works */
    }
  };
  const events = ["pointerdown", "keydown", "wheel", "touchstart", "scroll"] as const;
  for (const name of events) window.addEventListener(name, touch, { passive: true, capture: true });
  touch();
  const timer = window.setInterval(() => {
    const shared = Number(window.localStorage.getItem(key) ?? 0);
    if (Date.now() - Math.max(last, shared) >= IDLE_LIMIT_MS) onIdle();
  }, 15_000);
  return () => {
    window.clearInterval(timer);
    for (const name of events) window.removeEventListener(name, touch, { capture: true });
  };
}

async function idleLogoff(): Promise<void> {
  await userManager.revokeTokens().catch(() => undefined);
  await userManager.removeUser();
  await signIn({ forcePassword: true });
}
