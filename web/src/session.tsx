/** Who is signed in, for every page: admin actions show only to admins. */
import { createContext, useContext } from "react";
import type { Session } from "./api.js";

export const SessionContext = createContext<Session>({ principal: "", role: "service" });
export const useSession = () => useContext(SessionContext);
export const useIsAdmin = () => useSession().role === "admin";
