/** The app shell: sign-in gate, header, and the routes. */
import { lazy, Suspense, useEffect, useState } from "react";
import type { User } from "oidc-client-ts";
import { completeSignIn, currentUser, signIn, signOut, startIdleLogoff, userManager } from "../auth/session";
import { ChartPage } from "./ChartPage";
import { HomePage } from "./HomePage";
import { Link, navigate, useLocation } from "./router";

// The viewer (Cornerstone3D, codecs) is several megabytes: loaded only when a study is opened,
// so the chart starts fast on a phone.
const Viewer = lazy(() => import("../viewer/Viewer").then((m) => ({ default: m.Viewer })));

type Gate = { state: "checking" } | { state: "signed-in"; user: User } | { state: "error"; message: string };

export function App() {
  const [gate, setGate] = useState<Gate>({ state: "checking" });

  useEffect(() => {
    let cancelled = false;
    const start = async (): Promise<void> => {
      if (window.location.pathname === "/callback") {
        const target = await completeSignIn();
        navigate(target, { replace: true });
      }
      const user = await currentUser();
      if (user === null) {
        await signIn();
        return;
      }
      if (!cancelled) setGate({ state: "signed-in", user });
    };
    start().catch((error: unknown) => {
      if (!cancelled) setGate({ state: "error", message: error instanceof Error ? error.message : String(error) });
    });
    const onLoaded = (user: User): void => setGate({ state: "signed-in", user });
    userManager.events.addUserLoaded(onLoaded);
    return () => {
      cancelled = true;
      userManager.events.removeUserLoaded(onLoaded);
    };
  }, []);

  useEffect(() => (gate.state === "signed-in" ? startIdleLogoff() : undefined), [gate.state]);

  if (gate.state === "checking") {
    return (
      <main className="centered" aria-busy="true">
        <p>Signing in…</p>
      </main>
    );
  }
  if (gate.state === "error") {
    return (
      <main className="centered">
        <h1>Sign-in failed</h1>
        <p role="alert">{gate.message}</p>
        <button type="button" onClick={() => void signIn()}>
          Sign in again
        </button>
      </main>
    );
  }
  return <Shell user={gate.user} />;
}

function Shell({ user }: { user: User }) {
  const location = useLocation();
  const name = user.profile.name ?? user.profile.preferred_username ?? user.profile.sub;
  const viewer = location.pathname === "/viewer";
  return (
    <div className={viewer ? "shell shell-viewer" : "shell"}>
      <header className="topbar">
        <Link href="/" className="brand">
          Vesalius
        </Link>
        <nav aria-label="Main">
          <Link href="/">Patients &amp; studies</Link>
        </nav>
        <span className="user" title={String(user.profile.fhirUser ?? "")}>
          {name}
        </span>
        <button type="button" className="quiet" onClick={() => void signOut()}>
          Sign out
        </button>
      </header>
      <Routes />
    </div>
  );
}

function Routes() {
  const { pathname, search } = useLocation();
  if (pathname === "/" || pathname === "/callback") return <HomePage />;
  const patient = /^\/patients\/([^/]+)\/?$/.exec(pathname);
  if (patient) return <ChartPage patientId={decodeURIComponent(patient[1])} />;
  if (pathname === "/viewer") {
    const study = search.get("study");
    if (!study) return <NotFound what="No study was given: open the viewer from a chart or the worklist." />;
    return (
      <main className="viewer-page">
        <Suspense fallback={<p aria-busy="true">Loading the viewer…</p>}>
          <Viewer key={`${study}|${search.get("prior") ?? ""}`} studyUid={study} priorUid={search.get("prior") ?? undefined} />
        </Suspense>
      </main>
    );
  }
  return <NotFound what="There is no page at this address." />;
}

function NotFound({ what }: { what: string }) {
  return (
    <main className="page">
      <h1>Not found</h1>
      <p>{what}</p>
      <p>
        <Link href="/">Back to patients and studies</Link>
      </p>
    </main>
  );
}
