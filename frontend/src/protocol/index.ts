export * from "./backoff";
export * from "./client";
export * from "./framing";
export * from "./stream";
export * from "./types";
