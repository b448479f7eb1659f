/**
 * Preloaded with `node --import` (see recordModules in cli.ts): when
 * TOOLDB_MODULE_LOG names a file, every module the process loads is
 * appended to it, its URL a line: the ES modules, and the CommonJS
 * packages they import (classic-level, hyperdht; what those require in
 * turn is not seen). A test then tells which modules a run loaded without
 * timing it.
 */
import { register } from "node:module";

const file = process.env.TOOLDB_MODULE_LOG;
if (file) register(new URL("./module-log-hooks.js", import.meta.url), { data: { file } });
