/**
 * Tests that need a program from Debian's packages (prometheus, protoc, python3-grpcio): `.ci/run`
 * installs them and sets QS_REQUIRE_EXTERNAL_TOOLS=1, so there a missing program fails the test; on a
 * developer machine without it the test is skipped, and says so.
 */
import { execFileSync } from "node:child_process";

/** Whether `program` can be run. */
export function available(program: string, args = ["--version"]): boolean {
  try {
    execFileSync(program, args, { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** True when the test must be skipped: the program is missing and CI does not require it. */
export function skipWithout(program: string, args?: string[]): boolean {
  if (available(program, args)) return false;
  if (process.env.QS_REQUIRE_EXTERNAL_TOOLS === "1") return false; // let the test fail loudly
  console.warn(`skipping: ${program} is not installed (CI installs it: see .ci/run)`);
  return true;
}
