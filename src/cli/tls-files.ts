import { X509Certificate, createPrivateKey, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createSecureContext } from "node:tls";
import { errorText } from "../base/errors.js";
import { UsageError } from "./args.js";

/** The PEM contents of --tls-cert and --tls-key, checked to make an https server. */
export interface TlsPems {
  cert: Buffer;
  key: Buffer;
}

/**
 * Reads and checks `serve --tls-cert FILE --tls-key FILE` before anything
 * starts, so that each mistake names its flag and file rather than leaving
 * OpenSSL's text alone ("PEM routines::no start line"): a file that cannot
 * be read is a usage error (exit 2); one that holds no certificate or key,
 * or a key of another certificate, fails the start (exit 1).
 */
export async function readTlsFiles(certFile: string, keyFile: string): Promise<TlsPems> {
  // Both read at once; when both fail, the certificate's error is the one told (Promise.all told whichever failed first).
  const [certRead, keyRead] = await Promise.allSettled([readPem("--tls-cert", certFile), readPem("--tls-key", keyFile)]);
  if (certRead.status === "rejected") throw certRead.reason;
  if (keyRead.status === "rejected") throw keyRead.reason;
  const [cert, key] = [certRead.value, keyRead.value];
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`--tls-cert ${certFile}: not a PEM certificate (${errorText(err)})`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`--tls-key ${keyFile}: not a PEM private key, or one with a passphrase (${errorText(err)})`);
  }
  if (!certificate.checkPrivateKey(privateKey)) throw new Error(`--tls-key ${keyFile} is not the key of the certificate in --tls-cert ${certFile}`);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`--tls-cert ${certFile} with --tls-key ${keyFile}: TLS cannot use them (${errorText(err)})`);
  }
  return { cert, key };
}

function readPem(flag: string, file: string): Promise<Buffer> {
  return readFile(file).catch((err: unknown) => Promise.reject(new UsageError(`${flag} ${file}: cannot read it (${errorText(err)})`)));
}
