/**
 * A TCP port for a server that a test or the fault campaign starts later
 * (or restarts) on a fixed port. Asking the kernel for port 0 and closing it
 * again is racy: that port comes from the ephemeral range, and any outgoing
 * connection on the machine may take it as its local port before the server
 * binds it. Ports below the ephemeral range are never handed out that way,
 * so one that binds now stays free unless someone binds it on purpose.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const LOWEST = 20_000;
const ATTEMPTS = 50;

/** The first port of the kernel's ephemeral range (Linux), else IANA's 49152. */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > LOWEST + 1000 ? low : 49_152;
  } catch {
    return 49_152;
  }
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** A port below the ephemeral range on which every host in `hosts` can listen now. */
export async function freePort(hosts: string[] = ["127.0.0.1"]): Promise<number> {
  const high = ephemeralLow();
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const port = LOWEST + Math.floor(Math.random() * (high - LOWEST));
    let free = true;
    for (const host of hosts) free = free && (await canListen(host, port));
    if (free) return port;
  }
  throw new Error(`no port free below ${high} on ${hosts.join(", ")} after ${ATTEMPTS} tries`);
}
