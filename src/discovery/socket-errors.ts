/**
 * k-rpc-socket reports only EACCES/EADDRINUSE as 'error'; other bind failures
 * (EADDRNOTAVAIL, an unresolvable host) arrive as 'warning' yet leave the
 * socket unbound, and the next send would then bind 0.0.0.0 on a random port.
 * This spots them: a socket error from bind or its address lookup before 'listening'.
 */
export function isBindFailure(err: Error & { syscall?: string }, listening: boolean): boolean {
  return !listening && (err.syscall === "bind" || err.syscall === "getaddrinfo");
}
