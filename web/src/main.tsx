/**
 * The operations dashboard: sign in with a bearer token, then Overview, Queues, Jobs, Job, Alerts and
 * Job types, all through the generated clients (connect-query for calls, streams for live data).
 */
import { TransportProvider } from "@connectrpc/connect-query";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { StrictMode, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";
import { Link, Route, Router, Switch, useLocation } from "wouter";
import { onSignedOut, type Session, signIn, tokenStore, transport } from "./api.js";
import { AlertsPage } from "./pages/Alerts.js";
import { JobPage } from "./pages/Job.js";
import { JobsPage } from "./pages/Jobs.js";
import { JobTypesPage } from "./pages/JobTypes.js";
import { OverviewPage } from "./pages/Overview.js";
import { QueuePage } from "./pages/Queue.js";
import { RateLimitsPage } from "./pages/RateLimits.js";
import { SchedulesPage } from "./pages/Schedules.js";
import { SignIn } from "./pages/SignIn.js";
import { SessionContext } from "./session.js";
import "./style.css";

const queryClient = new QueryClient({
  defaultOptions: { queries: { retry: 1, refetchOnWindowFocus: false, staleTime: 2000 } },
});

function Nav({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const [location] = useLocation();
  const link = (to: string, text: string) => {
    const current = to === "/" ? location === "/" : location.startsWith(to);
    return (
      <Link href={to} aria-current={current ? "page" : undefined}>
        {text}
      </Link>
    );
  };
  return (
    <header>
      <nav aria-label="Main">
        <strong className="brand">queue-service</strong>
        {link("/", "Overview")}
        {link("/jobs", "Jobs")}
        {link("/schedules", "Schedules")}
        {link("/alerts", "Alerts")}
        {link("/rate-limits", "Rate limits")}
        {link("/job-types", "Job types")}
      </nav>
      <div className="who">
        <span>
          {session.principal} <span className="badge">{session.role}</span>
        </span>
        <button type="button" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [checking, setChecking] = useState(!!tokenStore.get());
  const [notice, setNotice] = useState<string | undefined>();
  useEffect(() => {
    const token = tokenStore.get();
    if (token)
      signIn(token)
        .then(setSession, (err: Error) => {
          tokenStore.clear();
          setNotice(err.message);
        })
        .finally(() => setChecking(false));
    return onSignedOut((reason) => {
      setSession(undefined);
      setNotice(reason);
      queryClient.clear();
    });
  }, []);
  const signOut = () => {
    tokenStore.clear();
    queryClient.clear();
    setSession(undefined);
    setNotice("Signed out.");
  };
  if (checking) return <p className="muted">Checking your token…</p>;
  if (!session)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          setNotice(undefined);
          setSession(s);
        }}
      />
    );
  return (
    <SessionContext.Provider value={session}>
      <Nav session={session} onSignOut={signOut} />
      <main>
        <Switch>
          <Route path="/" component={OverviewPage} />
          <Route path="/queues/:name">{(p) => <QueuePage name={p.name} />}</Route>
          <Route path="/jobs" component={JobsPage} />
          <Route path="/jobs/:id">{(p) => <JobPage key={p.id} id={p.id} />}</Route>
          <Route path="/schedules" component={SchedulesPage} />
          <Route path="/alerts" component={AlertsPage} />
          <Route path="/rate-limits" component={RateLimitsPage} />
          <Route path="/job-types" component={JobTypesPage} />
          <Route>
            <p>
              No such page. <Link href="/">Back to the overview</Link>.
            </p>
          </Route>
        </Switch>
      </main>
    </SessionContext.Provider>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <TransportProvider transport={transport}>
      <QueryClientProvider client={queryClient}>
        <Router base="/ui">
          <App />
        </Router>
      </QueryClientProvider>
    </TransportProvider>
  </StrictMode>,
);
