/**
 * Two network namespaces joined by a veth pair, with a multicast route on
 * each side: a tiny LAN for mDNS tests. Needs root (CAP_NET_ADMIN) and the
 * `ip` tool; fails with a clear message otherwise, never silently.
 */
import { execFileSync, spawn } from "node:child_process";

export interface NetnsLan {
  /** Namespace names and their addresses on the veth link. */
  a: { ns: string; ip: string };
  b: { ns: string; ip: string };
  /** Runs `node file [...args]` inside a namespace; stdout lines go to `onLine`. */
  run(ns: string, file: string, env: Record<string, string>, onLine?: (line: string) => void, args?: string[]): RunningNode;
  destroy(): void;
}

export interface RunningNode {
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>;
  kill(signal?: NodeJS.Signals): void;
}

/** Drops variables set to "" (a way to unset one for the child). */
function withoutEmpty(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== ""));
}

function ip(args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

export function createNetnsLan(subnet = 77): NetnsLan {
  const tag = `tdb${process.pid % 100000}`;
  const a = { ns: `${tag}a`, ip: `10.${subnet}.0.1` };
  const b = { ns: `${tag}b`, ip: `10.${subnet}.0.2` };
  const children = new Set<ReturnType<typeof spawn>>();
  const destroy = () => {
    for (const c of children) c.kill("SIGKILL");
    for (const ns of [a.ns, b.ns]) {
      try {
        ip(["netns", "del", ns]);
      } catch {
        // not created
      }
    }
  };
  try {
    destroy(); // leftovers of a killed run with the same pid
    ip(["netns", "add", a.ns]);
    ip(["netns", "add", b.ns]);
    ip(["link", "add", `${tag}va`, "type", "veth", "peer", "name", `${tag}vb`]);
    ip(["link", "set", `${tag}va`, "netns", a.ns]);
    ip(["link", "set", `${tag}vb`, "netns", b.ns]);
    for (const [side, dev] of [[a, `${tag}va`], [b, `${tag}vb`]] as const) {
      ip(["-n", side.ns, "addr", "add", `${side.ip}/24`, "dev", dev]);
      ip(["-n", side.ns, "link", "set", dev, "up"]);
      ip(["-n", side.ns, "link", "set", "lo", "up"]);
      ip(["-n", side.ns, "route", "add", "224.0.0.0/4", "dev", dev]);
    }
  } catch (err) {
    destroy();
    const detail = (err as { stderr?: Buffer }).stderr?.toString().trim() || String(err);
    throw new Error(
      `cannot create the network namespaces this LAN test needs (run as root with the \`ip\` tool, iproute2): ${detail}`,
    );
  }
  return {
    a,
    b,
    destroy,
    run(ns, file, env, onLine, args = []) {
      const child = spawn("ip", ["netns", "exec", ns, process.execPath, file, ...args], { env: withoutEmpty({ ...process.env, ...env }), stdio: ["ignore", "pipe", "pipe"] });
      children.add(child);
      let out = "";
      let err = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d;
        for (const line of d.toString().split("\n")) if (line) onLine?.(line);
      });
      child.stderr!.on("data", (d: Buffer) => (err += d));
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
        const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        child.on("exit", (code, signal) => {
          clearTimeout(killer);
          children.delete(child);
          resolve({ code, signal, out, err });
        });
      });
      return { exited, kill: (signal = "SIGTERM") => child.kill(signal) };
    },
  };
}
