import { useEffect, useMemo, useState } from "preact/hooks";
import { auth, ensureCsrf, type User } from "../api/rest";
import { AuthForm } from "./AuthForm";
import { navigate, useRoute } from "./router";
import { Shell } from "./Shell";

export function App() {
  const route = useRoute();
  const [user, setUser] = useState<User | null | undefined>(undefined);

  useEffect(() => {
    ensureCsrf()
      .catch(() => undefined)
      .then(() => auth.me())
      .then(setUser, () => setUser(null));
  }, []);

  const signedOut = useMemo(
    () => () => {
      setUser(null);
      navigate({ name: "login" }, { replace: true });
    },
    [],
  );

  if (user === undefined) {
    return (
      <div class="splash" role="status">
        Loading…
      </div>
    );
  }
  if (!user) {
    return <AuthForm key={route.name} mode={route.name === "register" ? "register" : "login"} onSignedIn={setUser} />;
  }
  return <Shell user={user} route={route} onSignedOut={signedOut} />;
}
