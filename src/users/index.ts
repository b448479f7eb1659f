export { ToolDbUserAdapter, type UserKeys, type EncryptedAccount, type SignedHash, type UserAdapterConstructor } from "./user-adapter.js";
export { EcdsaUser } from "./ecdsa-user.js";
export * from "./ecdsa-user-helpers.js";
