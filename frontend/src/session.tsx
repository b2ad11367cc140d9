// Who is signed in (the token, and the email it was asked for) and the
// customer's open cart, kept across reloads.
import { createContext, ReactNode, useCallback, useContext, useMemo, useState } from "react";

import { currentToken, setToken } from "./api";

interface Session {
  email: string | null;
  signedIn: boolean;
  isAdmin: boolean;
  cartId: string | null;
  signIn: (email: string, token: string) => void;
  signOut: () => void;
  setCartId: (id: string | null) => void;
}

const SessionContext = createContext<Session | null>(null);

function claims(token: string | null): Record<string, unknown> {
  if (!token) return {};
  try {
    return JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))) as Record<
      string,
      unknown
    >;
  } catch {
    return {};
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [token, setTokenState] = useState<string | null>(currentToken());
  const [email, setEmail] = useState<string | null>(localStorage.getItem("shop.email"));
  const [cartId, setCart] = useState<string | null>(localStorage.getItem("shop.cart"));

  const signIn = useCallback((who: string, value: string) => {
    setToken(value);
    setTokenState(value);
    setEmail(who);
    localStorage.setItem("shop.email", who);
    setCart(null);
    localStorage.removeItem("shop.cart");
  }, []);
  const signOut = useCallback(() => {
    setToken(null);
    setTokenState(null);
    setEmail(null);
    setCart(null);
    localStorage.removeItem("shop.email");
    localStorage.removeItem("shop.cart");
  }, []);
  const setCartId = useCallback((id: string | null) => {
    setCart(id);
    if (id) localStorage.setItem("shop.cart", id);
    else localStorage.removeItem("shop.cart");
  }, []);

  const value = useMemo(() => {
    const role = claims(token).role;
    return {
      email,
      signedIn: token !== null,
      isAdmin: role === "admin",
      cartId,
      signIn,
      signOut,
      setCartId,
    };
  }, [token, email, cartId, signIn, signOut, setCartId]);
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error("useSession outside SessionProvider");
  return session;
}
