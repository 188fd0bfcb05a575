export * from "./address.js";
export * from "./http.js";
export * from "./host-client.js";
export * from "./pinned-tls.js";
export * from "./renter-client.js";
export * from "./wallet-signer.js";
