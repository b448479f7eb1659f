export * from "./browser.js";
export { LevelStore } from "./level-store.js";
